"""The benchmark's replay: drawn balances, attempts with retries, deterministic for a seed."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from channels.routing.errors import RoutingError
from channels.routing.graph import Graph
from channels.routing.loader import load_graph
from channels.routing.simulate import (
    MAX_PAIRS,
    MaxFlow,
    Pair,
    Replay,
    draw,
    draw_balances,
    draw_pairs,
    percentile,
    replay_payment,
    run_benchmark,
)

from .graphs import channel, key, random_graph

KEYS = {"single_route_p50_ms", "single_route_p99_ms", "multipart_p50_ms", "multipart_p99_ms", "success_rate",
        "mean_fee_ppm"}
REAL = Path(__file__).resolve().parents[3] / "shared" / "data" / "ln-graph-2026-02-03.json.xz"


def test_balances_split_each_channel_between_its_directions() -> None:
    graph = random_graph(1)
    balances = draw_balances(graph, random.Random(5))
    for e, edge in enumerate(graph.edges):
        other = graph.edge_index[(edge.channel_id, 1 - edge.direction)]
        assert 0 <= balances[e] <= edge.capacity
        assert balances[e] + balances[other] == edge.capacity
    assert len(set(balances)) > graph.num_edges // 2


def test_pairs_join_a_payer_and_a_payee_with_amounts_in_range() -> None:
    graph = random_graph(2)
    pairs = draw_pairs(graph, random.Random(1), 200, 1000, 10**6)
    assert all(p.source != p.target and 1000 <= p.amount <= 10**6 for p in pairs)
    assert min(p.amount for p in pairs) < 10_000 < 100_000 < max(p.amount for p in pairs)  # log-uniform
    with pytest.raises(RoutingError):
        draw_pairs(graph, random.Random(1), MAX_PAIRS + 1)
    with pytest.raises(RoutingError):
        draw_pairs(graph, random.Random(1), 5, 10, 5)


def test_the_replay_is_deterministic_for_a_seed() -> None:
    graph = random_graph(3, nodes=40, channels=90)
    first = run_benchmark(graph, 40, seed=7, amount_min=10_000, amount_max=5_000_000)
    again = run_benchmark(graph, 40, seed=7, amount_min=10_000, amount_max=5_000_000)
    other = run_benchmark(graph, 40, seed=8, amount_min=10_000, amount_max=5_000_000)
    assert first == again
    assert first != other
    assert KEYS <= set(first)
    assert 0.3 <= first["success_rate"] <= 1.0 and first["mean_fee_ppm"] > 0
    assert first["single_route_p50_ms"] == 0.0  # no clock given: the outcomes alone


def test_a_part_locks_liquidity_hop_by_hop_and_failures_release_it() -> None:
    graph = Graph()
    channel(graph, "A", "B", 1000)
    channel(graph, "B", "C", 1000)
    balances = [0] * graph.num_edges
    ab, bc = graph.edge_index[(b"chan:A-B", 0)], graph.edge_index[(b"chan:B-C", 0)]
    balances[ab], balances[bc] = 900, 500
    from channels.routing.pathfind import find_route

    replay = Replay(graph, balances)
    route = find_route(graph, key("A"), key("C"), 400)
    assert replay.send(route) is None
    assert replay.send(route) == 1  # B-C has 100 left: refused at the second hop
    assert replay.locked == {ab: 400, bc: 400}  # the refused part took nothing
    replay.release()
    assert replay.locked == {}


def test_retries_find_the_liquidity_and_the_fee_is_reported() -> None:
    graph = Graph()
    for mid in ("M0", "M1", "M2"):
        channel(graph, "A", mid, 10_000_000)
        channel(graph, mid, "Z", 1_000_000, fee_ppm=1000)
    balances = draw_balances(graph, random.Random(0))
    for e, edge in enumerate(graph.edges):  # only M2 can forward to Z; the payer does not know it
        if edge.target == key("Z"):
            balances[e] = 900_000 if edge.source == key("M2") else 0
    outcome = replay_payment(graph, balances, Pair(graph.index(key("A")), graph.index(key("Z")), 300_000))
    assert outcome.succeeded and outcome.rounds >= 2 and outcome.fee == 300
    hopeless = replay_payment(graph, balances, Pair(graph.index(key("A")), graph.index(key("Z")), 950_000))
    assert not hopeless.succeeded and hopeless.fee == 0


def test_max_flow_is_the_ceiling() -> None:
    graph = Graph()
    for mid in ("M0", "M1"):
        channel(graph, "A", mid, 1000)
        channel(graph, mid, "Z", 1000)
    balances = [600] * graph.num_edges
    flow = MaxFlow(graph, balances)
    a, z = graph.index(key("A")), graph.index(key("Z"))
    assert flow.reaches(a, z, 1200) and not flow.reaches(a, z, 1201)


def test_percentile_is_a_value_that_occurred() -> None:
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0
    assert percentile([float(i) for i in range(1, 101)], 99) == 99.0
    assert percentile([], 50) == 0.0


@pytest.mark.skipif(not REAL.exists(), reason="the shared Lightning graph is not on this machine")
def test_a_few_payments_on_the_shared_lightning_graph() -> None:
    """The one test that reads the real graph (skipped where it is absent); a few seconds."""
    graph = load_graph(REAL)
    assert (graph.num_nodes, graph.num_channels, graph.num_edges) == (17_324, 50_808, 101_616)
    assert 0.3 < sum(not edge.enabled for edge in graph.edges) / graph.num_edges < 0.4
    balances, pairs = draw(graph, 6, seed=3)
    outcomes = [replay_payment(graph, balances, pair) for pair in pairs]
    assert any(o.succeeded for o in outcomes)
    for outcome in outcomes:
        if outcome.succeeded:
            assert 0 <= outcome.fee < outcome.pair.amount
