"""Single routes on small hand-built graphs, and the A* search against a plain Dijkstra."""

from __future__ import annotations

import itertools
import json
import math
import random
from heapq import heappop, heappush

import pytest

from channels.routing.errors import NoRoute, RoutingError, UnknownNode
from channels.routing.graph import Edge, Graph, HintHop
from channels.routing.pathfind import MAX_HOPS, Query, RouteParams, candidate_routes, find_route
from channels.routing.scorer import Scorer, ScoringParams

from .graphs import chan, channel, key, random_graph


def names(route_nodes: list[bytes]) -> list[str]:
    return [k.rstrip(b"\0").decode() for k in route_nodes]


def diamond(**b_terms: object) -> Graph:
    """A-B-D and A-C-D; C charges 1000 ppm, B whatever the test says (default 10 ppm)."""
    graph = Graph()
    channel(graph, "A", "B")
    channel(graph, "A", "C")
    channel(graph, "B", "D", **{"fee_ppm": 10, **b_terms})  # type: ignore[arg-type]
    channel(graph, "C", "D", fee_ppm=1000)
    return graph


def test_the_cheapest_route_is_chosen() -> None:
    route = find_route(diamond(), key("A"), key("D"), 100_000)
    assert names(route.nodes) == ["A", "B", "D"]
    assert route.fee == 1 and route.amount == 100_000
    assert route.cost == pytest.approx(route.fee_cost + route.risk_cost + route.penalty_cost)
    dearer = find_route(diamond(fee_ppm=5000), key("A"), key("D"), 100_000)
    assert names(dearer.nodes) == ["A", "C", "D"] and dearer.fee == 100


def test_fees_and_expiries_are_computed_backwards_exactly() -> None:
    graph = Graph()
    channel(graph, "A", "B", expiry_delta=7)
    channel(graph, "B", "C", base_fee=10, fee_ppm=1000, expiry_delta=40)
    channel(graph, "C", "D", base_fee=5, fee_ppm=20_000, expiry_delta=144)
    route = find_route(graph, key("A"), key("D"), 100_000, params=RouteParams(final_expiry_delta=18))
    # C forwards 100000 and keeps 5 + 2000; B forwards 102005 and keeps 10 + 102; A's own hop is free.
    assert [(h.amount, h.fee) for h in route.hops] == [(102_117, 0), (102_005, 112), (100_000, 2005)]
    assert route.fee == 2117
    # the payee's lock expires after 18; C adds its 144, B its 40; A's own delta is not charged
    assert [h.expiry for h in route.hops] == [18 + 144 + 40, 18 + 144, 18]
    assert route.expiry == 202


@pytest.mark.parametrize("terms", [dict(enabled=False), dict(htlc_maximum=99_999), dict(htlc_minimum=100_001)])
def test_disabled_and_unfit_edges_are_avoided(terms: dict[str, object]) -> None:
    route = find_route(diamond(**terms), key("A"), key("D"), 100_000)
    assert names(route.nodes) == ["A", "C", "D"]


def test_too_small_capacity_is_avoided_and_no_route_is_typed() -> None:
    graph = diamond(**{"capacity": 50_000})
    assert names(find_route(graph, key("A"), key("D"), 60_000).nodes) == ["A", "C", "D"]
    with pytest.raises(NoRoute):
        find_route(graph, key("A"), key("D"), 2_000_000)


def test_the_fee_carried_counts_against_the_maximum() -> None:
    graph = Graph()
    channel(graph, "A", "B")
    channel(graph, "B", "C", htlc_maximum=100_050)  # carries the amount plus C's fee only if that is at most 50
    channel(graph, "C", "D", fee_ppm=1000)
    with pytest.raises(NoRoute):
        find_route(graph, key("A"), key("D"), 100_000)
    assert find_route(graph, key("A"), key("D"), 40_000).fee == 40


def test_hop_limit() -> None:
    graph = Graph()
    chain = ["A", "B", "C", "D", "E", "F"]
    for a, b in itertools.pairwise(chain):
        channel(graph, a, b)
    channel(graph, "A", "X")
    channel(graph, "X", "F", name="shortcut", base_fee=5000)  # dearer than four more hops' base penalties
    assert len(find_route(graph, key("A"), key("F"), 1000).hops) == 5
    limited = find_route(graph, key("A"), key("F"), 1000, params=RouteParams(max_hops=4))
    assert names(limited.nodes) == ["A", "X", "F"] and limited.fee == 5000
    graph.set_enabled((chan("shortcut"), 0), False)
    with pytest.raises(NoRoute):
        find_route(graph, key("A"), key("F"), 1000, params=RouteParams(max_hops=4))
    with pytest.raises(RoutingError):
        RouteParams(max_hops=MAX_HOPS + 1)


