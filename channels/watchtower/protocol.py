"""The tower's wire messages over ``/channels/tower/1.0.0`` (proto/07-watchtower.md section 3).

Request/response over one long-lived libp2p stream (``channels.net.request_response``):
each request and each response is one canonical msgpack record ``[type_id, *fields]``.
Decoders are strict: any deviation is a ``MalformedAppointment`` (a ``DecodeError``), and a
request is bounded by the frame cap before it is read.
"""

from __future__ import annotations

from typing import Any

import attrs

from ..core.state import parse_bytes, parse_list, parse_u64
from ..encoding import MAX_FRAME, decode_record, encode_record
from ..errors import DecodeError
from .appointment import LOCATOR_LEN, Appointment, EncryptedAppointment, Receipt
from .errors import MalformedAppointment, TowerError, error_from_code

PROTOCOL_TOWER = "/channels/tower/1.0.0"

APPOINTMENT, ENCRYPTED, INFO, FORGET = 2, 4, 6, 8  # requests
RECEIPT, REFUSAL, INFO_REPLY, FORGOTTEN = 10, 12, 14, 16  # responses
MAX_REQUEST = MAX_FRAME - 4  # the rpc call id takes 4 bytes of the frame
MAX_FORGET = 256  # locators in one FORGET
MAX_REFUSAL_TEXT = 1024


@attrs.frozen
class InfoRequest:
    pass


@attrs.frozen
class ForgetRequest:
    locators: tuple[bytes, ...]


@attrs.frozen(kw_only=True)
class TowerInfo:
    """What a client learns before it trusts a tower with appointments."""

    tower_key: bytes
    chain_id: int
    adjudicator: bytes
    genesis: bytes | None
    max_appointment_bytes: int
    per_client_appointments: int
    per_client_bytes: int


Request = Appointment | EncryptedAppointment | InfoRequest | ForgetRequest


def encode_request(request: Request) -> bytes:
    if isinstance(request, Appointment):
        return encode_record(APPOINTMENT, request.to_fields())
    if isinstance(request, EncryptedAppointment):
        return encode_record(ENCRYPTED, request.to_fields())
    if isinstance(request, ForgetRequest):
        return encode_record(FORGET, [list(request.locators)])
    return encode_record(INFO, [])


def _record(data: bytes, what: str) -> tuple[int, list[Any]]:
    try:
        return decode_record(data, max_size=MAX_REQUEST)
    except DecodeError as exc:
        raise MalformedAppointment(f"malformed {what}: {exc}") from None


def decode_request(data: bytes) -> Request:
    type_id, f = _record(data, "tower request")
    if type_id == APPOINTMENT:
        return Appointment.from_fields(f)
    if type_id == ENCRYPTED:
        return EncryptedAppointment.from_fields(f)
    if type_id == INFO:
        if f:
            raise MalformedAppointment("an INFO request has no fields")
        return InfoRequest()
    if type_id == FORGET:
        try:
            f = parse_list(f, "FORGET", size=1)
            raw = parse_list(f[0], "locators", max_size=MAX_FORGET)
            return ForgetRequest(tuple(parse_bytes(x, "locator", size=LOCATOR_LEN) for x in raw))
        except DecodeError as exc:
            raise MalformedAppointment(f"malformed FORGET: {exc}") from None
    raise MalformedAppointment(f"unknown tower request type {type_id}")


# --- responses -------------------------------------------------------------------------------------


def encode_receipt(receipt: Receipt) -> bytes:
    return encode_record(RECEIPT, receipt.to_fields())


def encode_refusal(error: TowerError) -> bytes:
    return encode_record(REFUSAL, [error.code[:32], str(error)[:MAX_REFUSAL_TEXT]])


def encode_info(info: TowerInfo) -> bytes:
    return encode_record(INFO_REPLY, [info.tower_key, info.chain_id, info.adjudicator, info.genesis,
                                      info.max_appointment_bytes, info.per_client_appointments,
                                      info.per_client_bytes])


def encode_forgotten(count: int) -> bytes:
    return encode_record(FORGOTTEN, [count])


Response = Receipt | TowerInfo | int


def decode_response(data: bytes) -> Response:
    """A receipt, the tower's info, or a FORGOTTEN count; a refusal is raised as its typed error."""
    type_id, f = _record(data, "tower response")
    try:
        if type_id == RECEIPT:
            return Receipt.from_fields(f)
        if type_id == REFUSAL:
            f = parse_list(f, "refusal", size=2)
            if type(f[0]) is not str or type(f[1]) is not str or len(f[1]) > MAX_REFUSAL_TEXT:
                raise DecodeError("a refusal is [code, message], both text")
            raise error_from_code(f[0][:32], f[1])
        if type_id == INFO_REPLY:
            f = parse_list(f, "tower info", size=7)
            genesis = None if f[3] is None else parse_bytes(f[3], "genesis", size=32)
            return TowerInfo(tower_key=parse_bytes(f[0], "tower key", size=32), chain_id=parse_u64(f[1], "chain id"),
                             adjudicator=parse_bytes(f[2], "adjudicator", max_size=64), genesis=genesis,
                             max_appointment_bytes=parse_u64(f[4], "max appointment bytes"),
                             per_client_appointments=parse_u64(f[5], "appointments per client"),
                             per_client_bytes=parse_u64(f[6], "bytes per client"))
        if type_id == FORGOTTEN:
            f = parse_list(f, "forgotten", size=1)
            return parse_u64(f[0], "forgotten count")
    except MalformedAppointment:
        raise
    except DecodeError as exc:
        raise MalformedAppointment(f"malformed tower response: {exc}") from None
    raise MalformedAppointment(f"unknown tower response type {type_id}")
