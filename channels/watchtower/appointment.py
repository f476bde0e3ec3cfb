"""What a client hands a tower, and what the tower signs back (proto/07-watchtower.md sections 2-5).

* ``Appointment``: a channel's parameters, its newest state signed by every participant,
  and the preimages of its locks that the client knows. The tower can refute with it.
* ``EncryptedAppointment``: the same, encrypted under a key the tower learns only when a
  chosen state (the *trigger*) is registered on the L1: ``locator``/``key`` both derive from
  the trigger state and one participant's signature on it, which nobody but the
  participants knows until someone registers that state.
* ``Receipt``: the tower's Ed25519 signature over a domain-separated digest of what it
  stored, so a client can prove (to itself, or to anyone) which tower took which version.

Pure functions and frozen values; the AEAD is XChaCha20-Poly1305 (IETF) from libsodium.
"""

from __future__ import annotations

import struct
from typing import Any

import attrs
import nacl.bindings as sodium
import nacl.exceptions

from ..core.ids import ChannelId, Version
from ..core.state import ChannelParams, SignedState, State, parse_bytes, parse_list, parse_u64
from ..crypto import sha256, verify
from ..encoding import decode, encode
from ..errors import DecodeError
from .errors import MalformedAppointment

APPOINTMENT_DOMAIN = b"p2p-channels/tower/appointment/v1"
BLOB_DOMAIN = b"p2p-channels/tower/blob/v1"
TRIGGER_DOMAIN = b"p2p-channels/tower/trigger/v1"
LOCATOR_DOMAIN = b"p2p-channels/tower/locator/v1"
KEY_DOMAIN = b"p2p-channels/tower/key/v1"
RECEIPT_DOMAIN = b"p2p-channels/tower/receipt/v1"

LOCATOR_LEN = 16
NONCE_LEN = sodium.crypto_aead_xchacha20poly1305_ietf_NPUBBYTES  # 24
TAG_LEN = sodium.crypto_aead_xchacha20poly1305_ietf_ABYTES  # 16
MAX_PREIMAGE = 256  # the devnet's RegisterSecret takes 1..256 bytes
MAX_PREIMAGES = 256  # one per lock of a state at most (``core.state.MAX_LOCKS``)
MAX_APPOINTMENT_BYTES = 48 * 1024  # an encoded appointment; the frame cap is 64 KiB
MAX_CIPHERTEXT = MAX_APPOINTMENT_BYTES + TAG_LEN

PLAIN, ENCRYPTED = 0, 1  # receipt kinds: the subject is a channel id, or a locator


@attrs.frozen(kw_only=True)
class Appointment:
    """One channel's newest co-signed state, with the lock preimages its client knows."""

    params: ChannelParams
    signed: SignedState
    preimages: tuple[bytes, ...] = ()

    @property
    def channel_id(self) -> ChannelId:
        return self.signed.state.channel_id

    @property
    def version(self) -> Version:
        return self.signed.state.version

    def to_fields(self) -> list[Any]:
        return [self.params.to_fields(), self.signed.to_fields(), list(self.preimages)]

    @classmethod
    def from_fields(cls, f: Any) -> Appointment:
        try:
            f = parse_list(f, "appointment", size=3)
            raw = parse_list(f[2], "preimages", max_size=MAX_PREIMAGES)
            preimages = tuple(parse_bytes(p, "preimage", max_size=MAX_PREIMAGE) for p in raw)
            if any(not p for p in preimages):
                raise DecodeError("a preimage is 1..256 bytes")
            return cls(params=ChannelParams.from_fields(f[0]), signed=SignedState.from_fields(f[1]),
                       preimages=preimages)
        except MalformedAppointment:
            raise
        except DecodeError as exc:
            raise MalformedAppointment(f"malformed appointment: {exc}") from None

    def encode(self) -> bytes:
        return encode(self.to_fields())

    @classmethod
    def decode(cls, data: bytes) -> Appointment:
        try:
            value = decode(data, max_size=MAX_APPOINTMENT_BYTES)
        except DecodeError as exc:
            raise MalformedAppointment(f"malformed appointment: {exc}") from None
        return cls.from_fields(value)

    def digest(self) -> bytes:
        """The appointment hash a receipt covers: SHA-256 of the domain and the encoding."""
        return sha256(APPOINTMENT_DOMAIN + self.encode())


@attrs.frozen(kw_only=True)
class EncryptedAppointment:
    """An appointment the tower cannot read until the trigger state is registered on the L1."""

    locator: bytes
    seq: int  # chosen by the client; a blob replaces the client's blob at its locator only with a higher seq
    nonce: bytes
    ciphertext: bytes

    def to_fields(self) -> list[Any]:
        return [self.locator, self.seq, self.nonce, self.ciphertext]

    @classmethod
    def from_fields(cls, f: Any) -> EncryptedAppointment:
        try:
            f = parse_list(f, "encrypted appointment", size=4)
            ciphertext = parse_bytes(f[3], "ciphertext", max_size=MAX_CIPHERTEXT)
            if len(ciphertext) <= TAG_LEN:
                raise DecodeError(f"a ciphertext is longer than its {TAG_LEN}-byte tag")
            return cls(locator=parse_bytes(f[0], "locator", size=LOCATOR_LEN), seq=parse_u64(f[1], "seq"),
                       nonce=parse_bytes(f[2], "nonce", size=NONCE_LEN), ciphertext=ciphertext)
        except DecodeError as exc:
            raise MalformedAppointment(f"malformed encrypted appointment: {exc}") from None

    def encode(self) -> bytes:
        return encode(self.to_fields())

    def digest(self) -> bytes:
        return sha256(APPOINTMENT_DOMAIN + self.encode())


