"""Pathfinding on the real Lightning graph: the figures of ``channels bench-route``, against the aims.

Beside them, measured in the same run: a plain heapq Dijkstra (fees only, stopping at the
payer) on the same pairs, the floor of any search in CPython here; and the share of
payments the drawn balances could carry at all (a max-flow, fees and per-part maximums
ignored), the ceiling of any router's success rate. Aims: single route p50 at most 20 ms,
multi-part p50 at most 500 ms, success at least min-cost-flow routing's (published 43-57%
on similar graphs and amounts; the aim is the top of that range).

    python bench/bench_route.py [--graph FILE] [--pairs 100] [--seed 1] [--no-feasibility]
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from heapq import heappop, heappush
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from channels.routing.graph import Graph  # noqa: E402
from channels.routing.loader import load_graph  # noqa: E402
from channels.routing.simulate import MaxFlow, Pair, draw, percentile, replay_payment, summarize  # noqa: E402

GRAPH = REPO.parent / "shared" / "data" / "ln-graph-2026-02-03.json.xz"
AIM_SINGLE_P50_MS = 20.0
AIM_MULTIPART_P50_MS = 500.0
AIM_SUCCESS_RATE = 0.57


def plain_dijkstra_ms(graph: Graph, pairs: list[Pair]) -> float:
    """p50 of a textbook heapq Dijkstra from the payee, weights base fee + ppm + 1, stopping at the payer."""
    adj = [[(u, terms[1] + terms[2] + 1) for u, terms in entries] for entries in graph.in_adj]
    times = []
    for pair in pairs:
        start = time.perf_counter()
        dist = [math.inf] * graph.num_nodes
        dist[pair.target] = 0
        heap = [(0, pair.target)]
        while heap:
            c, v = heappop(heap)
            if v == pair.source:
                break
            if c > dist[v]:
                continue
            for u, w in adj[v]:
                if c + w < dist[u]:
                    dist[u] = c + w
                    heappush(heap, (c + w, u))
        times.append((time.perf_counter() - start) * 1000)
    return round(percentile(times, 50), 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--graph", type=Path, default=GRAPH, help="listchannels-style JSON graph (.xz or not)")
    parser.add_argument("--pairs", type=int, default=100, help="payer/payee pairs")
    parser.add_argument("--seed", type=int, default=1, help="seed of balances, pairs and amounts")
    parser.add_argument("--no-feasibility", action="store_true", help="skip the max-flow ceiling (slow)")
    args = parser.parse_args()

    started = time.perf_counter()
    graph = load_graph(args.graph)
    load_s = time.perf_counter() - started
    balances, pairs = draw(graph, args.pairs, args.seed)
    started = time.perf_counter()
    outcomes = [replay_payment(graph, balances, pair, clock=time.perf_counter) for pair in pairs]
    replay_s = time.perf_counter() - started
    report = summarize(graph, outcomes)
    report.update(seed=args.seed, load_s=round(load_s, 3), replay_s=round(replay_s, 3),
                  plain_dijkstra_p50_ms=plain_dijkstra_ms(graph, pairs))

    bands: dict[str, list[tuple[bool, bool | None]]] = {}
    flow = None if args.no_feasibility else MaxFlow(graph, balances)
    for outcome in outcomes:
        pair = outcome.pair
        feasible = None if flow is None else flow.reaches(pair.source, pair.target, pair.amount)
        decade = int(math.log10(pair.amount))
        bands.setdefault(f"1e{decade}-1e{decade + 1}", []).append((outcome.succeeded, feasible))
    if flow is not None:
        feasible_all = [f for band in bands.values() for _, f in band]
        report["feasible_rate"] = round(sum(bool(f) for f in feasible_all) / len(feasible_all), 4)
        report["success_over_feasible"] = round(report["success_rate"] / max(report["feasible_rate"], 1e-9), 4)
    report["by_amount"] = {
        name: {"pairs": len(band), "success_rate": round(statistics.fmean(s for s, _ in band), 4),
               **({} if flow is None else {"feasible_rate": round(statistics.fmean(bool(f) for _, f in band), 4)})}
        for name, band in sorted(bands.items())}

    report.update(aim_single_p50_ms=AIM_SINGLE_P50_MS, aim_multipart_p50_ms=AIM_MULTIPART_P50_MS,
                  aim_success_rate=AIM_SUCCESS_RATE,
                  single_p50_ratio_to_aim=round(report["single_route_p50_ms"] / AIM_SINGLE_P50_MS, 3),
                  multipart_p50_ratio_to_aim=round(report["multipart_p50_ms"] / AIM_MULTIPART_P50_MS, 3),
                  success_ratio_to_aim=round(report["success_rate"] / AIM_SUCCESS_RATE, 3),
                  single_p50_ratio_to_plain_dijkstra=round(
                      report["single_route_p50_ms"] / max(report["plain_dijkstra_p50_ms"], 1e-9), 3))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
