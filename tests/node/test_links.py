"""Peer links: who is redialled, and how fast a dead outbound stream is noticed.

Findings: every peer that ever introduced itself kept a link that redialled it forever
(a failed ``connect`` too), so free identities cost a dial loop each; and a reset
outbound stream went unnoticed until the whole connection dropped, 23 s later.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import trio
from trio.testing import MockClock

from channels.wire import PROTOCOL_CHANNEL
from tests.node.test_memory_network import network, open_pair


async def wait_until(condition: Any, timeout: float = 10) -> None:
    with trio.fail_after(timeout):
        while not condition():
            await trio.sleep(0.02)


async def test_only_peers_with_a_funded_channel_are_redialled(tmp_path: Path, autojump_clock: MockClock) -> None:
    async with network(tmp_path, ["a", "b", "c"]) as (_dev, net, nodes):
        a, b, c = nodes["a"], nodes["b"], nodes["c"]
        await open_pair(a, c, 1_000)
        with trio.fail_after(10):
            await a.connect(b.addresses[0])  # introduced, no channel
        await wait_until(lambda: "b" in a._links and a._links["b"].up)
        for name in ("b", "c"):
            net.transports[name].up = False
            net.disconnect("a", name)
        await wait_until(lambda: "b" not in a._links)  # its link ended instead of redialling
        assert "c" in a._links, "the funded channel's peer is still redialled"
        net.transports["c"].up = True
        await wait_until(lambda: a._links["c"].up)


async def test_a_reset_outbound_stream_is_noticed_without_waiting_for_the_connection(tmp_path: Path) -> None:
    async with network(tmp_path, ["a", "b"]) as (_dev, net, nodes):
        a, b = nodes["a"], nodes["b"]
        inbound: list[Any] = []
        serve = b._serve_stream

        async def recording(stream: Any) -> None:
            inbound.append(stream)
            await serve(stream)

        net.transports["b"].set_handler(PROTOCOL_CHANNEL, recording)
        cid = await open_pair(a, b, 1_000)
        await wait_until(lambda: inbound and a._links["b"].up)
        opened = len(inbound)
        await inbound[-1].reset()  # b resets a's outbound stream; the connection stays up
        await wait_until(lambda: len(inbound) > opened, timeout=5)  # a noticed and opened a new one
        with trio.fail_after(10):
            await a.pay(cid, 10)
        assert b.channel(cid).allocation.balances[0] == (990, 10)


class _StuckStream:
    """A peer that takes the Init, then never reads again: every later send blocks."""

    remote_peer_id = "slow"

    def __init__(self) -> None:
        self.reset_called = trio.Event()
        self.sent = 0

    async def send(self, data: bytes) -> None:
        self.sent += 1
        if self.sent > 1:
            await trio.sleep_forever()

    async def receive(self) -> bytes:
        await trio.sleep_forever()
        raise AssertionError

    async def close(self) -> None:
        self.reset_called.set()

    async def reset(self) -> None:
        self.reset_called.set()


class _StuckTransport:
    peer_id, addresses = "me", ["/memory/me"]

    def __init__(self) -> None:
        self.streams: list[_StuckStream] = []

    def set_handler(self, protocol_id: str, handler: Any) -> None: ...

    async def connect(self, address: str) -> str:
        return "slow"

    async def open_stream(self, peer_id: str, protocol_id: str) -> _StuckStream:
        self.streams.append(_StuckStream())
        return self.streams[-1]

    def is_connected(self, peer_id: str) -> bool:
        return True

    async def disconnect(self, peer_id: str) -> None: ...

    async def wait_disconnected(self, peer_id: str) -> None:
        await trio.sleep_forever()


async def test_frames_for_a_peer_that_never_reads_are_bounded() -> None:
    from channels.node.links import MAX_QUEUED_FRAMES, PeerLink

    transport = _StuckTransport()

    async def on_up(peer: str) -> None: ...

    link = PeerLink("slow", transport, lambda: b"init", on_up, 0.01, persistent=lambda: False)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(link.run)
        await wait_until(lambda: link.up)
        for _ in range(MAX_QUEUED_FRAMES + 2):  # the first frame's send is stuck: the rest queue
            link.send(b"frame")
        assert not link.up, "the link gave up on the peer instead of queueing forever"
        with trio.fail_after(5):
            await transport.streams[0].reset_called.wait()
        assert link._send.statistics().current_buffer_used <= MAX_QUEUED_FRAMES
        nursery.cancel_scope.cancel()