# --- the encrypted mode ----------------------------------------------------------------------------


def trigger_id(state: State, signature: bytes) -> bytes:
    """What a registration of ``state`` reveals: the state and one participant's signature on it.

    Only the signer's own signature is used, never the other's: a cheater can re-sign a
    state it registers (Ed25519 with another nonce is just as valid) and so change its own
    signature's bytes, but it cannot make a second valid signature of the honest signer."""
    return sha256(TRIGGER_DOMAIN + encode(state.to_fields()) + signature)


def locator_of(trigger: bytes) -> bytes:
    return sha256(LOCATOR_DOMAIN + trigger)[:LOCATOR_LEN]


def key_of(trigger: bytes) -> bytes:
    return sha256(KEY_DOMAIN + trigger)


def _aad(locator: bytes, seq: int) -> bytes:
    return BLOB_DOMAIN + locator + struct.pack(">Q", seq)


def encrypt(appointment: Appointment, trigger: SignedState, slot: int, *, seq: int,
            nonce: bytes) -> EncryptedAppointment:
    """Encrypt ``appointment`` so that a registration of ``trigger`` opens it.

    ``slot`` is the index of the client's own signature in ``trigger``; ``nonce`` is 24
    random bytes (never reuse one with the same trigger)."""
    signature = trigger.signatures[slot]
    if not signature:
        raise MalformedAppointment(f"the trigger state has no signature in slot {slot}")
    if len(nonce) != NONCE_LEN:
        raise MalformedAppointment(f"a nonce is {NONCE_LEN} bytes")
    tid = trigger_id(trigger.state, signature)
    locator = locator_of(tid)
    ciphertext = sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(appointment.encode(), _aad(locator, seq), nonce,
                                                                   key_of(tid))
    return EncryptedAppointment(locator=locator, seq=seq, nonce=nonce, ciphertext=ciphertext)


def decrypt(blob: EncryptedAppointment, trigger: bytes) -> Appointment:
    """The appointment inside ``blob``, given the trigger id it was made for."""
    try:
        plain = sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(blob.ciphertext, _aad(blob.locator, blob.seq),
                                                                  blob.nonce, key_of(trigger))
    except (nacl.exceptions.CryptoError, ValueError, TypeError):
        raise MalformedAppointment("the encrypted appointment does not open with this trigger") from None
    return Appointment.decode(plain)


# --- receipts --------------------------------------------------------------------------------------


def receipt_digest(tower_key: bytes, kind: int, subject: bytes, version: int, appointment_hash: bytes,
                   time: int) -> bytes:
    """SHA-256 over a fixed layout (proto/07 section 5): the domain binds it to receipts only."""
    return sha256(RECEIPT_DOMAIN + tower_key + struct.pack(">BB", kind, len(subject)) + subject
                  + struct.pack(">Q", version) + appointment_hash + struct.pack(">Q", time))


@attrs.frozen(kw_only=True)
class Receipt:
    """The tower's signed statement: it stored ``appointment_hash`` for ``subject`` at ``version``."""

    tower_key: bytes  # the tower's Ed25519 public key (the key inside its libp2p peer id)
    kind: int  # PLAIN: subject is the channel id, version the state's; ENCRYPTED: the locator and seq
    subject: bytes
    version: int
    appointment_hash: bytes
    time: int  # the tower's clock (Unix seconds) when it stored the appointment
    signature: bytes

    @property
    def digest(self) -> bytes:
        return receipt_digest(self.tower_key, self.kind, self.subject, self.version, self.appointment_hash,
                              self.time)

    def verifies(self) -> bool:
        return verify(self.tower_key, self.digest, self.signature)

    def to_fields(self) -> list[Any]:
        return [self.tower_key, self.kind, self.subject, self.version, self.appointment_hash, self.time,
                self.signature]

    @classmethod
    def from_fields(cls, f: Any) -> Receipt:
        f = parse_list(f, "receipt", size=7)
        kind = parse_u64(f[1], "receipt kind")
        if kind not in (PLAIN, ENCRYPTED):
            raise DecodeError(f"unknown receipt kind {kind}")
        subject = parse_bytes(f[2], "receipt subject", size=32 if kind == PLAIN else LOCATOR_LEN)
        return cls(tower_key=parse_bytes(f[0], "tower key", size=32), kind=kind, subject=subject,
                   version=parse_u64(f[3], "receipt version"),
                   appointment_hash=parse_bytes(f[4], "appointment hash", size=32),
                   time=parse_u64(f[5], "receipt time"), signature=parse_bytes(f[6], "receipt signature", size=64))
