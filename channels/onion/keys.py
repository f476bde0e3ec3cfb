"""The onion's primitives: X25519, the ChaCha20 keystream and the labelled key derivations.

Every function here is a pure function of its inputs (proto/04-onion.md section 3); the only
randomness in the package is ``random_session_key``, which callers may replace by their own.
pynacl 1.6 exposes no raw ChaCha20 stream, so the keystream is read off the IETF
ChaCha20-Poly1305 AEAD encryption of zeros: RFC 8439 ChaCha20 with a zero 96-bit nonce,
starting at block counter 1 (block 0 keys Poly1305, whose tag is dropped).
"""

from __future__ import annotations

import hashlib
import hmac

import nacl.bindings
import nacl.exceptions
import nacl.utils

from ..errors import LocalProtocolError
from .errors import BadOnionKey

KEY_LEN = 32
P25519 = 2**255 - 19
LABEL_PREFIX = b"p2p-channels/onion/v0/"
_ZERO_NONCE = bytes(12)
_AEAD_TAG_LEN = 16


def label(name: str) -> bytes:
    """The domain-separation label for one derivation, e.g. ``p2p-channels/onion/v0/rho``."""
    return LABEL_PREFIX + name.encode("ascii")


LABEL_SHARED = label("shared")
LABEL_BLIND = label("blind")
LABEL_REPLAY = label("replay")
LABEL_RHO = label("rho")
LABEL_MU = label("mu")
LABEL_UM = label("um")
LABEL_AMMAG = label("ammag")
LABEL_PAD = label("pad")


def random_session_key() -> bytes:
    """A fresh 32-byte session key for one packet; never reuse one (proto/04-onion.md section 4)."""
    return nacl.utils.random(KEY_LEN)


def is_canonical_public_key(key: bytes) -> bool:
    """A little-endian u-coordinate below 2^255-19 with the top bit clear: one encoding per key."""
    return len(key) == KEY_LEN and int.from_bytes(key, "little") < P25519


def public_key(secret: bytes) -> bytes:
    """The X25519 public key of a 32-byte secret (the secret is clamped, RFC 7748)."""
    if type(secret) is not bytes or len(secret) != KEY_LEN:
        raise LocalProtocolError("an X25519 secret is exactly 32 bytes")
    return nacl.bindings.crypto_scalarmult_base(secret)


def onion_secret_from_ed25519_seed(seed: bytes) -> bytes:
    """A node's X25519 onion secret from its Ed25519 seed (libsodium's birational map), so a
    sender can derive the onion key from an Ed25519 identity it already knows."""
    if type(seed) is not bytes or len(seed) != KEY_LEN:
        raise LocalProtocolError("an Ed25519 seed is exactly 32 bytes")
    _, sk = nacl.bindings.crypto_sign_seed_keypair(seed)
    return nacl.bindings.crypto_sign_ed25519_sk_to_curve25519(sk)


def onion_public_from_ed25519(ed25519_public: bytes) -> bytes:
    """The X25519 onion public key matching ``onion_secret_from_ed25519_seed`` of the same identity."""
    if type(ed25519_public) is not bytes or len(ed25519_public) != KEY_LEN:
        raise LocalProtocolError("an Ed25519 public key is exactly 32 bytes")
    try:
        return nacl.bindings.crypto_sign_ed25519_pk_to_curve25519(ed25519_public)
    except nacl.exceptions.CryptoError:
        raise LocalProtocolError("not a valid Ed25519 public key") from None


def x25519(scalar: bytes, point: bytes) -> bytes:
    """X25519(scalar, point); an all-zero result (a small-order point) raises ``BadOnionKey``."""
    try:
        return nacl.bindings.crypto_scalarmult(scalar, point)
    except nacl.exceptions.CryptoError:
        raise BadOnionKey("the ephemeral key gives a degenerate X25519 result") from None


def shared_secret(dh: bytes, ephemeral_key: bytes, node_public: bytes) -> bytes:
    """ss = SHA-256(label "shared" || X25519 output || ephemeral key || node public key)."""
    return hashlib.sha256(LABEL_SHARED + dh + ephemeral_key + node_public).digest()


def blinding_factor(ephemeral_key: bytes, ss: bytes) -> bytes:
    """b = SHA-256(label "blind" || ephemeral key || ss); the next key is X25519(b, ephemeral key)."""
    return hashlib.sha256(LABEL_BLIND + ephemeral_key + ss).digest()


def derive(label_bytes: bytes, secret: bytes) -> bytes:
    """A per-purpose key: HMAC-SHA256(key=label, message=secret), as BOLT #4 does with its key types."""
    return hmac.new(label_bytes, secret, hashlib.sha256).digest()


def mac(key: bytes, data: bytes) -> bytes:
    return hmac.new(key, data, hashlib.sha256).digest()


def stream(key: bytes, length: int) -> bytes:
    """``length`` bytes of ChaCha20 keystream under ``key`` (zero nonce, block counter 1)."""
    if length == 0:
        return b""
    out = nacl.bindings.crypto_aead_chacha20poly1305_ietf_encrypt(bytes(length), None, _ZERO_NONCE, key)
    return out[:-_AEAD_TAG_LEN]


def xor(a: bytes, b: bytes) -> bytes:
    """Bytewise XOR of two equal-length strings (one big-int operation, fast for 2600 bytes)."""
    n = len(a)
    return (int.from_bytes(a, "big") ^ int.from_bytes(b, "big")).to_bytes(n, "big")
