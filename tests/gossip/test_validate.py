"""GossipState's rules: every drop reason is reached and counted; times are explicit ``now`` values."""

from __future__ import annotations

import attrs
import pytest

from channels.errors import LocalProtocolError
from channels.gossip import validate as v
from channels.gossip.messages import decode_sync_page
from channels.gossip.validate import Escrow

from .util import (
    CHAIN_ID,
    NOW,
    SCHEME,
    FakeL1,
    channel,
    direction_of,
    l1_key,
    node,
    node_key,
    params,
    state,
    update,
)


async def funded(*pairs: tuple[str, str]) -> tuple[v.GossipState, FakeL1, list[v.ChannelAnnouncement]]:
    l1 = FakeL1()
    gs = state(l1)
    anns = []
    for i, (a, b) in enumerate(pairs):
        ann = channel(a, b, nonce=i)
        l1.fund(ann)
        assert (await gs.accept(ann.encode(), now=NOW)).accepted
        anns.append(ann)
    return gs, l1, anns


async def test_a_funded_channel_its_updates_and_its_nodes_are_accepted() -> None:
    gs, _, (ann,) = await funded(("alice", "bob"))
    for who in ("alice", "bob"):
        out = await gs.accept(update(ann, who).encode(), now=NOW)
        assert out.accepted and out.message == update(ann, who)
        assert (await gs.accept(node(who).encode(), now=NOW)).accepted
    assert (gs.num_nodes, gs.num_channels) == (2, 1)
    assert gs.stats()["dropped"] == {}
    assert gs.stats()["accepted"] == {"channel_announcement": 1, "channel_update": 2, "node_announcement": 2}
    graph = gs.to_routing_graph()
    assert (graph.num_nodes, graph.num_channels, graph.num_edges) == (2, 1, 2)
    edge = graph.edges[graph.edge_index[(ann.channel_id, direction_of(ann, "alice"))]]
    assert (edge.source, edge.target) == (node_key("alice").public_key, node_key("bob").public_key)
    assert (edge.capacity, edge.base_fee, edge.fee_ppm, edge.htlc_maximum) == (10_000, 1, 100, 5_000)
    assert gs.to_routing_graph("other-asset").num_channels == 0


async def drop_reason(gs: v.GossipState, data: bytes, now: int = NOW) -> str | None:
    before = dict(gs.dropped)
    out = await gs.accept(data, now=now)
    assert out.dropped
    changed = [k for k in gs.dropped if gs.dropped[k] != before.get(k, 0)]
    assert changed == [out.reason], "exactly the reported reason is counted"
    return out.reason


async def test_announcement_drop_reasons() -> None:
    gs, l1, (ann,) = await funded(("alice", "bob"))
    assert await drop_reason(gs, b"\x93\x01\x02") == v.MALFORMED
    assert await drop_reason(gs, ann.encode()) == v.DUPLICATE

    other = channel("carol", "dave")
    wrong_chain = channel("carol", "dave", p=attrs.evolve(params("carol", "dave"), chain_id=CHAIN_ID + 1))
    assert await drop_reason(gs, wrong_chain.encode()) == v.WRONG_CHAIN
    swapped = attrs.evolve(other, channel_id=ann.channel_id[::-1])
    assert await drop_reason(gs, swapped.encode()) == v.CHANNEL_ID_MISMATCH
    forged = attrs.evolve(other, node_signatures=(other.node_signatures[1], other.node_signatures[0]))
    assert await drop_reason(gs, forged.encode()) == v.BAD_SIGNATURE
    bad_l1 = attrs.evolve(other, l1_signatures=(other.l1_signatures[0], b"\x01" * 64))
    assert await drop_reason(gs, bad_l1.encode()) == v.BAD_SIGNATURE
    calls = l1.calls
    assert await drop_reason(gs, other.encode()) == v.NOT_FUNDED  # the L1 never saw it
    assert l1.calls == calls + 1, "only a well-signed announcement costs an L1 query"
    l1.escrows[other.channel_id] = Escrow(holdings={"native": 10_000}, open=False)
    assert await drop_reason(gs, other.encode()) == v.NOT_FUNDED
    l1.escrows[other.channel_id] = Escrow(holdings={"native": 10_000},
                                          participants=(l1_key("erin").address, l1_key("dave").address))
    assert await drop_reason(gs, other.encode()) == v.NOT_FUNDED
    l1.fund(other, amount=9_999)
    assert await drop_reason(gs, other.encode()) == v.CAPACITY_EXCEEDS_ESCROW
    l1.fund(other)
    l1.fail = True
    assert await drop_reason(gs, other.encode()) == v.UNVERIFIABLE
    l1.fail = False
    assert (await gs.accept(other.encode(), now=NOW)).accepted

    gs.channel_closed(other.channel_id)
    assert await drop_reason(gs, other.encode()) == v.CLOSED
    assert await drop_reason(gs, update(other, "carol").encode()) == v.CLOSED


