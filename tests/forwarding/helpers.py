"""In-process multi-hop networks over the memory transport: each node's peer id is the libp2p
id of its identity key, as with real libp2p, so routes and onions name the nodes by key."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import trio

from channels.chain.devnet.ledger import Devnet
from channels.core.channel import Phase
from channels.core.ids import ChannelId
from channels.invoice.peerid import peer_id_of
from channels.keyfile import LIBP2P_IDENTITY, load_or_create_key
from channels.net.memory import Faults, MemoryNetwork, open_memory_transport
from channels.node import Node, load_config


@asynccontextmanager
async def hop_network(tmp_path: Path, names: list[str], faults: Faults | None = None,
                      **settings: Any) -> AsyncIterator[tuple[Devnet, MemoryNetwork, dict[str, Node]]]:
    dev = Devnet(None, clock=None)
    net = MemoryNetwork(faults)
    async with AsyncExitStack() as stack:
        nodes: dict[str, Node] = {}
        for name in names:
            config = load_config(tmp_path / name, **{"tick_interval": 0.05, "reconnect_interval": 0.02, **settings})
            config.data_dir.mkdir(parents=True, exist_ok=True)
            key = load_or_create_key(config.identity_path, use=LIBP2P_IDENTITY)
            transport = await stack.enter_async_context(open_memory_transport(net, peer_id_of(key.public_key)))
            nodes[name] = await stack.enter_async_context(Node.open(config, ledger=dev, transport=transport))
            dev.faucet_sync(nodes[name].l1_address, 10_000_000)
        yield dev, net, nodes


async def channel(a: Node, b: Node, amount: int) -> ChannelId:
    await a.connect(b.addresses[0])
    return await a.open_channel(b.peer_id, amount, challenge_duration=100)


async def line(nodes: list[Node], amount: int) -> list[ChannelId]:
    """Channels a-b, b-c, ... each funded by its left end with ``amount``."""
    return [await channel(x, y, amount) for x, y in itertools.pairwise(nodes)]


def balance(node: Node, cid: ChannelId) -> int:
    ch = node.channel(cid)
    return ch.allocation.balances[0][ch.me]


async def quiet(nodes: list[Node], timeout: float = 30) -> None:
    """Wait until no channel of ``nodes`` has a lock or an update in flight."""
    with trio.fail_after(timeout):
        while True:
            busy = [n for n in nodes for ch in n.engine.channels.values()
                    if ch.phase is not Phase.SETTLED and (ch.allocation.locks or ch.pending or ch.queue)]
            if not busy:
                return
            await trio.sleep(0.05)


def teach_graph(payer: Node, pairs: list[tuple[Node, Node, ChannelId]]) -> None:
    """Give ``payer`` the public channels as gossip would: each channel in both directions,
    with each source's fee policy."""
    from channels.node.payments import direction
    from channels.routing.graph import Edge, Graph

    def edges() -> Graph:
        out = []
        for x, y, cid in pairs:
            for src, dst in ((x, y), (y, x)):
                policy = src.payments.hops.policy(bytes(cid))
                ch = src.channel(cid)
                out.append(Edge(channel_id=bytes(cid), direction=direction(src.payments.node_key,
                                                                             dst.payments.node_key),
                                source=src.payments.node_key, target=dst.payments.node_key,
                                capacity=sum(ch.allocation.balances[0]), base_fee=policy.base_fee,
                                fee_ppm=policy.fee_ppm, expiry_delta=policy.expiry_delta,
                                htlc_minimum=policy.htlc_minimum))
        return Graph.from_edges(out)

    payer.payments.graph_source = edges
