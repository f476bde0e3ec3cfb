"""Multi-part splits and a payment's rounds of attempts: retries route around what failed."""

from __future__ import annotations

import pytest

from channels.routing.attempts import MAX_ROUNDS, Payment
from channels.routing.errors import NoRoute, RoutingError
from channels.routing.graph import Graph
from channels.routing.mpp import MAX_PARTS, SplitParams, split
from channels.routing.pathfind import Query, RouteParams
from channels.routing.scorer import Scorer

from .graphs import chan, channel, key, random_graph


def names(nodes: list[bytes]) -> list[str]:
    return [k.rstrip(b"\0").decode() for k in nodes]


def fan(paths: int = 3, capacity: int = 400_000) -> Graph:
    """A pays Z over ``paths`` disjoint two-hop paths A-Mi-Z, none of which carries a million."""
    graph = Graph()
    for i in range(paths):
        channel(graph, "A", f"M{i}", 10_000_000)
        channel(graph, f"M{i}", "Z", capacity, fee_ppm=100 * (i + 1), base_fee=i)
    return graph


def test_a_payment_larger_than_any_route_is_split_and_the_parts_sum_exactly() -> None:
    graph = fan()
    assert Query(graph, key("A"), key("Z")).route(1_000_000) is None
    query = Query(graph, key("A"), key("Z"))
    parts = split(query, 1_000_000, SplitParams(min_part=1000))
    assert sum(p.amount for p in parts) == 1_000_000
    assert 3 <= len(parts) <= MAX_PARTS
    used: dict[tuple[bytes, int], int] = {}
    for part in parts:
        for hop in part.hops:
            used[(hop.channel_id, hop.direction)] = used.get((hop.channel_id, hop.direction), 0) + hop.amount
    assert {names(p.nodes)[1] for p in parts} == {"M0", "M1", "M2"}
    assert all(total <= 400_000 for (cid, _), total in used.items() if b"-Z" in cid)


def test_a_small_payment_is_one_part() -> None:
    (part,) = split(Query(fan(), key("A"), key("Z")), 10_000)
    assert part.amount == 10_000 and names(part.nodes) == ["A", "M0", "Z"]


def test_what_no_split_can_carry_fails_and_leaves_the_query_as_it_was() -> None:
    query = Query(fan(), key("A"), key("Z"))
    before = dict(query.known)
    with pytest.raises(NoRoute):
        split(query, 1_300_000, SplitParams(min_part=1000))
    assert query.known == before
    with pytest.raises(NoRoute, match="parts"):
        split(query, 1_000_000, SplitParams(min_part=1000, max_parts=2))


def test_split_params_are_checked() -> None:
    with pytest.raises(RoutingError):
        SplitParams(max_parts=MAX_PARTS + 1)
    with pytest.raises(RoutingError):
        SplitParams(min_probability=1.5)


def test_a_retry_avoids_the_hop_that_failed() -> None:
    graph = Graph()
    channel(graph, "A", "B")
    channel(graph, "A", "C")
    channel(graph, "B", "D", fee_ppm=10)
    channel(graph, "C", "D", fee_ppm=1000)
    payment = Payment(graph, key("A"), key("D"), 200_000, Scorer())
    (first,) = payment.plan(now=0)
    assert names(first.nodes) == ["A", "B", "D"]
    payment.failed(first, 1, now=0)  # B had not 200000 towards D
    assert payment.scorer.bounds((chan("B-D"), 0), 1_000_000, now=0) == (0, 199_999)
    assert payment.scorer.bounds((chan("A-B"), 0), 1_000_000, now=0) == (200_002, 1_000_000)  # with B's fee
    (second,) = payment.plan(now=1)
    assert names(second.nodes) == ["A", "C", "D"]
    payment.arrived(second, now=1)
    assert payment.done and payment.fee == second.fee == 200 and payment.rounds == 2 and payment.failures == 1


def test_a_payment_holds_arrived_parts_and_reroutes_only_the_failed_ones() -> None:
    payment = Payment(fan(), key("A"), key("Z"), 1_000_000, Scorer(), split_params=SplitParams(min_part=1000))
    parts = payment.plan(now=0)
    assert sum(p.amount for p in parts) == 1_000_000
    failed = parts[0]
    for part in parts[1:]:
        payment.arrived(part, now=0)
    payment.failed(failed, 1, now=0)
    assert not payment.done and payment.held_amount == 1_000_000 - failed.amount
    retried = payment.plan(now=1)
    assert sum(p.amount for p in retried) == failed.amount
    for part in retried:
        payment.arrived(part, now=1)
    assert payment.done and payment.fee == sum(p.fee for p in payment.held)
    with pytest.raises(RoutingError):
        payment.plan(now=2)  # nothing left to plan


def test_a_payment_gives_up_after_its_rounds() -> None:
    payment = Payment(fan(), key("A"), key("Z"), 10_000, Scorer(), max_rounds=2)
    for now in range(2):
        (part,) = payment.plan(now=now)
        payment.failed(part, 1, now=now)
    with pytest.raises(NoRoute, match="rounds"):
        payment.plan(now=3)
    with pytest.raises(RoutingError):
        Payment(fan(), key("A"), key("Z"), 10_000, Scorer(), max_rounds=MAX_ROUNDS + 1)


def test_the_fee_budget_is_for_the_whole_payment() -> None:
    payment = Payment(fan(), key("A"), key("Z"), 1_000_000, Scorer(), params=RouteParams(max_fee=50),
                      split_params=SplitParams(min_part=1000))
    with pytest.raises(NoRoute):
        payment.plan(now=0)
    generous = Payment(fan(), key("A"), key("Z"), 1_000_000, Scorer(), params=RouteParams(max_fee=1000),
                       split_params=SplitParams(min_part=1000))
    parts = generous.plan(now=0)
    assert sum(p.fee for p in parts) <= 1000 and sum(p.amount for p in parts) == 1_000_000


@pytest.mark.parametrize("seed", range(4))
def test_splits_on_random_graphs_sum_exactly(seed: int) -> None:
    graph = random_graph(seed)
    payer, payee = graph.node_keys[0], graph.node_keys[15]
    amount = 3_000_000
    try:
        parts = split(Query(graph, payer, payee), amount, SplitParams(min_part=10_000))
    except NoRoute:
        return
    assert sum(p.amount for p in parts) == amount
    for part in parts:
        assert part.hops[0].source == payer and part.hops[-1].target == payee
        assert part.fee == part.hops[0].amount - part.amount


def test_parts_respect_each_channels_maximum_not_only_its_liquidity() -> None:
    graph = Graph()
    channel(graph, "A", "B", 10_000_000, htlc_maximum=100_000)
    channel(graph, "B", "Z", 10_000_000)
    parts = split(Query(graph, key("A"), key("Z")), 450_000, SplitParams(min_part=1000))
    assert sum(p.amount for p in parts) == 450_000 and len(parts) >= 5
    assert all(p.hops[0].amount <= 100_000 for p in parts)


def test_a_payer_short_of_liquidity_fails_at_once() -> None:
    query = Query(fan(), key("A"), key("Z"), liquidity={(chan(f"A-M{i}"), 0): (1000, 1000) for i in range(3)})
    with pytest.raises(NoRoute, match="carry at most 3000"):
        split(query, 5000)
    assert sum(p.amount for p in split(query, 2400, SplitParams(min_part=100))) == 2400
