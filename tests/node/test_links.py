"""Peer links: who is redialled, and how fast a dead outbound stream is noticed.

Findings: every peer that ever introduced itself kept a link that redialled it forever
(a failed ``connect`` too), so free identities cost a dial loop each; and a reset
outbound stream went unnoticed until the whole connection dropped, 23 s later.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import trio

from channels.wire import PROTOCOL_CHANNEL
from tests.node.test_memory_network import network, open_pair


async def wait_until(condition: Any, timeout: float = 10) -> None:
    with trio.fail_after(timeout):
        while not condition():
            await trio.sleep(0.02)


async def test_only_peers_with_a_funded_channel_are_redialled(tmp_path: Path) -> None:
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
