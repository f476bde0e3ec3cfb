"""An in-memory transport with fault injection, for in-process network tests.

It offers the same surface the node uses from ``channels.net.host.Host``. Faults
model what real networks do to reliable streams: a connection can die (frames in
flight are lost, both ends see the stream reset), and, as an adversarial
transport, two frames can be swapped. The protocol must stay safe under both and
recover after the next reconnect.
"""

from __future__ import annotations

import math
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import attrs
import trio

from .errors import PeerUnreachable, ProtocolNotSupported, StreamClosed, StreamReset


@attrs.define
class Faults:
    drop_rate: float = 0.0  # per frame: lose it and kill the connection
    reorder_rate: float = 0.0  # per frame: hold it back behind the next one
    seed: int = 0


class MemoryNetwork:
    def __init__(self, faults: Faults | None = None) -> None:
        self.faults = faults or Faults()
        self.rng = random.Random(self.faults.seed)
        self.transports: dict[str, MemoryTransport] = {}
        self._generation: dict[frozenset[str], int] = {}
        self._disconnected: dict[frozenset[str], trio.Event] = {}

    def link_key(self, a: str, b: str) -> frozenset[str]:
        return frozenset((a, b))

    def generation(self, a: str, b: str) -> int:
        return self._generation.get(self.link_key(a, b), 0)

    def disconnect(self, a: str, b: str) -> None:
        """Kill every stream between ``a`` and ``b``; later opens reconnect."""
        key = self.link_key(a, b)
        self._generation[key] = self._generation.get(key, 0) + 1
        event = self._disconnected.pop(key, None)
        if event is not None:
            event.set()

    def disconnected_event(self, a: str, b: str) -> trio.Event:
        return self._disconnected.setdefault(self.link_key(a, b), trio.Event())


class MemoryStream:
    def __init__(
        self,
        net: MemoryNetwork,
        local: str,
        remote: str,
        send: trio.MemorySendChannel[bytes],
        recv: trio.MemoryReceiveChannel[bytes],
        generation: int,
    ) -> None:
        self._net = net
        self.local_peer_id = local
        self.remote_peer_id = remote
        self._send = send
        self._recv = recv
        self._generation = generation
        self._held: bytes | None = None

    def _alive(self) -> bool:
        return self._net.generation(self.local_peer_id, self.remote_peer_id) == self._generation

    async def send(self, data: bytes) -> None:
        await trio.lowlevel.checkpoint()
        if not self._alive():
            raise StreamReset(f"connection to {self.remote_peer_id} was reset")
        faults, rng = self._net.faults, self._net.rng
        if faults.drop_rate and rng.random() < faults.drop_rate:
            self._net.disconnect(self.local_peer_id, self.remote_peer_id)
            raise StreamReset(f"connection to {self.remote_peer_id} dropped")
        if self._held is None and faults.reorder_rate and rng.random() < faults.reorder_rate:
            self._held = data
            return
        try:
            self._send.send_nowait(data)
            if self._held is not None:
                held, self._held = self._held, None
                self._send.send_nowait(held)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            raise StreamClosed(f"stream to {self.remote_peer_id} is closed") from None

    async def receive(self) -> bytes:
        while True:
            if not self._alive():
                raise StreamReset(f"connection to {self.remote_peer_id} was reset")
            with trio.move_on_after(0.05):
                try:
                    return await self._recv.receive()
                except (trio.EndOfChannel, trio.ClosedResourceError):
                    raise StreamClosed(f"{self.remote_peer_id} closed the stream") from None

    async def close(self) -> None:
        await self._send.aclose()

    async def reset(self) -> None:
        await self._send.aclose()
        await self._recv.aclose()


class MemoryTransport:
    def __init__(self, net: MemoryNetwork, peer_id: str, nursery: trio.Nursery) -> None:
        self._net = net
        self._peer_id = peer_id
        self._nursery = nursery
        self._handlers: dict[str, Callable[[Any], Awaitable[None]]] = {}
        self._connected: set[str] = set()
        self.up = True

    @property
    def peer_id(self) -> str:
        return self._peer_id

    @property
    def addresses(self) -> list[str]:
        return [f"/memory/{self._peer_id}"]

    def set_handler(self, protocol_id: str, handler: Callable[[Any], Awaitable[None]]) -> None:
        self._handlers[protocol_id] = handler

    def _reachable(self, peer_id: str) -> MemoryTransport:
        other = self._net.transports.get(peer_id)
        if other is None or not other.up or not self.up:
            raise PeerUnreachable(f"peer {peer_id} is not reachable")
        return other

    async def connect(self, address: str) -> str:
        await trio.lowlevel.checkpoint()
        peer = address.rsplit("/", 1)[-1]
        self._reachable(peer)
        self._connected.add(peer)
        self._net.transports[peer]._connected.add(self._peer_id)
        return peer

    def is_connected(self, peer_id: str) -> bool:
        other = self._net.transports.get(peer_id)
        return other is not None and other.up and self.up

    async def wait_disconnected(self, peer_id: str) -> None:
        generation = self._net.generation(self._peer_id, peer_id)
        while self._net.generation(self._peer_id, peer_id) == generation and self.is_connected(peer_id):
            with trio.move_on_after(0.1):
                await self._net.disconnected_event(self._peer_id, peer_id).wait()

    async def disconnect(self, peer_id: str) -> None:
        await trio.lowlevel.checkpoint()
        self._net.disconnect(self._peer_id, peer_id)

    async def open_stream(self, peer_id: str, protocol_id: str) -> MemoryStream:
        await trio.lowlevel.checkpoint()
        other = self._reachable(peer_id)
        handler = other._handlers.get(protocol_id)
        if handler is None:
            raise ProtocolNotSupported(f"{peer_id} does not speak {protocol_id}")
        generation = self._net.generation(self._peer_id, peer_id)
        a_send, b_recv = trio.open_memory_channel[bytes](math.inf)
        b_send, a_recv = trio.open_memory_channel[bytes](math.inf)
        ours = MemoryStream(self._net, self._peer_id, peer_id, a_send, a_recv, generation)
        theirs = MemoryStream(self._net, peer_id, self._peer_id, b_send, b_recv, generation)
        other._nursery.start_soon(_serve, handler, theirs)
        return ours


async def _serve(handler: Callable[[Any], Awaitable[None]], stream: MemoryStream) -> None:
    try:
        await handler(stream)
    finally:
        await stream.reset()  # the sender's next write fails, as with a real reset stream


@asynccontextmanager
async def open_memory_transport(net: MemoryNetwork, peer_id: str) -> AsyncIterator[MemoryTransport]:
    async with trio.open_nursery() as nursery:
        transport = MemoryTransport(net, peer_id, nursery)
        net.transports[peer_id] = transport
        try:
            yield transport
        finally:
            transport.up = False
            for other in list(net.transports):
                if other != peer_id:
                    net.disconnect(peer_id, other)
            del net.transports[peer_id]
            nursery.cancel_scope.cancel()
