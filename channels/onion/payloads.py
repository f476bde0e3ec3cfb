"""Per-hop payloads: what the sender tells each hop (proto/04-onion.md section 5).

A payload is a canonical msgpack record (``channels.encoding``): a forwarding hop learns the
next hop, the amount to forward and the outgoing expiry; the final hop learns what it must
receive. Decoders are strict and bounded: any deviation raises ``PayloadDecodeError`` (a
``DecodeError``), so a payload has exactly one byte form.
"""

from __future__ import annotations

from typing import Any

import attrs

from .. import encoding
from ..core.ids import MAX_AMOUNT, MAX_U64
from ..core.state import amount_field, parse_amount
from ..errors import DecodeError, LocalProtocolError
from .errors import PayloadDecodeError

FORWARD_TYPE = 1
FINAL_TYPE = 2
MAX_NEXT_HOP_LEN = 40  # a 32-byte channel id or a 38-byte Ed25519 libp2p peer id fits; 8 bytes keeps 20 hops
SECRET_LEN = 32
# The routing area bounds a payload from above (proto/04-onion.md section 4.1); the decoder
# refuses anything longer before parsing it.
MAX_PAYLOAD_LEN = 1300 - 2 - 32


def _check_amount(value: int, what: str, *, positive: bool = True) -> None:
    low = 1 if positive else 0
    if type(value) is not int or not low <= value <= MAX_AMOUNT:
        raise LocalProtocolError(f"{what} must be an integer in {low} .. 2^256-1")


def _check_u64(value: int, what: str) -> None:
    if type(value) is not int or not 0 <= value <= MAX_U64:
        raise LocalProtocolError(f"{what} must be an unsigned 64-bit integer")


def _check_secret(value: bytes | None, what: str) -> None:
    if value is not None and (type(value) is not bytes or len(value) != SECRET_LEN):
        raise LocalProtocolError(f"{what} must be absent or exactly {SECRET_LEN} bytes")


@attrs.frozen
class ForwardPayload:
    """Instructions for a forwarding hop: the outgoing lock goes to ``next_hop`` with ``amount``
    (same asset and hashlock as the incoming lock) and expires at ``expiry`` (L1 time)."""

    next_hop: bytes
    amount: int
    expiry: int

    def __attrs_post_init__(self) -> None:
        if type(self.next_hop) is not bytes or not 1 <= len(self.next_hop) <= MAX_NEXT_HOP_LEN:
            raise LocalProtocolError(f"next_hop must be 1..{MAX_NEXT_HOP_LEN} bytes")
        _check_amount(self.amount, "amount")
        _check_u64(self.expiry, "expiry")

    def to_bytes(self) -> bytes:
        return encoding.encode([FORWARD_TYPE, self.next_hop, amount_field(self.amount), self.expiry])


@attrs.frozen
class FinalPayload:
    """Instructions for the final hop: the incoming lock must carry at least ``amount`` and
    expire no earlier than ``expiry``; ``total_amount`` is the sum of all parts of a multi-part
    payment (equal to ``amount`` for a single part); ``payment_secret`` is the invoice's secret
    (stops intermediate hops probing the payee); ``keysend_preimage`` carries a spontaneous
    payment's preimage."""

    amount: int
    expiry: int
    total_amount: int
    payment_secret: bytes | None = None
    keysend_preimage: bytes | None = None

    def __attrs_post_init__(self) -> None:
        _check_amount(self.amount, "amount")
        _check_u64(self.expiry, "expiry")
        _check_amount(self.total_amount, "total_amount")
        if self.total_amount < self.amount:
            raise LocalProtocolError("total_amount must be at least amount")
        _check_secret(self.payment_secret, "payment_secret")
        _check_secret(self.keysend_preimage, "keysend_preimage")

    def to_bytes(self) -> bytes:
        return encoding.encode([FINAL_TYPE, amount_field(self.amount), self.expiry,
                                amount_field(self.total_amount), self.payment_secret, self.keysend_preimage])


HopPayload = ForwardPayload | FinalPayload


def _bytes_field(value: Any, what: str, *, min_len: int, max_len: int) -> bytes:
    if type(value) is not bytes or not min_len <= len(value) <= max_len:
        raise PayloadDecodeError(f"{what} must be {min_len}..{max_len} bytes")
    return value


def _optional_secret(value: Any, what: str) -> bytes | None:
    if value is None:
        return None
    return _bytes_field(value, what, min_len=SECRET_LEN, max_len=SECRET_LEN)


def _amount(value: Any, what: str) -> int:
    try:
        amount = parse_amount(value, what)
    except DecodeError as exc:
        raise PayloadDecodeError(str(exc)) from None
    if amount == 0:
        raise PayloadDecodeError(f"{what} must be positive")
    return amount


def _u64(value: Any, what: str) -> int:
    if type(value) is not int or not 0 <= value <= MAX_U64:
        raise PayloadDecodeError(f"{what} must be an unsigned 64-bit integer")
    return value


def decode_payload(data: bytes) -> HopPayload:
    """Decode one hop payload strictly; anything else than a valid record raises ``PayloadDecodeError``."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise PayloadDecodeError("a hop payload is bytes")
    if len(data) > MAX_PAYLOAD_LEN:
        raise PayloadDecodeError(f"hop payload of {len(data)} bytes exceeds {MAX_PAYLOAD_LEN}")
    try:
        type_id, fields = encoding.decode_record(bytes(data), max_size=MAX_PAYLOAD_LEN)
    except DecodeError as exc:
        raise PayloadDecodeError(f"hop payload: {exc}") from None
    if type_id == FORWARD_TYPE:
        if len(fields) != 3:
            raise PayloadDecodeError("a forward payload has 3 fields")
        next_hop = _bytes_field(fields[0], "next_hop", min_len=1, max_len=MAX_NEXT_HOP_LEN)
        return ForwardPayload(next_hop=next_hop, amount=_amount(fields[1], "amount"),
                              expiry=_u64(fields[2], "expiry"))
    if type_id == FINAL_TYPE:
        if len(fields) != 5:
            raise PayloadDecodeError("a final payload has 5 fields")
        amount = _amount(fields[0], "amount")
        total = _amount(fields[2], "total_amount")
        if total < amount:
            raise PayloadDecodeError("total_amount is below amount")
        return FinalPayload(amount=amount, expiry=_u64(fields[1], "expiry"), total_amount=total,
                            payment_secret=_optional_secret(fields[3], "payment_secret"),
                            keysend_preimage=_optional_secret(fields[4], "keysend_preimage"))
    raise PayloadDecodeError(f"unknown hop payload type {type_id}")
