"""Length-prefixed frames: a 4-byte big-endian unsigned length, then the payload.

libp2p streams are byte streams, and ``read(n)`` may return fewer than ``n``
bytes, so message boundaries are ours to keep. The cap is checked on the prefix,
before a single body byte is read, so a peer cannot make us allocate more than
``max_size`` by announcing a huge frame.

Two readers exist on purpose:

* ``read_frame`` is stateless and reads exactly one frame (simple, for tests and
  one-shot use). If cancelled mid-frame the partial bytes are lost.
* ``FrameReader`` keeps its buffer between calls, so a cancelled read loses
  nothing, and it pulls bytes in large chunks (fewer libp2p calls when frames
  are pipelined). ``channels.net.host.Stream`` uses it.

A "byte stream" here is anything with ``async read(n) -> bytes`` and
``async write(data)``; end of stream is ``b""`` or an ``EOFError``.
"""

from __future__ import annotations

from typing import Protocol

from ..encoding import MAX_FRAME
from ..errors import FrameTooLarge
from .errors import MessageTooLarge, StreamClosed, TruncatedFrame

PREFIX_SIZE = 4
MAX_PREFIX_VALUE = 2**32 - 1
READ_CHUNK = 64 * 1024


class ByteStream(Protocol):
    """The two operations framing needs from a transport stream."""

    async def read(self, n: int) -> bytes: ...

    async def write(self, data: bytes) -> None: ...


def encode_frame(data: bytes, *, max_size: int = MAX_FRAME) -> bytes:
    """Return prefix + payload as one buffer (one write keeps the frame contiguous)."""
    size = len(data)
    if size > max_size or size > MAX_PREFIX_VALUE:
        raise MessageTooLarge(f"refusing to send a {size}-byte frame: the cap is {max_size} bytes")
    return size.to_bytes(PREFIX_SIZE, "big") + bytes(data)


def parse_prefix(prefix: bytes | bytearray, *, max_size: int) -> int:
    """Decode a length prefix and enforce the cap before anything is allocated."""
    size = int.from_bytes(prefix[:PREFIX_SIZE], "big")
    if size > max_size:
        raise FrameTooLarge(f"peer announced a {size}-byte frame; the cap is {max_size} bytes")
    return size


async def write_frame(stream: ByteStream, data: bytes, *, max_size: int = MAX_FRAME) -> None:
    """Write one frame (prefix and payload in a single write)."""
    await stream.write(encode_frame(data, max_size=max_size))


async def _read_some(stream: ByteStream, n: int) -> bytes:
    try:
        return await stream.read(n)
    except EOFError:
        return b""


async def _read_exactly(stream: ByteStream, n: int, *, started: bool) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = await _read_some(stream, n - len(buf))
        if not chunk:
            if not started and not buf:
                raise StreamClosed("the remote closed the stream")
            raise TruncatedFrame(f"stream ended inside a frame ({len(buf)} of {n} bytes read)")
        buf += chunk
    return bytes(buf)


async def read_frame(stream: ByteStream, *, max_size: int = MAX_FRAME) -> bytes:
    """Read exactly one frame.

    Raises ``StreamClosed`` on a clean end before a frame starts,
    ``TruncatedFrame`` on an end inside a frame, ``FrameTooLarge`` on a prefix
    above ``max_size`` (no body byte is read then).
    """
    prefix = await _read_exactly(stream, PREFIX_SIZE, started=False)
    size = parse_prefix(prefix, max_size=max_size)
    if size == 0:
        return b""
    return await _read_exactly(stream, size, started=True)


class FrameReader:
    """Buffered, cancellation-safe frame reader over one byte stream.

    Bytes already pulled from the stream stay in ``self._buf`` if a call is
    cancelled, so the next call resumes at the same frame boundary. The buffer
    never holds more than one capped frame plus one read chunk.
    """

    def __init__(self, stream: ByteStream, *, max_size: int = MAX_FRAME) -> None:
        self._stream = stream
        self._max_size = max_size
        self._buf = bytearray()

    async def read_frame(self) -> bytes:
        """Return the next frame; same errors as ``read_frame``."""
        buf = self._buf
        while True:
            if len(buf) >= PREFIX_SIZE:
                size = parse_prefix(buf, max_size=self._max_size)
                end = PREFIX_SIZE + size
                if len(buf) >= end:
                    frame = bytes(buf[PREFIX_SIZE:end])
                    del buf[:end]
                    return frame
                want = end - len(buf)
            else:
                want = PREFIX_SIZE - len(buf)
            chunk = await _read_some(self._stream, max(want, READ_CHUNK))
            if not chunk:
                if buf:
                    raise TruncatedFrame(f"stream ended inside a frame ({len(buf)} bytes buffered)")
                raise StreamClosed("the remote closed the stream")
            buf += chunk
