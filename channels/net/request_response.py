"""Request/response and server push, each over one long-lived libp2p stream.

Opening a libp2p stream costs a multistream-select round trip, so a client
keeps one stream per (peer, protocol) and pipelines calls on it.

RPC wire format, inside each length-prefixed frame:

* request:  ``call_id`` (4 bytes, big-endian) ``|`` payload
* response: ``call_id`` (4 bytes) ``|`` status (1 byte: 0 ok, 1 error) ``|``
  payload (for an error, a UTF-8 description)

Responses are matched to requests by ``call_id``, not by arrival order: the
server runs up to ``max_in_flight`` handlers per stream concurrently and answers
each as it finishes, so a slow call never holds up the fast ones behind it.
With the default 64 KiB frame cap a request payload may be up to
``MAX_FRAME - 4`` bytes, a response or pushed item up to ``MAX_FRAME - 5``.

Subscription wire format: the client sends one request frame; the server then
pushes frames ``tag`` (1 byte) ``|`` payload with tag 0 = item, 1 = error
(final, UTF-8 description), 2 = end (final). The explicit end marker matters:
py-libp2p 0.8.1 reports a remote *reset* as a plain EOF, so EOF alone cannot
tell "finished" from "crashed".
"""

from __future__ import annotations

import logging
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import attrs
import trio

from ..errors import ChannelsError, DecodeError
from .errors import MessageTooLarge, RpcClosed, RpcError, RpcRemoteError, RpcTimeout, StreamClosed
from .host import Host, Stream

__all__ = [
    "DEFAULT_TIMEOUT",
    "RpcClient",
    "RpcHandler",
    "SendFn",
    "Subscription",
    "SubscriptionHandler",
    "open_rpc_client",
    "open_subscription",
    "serve_rpc",
    "serve_subscription",
]

logger = logging.getLogger(__name__)

RpcHandler = Callable[[bytes, str], Awaitable[bytes]]
SendFn = Callable[[bytes], Awaitable[None]]
SubscriptionHandler = Callable[[bytes, SendFn, str], Awaitable[None]]

_CALL_ID = struct.Struct(">I")
_RESPONSE_HEAD = struct.Struct(">IB")
_OK, _ERR = 0, 1
_ITEM, _ERROR, _END = b"\x00", b"\x01", b"\x02"
DEFAULT_TIMEOUT = 10.0


def _describe(exc: BaseException) -> bytes:
    """What the remote may learn about a handler failure (no internals leak)."""
    if isinstance(exc, ChannelsError):
        return f"{type(exc).__name__}: {exc}".encode()
    return b"internal error"


@attrs.define
class _Pending:
    done: trio.Event = attrs.field(factory=trio.Event)
    result: bytes | None = None
    error: RpcError | None = None