def test_total_expiry_and_fee_limits() -> None:
    graph = diamond(expiry_delta=1000)
    assert names(find_route(graph, key("A"), key("D"), 1000).nodes) == ["A", "B", "D"]
    short = find_route(graph, key("A"), key("D"), 1000, params=RouteParams(max_total_expiry=500))
    assert names(short.nodes) == ["A", "C", "D"]
    with pytest.raises(NoRoute):
        find_route(diamond(), key("A"), key("D"), 1_000_000, params=RouteParams(max_fee=5))


def test_route_hints_reach_a_private_payee() -> None:
    graph = diamond()
    hint = [HintHop(node=key("D"), channel_id=b"private", base_fee=3, fee_ppm=100, expiry_delta=20)]
    with pytest.raises(UnknownNode):
        find_route(graph, key("A"), key("P"), 10_000)
    route = find_route(graph, key("A"), key("P"), 10_000, hints=[hint])
    assert names(route.nodes) == ["A", "B", "D", "P"]
    assert route.hops[-1].channel_id == b"private" and route.hops[-1].fee == 3 + 1
    assert route.hops[-2].expiry == 18 + 20
    assert graph.num_nodes == 4  # the hint did not change the graph


def test_a_hint_may_be_cheaper_than_the_graph() -> None:
    graph = diamond(fee_ppm=5000)
    hint = [HintHop(node=key("A"), channel_id=b"direct", fee_ppm=0)]
    assert names(find_route(graph, key("A"), key("D"), 10_000).nodes) == ["A", "C", "D"]
    assert names(find_route(graph, key("A"), key("D"), 10_000, hints=[hint]).nodes) == ["A", "D"]


def test_leaves_pay_and_are_paid_but_never_forward() -> None:
    graph = diamond()
    channel(graph, "L", "A")  # L and M have one neighbour each
    channel(graph, "D", "M")
    route = find_route(graph, key("L"), key("M"), 1000)
    assert names(route.nodes) == ["L", "A", "B", "D", "M"]
    assert names(find_route(graph, key("A"), key("D"), 1000).nodes) == ["A", "B", "D"]


def test_bad_requests() -> None:
    graph = diamond()
    with pytest.raises(RoutingError, match="same node"):
        find_route(graph, key("A"), key("A"), 1000)
    with pytest.raises(RoutingError, match="positive"):
        find_route(graph, key("A"), key("D"), 0)
    with pytest.raises(UnknownNode):
        find_route(graph, key("Z"), key("D"), 1000)
    with pytest.raises(RoutingError):
        graph.add_edge(Edge(channel_id=b"x", direction=0, source=key("A"), target=key("A"), capacity=5))


def test_avoid_and_known_liquidity() -> None:
    graph = diamond()
    ab = (chan("A-B"), 0)
    assert names(find_route(graph, key("A"), key("D"), 1000, avoid=[ab]).nodes) == ["A", "C", "D"]
    # the payer knows its channel to B holds only 500
    assert names(find_route(graph, key("A"), key("D"), 1000, liquidity={ab: (500, 500)}).nodes) == ["A", "C", "D"]
    assert names(find_route(graph, key("A"), key("D"), 400, liquidity={ab: (500, 500)}).nodes) == ["A", "B", "D"]


def test_candidates_are_ordered_and_explain_themselves() -> None:
    routes = candidate_routes(diamond(), key("A"), key("D"), 100_000, count=3)
    assert [names(r.nodes) for r in routes] == [["A", "B", "D"], ["A", "C", "D"]]
    assert routes[0].cost <= routes[1].cost
    shown = json.loads(json.dumps(routes[0].to_json()))
    assert set(shown["cost_parts"]) == {"fee", "expiry_risk", "probability_penalty"}
    assert shown["nodes"][0] == key("A").hex() and len(shown["hops"]) == 2


