"""Field kinds shared by every message family, each with a strict decoder.

A message is declared as a tuple of ``(name, kind)``; the same declaration is
published in ``proto/messages.json``, and a test checks the two agree.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..core.ids import AssetId, ChannelId, PaymentId, Version
from ..core.ops import MAX_FAILURE, MAX_ONION, AddLock, AppMove, FailLock, FulfillLock, Operation, Payment
from ..core.state import (
    MAX_NAME,
    MAX_SIGNATURE_LEN,
    Allocation,
    ChannelParams,
    amount_field,
    parse_address,
    parse_amount,
    parse_bytes,
    parse_list,
    parse_name,
    parse_u64,
)
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
                   asset=AssetId(parse_name(f[1], "payment asset")), amount=parse_amount(f[2], "payment amount"))


# Operation type codes (proto/02 section 5.5): the first element of each operation's array.
OP_PAY, OP_ADD_LOCK, OP_FULFILL_LOCK, OP_FAIL_LOCK, OP_APP_MOVE = 0, 1, 2, 3, 4
MAX_OPERATIONS = MAX_PAYMENTS
MAX_LOCK_ID, MAX_PREIMAGE, MAX_MOVE = 32, 32, 4 * 1024


def _id(value: Any, what: str) -> bytes:
    raw = parse_bytes(value, what, max_size=32)
    if not raw:
        raise DecodeError(f"{what} is 1..32 bytes")
    return raw


def _operation_to(op: Operation) -> list[Any]:
    if isinstance(op, Payment):
        return [OP_PAY, op.payment_id, op.asset, amount_field(op.amount)]
    if isinstance(op, AddLock):
        fields = [OP_ADD_LOCK, op.lock_id, op.asset, amount_field(op.amount), op.hashlock, op.expiry]
        # The onion is appended only when present: a direct lock keeps the bytes of 0.1.0.
        return [*fields, op.onion] if op.onion else fields
    if isinstance(op, FulfillLock):
        return [OP_FULFILL_LOCK, op.lock_id, op.preimage]
    if isinstance(op, FailLock):
        fail = [OP_FAIL_LOCK, op.lock_id, op.reason]
        return [*fail, op.failure] if op.failure else fail
    return [OP_APP_MOVE, op.move_id, op.payload]


def _operation_from(f: Any) -> Operation:
    f = parse_list(f, "operation", max_size=7)
    if not f or type(f[0]) is not int:
        raise DecodeError("an operation starts with its integer type")
    kind, rest = f[0], f[1:]
    if kind == OP_PAY:
        return _payment_from(rest)
    if kind == OP_ADD_LOCK and len(rest) in (5, 6):
        onion = parse_bytes(rest[5], "onion", size=MAX_ONION) if len(rest) == 6 else b""
        return AddLock(lock_id=_id(rest[0], "lock id"), asset=AssetId(parse_name(rest[1], "lock asset")),
                       amount=parse_amount(rest[2], "lock amount"), hashlock=parse_bytes(rest[3], "hashlock", size=32),
                       expiry=parse_u64(rest[4], "lock expiry"), onion=onion)
    if kind == OP_FULFILL_LOCK and len(rest) == 2:
        return FulfillLock(lock_id=_id(rest[0], "lock id"),
                           preimage=parse_bytes(rest[1], "preimage", max_size=MAX_PREIMAGE))
    if kind == OP_FAIL_LOCK and len(rest) in (2, 3):
        reason = parse_u64(rest[1], "fail reason")
        if reason > 0xFFFF:
            raise DecodeError("a fail reason is a 16-bit code")
        failure = parse_bytes(rest[2], "failure packet", size=MAX_FAILURE) if len(rest) == 3 else b""
        return FailLock(lock_id=_id(rest[0], "lock id"), reason=reason, failure=failure)
    if kind == OP_APP_MOVE and len(rest) == 2:
        return AppMove(move_id=_id(rest[0], "move id"), payload=parse_bytes(rest[1], "move", max_size=MAX_MOVE))
    raise DecodeError(f"unknown operation type {kind} or wrong field count")


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
    # The backend's lengths are checked where the backend is known (the scheme, the node's Init check).
    "signature": (lambda v: v, lambda v: parse_bytes(v, "signature", max_size=MAX_SIGNATURE_LEN)),
    "reason": (lambda v: v, _reason),
    "bool": (lambda v: v, _bool),
    "address": (lambda v: v, lambda v: parse_address(v, "L1 address")),
    "addresses": (lambda v: list(v), _addresses),
    "params": (lambda v: v.to_fields(), ChannelParams.from_fields),
    "allocation": (lambda v: v.to_fields(), Allocation.from_fields),
    "payments": (lambda v: [[p.payment_id, p.asset, amount_field(p.amount)] for p in v],
                 lambda v: tuple(_payment_from(p) for p in parse_list(v, "payments", max_size=MAX_PAYMENTS))),
    "operations": (lambda v: [_operation_to(op) for op in v],
                   lambda v: tuple(_operation_from(op) for op in parse_list(v, "operations", max_size=MAX_OPERATIONS))),
}

assert MAX_NAME <= MAX_REASON
