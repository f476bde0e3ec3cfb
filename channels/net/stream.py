"""One libp2p stream carrying length-prefixed frames, made safe to use from trio.

Cancellation hazards in py-libp2p 0.8.1 that this module works around:

* Noise encrypts (advancing its nonce) *before* the write is awaited, so a write
  cancelled at the wrong moment desynchronises the cipher and kills the whole
  connection, not just one stream. Every write here is shielded, bounded by
  its own timeout, and started only if the caller is not already cancelled.
* A yamux ``read`` sends a WINDOW_UPDATE (a write) and takes a lock *after*
  removing data from its buffer; cancelling it can lose bytes or hit the hazard
  above. So each ``Stream`` has one reader task, living in the host's nursery,
  that is never cancelled before the stream is dead; ``receive()`` only waits
  on a memory channel, which is always safe to cancel.
* py-libp2p reports a remote *reset* as a plain EOF, and a *local* reset does
  not wake a pending read (see ``_reader_wakeup``). Protocols on top must not
  read "clean end" into an EOF: ``channels.net.request_response`` sends explicit end markers.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager

import attrs
import trio
from libp2p.abc import INetStream
from libp2p.exceptions import BaseLibp2pError
from libp2p.network.stream.exceptions import StreamEOF as _Libp2pEOF
from libp2p.network.stream.exceptions import StreamReset as _Libp2pReset

from ..errors import DecodeError
from .errors import StreamClosed, StreamReset
from .frames import FrameReader, encode_frame

__all__ = ["Stream"]

logger = logging.getLogger(__name__)

SEND_TIMEOUT = 30.0  # a frame not written by then means the connection is stuck
CLOSE_GRACE = 5.0  # how long close() waits for the remote to finish its side
RECEIVE_QUEUE = 16  # frames buffered per stream before we stop reading (backpressure)
BATCH_BYTES = 256 * 1024  # most bytes coalesced into one write


@contextmanager
def _translated(what: str) -> Iterator[None]:
    """Map libp2p stream errors to ours; ``what`` names the operation."""
    try:
        yield
    except _Libp2pEOF:
        raise StreamClosed(f"{what}: the remote closed the stream") from None
    except _Libp2pReset as exc:
        detail = f" ({exc.__cause__})" if exc.__cause__ is not None and str(exc.__cause__) else ""
        raise StreamReset(f"{what}: the stream was reset{detail}") from None
    except BaseLibp2pError as exc:
        raise StreamReset(f"{what}: connection lost ({type(exc).__name__}: {exc})") from exc


class _RawIO:
    """Adapt a libp2p ``INetStream`` to ``frames.ByteStream`` (EOF -> ``b""``)."""

    def __init__(self, raw: INetStream) -> None:
        self.raw = raw

    async def read(self, n: int) -> bytes:
        try:
            with _translated("receive"):
                return await self.raw.read(n)
        except StreamClosed as exc:
            if type(exc) is StreamClosed:
                return b""
            raise

    async def write(self, data: bytes) -> None:
        with _translated("send"):
            await self.raw.write(data)


@attrs.define(eq=False)
class _Batch:
    """Frames waiting to go out in one write, and how that write ended."""

    frames: list[bytes] = attrs.field(factory=list)
    size: int = 0
    flushed: bool = False
    error: tuple[type[Exception], str] | None = None


class Stream:
    """One libp2p stream carrying length-prefixed frames.

    ``send``/``receive`` move one frame each and are safe to call from several
    tasks (sends are serialised; a frame is never interleaved). ``receive`` is
    safe to cancel. Use ``close()`` for a clean end (the remote sees EOF) and
    ``reset()`` to abort; ``async with stream:`` closes, or resets on error.
    """

    def __init__(self, raw: INetStream, *, remote_peer_id: str, protocol_id: str, max_frame: int) -> None:
        self.remote_peer_id = remote_peer_id
        self.protocol_id = protocol_id
        self._raw = raw
        self._io = _RawIO(raw)
        self._max_frame = max_frame
        self._send_lock = trio.Lock()
        self._batch: _Batch | None = None
        self._send_failure: tuple[type[Exception], str] | None = None
        self._frames_in, self._frames_out = trio.open_memory_channel[bytes](RECEIVE_QUEUE)
        self._reader_done = trio.Event()
        self._end: tuple[type[Exception], str] | None = None
        self._closed = False
        self._discard = False
        self._reader_scope = trio.CancelScope()

    def _start(self, nursery: trio.Nursery) -> None:
        nursery.start_soon(self._read_loop)

    async def send(self, data: bytes) -> None:
        """Send one frame; raises ``MessageTooLarge`` or ``StreamClosed``.

        Frames queued by tasks waiting for the write lock are coalesced into
        one libp2p write (each libp2p write costs a yamux frame, a Noise
        message and a syscall, which dominates when many calls are in flight).
        Returns once our frame was written; if cancelled first, it is not sent.
        """
        frame = encode_frame(data, max_size=self._max_frame)
        if self._send_failure is not None:
            cls, message = self._send_failure
            raise cls(message)
        if self._closed:
            raise StreamClosed("send: the stream was closed locally")
        batch = self._batch
        if batch is None or (batch.frames and batch.size + len(frame) > BATCH_BYTES):
            batch = self._batch = _Batch()
        batch.frames.append(frame)
        batch.size += len(frame)
        try:
            async with self._send_lock:
                if not batch.flushed:
                    await trio.lowlevel.checkpoint_if_cancelled()
                    await self._flush(batch)
        except BaseException:
            if not batch.flushed:  # cancelled before anything was written: withdraw our frame
                batch.frames.remove(frame)
                batch.size -= len(frame)
            raise
        if batch.error is not None:
            cls, message = batch.error
            raise cls(message)

    async def _flush(self, batch: _Batch) -> None:
        batch.flushed = True
        if self._batch is batch:
            self._batch = None
        if self._closed:
            batch.error = (StreamClosed, "send: the stream was closed locally")
            return
        data = b"".join(batch.frames)
        try:
            await self._shielded(lambda: self._io.write(data), "send")
        except StreamClosed as exc:
            batch.error = self._send_failure = (type(exc), str(exc))
            await self._abort()  # a failed write leaves the stream unusable: tell the remote

    async def receive(self) -> bytes:
        """Receive one frame; ``StreamClosed`` at the end, ``DecodeError`` on bad framing."""
        try:
            return await self._frames_out.receive()
        except trio.ClosedResourceError:
            raise StreamClosed("receive: the stream was closed locally") from None
        except trio.EndOfChannel:
            if self._end is None:
                raise StreamClosed("receive: the host is shutting down") from None
            cls, message = self._end
            raise cls(message) from None

    async def close(self, *, grace: float = CLOSE_GRACE) -> None:
        """End the stream cleanly: send EOF, then wait (bounded) for the remote's EOF.

        Frames that still arrive are discarded. If the remote does not finish
        within ``grace`` seconds, or we are cancelled, the stream is reset.
        """
        if self._closed:
            return
        self._closed = True
        self._frames_out.close()
        try:
            async with self._send_lock:
                await trio.lowlevel.checkpoint_if_cancelled()
                await self._shielded(self._raw_close, "close")
            with trio.move_on_after(grace):
                await self._reader_done.wait()
        except StreamClosed:
            pass
        finally:
            if not self._reader_done.is_set():
                await self.reset()

    async def reset(self) -> None:
        """Abort the stream in both directions; the remote sees ``StreamReset``."""
        self._frames_out.close()
        if self._end is None:
            self._end = (StreamReset, "the stream was reset locally")
        await self._abort()

    async def _abort(self) -> None:
        """Reset the libp2p stream and wake our reader (which then ends the channel)."""
        self._closed = True
        wake = _reader_wakeup(self._raw)
        with trio.CancelScope(shield=True):
            try:
                await self._raw.reset()
            except Exception:  # already dead: nothing left to abort
                pass
        if wake is not None:
            wake()
        else:  # unknown muxer internals: fall back to cancelling the reader
            self._reader_scope.cancel()

    async def __aenter__(self) -> Stream:
        return self

    async def __aexit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            await self.close()
        else:
            await self.reset()

    async def _raw_close(self) -> None:
        with _translated("close"):
            await self._raw.close()

    async def _shielded(self, op: Callable[[], Awaitable[None]], what: str) -> None:
        """Run a write to completion even if cancelled (see the module docstring).

        Callers check for cancellation first, so a write is either not started
        or finished, never cut in half.
        """
        with trio.CancelScope(shield=True):
            with trio.move_on_after(SEND_TIMEOUT) as scope:
                await op()
        if scope.cancelled_caught:
            await self.reset()
            raise StreamReset(f"{what}: timed out after {SEND_TIMEOUT}s; the remote is not reading")

    async def _read_loop(self) -> None:
        reader = FrameReader(self._io, max_size=self._max_frame)
        try:
            with self._reader_scope:
                while True:
                    frame = await reader.read_frame()
                    if self._discard:
                        continue
                    try:
                        await self._frames_in.send(frame)
                    except trio.BrokenResourceError:
                        self._discard = True  # nobody will receive: drain until EOF
        except StreamClosed as exc:
            if self._end is None:
                self._end = (type(exc), str(exc))
        except DecodeError as exc:
            self._end = (type(exc), f"receive: {exc}")
            await self._abort()  # the peer broke framing: abort
        except Exception as exc:  # a libp2p bug must not take the host down
            logger.exception("unexpected error reading from %s", self.remote_peer_id)
            self._end = (StreamReset, f"receive: unexpected {type(exc).__name__}: {exc}")
            await self._abort()
        finally:
            self._frames_in.close()
            self._reader_done.set()


def _reader_wakeup(raw: INetStream) -> Callable[[], None] | None:
    """Return a callable that wakes a reader parked in yamux's ``read``.

    py-libp2p 0.8.1's yamux drops (without setting) a stream's wake-up event on
    a *local* reset, so a pending ``read`` would sleep until the connection
    closes. Grab the event before resetting and set it afterwards.
    """
    muxed = getattr(raw, "muxed_stream", None)
    events = getattr(getattr(muxed, "conn", None), "stream_events", None)
    stream_id = getattr(muxed, "stream_id", None)
    if not isinstance(events, dict) or stream_id is None:
        return None
    event = events.get(stream_id)
    return event.set if event is not None else (lambda: None)
