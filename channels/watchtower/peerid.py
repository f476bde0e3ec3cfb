"""Ed25519 libp2p peer ids <-> public keys without libp2p: the key is inside the id.

A peer id is base58btc of the identity multihash of the protobuf-encoded public key,
``00 24 08 01 12 20 || key`` (proto/vectors/keys.json). A client checks a receipt's tower
key against the peer id it dialled; ``channels tower status`` names the tower without
importing libp2p.
"""

from __future__ import annotations

from ..errors import DecodeError

ED25519_PREFIX = bytes.fromhex("002408011220")
_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_INDEX = {c: i for i, c in enumerate(_ALPHABET)}


def _b58encode(data: bytes) -> str:
    n, out = int.from_bytes(data, "big"), ""
    while n:
        n, r = divmod(n, 58)
        out = _ALPHABET[r] + out
    return "1" * (len(data) - len(data.lstrip(b"\0"))) + out


def peer_id_of(public_key: bytes) -> str:
    if len(public_key) != 32:
        raise DecodeError("an Ed25519 public key is 32 bytes")
    return _b58encode(ED25519_PREFIX + public_key)


def public_key_of(peer_id: str) -> bytes:
    """The Ed25519 key inside ``peer_id``; ``DecodeError`` for anything else."""
    if not isinstance(peer_id, str) or not 0 < len(peer_id) <= 64 or any(c not in _INDEX for c in peer_id):
        raise DecodeError(f"{peer_id!r} is not a base58 peer id")
    n = 0
    for c in peer_id:
        n = n * 58 + _INDEX[c]
    zeros = len(peer_id) - len(peer_id.lstrip("1"))
    raw = b"\0" * zeros + n.to_bytes((n.bit_length() + 7) // 8, "big")
    if len(raw) != len(ED25519_PREFIX) + 32 or not raw.startswith(ED25519_PREFIX) or _b58encode(raw) != peer_id:
        raise DecodeError(f"{peer_id} is not an Ed25519 peer id (its key is not inside it)")
    return raw[len(ED25519_PREFIX):]
