"""Peer links: one outbound stream per peer for what we send, inbound streams for
what the peer sends. A link that breaks is re-opened with backoff; every (re)open
starts with our ``Init`` frame and then the reestablish exchange."""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import trio

from ..errors import ChannelsError
from ..wire import PROTOCOL_CHANNEL

log = logging.getLogger("channels.node.links")

MAX_QUEUED_FRAMES = 4096  # frames waiting for a slow peer; beyond it the link is dropped and rebuilt
UP, UNREACHABLE, REFUSED, BROKE = "up", "unreachable", "refused", "broke"  # ``PeerLink.stage``


class Stream(Protocol):
    remote_peer_id: str

    async def send(self, data: bytes) -> None: ...

    async def receive(self) -> bytes: ...

    async def close(self) -> None: ...

    async def reset(self) -> None: ...


class Transport(Protocol):
    """What the node needs from the network (``channels.net.host.Host`` and the
    in-memory transport of the tests both provide it)."""

    @property
    def peer_id(self) -> str: ...

    @property
    def addresses(self) -> list[str]: ...

    def set_handler(self, protocol_id: str, handler: Callable[[Any], Awaitable[None]]) -> None: ...

    async def connect(self, address: str) -> str: ...

    async def open_stream(self, peer_id: str, protocol_id: str) -> Any: ...

    def is_connected(self, peer_id: str) -> bool: ...

    async def disconnect(self, peer_id: str) -> None: ...

    async def wait_disconnected(self, peer_id: str) -> None: ...


class PeerLink:
    """Our outbound side towards one peer: a queue of frames and the task that sends them."""

    def __init__(self, peer_id: str, transport: Transport, init_frame: Callable[[], bytes],
                 on_up: Callable[[str], Awaitable[None]], reconnect_interval: float,
                 addresses: Callable[[], list[str]] = list, persistent: Callable[[], bool] = lambda: True,
                 backlog: Callable[[], list[tuple[int, bytes]]] = list,
                 on_sent: Callable[[int], None] = lambda seq: None) -> None:
        self.peer_id = peer_id
        self._backlog = backlog
        self._on_sent = on_sent
        self._persistent = persistent
        self._addresses = addresses
        self._transport = transport
        self._init_frame = init_frame
        self._on_up = on_up
        self._interval = reconnect_interval
        self._send, self._recv = trio.open_memory_channel[tuple[bytes, int]](math.inf)
        self.up = False
        self._kick = trio.Event()
        self._scope: trio.CancelScope | None = None  # the current connection's, while up
        # How the latest attempt ended, for ``Node.connect`` to report the real reason:
        # ``outcomes`` counts endings, ``error`` is None when the link came up, ``stage`` says
        # where it failed (``UNREACHABLE``, ``REFUSED``: connected but the stream was refused,
        # ``BROKE``: our stream ended after it was up).
        self.outcomes = 0
        self.error: ChannelsError | None = None
        self.stage = ""
        self._changed = trio.Event()

    async def wait_changed(self) -> None:
        """Return at the next outcome (the link came up, or an attempt failed or broke)."""
        await self._changed.wait()

    def _report(self, stage: str, error: ChannelsError | None) -> None:
        self.stage, self.error, self.outcomes = stage, error, self.outcomes + 1
        self._changed.set()
        self._changed = trio.Event()

    def send(self, frame: bytes, seq: int = 0) -> None:
        """Queue a frame (``seq``: its row in the durable outbox); while the link is down it
        is dropped here: the outbox keeps it, and it is sent from there once the link is up."""
        if not self.up:
            return
        if self._send.statistics().current_buffer_used >= MAX_QUEUED_FRAMES:
            # A peer that stops reading would make this queue grow without bound. Drop
            # the connection's stream instead: the reestablish after it rebuilds every
            # frame that matters from the stored channels.
            log.warning("peer %s is not reading; %d frames queued, resetting the link", self.peer_id,
                        MAX_QUEUED_FRAMES)
            self.up = False
            if self._scope is not None:
                self._scope.cancel()
            return
        self._send.send_nowait((frame, seq))

    def kick(self) -> None:
        """Retry connecting now (the peer just showed up)."""
        self._kick.set()

    async def run(self) -> None:
        """Keep the link up; return once it is down and ``persistent()`` says to let it go.

        Only peers we have funded channels with are redialled: a peer without one
        (a failed ``connect``, a zombie proposer) must not cost a dial loop forever."""
        delay = self._interval
        while True:
            try:
                await self._dial()
                stream = await self._transport.open_stream(self.peer_id, PROTOCOL_CHANNEL)
            except ChannelsError as exc:
                log.debug("link to %s not up: %s", self.peer_id, exc)
                self._report(REFUSED if self._transport.is_connected(self.peer_id) else UNREACHABLE, exc)
                if not self._persistent():
                    return
                self._kick = trio.Event()
                with trio.move_on_after(delay):
                    await self._kick.wait()
                delay = min(delay * 2, 5.0)
                continue
            delay = self._interval
            while True:  # frames queued for the previous connection are stale
                try:
                    self._recv.receive_nowait()
                except trio.WouldBlock:
                    break
            try:
                await stream.send(self._init_frame())
                self.up = True
                self._report(UP, None)
                await self._on_up(self.peer_id)
                async with trio.open_nursery() as nursery:
                    self._scope = nursery.cancel_scope
                    nursery.start_soon(self._watch_disconnect, nursery.cancel_scope)
                    nursery.start_soon(self._watch_stream, stream, nursery.cancel_scope)
                    sent = 0
                    for seq, frame in self._backlog():  # the durable outbox first: older frames
                        await stream.send(frame)
                        self._on_sent(seq)
                        sent = seq
                    async for frame, seq in self._recv:
                        await stream.send(frame)
                        if seq > sent:
                            self._on_sent(seq)
            except* ChannelsError as group:
                log.info("link to %s broke: %s", self.peer_id, group.exceptions[0])
                first = group.exceptions[0]
                self._report(BROKE, first if isinstance(first, ChannelsError) else None)
            finally:
                if self.up and self.stage == UP:  # ended without an error (the peer reset our stream)
                    self._report(BROKE, None)
                self.up = False
                self._scope = None
                with trio.CancelScope(shield=True):
                    with trio.move_on_after(1):
                        try:
                            await stream.reset()
                        except ChannelsError:
                            pass
            if not self._persistent():
                return

    async def _dial(self) -> None:
        """After a restart the transport knows no address: use the ones the peer announced."""
        if self._transport.is_connected(self.peer_id):
            return
        for address in self._addresses():
            try:
                await self._transport.connect(address)
                return
            except ChannelsError as exc:
                log.debug("dialing %s at %s failed: %s", self.peer_id, address, exc)

    async def _watch_stream(self, stream: Any, scope: trio.CancelScope) -> None:
        """The peer never writes on our outbound stream, so a read ends only when the
        stream does: a reset stream is noticed at once, not when the connection drops."""
        while True:
            try:
                await stream.receive()
            except ChannelsError as exc:
                log.info("outbound stream to %s ended: %s", self.peer_id, exc)
                scope.cancel()
                return

    async def _watch_disconnect(self, scope: trio.CancelScope) -> None:
        """A dead connection is noticed even when we have nothing to send."""
        await self._transport.wait_disconnected(self.peer_id)
        log.info("connection to %s lost", self.peer_id)
        scope.cancel()
