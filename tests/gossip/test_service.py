"""Gossip over real libp2p hosts on 127.0.0.1: co-signing, gossipsub relay, sync on connect."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

import pytest
import trio

from channels.gossip.errors import AnnouncementRefused, GossipRateLimited
from channels.gossip.graph_store import GraphStore
from channels.gossip.service import GossipService
from channels.gossip.validate import Escrow
from channels.net.host import open_host

from .util import FakeL1, direction_of, l1_key, node_key, params, state

LOOPBACK = ["/ip4/127.0.0.1/tcp/0"]
WAIT = 30.0  # seconds: generous for a loaded 2-core machine, still bounded


@asynccontextmanager
async def gossip_node(label: str, l1: FakeL1, open_channels: set[tuple[str, bytes]],
                      tmp_path: Path) -> AsyncIterator[GossipService]:
    """A host with a running gossip service; both stop at the end of the block."""

    def has_channel(peer_id: str, channel_id: bytes, asset: str, capacity: int) -> bool:
        return (peer_id, channel_id) in open_channels

    store = GraphStore(tmp_path / f"{label}.sqlite")
    try:
        async with open_host(identity_seed=node_key(label).seed, listen=LOOPBACK) as host, \
                trio.open_nursery() as nursery:
            service = GossipService(host, state(l1, store), node_key=node_key(label), l1_signer=l1_key(label),
                                    has_channel=has_channel, alias=label)
            await nursery.start(service.run)
            try:
                yield service
            finally:
                nursery.cancel_scope.cancel()
    finally:
        store.close()


async def test_announce_update_relay_and_late_sync(tmp_path: Path) -> None:
    l1 = FakeL1()
    open_channels: set[tuple[str, bytes]] = set()
    async with AsyncExitStack() as stack:
        a, b, c = [await stack.enter_async_context(gossip_node(x, l1, open_channels, tmp_path))
                   for x in ("alice", "bob", "carol")]
        with trio.fail_after(WAIT):
            await b.host.connect(a.host.addresses[0])
            await c.host.connect(b.host.addresses[0])  # a line: alice - bob - carol
            assert await b.wait_for_peer(a.host.peer_id) and await b.wait_for_peer(c.host.peer_id)
            assert await c.wait_for_peer(b.host.peer_id)

        p = params("alice", "bob")
        cid = a.state.scheme.channel_id(p)
        with pytest.raises(AnnouncementRefused, match="no channel"):  # bob has not opened it (yet)
            await a.announce_channel(b.host.peer_id, p, "native", 10_000)
        assert b.counters["signatures_refused"] == 1
        open_channels.add((a.host.peer_id, cid))
        with pytest.raises(AnnouncementRefused, match="not_funded"):  # co-signed, but not on the L1
            await a.announce_channel(b.host.peer_id, p, "native", 10_000)
        l1.escrows[cid] = Escrow(holdings={"native": 10_000})
        ann = await a.announce_channel(b.host.peer_id, p, "native", 10_000)
        assert ann.channel_id == cid and b.counters["signatures_given"] == 2

        upd = await a.update_channel(cid, base_fee=3, fee_ppm=250, expiry_delta=40, htlc_minimum=1,
                                     htlc_maximum=9_000)
        assert upd.direction == direction_of(ann, "alice")
        with trio.fail_after(WAIT):  # two hops of gossipsub: alice -> bob -> carol
            for s in (b, c):
                await s.wait_until(lambda s=s: s.state.update(cid, upd.direction) == upd  # type: ignore[misc]
                                   and s.state.node(node_key("alice").public_key) is not None)
        graph = c.graph()
        assert (graph.num_nodes, graph.num_channels) == (2, 1)
        edge = graph.edges[graph.edge_index[(cid, upd.direction)]]
        assert (edge.source, edge.base_fee, edge.fee_ppm) == (node_key("alice").public_key, 3, 250)
        assert c.stats()["dropped"] == {} and c.stats()["gossip_peers"] == 1

        # an invalid message stops at the first honest node: bob drops it, alice never sees it
        assert c._topic is not None
        await c._topic.publish(b"\x92\x44\x90")  # type 68 (an update) with no fields
        with trio.fail_after(WAIT):
            await b.wait_until(lambda: b.state.dropped["malformed"] == 1)

        # the late joiner: connects to carol only, and gets the whole graph by sync on connect
        d = await stack.enter_async_context(gossip_node("dave", l1, open_channels, tmp_path))
        with trio.fail_after(WAIT):
            await d.host.connect(c.host.addresses[0])
            await d.wait_until(lambda: d.counters["synced_from"] == 1)
        assert d.state.update(cid, upd.direction) == upd and d.state.node(node_key("alice").public_key) is not None
        assert d.stats()["num_channels"] == 1 and d.counters["sync_failures"] == 0
        assert d.last_sync_result is not None and d.last_sync_result.received == 3  # carol's whole graph
        assert d.state.stats()["accepted"] == {"channel_announcement": 1, "channel_update": 1,
                                               "node_announcement": 1}

        # the rate limit applies to our own updates too: a typed error, nothing published
        published = a.counters["published"]
        with pytest.raises(GossipRateLimited):
            for fee in range(10):
                await a.update_channel(cid, base_fee=fee, fee_ppm=1, expiry_delta=40, htlc_minimum=1,
                                       htlc_maximum=9_000)
        assert a.counters["published"] - published == a.state.config.rate_burst - 1
        assert a.state.dropped["malformed"] == 0
