"""Failures on the way back: only the sender learns which hop failed and why (proto/04-onion.md section 6).

The failing hop authenticates a fixed-size body under its ``um`` key and encrypts the packet
with its ``ammag`` keystream; every earlier hop encrypts it again with its own. The sender
removes one layer per hop, in route order, until a hop's MAC verifies: that hop failed. A hop
on the way back sees a fixed-size random-looking packet and cannot tell where it came from.
"""

from __future__ import annotations

import hmac as _hmac
import struct
from collections.abc import Sequence

import attrs

from .. import encoding
from ..crypto import sha256
from ..errors import DecodeError, LocalProtocolError
from . import keys
from .errors import (
    BADONION,
    EXPIRY_TOO_FAR,
    EXPIRY_TOO_SOON,
    INVALID_ONION_HMAC,
    INVALID_ONION_KEY,
    INVALID_ONION_PAYLOAD,
    INVALID_ONION_SIZE,
    INVALID_ONION_VERSION,
    NODE,
    PERM,
    REPLAYED_ONION,
    TEMPORARY_NODE_FAILURE,
    UPDATE,
    FailureDecodeError,
    MalformedFailure,
    UnreadableFailure,
)

__all__ = [
    "AMOUNT_BELOW_MINIMUM", "BADONION", "CHANNEL_DISABLED", "CODE_NAMES", "EXPIRY_TOO_FAR", "EXPIRY_TOO_SOON",
    "FAILURE_BODY_LEN", "FAILURE_PACKET_LEN", "FEE_INSUFFICIENT", "FINAL_INCORRECT_AMOUNT", "FINAL_INCORRECT_EXPIRY",
    "INCORRECT_EXPIRY", "INCORRECT_OR_UNKNOWN_PAYMENT_DETAILS", "INVALID_ONION_HMAC", "INVALID_ONION_KEY",
    "INVALID_ONION_PAYLOAD", "INVALID_ONION_SIZE", "INVALID_ONION_VERSION", "MAX_FAILURE_DATA",
    "MAX_FAILURE_MESSAGE", "MPP_TIMEOUT", "NODE", "PERM", "PERMANENT_CHANNEL_FAILURE", "PERMANENT_NODE_FAILURE",
    "REPLAYED_ONION", "TEMPORARY_CHANNEL_FAILURE", "TEMPORARY_NODE_FAILURE", "UNKNOWN_NEXT_PEER", "UPDATE",
    "DecodedFailure", "Failure", "FailureDecodeError", "MalformedFailure", "UnreadableFailure",
    "bad_onion_failure", "code_name", "create_failure", "decode_failure", "wrap_failure",
]

MAC_LEN = 32
FAILURE_BODY_LEN = 256  # u16 message length, the message, zero padding
FAILURE_PACKET_LEN = MAC_LEN + FAILURE_BODY_LEN  # 288
MAX_FAILURE_MESSAGE = FAILURE_BODY_LEN - 2
MAX_FAILURE_DATA = 240  # [code, data] in canonical msgpack stays within MAX_FAILURE_MESSAGE

# The codes (proto/04-onion.md section 6.3); the flags say what the sender should do.
PERMANENT_NODE_FAILURE = PERM | NODE | 2
TEMPORARY_CHANNEL_FAILURE = UPDATE | 7
PERMANENT_CHANNEL_FAILURE = PERM | 8
UNKNOWN_NEXT_PEER = PERM | 10
AMOUNT_BELOW_MINIMUM = UPDATE | 11
FEE_INSUFFICIENT = UPDATE | 12
INCORRECT_EXPIRY = UPDATE | 13
INCORRECT_OR_UNKNOWN_PAYMENT_DETAILS = PERM | 15
FINAL_INCORRECT_EXPIRY = 18
FINAL_INCORRECT_AMOUNT = 19
CHANNEL_DISABLED = UPDATE | 20
MPP_TIMEOUT = 23

CODE_NAMES: dict[int, str] = {
    TEMPORARY_NODE_FAILURE: "temporary_node_failure",
    PERMANENT_NODE_FAILURE: "permanent_node_failure",
    INVALID_ONION_VERSION: "invalid_onion_version",
    INVALID_ONION_HMAC: "invalid_onion_hmac",
    INVALID_ONION_KEY: "invalid_onion_key",
    INVALID_ONION_SIZE: "invalid_onion_size",
    REPLAYED_ONION: "replayed_onion",
    TEMPORARY_CHANNEL_FAILURE: "temporary_channel_failure",
    PERMANENT_CHANNEL_FAILURE: "permanent_channel_failure",
    UNKNOWN_NEXT_PEER: "unknown_next_peer",
    AMOUNT_BELOW_MINIMUM: "amount_below_minimum",
    FEE_INSUFFICIENT: "fee_insufficient",
    INCORRECT_EXPIRY: "incorrect_expiry",
    EXPIRY_TOO_SOON: "expiry_too_soon",
    INCORRECT_OR_UNKNOWN_PAYMENT_DETAILS: "incorrect_or_unknown_payment_details",
    FINAL_INCORRECT_EXPIRY: "final_incorrect_expiry",
    FINAL_INCORRECT_AMOUNT: "final_incorrect_amount",
    CHANNEL_DISABLED: "channel_disabled",
    EXPIRY_TOO_FAR: "expiry_too_far",
    INVALID_ONION_PAYLOAD: "invalid_onion_payload",
    MPP_TIMEOUT: "mpp_timeout",
}