def reference_cost(query: Query, amount: int) -> float:
    """A textbook backward Dijkstra with the same costs and limits, over every enabled edge."""
    view = query.view
    graph = view.graph
    scoring, params = query.scoring, query.params
    s, t = query.source, query.target
    dist = {t: 0.0}
    label = {t: (amount, params.final_expiry_delta, 0)}
    heap = [(0.0, t)]
    done = set()
    while heap:
        c, v = heappop(heap)
        if v in done:
            continue
        done.add(v)
        if v == s:
            return c
        a, x, h = label[v]
        if h + 1 > params.max_hops:
            continue
        for e, edge in enumerate(graph.edges):
            if graph.dst[e] != v or not edge.enabled or not edge.htlc_minimum <= a <= edge.largest:
                continue
            u = graph.src[e]
            lo, hi = query.bounds(e)
            if a > hi:
                continue
            p = 1.0 if a <= lo else (hi + 1 - a) / (hi + 1 - lo)
            penalty = scoring.base_penalty - (scoring.liquidity_penalty + a * scoring.liquidity_penalty_ppm / 1e6) \
                * math.log(p)
            fee = 0 if u == s else edge.fee(a)
            risk = 0.0 if u == s else a * edge.expiry_delta * params.expiry_risk_ppb / 1e9
            y = x if u == s else x + edge.expiry_delta
            cost = c + fee + risk + penalty
            if y <= params.max_total_expiry and cost < dist.get(u, math.inf) and u not in done:
                dist[u] = cost
                label[u] = (a + fee, y, h + 1)
                heappush(heap, (cost, u))
    return math.inf


@pytest.mark.parametrize("seed", range(12))
def test_a_star_finds_what_dijkstra_finds(seed: int) -> None:
    graph = random_graph(seed)
    rng = random.Random(seed)
    scorer = Scorer(ScoringParams(liquidity_penalty_ppm=rng.choice([0, 3000, 50_000])))
    for _ in range(5):  # some learned bounds, as after a few attempts
        e = rng.randrange(graph.num_edges)
        edge = graph.edges[e]
        scorer.path_failed([(edge.key, edge.capacity, rng.randint(1, edge.capacity))], 0, now=0.0)
    found = 0
    for _ in range(15):
        a, b = rng.sample(graph.node_keys, 2)
        amount = rng.choice([1000, 50_000, 400_000, 3_000_000])
        query = Query(graph, a, b, scorer=scorer, params=RouteParams(max_hops=rng.choice([3, 20])))
        route = query.route(amount)
        expected = reference_cost(query, amount)
        if route is None:
            assert expected == math.inf
            continue
        found += 1
        assert route.cost == pytest.approx(expected, rel=1e-9)
    assert found > 5


def test_explain_names_the_winner_and_the_runner_up() -> None:
    from channels.routing.pathfind import explain

    routes = candidate_routes(diamond(), key("A"), key("D"), 100_000, count=2)
    shown = explain(routes)
    assert shown["chosen"] == 0 and len(shown["candidates"]) == 2
    assert "lowest cost" in shown["why"] and "next candidate" in shown["why"]
    with pytest.raises(RoutingError):
        explain([])


def test_graph_updates_replace_policies_and_bad_edges_change_nothing() -> None:
    graph = diamond()
    assert names(find_route(graph, key("A"), key("D"), 100_000).nodes) == ["A", "B", "D"]
    e = graph.edge_index[(chan("B-D"), 0)]
    graph.add_edge(Edge(channel_id=chan("B-D"), direction=0, source=key("B"), target=key("D"), capacity=1_000_000,
                        fee_ppm=9000))  # a newer channel update
    assert graph.edge_index[(chan("B-D"), 0)] == e and graph.num_edges == 8
    assert names(find_route(graph, key("A"), key("D"), 100_000).nodes) == ["A", "C", "D"]
    before = (graph.num_nodes, list(graph.edges))
    with pytest.raises(RoutingError, match="other nodes"):
        graph.add_edge(Edge(channel_id=chan("B-D"), direction=0, source=key("X"), target=key("Y"), capacity=5))
    with pytest.raises(RoutingError, match="capacity"):
        graph.add_edge(Edge(channel_id=b"new", direction=0, source=key("X"), target=key("Y"), capacity=0))
    assert (graph.num_nodes, list(graph.edges)) == before


def test_both_adjacencies_follow_enabled_flags() -> None:
    graph = diamond()
    e = graph.edge_index[(chan("B-D"), 0)]
    b, d = graph.index(key("B")), graph.index(key("D"))

    def listed() -> tuple[bool, bool]:
        return (any(t[0] == e for _, t in graph.in_adj[d]), any(t[0] == e for _, t in graph.out_adj[b]))

    assert listed() == (True, True)
    graph.set_enabled((chan("B-D"), 0), False)
    assert listed() == (False, False)
    graph.set_enabled((chan("B-D"), 0), True)
    assert listed() == (True, True)
    with pytest.raises(RoutingError, match="unknown channel"):
        graph.set_enabled((b"nope", 0), True)
