"""Key files: one Ed25519 seed per file, JSON, mode 0600, written atomically.

Used for node identities (libp2p) and L1 account keys alike, so one reader and one
writer serve every command that takes ``--key-file``. Both are Ed25519 seeds, so a
libp2p identity would pass for an account: a key file says what it is for (``use``:
``LIBP2P_IDENTITY`` or ``L1_ACCOUNT``), and a reader that needs an account refuses an
identity. Files written before ``use`` carry none; those named ``identity.key`` (the
node's and the devnet daemon's identity files) are taken for identities.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from .crypto import SigningKey
from .errors import ConfigError

LIBP2P_IDENTITY, L1_ACCOUNT = "libp2p-identity", "l1-account"  # what a key file is for
IDENTITY_NAME = "identity.key"  # the identity files of nodes and devnet daemons


class WrongKeyUse(ConfigError):
    """A key file made for one purpose was given for another (an identity as an L1 account)."""


def write_key(path: Path | str, key: SigningKey, *, kind: str = "ed25519", use: str | None = None) -> None:
    """Write ``key`` to ``path`` (0600), refusing to overwrite an existing key."""
    path = Path(path)
    if path.exists():
        raise ConfigError(f"{path} already exists; refusing to overwrite a key")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fields = {"type": kind, "seed": key.seed.hex(), "public_key": key.public_key.hex()}
    body = json.dumps(fields if use is None else {**fields, "use": use})
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, body.encode() + b"\n")
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def read_key(path: Path | str, *, use: str | None = None) -> SigningKey:
    """The key in ``path``; with ``use=L1_ACCOUNT``, a libp2p identity key is refused."""
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
    if use == L1_ACCOUNT and key_use(path, data) == LIBP2P_IDENTITY:
        sibling = path.parent / "l1.key"
        hint = f"give {sibling}" if sibling.is_file() else "give an account's key file (a node's is DIR/l1.key)"
        raise WrongKeyUse(f"{path} is a libp2p identity key, not an L1 account key; {hint}")
    return key


def key_use(path: Path, data: dict[str, object]) -> str | None:
    """What a key file is for: its ``use``, else (older files) guessed from its name."""
    use = data.get("use")
    if isinstance(use, str):
        return use
    return LIBP2P_IDENTITY if path.name == IDENTITY_NAME else None


def load_or_create_key(path: Path | str, *, use: str | None = None) -> SigningKey:
    """Read the key at ``path``, creating a fresh one (marked with ``use``) on first use."""
    path = Path(path)
    if not path.exists():
        write_key(path, SigningKey.generate(), use=use)
    return read_key(path, use=use)
