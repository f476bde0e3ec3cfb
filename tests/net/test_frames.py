"""Framing over fake byte streams: round trips, short reads, EOF, and the cap."""

from __future__ import annotations

import pytest
import trio
from hypothesis import given
from hypothesis import strategies as st

from channels.encoding import MAX_FRAME
from channels.errors import DecodeError, FrameTooLarge
from channels.net.errors import MessageTooLarge, StreamClosed, TruncatedFrame
from channels.net.frames import FrameReader, encode_frame, read_frame, write_frame


class FakeStream:
    """A byte stream over a fixed buffer that hands out at most ``chunk`` bytes per read."""

    def __init__(self, data: bytes = b"", *, chunk: int = 1 << 30, eof_error: bool = False) -> None:
        self.data = bytearray(data)
        self.chunk = chunk
        self.eof_error = eof_error
        self.requested: list[int] = []
        self.written = bytearray()

    async def read(self, n: int) -> bytes:
        await trio.lowlevel.checkpoint()
        self.requested.append(n)
        if not self.data:
            if self.eof_error:
                raise EOFError
            return b""
        take = min(n, self.chunk, len(self.data))
        out = bytes(self.data[:take])
        del self.data[:take]
        return out

    async def write(self, data: bytes) -> None:
        await trio.lowlevel.checkpoint()
        self.written += data


@pytest.mark.trio
async def test_round_trip_with_short_reads() -> None:
    small = [b"", b"a", b"hello world", bytes(range(256)) * 10]
    for payloads, chunk in ((small, 1), ([*small, b"x" * MAX_FRAME], 1000)):
        out = FakeStream()
        for p in payloads:
            await write_frame(out, p)
        src = FakeStream(bytes(out.written), chunk=chunk)
        assert [await read_frame(src) for _ in payloads] == payloads
        with pytest.raises(StreamClosed):
            await read_frame(src)


@pytest.mark.trio
async def test_frame_reader_matches_read_frame() -> None:
    payloads = [b"p%d" % i * i for i in range(50)]
    wire = b"".join(encode_frame(p) for p in payloads)
    for chunk in (1, 3, 7, 1000, 1 << 20):
        reader = FrameReader(FakeStream(wire, chunk=chunk))
        assert [await reader.read_frame() for _ in payloads] == payloads
        with pytest.raises(StreamClosed):
            await reader.read_frame()


@given(st.lists(st.binary(max_size=300), max_size=20), st.integers(min_value=1, max_value=64))
def test_frame_reader_any_chunking(payloads: list[bytes], chunk: int) -> None:
    async def run() -> list[bytes]:
        reader = FrameReader(FakeStream(b"".join(encode_frame(p) for p in payloads), chunk=chunk))
        return [await reader.read_frame() for _ in payloads]

    assert trio.run(run) == payloads


@pytest.mark.trio
@pytest.mark.parametrize("announced", [MAX_FRAME + 1, 2**32 - 1])
async def test_cap_is_checked_on_the_prefix_before_reading_the_body(announced: int) -> None:
    body = b"z" * 100  # a real attacker would not even send it
    src = FakeStream(announced.to_bytes(4, "big") + body, chunk=4)
    with pytest.raises(FrameTooLarge):
        await read_frame(src)
    assert src.requested == [4]  # only the prefix was asked for
    assert len(src.data) == len(body)  # no body byte consumed

    src = FakeStream(announced.to_bytes(4, "big") + body, chunk=4)
    with pytest.raises(FrameTooLarge):
        await FrameReader(src).read_frame()
    assert len(src.requested) == 1 and len(src.data) == len(body)


@pytest.mark.trio
async def test_custom_cap() -> None:
    wire = encode_frame(b"x" * 11)
    with pytest.raises(FrameTooLarge):
        await read_frame(FakeStream(wire), max_size=10)
    assert await read_frame(FakeStream(wire), max_size=11) == b"x" * 11
    with pytest.raises(MessageTooLarge):
        encode_frame(b"x" * 11, max_size=10)


@pytest.mark.trio
async def test_oversized_send_writes_nothing() -> None:
    out = FakeStream()
    with pytest.raises(MessageTooLarge):
        await write_frame(out, b"x" * (MAX_FRAME + 1))
    assert out.written == b""


@pytest.mark.trio
@pytest.mark.parametrize("eof_error", [False, True])
async def test_eof_before_inside_prefix_and_inside_body(eof_error: bool) -> None:
    with pytest.raises(StreamClosed):
        await read_frame(FakeStream(b"", eof_error=eof_error))
    with pytest.raises(StreamClosed):
        await FrameReader(FakeStream(b"", eof_error=eof_error)).read_frame()

    for cut in (b"\x00\x00", encode_frame(b"hello")[:-2]):
        with pytest.raises(TruncatedFrame):
            await read_frame(FakeStream(cut, chunk=1, eof_error=eof_error))
        with pytest.raises(TruncatedFrame):
            await FrameReader(FakeStream(cut, eof_error=eof_error)).read_frame()
    assert issubclass(TruncatedFrame, DecodeError)


@pytest.mark.trio
async def test_frame_reader_survives_cancellation_mid_frame() -> None:
    send, receive = trio.open_memory_channel[bytes](10)

    class PipeStream:
        async def read(self, n: int) -> bytes:
            return await receive.receive()

        async def write(self, data: bytes) -> None:
            raise NotImplementedError

    reader = FrameReader(PipeStream())
    wire = encode_frame(b"abcdefgh")
    await send.send(wire[:6])  # prefix and two body bytes
    with trio.move_on_after(0.05) as scope:
        await reader.read_frame()
    assert scope.cancelled_caught
    await send.send(wire[6:])
    with trio.fail_after(1):
        assert await reader.read_frame() == b"abcdefgh"
