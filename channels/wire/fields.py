"""Field kinds shared by every message family, each with a strict decoder.

A message is declared as a tuple of ``(name, kind)``; the same declaration is
published in ``proto/messages.json``, and a test checks the two agree.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..core.ids import AssetId, ChannelId, PaymentId, Version
from ..core.messages import Payment
from ..core.state import MAX_NAME, Allocation, ChannelParams, parse_bytes, parse_list, parse_name, parse_u64
from ..errors import DecodeError

MAX_REASON = 256
MAX_PAYMENTS = 512
MAX_PAYMENT_ID = 32


def _payment_from(f: Any) -> Payment:
    f = parse_list(f, "payment", size=3)
    payment_id = parse_bytes(f[0], "payment id", max_size=MAX_PAYMENT_ID)
    if not payment_id:
        raise DecodeError("a payment id is 1..32 bytes")
    return Payment(payment_id=PaymentId(payment_id),
                   asset=AssetId(parse_name(f[1], "payment asset")), amount=parse_u64(f[2], "payment amount"))


def _bool(value: Any) -> bool:
    if type(value) is not bool:
        raise DecodeError("expected a boolean")
    return value


MAX_ADDRESSES = 8
MAX_ADDRESS_LEN = 256


def _addresses(value: Any) -> tuple[str, ...]:
    items = parse_list(value, "addresses", max_size=MAX_ADDRESSES)
    if any(type(a) is not str or not 0 < len(a) <= MAX_ADDRESS_LEN for a in items):
        raise DecodeError(f"addresses are strings of 1..{MAX_ADDRESS_LEN} characters")
    return tuple(items)


def _reason(value: Any) -> str:
    if type(value) is not str or len(value) > MAX_REASON:
        raise DecodeError(f"reason must be a string of at most {MAX_REASON} characters")
    return value


Kind = tuple[Callable[[Any], Any], Callable[[Any], Any]]  # (to wire value, from wire value)

KINDS: dict[str, Kind] = {
    "channel_id": (lambda v: v, lambda v: ChannelId(parse_bytes(v, "channel id", size=32))),
    "u64": (lambda v: v, lambda v: Version(parse_u64(v, "integer"))),
    "signature": (lambda v: v, lambda v: parse_bytes(v, "signature", size=64)),
    "reason": (lambda v: v, _reason),
    "bool": (lambda v: v, _bool),
    "address": (lambda v: v, lambda v: parse_bytes(v, "L1 address", size=32)),
    "addresses": (lambda v: list(v), _addresses),
    "params": (lambda v: v.to_fields(), ChannelParams.from_fields),
    "allocation": (lambda v: v.to_fields(), Allocation.from_fields),
    "payments": (lambda v: [[p.payment_id, p.asset, p.amount] for p in v],
                 lambda v: tuple(_payment_from(p) for p in parse_list(v, "payments", max_size=MAX_PAYMENTS))),
}

assert MAX_NAME <= MAX_REASON
