"""Canonical, strict, bounded msgpack: the only module that imports msgpack.

Every record is a positional array whose first element is an integer type id.
Allowed scalar types are None, bool, int (64-bit range), bytes and str; maps,
floats and extension types are refused because they have more than one valid
encoding. Decoding re-encodes and compares, so a frame has exactly one byte form:
a peer cannot make two different byte strings mean the same message (which would
let it replay a message past a byte-level duplicate check).
"""

from __future__ import annotations

from typing import Any

import msgpack

from .errors import DecodeError, FrameTooLarge

MAX_FRAME = 64 * 1024
MAX_DEPTH = 8
MAX_ITEMS = 4096
INT_MIN = -(2**63)
INT_MAX = 2**64 - 1

Value = Any  # None | bool | int | bytes | str | list[Value]


def encode(value: Value, *, validate: bool = True) -> bytes:
    """Encode a value tree canonically (arrays only, smallest int forms).

    ``validate=False`` skips the shape walk for trees built by our own code from
    already-validated value objects (store records on the hot path); the bytes are
    the same either way."""
    if validate:
        _check_tree(value, 0, encoding=True)
    return msgpack.packb(value, use_bin_type=True)  # type: ignore[no-any-return]


def decode(data: bytes, *, max_size: int = MAX_FRAME) -> Value:
    """Decode one canonical value; any deviation raises ``DecodeError``."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise DecodeError("expected bytes")
    data = bytes(data)
    if len(data) > max_size:
        raise FrameTooLarge(f"frame of {len(data)} bytes exceeds the {max_size}-byte cap")
    try:
        value = msgpack.unpackb(
            data,
            raw=False,
            use_list=True,
            strict_map_key=True,
            max_bin_len=max_size,
            max_str_len=max_size,
            max_array_len=MAX_ITEMS,
            max_map_len=0,
            max_ext_len=0,
        )
    except (ValueError, TypeError, msgpack.ExtraData, msgpack.FormatError,
            msgpack.StackError, UnicodeDecodeError, OverflowError) as exc:
        raise DecodeError(f"malformed msgpack: {type(exc).__name__}") from None
    except Exception as exc:  # msgpack raises a few odd types on hostile input
        raise DecodeError(f"malformed msgpack: {type(exc).__name__}") from None
    _check_tree(value, 0, encoding=False)
    if msgpack.packb(value, use_bin_type=True) != data:
        raise DecodeError("non-canonical encoding")
    return value


def _check_tree(value: Value, depth: int, *, encoding: bool) -> None:
    if depth > MAX_DEPTH:
        raise DecodeError(f"nesting deeper than {MAX_DEPTH}")
    if value is None or isinstance(value, (bool, bytes, str)):
        return
    if isinstance(value, int):
        if not INT_MIN <= value <= INT_MAX:
            raise DecodeError("integer out of the 64-bit range")
        return
    if isinstance(value, list) or (encoding and isinstance(value, tuple)):
        if len(value) > MAX_ITEMS:
            raise DecodeError(f"array longer than {MAX_ITEMS}")
        for item in value:
            _check_tree(item, depth + 1, encoding=encoding)
        return
    raise DecodeError(f"type {type(value).__name__} is not allowed in canonical encoding")


def encode_record(type_id: int, fields: list[Value] | tuple[Value, ...]) -> bytes:
    return encode([type_id, *fields])


def decode_record(data: bytes, *, max_size: int = MAX_FRAME) -> tuple[int, list[Value]]:
    """Decode ``[type_id, *fields]``; the caller dispatches on the type id."""
    value = decode(data, max_size=max_size)
    if not isinstance(value, list) or not value or type(value[0]) is not int:
        raise DecodeError("a record is an array that starts with an integer type id")
    return value[0], value[1:]
