"""``channels tower status``: read a tower's data dir without disturbing it (stdlib only).

The store is opened read-only (SQLite WAL lets a reader in while the daemon writes), the
peer id comes from the public key in ``identity.key`` and the address from ``tower.addr``:
status works whether the tower runs or not, and never imports libp2p, trio or pynacl.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from ..datadir import lock_held
from ..errors import ConfigError, DecodeError
from .constants import ADDR_FILE, DB_FILE, IDENTITY_FILE, L1_KEY_FILE, LOCK_FILE, PID_FILE
from .peerid import peer_id_of


def daemon_pid(data_dir: Path) -> int | None:
    """The running tower's pid, or None (no tower runs, or it is still starting)."""
    if not lock_held(data_dir, LOCK_FILE):
        return None
    try:
        return int((data_dir / PID_FILE).read_text().strip())
    except (OSError, ValueError):
        return None


def _public_key(path: Path) -> bytes | None:
    try:
        return bytes.fromhex(json.loads(path.read_text())["public_key"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def read_status(data_dir: Path) -> dict[str, Any]:
    """What ``tower status --json`` prints; ``ConfigError`` if no tower ever ran in ``data_dir``."""
    db = data_dir / DB_FILE
    if not db.is_file():
        raise ConfigError(f"no tower in {data_dir} ({DB_FILE} is missing); start one with "
                          f"`channels tower start --data-dir {data_dir} --devnet MULTIADDR`")
    running = lock_held(data_dir, LOCK_FILE)
    key = _public_key(data_dir / IDENTITY_FILE)
    l1 = _public_key(data_dir / L1_KEY_FILE)
    try:
        peer_id = None if key is None else peer_id_of(key)
    except DecodeError:
        peer_id = None
    addresses: list[str] = []
    if running:
        try:
            addresses = [line for line in (data_dir / ADDR_FILE).read_text().split() if line]
        except OSError:
            addresses = []
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        try:
            def one(sql: str) -> int:
                return int(conn.execute(sql).fetchone()[0])

            plain = one("SELECT COUNT(*) FROM appointments")
            encrypted = one("SELECT COUNT(*) FROM blobs")
            clients = one("SELECT COUNT(*) FROM clients WHERE appointments > 0")
            disputes = one("SELECT COUNT(*) FROM disputes")
            size = one("SELECT COALESCE(SUM(bytes), 0) FROM clients")
            row = conn.execute("SELECT value FROM meta WHERE key = 'chain_cursor'").fetchone()
            chain = conn.execute("SELECT value FROM meta WHERE key = 'chain_id'").fetchone()
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise ConfigError(f"cannot read the tower store {db}: {exc}") from None
    return {"peer_id": peer_id, "addresses": addresses, "appointments": plain + encrypted, "clients": clients,
            "plain_appointments": plain, "encrypted_appointments": encrypted, "disputes": disputes, "bytes": size,
            "running": running, "pid": daemon_pid(data_dir) if running else None,
            "chain_id": int(bytes(chain[0]).decode()) if chain else None,
            "chain_cursor": int.from_bytes(bytes(row[0]), "big") if row else 0,
            "l1_account": None if l1 is None else l1.hex(), "data_dir": str(data_dir)}