def code_name(code: int) -> str:
    return CODE_NAMES.get(code, f"unknown_failure_{code:#06x}")


@attrs.frozen
class Failure:
    """A failure code (u16, flags in the top bits) and opaque data (e.g. a channel update)."""

    code: int
    data: bytes = b""

    def __attrs_post_init__(self) -> None:
        if type(self.code) is not int or not 0 <= self.code <= 0xFFFF:
            raise LocalProtocolError("a failure code is an unsigned 16-bit integer")
        if type(self.data) is not bytes or len(self.data) > MAX_FAILURE_DATA:
            raise LocalProtocolError(f"failure data is bytes, at most {MAX_FAILURE_DATA}")

    @property
    def name(self) -> str:
        return code_name(self.code)

    @property
    def is_permanent(self) -> bool:
        return bool(self.code & PERM)

    @property
    def is_bad_onion(self) -> bool:
        return bool(self.code & BADONION)

    @property
    def is_node(self) -> bool:
        return bool(self.code & NODE)

    def to_bytes(self) -> bytes:
        return encoding.encode([self.code, self.data])


@attrs.frozen
class DecodedFailure:
    """What the sender learns: ``hop_index`` (0 = the first hop after the sender) failed with ``failure``."""

    hop_index: int
    failure: Failure


def bad_onion_failure(code: int, packet: bytes) -> Failure:
    """The failure a hop's upstream peer sends back for an onion its next hop could not peel: the
    code the next hop reported and the SHA-256 of the packet it was given (proto/04-onion.md 6.4)."""
    if not code & BADONION:
        raise LocalProtocolError("a bad-onion report carries a BADONION code")
    return Failure(code=code, data=sha256(bytes(packet)))


def _body(failure: Failure) -> bytes:
    message = failure.to_bytes()
    return struct.pack(">H", len(message)) + message + bytes(MAX_FAILURE_MESSAGE - len(message))


def _obfuscate(shared_secret: bytes, packet: bytes) -> bytes:
    return keys.xor(packet, keys.stream(keys.derive(keys.LABEL_AMMAG, shared_secret), FAILURE_PACKET_LEN))


def _check_secret(shared_secret: bytes) -> None:
    if type(shared_secret) is not bytes or len(shared_secret) != keys.KEY_LEN:
        raise LocalProtocolError("a shared secret is exactly 32 bytes")


def create_failure(shared_secret: bytes, failure: Failure) -> bytes:
    """The failing hop's packet: MAC under ``um``, then one layer of ``ammag``."""
    _check_secret(shared_secret)
    body = _body(failure)
    tag = keys.mac(keys.derive(keys.LABEL_UM, shared_secret), body)
    return _obfuscate(shared_secret, tag + body)


def wrap_failure(shared_secret: bytes, packet: bytes) -> bytes:
    """An earlier hop's step on the way back: one more ``ammag`` layer. A packet of the wrong size
    raises ``FailureDecodeError``; the hop then sends its own failure instead."""
    _check_secret(shared_secret)
    if not isinstance(packet, (bytes, bytearray, memoryview)) or len(packet) != FAILURE_PACKET_LEN:
        raise FailureDecodeError(f"a failure packet is {FAILURE_PACKET_LEN} bytes")
    return _obfuscate(shared_secret, bytes(packet))


def _parse_body(body: bytes, hop_index: int) -> Failure:
    (length,) = struct.unpack(">H", body[:2])
    if not 1 <= length <= MAX_FAILURE_MESSAGE:
        raise MalformedFailure(f"hop {hop_index} sent a failure length of {length}", hop_index=hop_index)
    if any(body[2 + length:]):
        raise MalformedFailure(f"hop {hop_index} sent non-zero failure padding", hop_index=hop_index)
    try:
        value = encoding.decode(body[2:2 + length], max_size=MAX_FAILURE_MESSAGE)
    except DecodeError as exc:
        raise MalformedFailure(f"hop {hop_index} sent a malformed failure: {exc}", hop_index=hop_index) from None
    if (not isinstance(value, list) or len(value) != 2 or type(value[0]) is not int
            or not 0 <= value[0] <= 0xFFFF or type(value[1]) is not bytes or len(value[1]) > MAX_FAILURE_DATA):
        raise MalformedFailure(f"hop {hop_index} sent a failure that is not [code, data]", hop_index=hop_index)
    return Failure(code=value[0], data=value[1])


def decode_failure(shared_secrets: Sequence[bytes], packet: bytes) -> DecodedFailure:
    """The sender's side: peel one layer per hop in route order until a hop's MAC verifies.

    ``UnreadableFailure`` when none does (a hop on the way back altered the packet);
    ``MalformedFailure`` with the hop index when the authenticated body is not well formed."""
    if not isinstance(packet, (bytes, bytearray, memoryview)) or len(packet) != FAILURE_PACKET_LEN:
        raise FailureDecodeError(f"a failure packet is {FAILURE_PACKET_LEN} bytes")
    data = bytes(packet)
    for index, ss in enumerate(shared_secrets):
        _check_secret(ss)
        data = _obfuscate(ss, data)
        tag, body = data[:MAC_LEN], data[MAC_LEN:]
        if _hmac.compare_digest(keys.mac(keys.derive(keys.LABEL_UM, ss), body), tag):
            return DecodedFailure(hop_index=index, failure=_parse_body(body, index))
    raise UnreadableFailure("no hop of the route authenticates this failure; a hop on the way back altered it")
