"""Key files: one Ed25519 seed per file, JSON, mode 0600, written atomically.

Used for node identities (libp2p) and L1 account keys alike, so one reader and one
writer serve every command that takes ``--key-file``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from .crypto import SigningKey
from .errors import ConfigError


def write_key(path: Path | str, key: SigningKey, *, kind: str = "ed25519") -> None:
    """Write ``key`` to ``path`` (0600), refusing to overwrite an existing key."""
    path = Path(path)
    if path.exists():
        raise ConfigError(f"{path} already exists; refusing to overwrite a key")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    body = json.dumps({"type": kind, "seed": key.seed.hex(), "public_key": key.public_key.hex()})
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, body.encode() + b"\n")
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def read_key(path: Path | str) -> SigningKey:
    path = Path(path)
    try:
        data = json.loads(path.read_text())
        key = SigningKey(bytes.fromhex(data["seed"]))
    except FileNotFoundError:
        raise ConfigError(f"key file {path} does not exist") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"key file {path} is not a valid key file: {exc}") from None
    if "public_key" in data and data["public_key"] != key.public_key.hex():
        raise ConfigError(f"key file {path} is corrupt: its public key does not match its seed")
    return key


def load_or_create_key(path: Path | str) -> SigningKey:
    """Read the key at ``path``, creating a fresh one on first use."""
    path = Path(path)
    if not path.exists():
        write_key(path, SigningKey.generate())
    return read_key(path)
