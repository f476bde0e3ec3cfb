"""The envelope: ``[type_id, *fields]`` in canonical msgpack, one message per frame.

Unknown even type ids mean "you must understand this": the stream is closed.
Unknown odd type ids are optional extensions: the receiver ignores them. This is
BOLT 1's "it's OK to be odd" rule, which lets the protocol grow without a flag day.
"""

from __future__ import annotations

from typing import Any

from ..encoding import MAX_FRAME, decode_record, encode_record
from ..errors import DecodeError, UnknownMessageType
from . import channel_open, close, init, reestablish, update  # noqa: F401  (registers the message types)
from .registry import BY_CLASS, BY_TYPE

PROTOCOL_CHANNEL = "/channels/channel/2.0.0"


def encode_message(msg: Any) -> bytes:
    spec = BY_CLASS.get(type(msg))
    if spec is None:
        raise TypeError(f"{type(msg).__name__} is not a wire message")
    return encode_record(spec.type_id, spec.to_fields(msg))


def decode_message(data: bytes, *, max_size: int = MAX_FRAME) -> Any | None:
    """Decode one frame; ``None`` for an unknown odd type (ignore it).

    Raises ``UnknownMessageType`` (even: close the stream) or ``DecodeError``."""
    type_id, fields = decode_record(data, max_size=max_size)
    spec = BY_TYPE.get(type_id)
    if spec is None:
        if type_id < 0:
            raise DecodeError("negative type id")
        if type_id % 2 == 1:
            return None
        raise UnknownMessageType(type_id)
    return spec.from_fields(fields)
