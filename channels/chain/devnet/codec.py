"""Bytes of the devnet RPC (``proto/03-ledger.md``): requests, responses, errors, events.

Requests are ``[type_id, *fields]``; responses are ``[0, *result]`` or
``[1, code, message]``, all canonical msgpack. The error ``code`` is one of the
stable strings of ``channels.chain.base.LEDGER_ERRORS`` or ``errors.DEVNET_ERRORS``,
so the client re-raises the very class the ledger raised.

Balances have no upper bound: a balance travels as an integer up to 2^64-1 and as a
byte string (big-endian, 9 bytes or more, no leading zero) above.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ... import encoding
from ...chain.base import ChainEvent, ChannelOnChain, Malformed, TooLarge
from ...core.ids import AssetId
from ...core.state import SignedState, amount_field
from ...errors import DecodeError, LedgerError
from .errors import error_from_code
from .events import event_fields, event_from_fields
from .tx import MAX_TX_SIZE

RPC_PROTOCOL = "/channels/devnet/1.0.0"
EVENTS_PROTOCOL = "/channels/devnet-events/1.0.0"

STATUS, NONCE, BALANCES, CHANNEL, SECRET_TIME, SUBMIT, FAUCET, EVENTS, BALANCE = 2, 4, 6, 8, 10, 12, 14, 16, 18
SUBSCRIBE, RECEIPT = 20, 22
OK, ERR = 0, 1
MAX_REQUEST = MAX_TX_SIZE + 256  # a SUBMIT's envelope around the largest transaction
MAX_EVENTS_PER_CALL = 256
MAX_MESSAGE = 1000

# type id -> field kinds, checked before dispatch (a malformed request never reaches the ledger)
REQUESTS: dict[int, tuple[str, ...]] = {
    STATUS: (), NONCE: ("address",), BALANCES: ("address",), CHANNEL: ("hash",), SECRET_TIME: ("hash",),
    SUBMIT: ("bytes",), FAUCET: ("address", "asset", "amount", "request_id"), EVENTS: ("u64", "u64"),
    BALANCE: ("address", "asset"), SUBSCRIBE: ("u64",), RECEIPT: ("hash",),
}


def encode_request(type_id: int, *fields: Any) -> bytes:
    return encoding.encode([type_id, *fields])


def decode_request(data: bytes) -> tuple[int, list[Any]]:
    """Decode and shape-check one request; raises ``TooLarge`` or ``Malformed``."""
    if len(data) > MAX_REQUEST:
        raise TooLarge(f"a devnet request is at most {MAX_REQUEST} bytes, got {len(data)}")
    try:
        type_id, fields = encoding.decode_record(data, max_size=MAX_REQUEST)
    except DecodeError as exc:
        raise Malformed(f"malformed request: {exc}") from None
    kinds = REQUESTS.get(type_id)
    if kinds is None:
        raise Malformed(f"unknown request type {type_id}")
    if len(fields) != len(kinds):
        raise Malformed(f"request {type_id} has {len(kinds)} fields, got {len(fields)}")
    for kind, value in zip(kinds, fields, strict=True):
        if not _FIELD_OK[kind](value):
            raise Malformed(f"request {type_id}: a field is not a valid {kind}")
    return type_id, fields


_FIELD_OK = {
    "address": lambda v: type(v) is bytes and len(v) == 32,
    "hash": lambda v: type(v) is bytes and len(v) == 32,
    "bytes": lambda v: type(v) is bytes,
    "u64": lambda v: type(v) is int and 0 <= v <= encoding.INT_MAX,
    # ``core.state.amount_field``'s forms: an integer, or 9..32 big-endian bytes without a leading zero.
    "amount": lambda v: (type(v) is int and 0 <= v <= encoding.INT_MAX)
    or (type(v) is bytes and 8 < len(v) <= 32 and v[0] != 0),
    "asset": lambda v: type(v) is str and 0 < len(v) <= 32 and v.isprintable(),
    "request_id": lambda v: type(v) is bytes and 8 <= len(v) <= 32,
}


def ok(*result: Any) -> bytes:
    return encoding.encode([OK, *result])


def error(exc: LedgerError) -> bytes:
    return encoding.encode([ERR, exc.code, str(exc)[:MAX_MESSAGE]])


def decode_response(data: bytes) -> list[Any]:
    """The result fields of a response, or raise the ledger's typed error."""
    try:
        value = encoding.decode(data)
    except DecodeError as exc:
        raise Malformed(f"malformed devnet response: {exc}") from None
    if type(value) is not list or not value or value[0] not in (OK, ERR):
        raise Malformed("a devnet response is [0, ...] or [1, code, message]")
    if value[0] == ERR:
        if len(value) != 3 or type(value[1]) is not str or type(value[2]) is not str:
            raise Malformed("an error response is [1, code, message]")
        raise error_from_code(value[1], value[2])
    return value[1:]


