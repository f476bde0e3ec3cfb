"""Ed25519 and hashing for channels and identities (the onion and the watchtower keep their
own X25519 and AEAD primitives beside their formats).

Ed25519 signatures are deterministic (RFC 8032), so signing is a pure function of
key and message; that is what lets the sans-I/O core sign without side effects.
"""

from __future__ import annotations

import hashlib

import attrs
import nacl.exceptions
import nacl.signing

from .errors import LocalProtocolError

PUBLIC_KEY_LEN = 32
SIGNATURE_LEN = 64
SEED_LEN = 32


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


@attrs.frozen(repr=False)
class SigningKey:
    """An Ed25519 private key; ``address`` is its 32-byte public key."""

    seed: bytes = attrs.field()

    @seed.validator
    def _check(self, _a: object, value: bytes) -> None:
        if not isinstance(value, bytes) or len(value) != SEED_LEN:
            raise LocalProtocolError("an Ed25519 seed is exactly 32 bytes")

    @classmethod
    def generate(cls) -> "SigningKey":
        return cls(bytes(nacl.signing.SigningKey.generate()))

    @classmethod
    def from_label(cls, label: str) -> "SigningKey":
        """Deterministic key for tests, vectors and demos: never for real funds."""
        return cls(sha256(b"p2p-channels/test-key/" + label.encode()))

    @property
    def public_key(self) -> bytes:
        return _public_key(self.seed)

    def sign(self, message: bytes) -> bytes:
        return _nacl_key(self.seed).sign(message).signature

    def __repr__(self) -> str:
        return f"SigningKey(public_key={self.public_key.hex()[:16]}...)"


_KEY_CACHE: dict[bytes, nacl.signing.SigningKey] = {}


def _nacl_key(seed: bytes) -> nacl.signing.SigningKey:
    key = _KEY_CACHE.get(seed)
    if key is None:
        key = nacl.signing.SigningKey(seed)
        if len(_KEY_CACHE) > 1024:
            _KEY_CACHE.clear()
        _KEY_CACHE[seed] = key
    return key


def _public_key(seed: bytes) -> bytes:
    return bytes(_nacl_key(seed).verify_key)


_VERIFY_CACHE: dict[bytes, nacl.signing.VerifyKey] = {}


def verify(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """True when ``signature`` is a valid Ed25519 signature; never raises on bad input."""
    if len(public_key) != PUBLIC_KEY_LEN or len(signature) != SIGNATURE_LEN:
        return False
    key = _VERIFY_CACHE.get(public_key)
    try:
        if key is None:
            key = nacl.signing.VerifyKey(public_key)
            if len(_VERIFY_CACHE) > 4096:
                _VERIFY_CACHE.clear()
            _VERIFY_CACHE[public_key] = key
        key.verify(message, signature)
    except (nacl.exceptions.BadSignatureError, nacl.exceptions.CryptoError, ValueError, TypeError):
        return False
    return True
