"""The devnet's event kinds, their fields, and their canonical encoding.

``ChainEvent.data`` is a mapping with Python values: ints, bytes, strings, bools, a
``SignedState`` under ``"state"``, and ``payouts`` as a tuple of ``(account, asset,
amount)``. On disk and on the wire the data is a positional array in the order of
``SCHEMAS[kind]``, so a client in another language needs only this table.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ... import encoding
from ...core.ids import ChannelId
from ...core.state import SignedState, amount_field, parse_amount
from ...errors import DecodeError
from ..base import ChainEvent

# kind -> ordered (field, type) pairs. Types: int, amount (``core.state.amount_field``: an int,
# or bytes above 2^64-1), bytes, str, bool, state, payouts (amounts in the same form).
SCHEMAS: dict[str, tuple[tuple[str, str], ...]] = {
    "Transfer": (("from", "bytes"), ("to", "bytes"), ("asset", "str"), ("amount", "amount")),
    "Minted": (("to", "bytes"), ("asset", "str"), ("amount", "amount")),
    "TokenCreated": (("asset", "str"), ("issuer", "bytes")),
    "Deposited": (("asset", "str"), ("amount", "amount"), ("depositor", "bytes"), ("holdings", "amount")),
    "Registered": (("version", "int"), ("deadline", "int"), ("registrar", "bytes"), ("state", "state")),
    "Refuted": (("version", "int"), ("deadline", "int"), ("registrar", "bytes"), ("state", "state")),
    "Progressed": (("version", "int"), ("deadline", "int"), ("mover", "int"), ("state", "state")),
    "Checkpointed": (("version", "int"), ("state", "state")),
    "Concluded": (("version", "int"), ("state", "state")),
    "Withdrawn": (("version", "int"), ("refunded", "bool"), ("payouts", "payouts")),
    "SecretRegistered": (("hashlock", "bytes"), ("preimage", "bytes"), ("time", "int")),
    # One per lock of a withdrawn channel, when it is paid: ``index`` into the paid state's
    # locks, ``fulfilled`` true if it went to its payee (preimage registered before the
    # expiry), false if back to its payer (expired). ``to`` is who was paid.
    "LockResolved": (("version", "int"), ("index", "int"), ("lock_id", "bytes"), ("hashlock", "bytes"),
                     ("fulfilled", "bool"), ("to", "bytes"), ("asset", "str"), ("amount", "amount")),
}


def data_fields(kind: str, data: Mapping[str, Any]) -> list[Any]:
    out: list[Any] = []
    for name, typ in SCHEMAS[kind]:
        value = data[name]
        if typ == "state":
            value = value.to_fields()
        elif typ == "payouts":
            value = [[account, asset, amount_field(amount)] for account, asset, amount in value]
        elif typ == "amount":
            value = amount_field(value)
        out.append(value)
    return out


def data_from_fields(kind: str, fields: Any, *, unknown_ok: bool = False) -> dict[str, Any]:
    """The data of a ``kind`` event; an unknown kind is refused, or (``unknown_ok``) has no data."""
    schema = SCHEMAS.get(kind)
    if schema is None:
        if unknown_ok and type(fields) is list:
            return {}
        raise DecodeError(f"unknown event kind {kind!r}")
    if type(fields) is not list or len(fields) != len(schema):
        raise DecodeError(f"{kind} event has {len(schema)} fields")
    data: dict[str, Any] = {}
    for (name, typ), value in zip(schema, fields, strict=True):
        if typ == "state":
            value = SignedState.from_fields(value)
        elif typ == "payouts":
            if type(value) is not list:
                raise DecodeError("payouts must be an array")
            value = tuple(_payout(p) for p in value)
        elif typ == "amount":
            value = parse_amount(value, name)
        elif typ == "bool" and type(value) is not bool:
            raise DecodeError(f"{name} must be a bool")
        elif typ == "int" and type(value) is not int:
            raise DecodeError(f"{name} must be an int")
        elif typ == "bytes" and type(value) is not bytes:
            raise DecodeError(f"{name} must be bytes")
        elif typ == "str" and type(value) is not str:
            raise DecodeError(f"{name} must be a string")
        data[name] = value
    return data


def _payout(p: Any) -> tuple[bytes, str, int]:
    if type(p) is not list or len(p) != 3 or type(p[0]) is not bytes or type(p[1]) is not str:
        raise DecodeError("a payout is [account, asset, amount]")
    return (p[0], p[1], parse_amount(p[2], "payout amount"))


def event_fields(ev: ChainEvent) -> list[Any]:
    """``[cursor, kind, channel_id or nil, height, time, data]`` (the wire form of one event)."""
    return [ev.cursor, ev.kind, ev.channel_id, ev.height, ev.time, data_fields(ev.kind, ev.data)]


def event_from_fields(f: Any) -> ChainEvent:
    if type(f) is not list or len(f) != 6:
        raise DecodeError("an event is [cursor, kind, channel_id, height, time, data]")
    cursor, kind, cid, height, time, data = f
    if type(cursor) is not int or type(kind) is not str or type(height) is not int or type(time) is not int:
        raise DecodeError("bad event header")
    if cid is not None and (type(cid) is not bytes or len(cid) != 32):
        raise DecodeError("event channel id must be 32 bytes or nil")
    # A kind this version does not know (a newer daemon's) decodes with empty data, for the
    # reader to skip: refusing it would stall a subscription at that event forever.
    return ChainEvent(cursor=cursor, kind=kind, channel_id=None if cid is None else ChannelId(cid),
                      data=data_from_fields(kind, data, unknown_ok=True), height=height, time=time)


def encode_data(kind: str, data: Mapping[str, Any]) -> bytes:
    return encoding.encode(data_fields(kind, data))


def decode_data(kind: str, blob: bytes) -> dict[str, Any]:
    return data_from_fields(kind, encoding.decode(blob, max_size=1 << 20))