def subscription_error(exc: LedgerError) -> LedgerError:
    """The error a refused subscription ends with: its tag-1 text reads ``LedgerError: <code>: <message>``.

    The events protocol's final error frame carries text only (the transport writes
    ``<class name>: <message>``); putting the code first lets a client rebuild the type."""
    return LedgerError(f"{exc.code}: {exc}"[:MAX_MESSAGE])


_REFUSAL = re.compile(r"LedgerError: ([a-z_]+): (.*)\Z", re.DOTALL)


def subscription_refusal(text: str) -> LedgerError | None:
    """The typed error in the text of a subscription's final error frame, if it names one."""
    found = _REFUSAL.search(text)
    return None if found is None else error_from_code(found.group(1), found.group(2))


def amount_from_field(v: Any) -> int:
    """The inverse of ``core.state.amount_field`` without its 2^256-1 cap: an account balance
    on the devnet has no upper bound (a payout never fails for its receiver's balance)."""
    if type(v) is int and v >= 0:
        return v
    if type(v) is bytes and len(v) > 8 and v[0] != 0:  # one form per value: no leading zero, above u64
        return int.from_bytes(v, "big")
    raise DecodeError("an amount is an unsigned integer, or big-endian bytes above 2^64-1")


def channel_fields(view: ChannelOnChain) -> list[Any]:
    return [sorted([a, n] for a, n in view.holdings.items()),
            None if view.registered is None else view.registered.to_fields(), view.deadline,
            view.concluded, view.withdrawn, None if view.checkpoint is None else view.checkpoint.to_fields()]


def channel_from_fields(f: Any) -> ChannelOnChain:
    try:
        if type(f) is not list or len(f) != 6:
            raise DecodeError("a channel view has 6 fields")
        holdings = _amounts(f[0])
        return ChannelOnChain(holdings=holdings, registered=None if f[1] is None else SignedState.from_fields(f[1]),
                              deadline=f[2], concluded=bool(f[3]), withdrawn=bool(f[4]),
                              checkpoint=None if f[5] is None else SignedState.from_fields(f[5]))
    except DecodeError as exc:
        raise Malformed(f"malformed channel view: {exc}") from None


def amounts_fields(amounts: Mapping[AssetId, int]) -> list[Any]:
    return [[a, amount_field(n)] for a, n in sorted(amounts.items())]


def _amounts(f: Any) -> dict[AssetId, int]:
    if type(f) is not list or not all(type(p) is list and len(p) == 2 and type(p[0]) is str for p in f):
        raise DecodeError("amounts are [[asset, amount], ...]")
    return {AssetId(a): amount_from_field(n) for a, n in f}


def amounts_from_fields(f: Any) -> dict[AssetId, int]:
    try:
        return _amounts(f)
    except DecodeError as exc:
        raise Malformed(str(exc)) from None


def amount_from_response(v: Any) -> int:
    try:
        return amount_from_field(v)
    except DecodeError as exc:
        raise Malformed(str(exc)) from None


def encode_event(ev: ChainEvent) -> bytes:
    return encoding.encode(event_fields(ev))


def decode_event(data: bytes) -> ChainEvent:
    try:
        return event_from_fields(encoding.decode(data))
    except DecodeError as exc:
        raise Malformed(f"malformed event: {exc}") from None


def events_from_fields(f: Any) -> list[ChainEvent]:
    """Events travel as an array of byte strings, each one encoded event: nesting them as
    arrays would push a state's locks past the decoder's depth limit."""
    if type(f) is not list or not all(type(e) is bytes for e in f):
        raise Malformed("events are an array of encoded events")
    return [decode_event(e) for e in f]