class RpcClient:
    """Pipelined calls over one stream; safe to use from many tasks at once.

    Create it with ``open_rpc_client``. After the stream fails every call
    raises ``RpcClosed``: open a new client to reconnect.
    """

    def __init__(self, stream: Stream, *, default_timeout: float = DEFAULT_TIMEOUT) -> None:
        self._stream = stream
        self._default_timeout = default_timeout
        self._pending: dict[int, _Pending] = {}
        self._next_id = 0
        self._failure: str | None = None

    @property
    def peer_id(self) -> str:
        """The server's peer id."""
        return self._stream.remote_peer_id

    @property
    def closed(self) -> bool:
        """True once the stream failed or the client was closed."""
        return self._failure is not None

    async def call(self, request: bytes, *, timeout: float | None = None) -> bytes:
        """Send ``request`` and return the response payload.

        Raises ``RpcTimeout`` (no answer in ``timeout`` s; the call is abandoned
        and a late answer dropped), ``RpcRemoteError`` (the handler failed),
        ``RpcClosed`` (the stream is gone) or ``MessageTooLarge``.
        """
        if self._failure is not None:
            raise RpcClosed(self._failure)
        limit = self._default_timeout if timeout is None else timeout
        call_id = self._allocate_id()
        pending = self._pending[call_id] = _Pending()
        try:
            with trio.move_on_after(limit) as scope:
                try:
                    await self._stream.send(_CALL_ID.pack(call_id) + request)
                except StreamClosed as exc:
                    self._fail(f"rpc stream to {self.peer_id} failed: {exc}")
                    raise RpcClosed(self._failure or str(exc)) from None
                await pending.done.wait()
        finally:
            del self._pending[call_id]
        if scope.cancelled_caught and not pending.done.is_set():
            raise RpcTimeout(f"no response from {self.peer_id} within {limit}s")
        if pending.error is not None:
            raise pending.error
        assert pending.result is not None
        return pending.result

    def _allocate_id(self) -> int:
        while True:
            self._next_id = (self._next_id + 1) & 0xFFFFFFFF
            if self._next_id not in self._pending:
                return self._next_id

    def _fail(self, reason: str) -> None:
        if self._failure is None:
            self._failure = reason
        for pending in self._pending.values():
            if not pending.done.is_set():
                pending.error = RpcClosed(reason)
                pending.done.set()

    async def _dispatch(self) -> None:
        """Route each response to its waiting call until the stream ends."""
        try:
            while True:
                frame = await self._stream.receive()
                if len(frame) < _RESPONSE_HEAD.size:
                    raise DecodeError(f"rpc response of {len(frame)} bytes is shorter than its header")
                call_id, status = _RESPONSE_HEAD.unpack_from(frame)
                pending = self._pending.get(call_id)
                if pending is None or pending.done.is_set():
                    continue  # the call timed out: drop the late answer
                payload = frame[_RESPONSE_HEAD.size :]
                if status == _OK:
                    pending.result = payload
                elif status == _ERR:
                    text = payload.decode("utf-8", errors="replace")
                    pending.error = RpcRemoteError(f"{self.peer_id} failed the call: {text}")
                else:
                    raise DecodeError(f"rpc response has unknown status {status}")
                pending.done.set()
        except StreamClosed as exc:
            self._fail(f"rpc stream to {self.peer_id} ended: {exc}")
        except DecodeError as exc:
            self._fail(f"rpc stream to {self.peer_id} broke the protocol: {exc}")
            await self._stream.reset()


@asynccontextmanager
async def open_rpc_client(
    host: Host, peer_id: str, protocol_id: str, *, timeout: float = DEFAULT_TIMEOUT
) -> AsyncIterator[RpcClient]:
    """Open one stream to ``peer_id`` and yield a client for it; ``timeout`` is the default per call."""
    stream = await host.open_stream(peer_id, protocol_id, timeout=timeout)
    client = RpcClient(stream, default_timeout=timeout)
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(client._dispatch)
            try:
                yield client
            finally:
                nursery.cancel_scope.cancel()
    finally:
        client._fail("the rpc client was closed")
        await stream.close()


def serve_rpc(host: Host, protocol_id: str, handler: RpcHandler, *, max_in_flight: int = 64) -> None:
    """Serve ``protocol_id``: ``await handler(request, remote_peer_id) -> response``.

    A ``ChannelsError`` from the handler reaches the caller as ``RpcRemoteError``
    with its message; any other exception is logged here and reported as
    "internal error". At most ``max_in_flight`` calls per stream run at once;
    beyond that the server stops reading, which pushes back on the client.
    """

    async def on_stream(stream: Stream) -> None:
        slots = trio.Semaphore(max_in_flight)
        async with trio.open_nursery() as nursery:

            async def answer(frame: bytes) -> None:
                try:
                    head = frame[: _CALL_ID.size]
                    try:
                        reply = head + bytes([_OK]) + await handler(frame[_CALL_ID.size :], stream.remote_peer_id)
                    except Exception as exc:
                        if not isinstance(exc, ChannelsError):
                            logger.exception("rpc handler for %s failed", protocol_id)
                        reply = head + bytes([_ERR]) + _describe(exc)
                    try:
                        await stream.send(reply)
                    except MessageTooLarge as exc:
                        await stream.send(head + bytes([_ERR]) + _describe(exc))
                except StreamClosed:
                    nursery.cancel_scope.cancel()  # the client is gone
                finally:
                    slots.release()

            while True:
                try:
                    frame = await stream.receive()
                except StreamClosed:
                    break  # client closed: finish the calls in flight, then close
                if len(frame) < _CALL_ID.size:
                    raise DecodeError(f"rpc request of {len(frame)} bytes is shorter than its call id")
                await slots.acquire()
                nursery.start_soon(answer, frame)

    host.set_handler(protocol_id, on_stream)