async def test_the_graph_bound_drops_new_channels() -> None:
    l1 = FakeL1()
    gs = state(l1, max_channels=1)
    first, second = channel("alice", "bob"), channel("carol", "dave")
    l1.fund(first)
    l1.fund(second)
    assert (await gs.accept(first, now=NOW)).accepted
    assert await drop_reason(gs, second.encode()) == v.GRAPH_FULL


async def test_update_drop_reasons() -> None:
    gs, _, (ann,) = await funded(("alice", "bob"))
    upd = update(ann, "alice")
    assert (await gs.accept(upd.encode(), now=NOW)).accepted
    assert await drop_reason(gs, upd.encode()) == v.DUPLICATE
    assert await drop_reason(gs, update(ann, "alice", timestamp=NOW, fee_ppm=7).encode()) == v.STALE
    assert await drop_reason(gs, update(ann, "alice", timestamp=NOW - 1).encode()) == v.STALE
    assert await drop_reason(gs, update(ann, "alice", timestamp=NOW + 1, signer="bob").encode()) == v.BAD_SIGNATURE
    assert await drop_reason(gs, update(ann, "bob", timestamp=NOW + 601).encode()) == v.FUTURE_TIMESTAMP
    assert await drop_reason(gs, update(ann, "bob", timestamp=NOW - 14 * 86400 - 1).encode()) == v.TOO_OLD
    assert gs.update(ann.channel_id, direction_of(ann, "alice")) == upd, "nothing dropped changed the graph"


async def test_node_announcement_drop_reasons() -> None:
    gs, _, _ = await funded(("alice", "bob"))
    assert await drop_reason(gs, node("carol").encode()) == v.NODE_WITHOUT_CHANNEL
    assert await drop_reason(gs, node("alice", l1="carol").encode()) == v.NODE_NOT_PARTICIPANT
    forged = attrs.evolve(node("alice"), alias="mallory")
    assert await drop_reason(gs, forged.encode()) == v.BAD_SIGNATURE
    assert await drop_reason(gs, node("alice", timestamp=NOW + 601).encode()) == v.FUTURE_TIMESTAMP
    assert (await gs.accept(node("alice").encode(), now=NOW)).accepted
    assert await drop_reason(gs, node("alice").encode()) == v.DUPLICATE
    assert await drop_reason(gs, node("alice", alias="older").encode()) == v.STALE
    assert gs.node(node_key("alice").public_key) == node("alice")


async def test_updates_are_rate_limited_per_direction_with_a_burst() -> None:
    gs, _, (ann,) = await funded(("alice", "bob"))
    gs.config = attrs.evolve(gs.config, rate_interval=60.0, rate_burst=2)
    assert (await gs.accept(update(ann, "alice", timestamp=NOW + 1), now=NOW)).accepted
    assert (await gs.accept(update(ann, "alice", timestamp=NOW + 2), now=NOW)).accepted
    assert await drop_reason(gs, update(ann, "alice", timestamp=NOW + 3).encode()) == v.RATE_LIMITED
    # the other direction has its own bucket
    assert (await gs.accept(update(ann, "bob", timestamp=NOW + 1), now=NOW)).accepted
    # one token back after one interval, not before
    assert await drop_reason(gs, update(ann, "alice", timestamp=NOW + 4).encode(), now=NOW + 59) == v.RATE_LIMITED
    assert (await gs.accept(update(ann, "alice", timestamp=NOW + 5), now=NOW + 60)).accepted
    assert await drop_reason(gs, update(ann, "alice", timestamp=NOW + 6).encode(), now=NOW + 61) == v.RATE_LIMITED
    assert gs.update(ann.channel_id, direction_of(ann, "alice")).timestamp == NOW + 5  # type: ignore[union-attr]


async def test_node_announcements_are_rate_limited() -> None:
    gs, _, _ = await funded(("alice", "bob"))
    gs.config = attrs.evolve(gs.config, rate_burst=1)
    assert (await gs.accept(node("alice", timestamp=NOW), now=NOW)).accepted
    assert await drop_reason(gs, node("alice", timestamp=NOW + 1).encode(), now=NOW + 1) == v.RATE_LIMITED


async def test_an_update_before_its_announcement_is_held_then_released() -> None:
    l1 = FakeL1()
    gs = state(l1, pending_ttl=100, max_pending=2)
    ann = channel("alice", "bob")
    l1.fund(ann)
    upd = update(ann, "alice")
    held = await gs.accept(upd.encode(), now=NOW)
    assert held.held and not held.accepted and not held.dropped and gs.stats()["held"] == 1
    out = await gs.accept(ann.encode(), now=NOW + 10)
    assert out.accepted and out.released == (upd,)
    assert gs.update(ann.channel_id, upd.direction) == upd and gs.stats()["held"] == 0

    # bounded: a full holding area drops (never evicts), and a held update expires as unknown_channel
    a2, a3, a4 = channel("c", "d"), channel("e", "f"), channel("g", "h")
    assert (await gs.accept(update(a2, "c"), now=NOW)).held
    assert (await gs.accept(update(a3, "e"), now=NOW)).held
    assert await drop_reason(gs, update(a4, "g").encode()) == v.UNKNOWN_CHANNEL
    before = gs.dropped[v.UNKNOWN_CHANNEL]
    gs.prune(NOW + 101)
    assert gs.dropped[v.UNKNOWN_CHANNEL] == before + 2 and gs.stats()["held"] == 0


