"""libp2p peer ids of Ed25519 keys, without libp2p: the key is inside the id.

A peer id here is base58btc of the identity multihash of the protobuf-encoded public key
(proto/vectors/keys.json): ``00 24 08 01 12 20 || key``, 38 bytes. So an invoice that names
its payee by peer id carries the key its signature is checked with.
"""

from __future__ import annotations

from .errors import InvalidField

ED25519_PREFIX = bytes.fromhex("002408011220")  # identity multihash, 36 bytes: KeyType Ed25519, 32-byte key
PEER_ID_LEN = len(ED25519_PREFIX) + 32
MAX_PEER_ID_TEXT = 64  # an Ed25519 peer id is 52 characters of base58
_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_INDEX = {c: i for i, c in enumerate(_ALPHABET)}


def b58encode(data: bytes) -> str:
    n, out = int.from_bytes(data, "big"), ""
    while n:
        n, r = divmod(n, 58)
        out = _ALPHABET[r] + out
    return "1" * (len(data) - len(data.lstrip(b"\0"))) + out


def b58decode(text: str) -> bytes:
    n = 0
    for c in text:
        if c not in _INDEX:
            raise InvalidField(f"invalid base58 character {c!r} in a peer id")
        n = n * 58 + _INDEX[c]
    zeros = len(text) - len(text.lstrip("1"))
    return b"\0" * zeros + n.to_bytes((n.bit_length() + 7) // 8, "big")


def peer_id_of(public_key: bytes) -> str:
    """The peer id of an Ed25519 public key (what py-libp2p derives from the identity seed)."""
    if len(public_key) != 32:
        raise InvalidField("an Ed25519 public key is 32 bytes")
    return b58encode(ED25519_PREFIX + public_key)


def check_peer_id_bytes(raw: bytes, what: str) -> bytes:
    """``raw`` if it is an Ed25519 peer id's bytes; the public key is then ``raw[6:]``."""
    if len(raw) != PEER_ID_LEN or not raw.startswith(ED25519_PREFIX):
        raise InvalidField(f"{what} is not an Ed25519 libp2p peer id (00 24 08 01 12 20 and a 32-byte key)")
    return raw


def peer_id_bytes(peer_id: str, what: str = "the peer id") -> bytes:
    """The 38 bytes of a base58 Ed25519 peer id; refused unless canonical base58."""
    if not isinstance(peer_id, str) or not 0 < len(peer_id) <= MAX_PEER_ID_TEXT:
        raise InvalidField(f"{what} must be a base58 peer id")
    raw = b58decode(peer_id)
    if b58encode(raw) != peer_id:
        raise InvalidField(f"{what} is not canonical base58")
    return check_peer_id_bytes(raw, what)


def public_key_of(peer_id: str) -> bytes:
    """The Ed25519 public key inside ``peer_id``."""
    return peer_id_bytes(peer_id)[len(ED25519_PREFIX):]
