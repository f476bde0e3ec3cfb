"""Decoder fuzzing: random bytes and mutated valid frames give only typed errors,
and whatever does decode re-encodes to exactly the same bytes."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from channels.core.ids import NATIVE, ChannelId, PaymentId, Version
from channels.core.messages import (
    ChannelAccept,
    ChannelDecline,
    CloseProposal,
    Countersign,
    Reestablish,
    UpdateProposal,
    UpdateReject,
)
from channels.core.ops import AddLock, AppMove, FailLock, FulfillLock, Payment
from channels.encoding import MAX_DEPTH, decode, decode_record, encode
from channels.errors import DecodeError, FrameTooLarge, UnknownMessageType
from channels.testing import CorePair
from channels.wire import decode_message, encode_message

CID = ChannelId(bytes(range(32)))
SIG = bytes(64)


def valid_frames() -> list[bytes]:
    pair = CorePair((100, 100))
    from channels.core.messages import ChannelProposal
    msgs = [
        ChannelProposal(params=pair.params, allocation=pair.allocation, signature=SIG),
        ChannelAccept(channel_id=CID, signature=SIG),
        ChannelDecline(channel_id=CID, reason="no thanks"),
        UpdateProposal(channel_id=CID, version=Version(7),
                       operations=(Payment(payment_id=PaymentId(b"p"), asset=NATIVE, amount=5),
                                   AddLock(lock_id=b"l", asset=NATIVE, amount=3, hashlock=bytes(32), expiry=99),
                                   FulfillLock(lock_id=b"k", preimage=b"secret"), FailLock(lock_id=b"j", reason=7),
                                   AppMove(move_id=b"m", payload=b"e4")), signature=SIG),
        Countersign(channel_id=CID, version=Version(7), signature=SIG),
        UpdateReject(channel_id=CID, version=Version(7), retry=True, reason="busy"),
        CloseProposal(channel_id=CID, version=Version(8), signature=SIG),
        Reestablish(channel_id=CID, latest_version=Version(3)),
    ]
    return [encode_message(m) for m in msgs]


FRAMES = valid_frames()


def check(data: bytes) -> None:
    try:
        msg = decode_message(data)
    except DecodeError:
        return
    if msg is not None:
        assert encode_message(msg) == data


@given(st.binary(max_size=512))
def test_random_bytes_give_typed_errors(data: bytes) -> None:
    check(data)


@settings(max_examples=400)
@given(st.sampled_from(FRAMES), st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), min_size=1,
                                         max_size=4), st.integers(-3, 3))
def test_mutated_frames_give_typed_errors(frame: bytes, edits: list[tuple[int, int]], cut: int) -> None:
    data = bytearray(frame)
    for pos, value in edits:
        data[pos % len(data)] = value
    if cut < 0:
        data = data[:cut]
    elif cut > 0:
        data += bytes(cut)
    check(bytes(data))


def test_valid_frames_round_trip() -> None:
    for frame in FRAMES:
        assert encode_message(decode_message(frame)) == frame


def test_non_canonical_int_rejected() -> None:
    canonical = encode([48, CID, 5])
    widened = canonical[:-1] + b"\xcd\x00\x05"  # 5 as uint16
    with pytest.raises(DecodeError, match="non-canonical"):
        decode(widened)


@pytest.mark.parametrize("data", [b"\x81\x01\x02", b"\xcb" + bytes(8), b"\xd4\x01\x00", b"\x91\x01\x00"])
def test_maps_floats_ext_and_trailing_bytes_rejected(data: bytes) -> None:
    with pytest.raises(DecodeError):
        decode(data)


def test_depth_bound() -> None:
    value: list = []
    for _ in range(MAX_DEPTH + 2):
        value = [value]
    with pytest.raises(DecodeError):
        encode(value)
    deep = b"\x91" * 100 + b"\x90"
    with pytest.raises(DecodeError):
        decode(deep)


def test_frame_cap() -> None:
    with pytest.raises(FrameTooLarge):
        decode(b"\x90" * (64 * 1024 + 1))


def test_unknown_types_even_close_odd_ignored() -> None:
    with pytest.raises(UnknownMessageType) as info:
        decode_message(encode([1000, 1]))
    assert info.value.must_close
    assert decode_message(encode([1001, 1])) is None


def test_record_needs_type_id() -> None:
    with pytest.raises(DecodeError):
        decode_record(encode(["x"]))
    with pytest.raises(DecodeError):
        decode_record(encode([]))