async def test_prune_by_age_and_by_closing() -> None:
    gs, _, (ab, cd, ef) = await funded(("alice", "bob"), ("carol", "dave"), ("erin", "frank"))
    day = 86400
    assert (await gs.accept(update(ab, "alice", timestamp=NOW + 10 * day), now=NOW + 10 * day)).accepted
    assert (await gs.accept(update(cd, "carol", timestamp=NOW + 1), now=NOW + 1)).accepted
    assert (await gs.accept(node("carol"), now=NOW + 1)).accepted
    assert gs.prune(NOW + 14 * day) == []
    pruned = gs.prune(NOW + 14 * day + 2)
    assert sorted(pruned) == sorted([cd.channel_id, ef.channel_id])  # ef never updated: counts from its arrival
    assert gs.channel(ab.channel_id) is not None and gs.num_channels == 1 and gs.num_nodes == 2
    assert gs.node(node_key("carol").public_key) is None, "a node without channels goes with them"
    assert gs.channel_closed(ab.channel_id) and not gs.channel_closed(ab.channel_id)
    assert (gs.num_nodes, gs.num_channels) == (0, 0)


async def test_sync_pages_cover_the_graph_in_order_and_keep_groups_whole() -> None:
    pairs = [(f"n{i}", f"m{i}") for i in range(7)]
    gs, _, anns = await funded(*pairs)
    for ann, (a, b) in zip(anns, pairs, strict=True):
        assert (await gs.accept(update(ann, a), now=NOW)).accepted
        assert (await gs.accept(update(ann, b), now=NOW)).accepted
        assert (await gs.accept(node(a), now=NOW)).accepted
    seen: list[bytes] = []
    cursor, pages = b"", 0
    while True:
        page = decode_sync_page(gs.sync_page(cursor, max_items=4).encode())
        assert 0 < len(page.messages) <= 4
        seen += page.messages
        pages += 1
        if page.next_cursor is None:
            break
        assert page.next_cursor > cursor
        cursor = page.next_cursor
    assert len(seen) == 7 * 3 + 7 and pages == 7 + 2  # a 3-message group per page, then 7 nodes by 4
    fresh = state(FakeL1())
    fresh.escrow_check = gs.escrow_check
    for data in seen:
        assert (await fresh.accept(data, now=NOW)).accepted, "sync order never puts a message before its channel"
    assert fresh.stats()["accepted"] == gs.stats()["accepted"]


async def test_our_own_invalid_message_is_a_local_error() -> None:
    gs, _, (ann,) = await funded(("alice", "bob"))
    with pytest.raises(LocalProtocolError):
        await gs.accept(attrs.evolve(update(ann, "alice"), fee_ppm=2**40), now=NOW)
    with pytest.raises(LocalProtocolError):
        await gs.accept(attrs.evolve(node("alice"), alias="x" * 33), now=NOW)


def test_config_is_checked() -> None:
    for bad in ({"rate_interval": 0}, {"rate_burst": 0}, {"prune_age": 0}, {"max_channels": v.MAX_GRAPH_CHANNELS + 1}):
        with pytest.raises(LocalProtocolError):
            v.GossipConfig(chain_id=CHAIN_ID, adjudicator=b"", **bad)  # type: ignore[arg-type]
    assert SCHEME.channel_id(params("a", "b")) == channel("a", "b").channel_id


async def test_the_devnet_ledger_as_escrow_check() -> None:
    from channels.chain.devnet.ledger import Devnet
    from channels.gossip.service import ledger_escrow_check

    with Devnet(clock=None) as dn:
        ann = channel("alice", "bob", capacity=700)
        alice = l1_key("alice")
        await dn.faucet(alice.address, 1000)
        check = ledger_escrow_check(dn)
        assert await check(ann.channel_id) is None  # never deposited: unknown to the L1
        await dn.deposit(alice, ann.channel_id, "native", 600)  # type: ignore[arg-type]
        escrow = await check(ann.channel_id)
        assert escrow is not None and escrow.open and dict(escrow.holdings) == {"native": 600}
        gs = state(check)  # type: ignore[arg-type]
        assert await drop_reason(gs, ann.encode()) == v.CAPACITY_EXCEEDS_ESCROW
        await dn.deposit(alice, ann.channel_id, "native", 100)  # type: ignore[arg-type]
        assert (await gs.accept(ann, now=NOW)).accepted


async def test_the_routing_graph_is_rebuilt_only_after_a_change() -> None:
    gs, _, (ann,) = await funded(("alice", "bob"))
    assert (await gs.accept(update(ann, "alice").encode(), now=NOW)).accepted
    first = gs.to_routing_graph()
    assert gs.to_routing_graph() is first  # a payer asks on every payment: no rebuild without a change
    assert (await gs.accept(update(ann, "bob").encode(), now=NOW)).accepted
    second = gs.to_routing_graph()
    assert second is not first and second.num_edges == 2
    gs.channel_closed(ann.channel_id)
    assert gs.to_routing_graph().num_channels == 0