class Subscription:
    """Async iterator over the frames a server pushes; ends at the server's end marker."""

    def __init__(self, stream: Stream) -> None:
        self._stream = stream
        self._finished = False

    @property
    def peer_id(self) -> str:
        """The server's peer id."""
        return self._stream.remote_peer_id

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> bytes:
        if self._finished:
            raise StopAsyncIteration
        try:
            frame = await self._stream.receive()
        except StreamClosed as exc:
            self._finished = True
            raise RpcClosed(f"subscription to {self.peer_id} ended without an end marker: {exc}") from None
        tag, payload = frame[:1], frame[1:]
        if tag == _ITEM:
            return payload
        self._finished = True
        if tag == _END:
            raise StopAsyncIteration
        if tag == _ERROR:
            raise RpcRemoteError(f"{self.peer_id} ended the subscription: {payload.decode('utf-8', 'replace')}")
        await self._stream.reset()
        raise DecodeError(f"subscription frame has unknown tag {tag!r}")


@asynccontextmanager
async def open_subscription(
    host: Host, peer_id: str, protocol_id: str, first_request: bytes, *, timeout: float = DEFAULT_TIMEOUT
) -> AsyncIterator[Subscription]:
    """Subscribe with ``first_request``; iterate the yielded object for pushed frames.

    Leaving the block unsubscribes (the server's handler is cancelled).
    Iteration raises ``RpcRemoteError`` if the server's handler failed and
    ``RpcClosed`` if the stream ended without the server's end marker.
    """
    stream = await host.open_stream(peer_id, protocol_id, timeout=timeout)
    async with stream:
        await stream.send(first_request)
        yield Subscription(stream)


def serve_subscription(
    host: Host, protocol_id: str, handler: SubscriptionHandler, *, request_timeout: float = DEFAULT_TIMEOUT
) -> None:
    """Serve ``protocol_id``: ``await handler(request, send, remote_peer_id)``.

    ``await send(frame)`` pushes one frame. When the handler returns the client
    sees the end of iteration; if it raises, the client gets ``RpcRemoteError``.
    When the client unsubscribes or disconnects the handler is cancelled.
    """

    async def on_stream(stream: Stream) -> None:
        request: bytes | None = None
        with trio.move_on_after(request_timeout):
            request = await stream.receive()
        if request is None:
            return  # no subscription request in time: just close

        async def send(data: bytes) -> None:
            await stream.send(_ITEM + data)

        async def watch_client(cancel_scope: trio.CancelScope) -> None:
            try:
                await stream.receive()  # the client sends nothing more: any event means it left
            except (StreamClosed, DecodeError):
                pass
            cancel_scope.cancel()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(watch_client, nursery.cancel_scope)
            try:
                await handler(request, send, stream.remote_peer_id)
                final: bytes = _END
            except StreamClosed:
                nursery.cancel_scope.cancel()
                return
            except Exception as exc:
                if not isinstance(exc, ChannelsError):
                    logger.exception("subscription handler for %s failed", protocol_id)
                final = _ERROR + _describe(exc)
            try:
                await stream.send(final)
            except StreamClosed:
                pass
            nursery.cancel_scope.cancel()

    host.set_handler(protocol_id, on_stream)
