"""The routing benchmark's replay: payments tried against channel balances we drew ourselves.

Each channel's capacity is split at a uniform random point between its two directions (a
direction present alone gets a uniform share), which is also the payer's prior, so the
scorer's model is right on average and wrong for every single channel, as in life. Pairs
are a payer with an enabled channel out and a payee with one in; amounts are drawn
log-uniformly between ``amount_min`` and ``amount_max``. Every payment starts from the
drawn balances with a fresh scorer (only the payer's own balances are known to it) and is
tried in rounds (``attempts.Payment``): a part goes through when every hop has the amount
(minus what the payment's own parts already hold there), else it fails at the first hop
that lacks it and the payer retries. Nothing here reads a clock except ``clock`` for the
timings, so the outcomes are a function of the graph and the seed.
"""

from __future__ import annotations

import math
import random
import statistics
from collections import deque
from collections.abc import Callable
from typing import Any

import attrs

from .attempts import Payment
from .errors import NoRoute, RoutingError
from .graph import EdgeKey, Graph
from .mpp import SplitParams
from .pathfind import Query, Route, RouteParams
from .scorer import Scorer, ScoringParams

MAX_PAIRS = 100_000
"""Pairs one benchmark run may replay."""
AMOUNT_MIN = 1_000_000
"""Smallest amount drawn: 1,000 satoshis on a Lightning graph (one unit is one millisatoshi)."""
AMOUNT_MAX = 1_000_000_000
"""Largest amount drawn: 1,000,000 satoshis on a Lightning graph. The range is the one of the
published estimates of which payments the Lightning graph can carry at all."""


@attrs.frozen
class Pair:
    source: int
    target: int
    amount: int


@attrs.frozen
class Outcome:
    """How one payment went in the replay."""

    pair: Pair
    succeeded: bool
    fee: int
    rounds: int
    parts: int
    single_route_ms: float
    multipart_ms: float
    multipart_parts: int


def draw_balances(graph: Graph, rng: random.Random) -> list[int]:
    """For every edge id, the liquidity its source side holds: the two directions of a channel
    share its capacity at a uniform random point."""
    balances = [-1] * graph.num_edges
    for e, edge in enumerate(graph.edges):
        if balances[e] >= 0:
            continue
        balances[e] = rng.randint(0, edge.capacity)
        other = graph.edge_index.get((edge.channel_id, 1 - edge.direction))
        if other is not None:
            balances[other] = max(0, graph.edges[other].capacity - balances[e])
    return balances


def draw_pairs(graph: Graph, rng: random.Random, count: int, amount_min: int = AMOUNT_MIN,
               amount_max: int = AMOUNT_MAX) -> list[Pair]:
    if not 1 <= count <= MAX_PAIRS:
        raise RoutingError(f"the number of pairs must be between 1 and {MAX_PAIRS}, got {count}")
    if not 0 < amount_min <= amount_max:
        raise RoutingError("amounts must satisfy 0 < amount_min <= amount_max")
    payers = [v for v in range(graph.num_nodes) if any(graph.edges[e].enabled for e in graph.out_edges[v])]
    payees = [v for v in range(graph.num_nodes) if graph.in_adj[v]]
    if not payers or not payees or len(set(payers) | set(payees)) < 2:
        raise RoutingError("the graph has no two nodes joined by an enabled channel")
    pairs: list[Pair] = []
    while len(pairs) < count:
        source, target = rng.choice(payers), rng.choice(payees)
        if source == target:
            continue
        amount = int(math.exp(rng.uniform(math.log(amount_min), math.log(amount_max))))
        pairs.append(Pair(source, target, max(amount_min, min(amount_max, amount))))
    return pairs


def draw(graph: Graph, pairs: int, seed: int, amount_min: int = AMOUNT_MIN,
         amount_max: int = AMOUNT_MAX) -> tuple[list[int], list[Pair]]:
    """The balances and the pairs of a benchmark run: a function of the graph and the seed."""
    rng = random.Random(seed)
    balances = draw_balances(graph, rng)
    return balances, draw_pairs(graph, rng, pairs, amount_min, amount_max)


class Replay:
    """Drawn balances and the locks of the payment being replayed."""

    def __init__(self, graph: Graph, balances: list[int]) -> None:
        self.graph = graph
        self.balances = balances
        self.locked: dict[int, int] = {}

    def send(self, route: Route) -> int | None:
        """Lock a part hop by hop: ``None`` if it reached the payee, else the index of the hop that refused."""
        taken: list[tuple[int, int]] = []
        for i, hop in enumerate(route.hops):
            e = self.graph.edge_index[(hop.channel_id, hop.direction)]
            if self.balances[e] - self.locked.get(e, 0) < hop.amount:
                for f, amount in taken:
                    self.locked[f] -= amount
                return i
            self.locked[e] = self.locked.get(e, 0) + hop.amount
            taken.append((e, hop.amount))
        return None

    def release(self) -> None:
        self.locked.clear()


def local_liquidity(graph: Graph, balances: list[int], node: int) -> dict[EdgeKey, tuple[int, int]]:
    """What a payer knows exactly: the balances of its own channels."""
    return {graph.edges[e].key: (balances[e], balances[e]) for e in graph.out_edges[node]}


def replay_payment(graph: Graph, balances: list[int], pair: Pair, *, scoring: ScoringParams | None = None,
                   params: RouteParams | None = None, split_params: SplitParams | None = None,
                   clock: Callable[[], float] | None = None) -> Outcome:
    """One payment of the benchmark: time a single-route search and a multi-part plan, then try
    the payment in rounds against the balances."""
    source, target = graph.node_keys[pair.source], graph.node_keys[pair.target]
    liquidity = local_liquidity(graph, balances, pair.source)
    tick = clock or (lambda: 0.0)

    started = tick()
    Query(graph, source, target, scorer=Scorer(scoring), params=params, liquidity=liquidity).route(pair.amount)
    single_ms = (tick() - started) * 1000

    payment = Payment(graph, source, target, pair.amount, Scorer(scoring), params=params,
                      split_params=split_params, liquidity=liquidity)
    replay = Replay(graph, balances)
    multipart_ms, multipart_parts, now = 0.0, 0, 0.0
    while not payment.done:
        first = payment.rounds == 0
        started = tick()
        try:
            parts = payment.plan(now)
        except NoRoute:
            if first:  # concluding that nothing can be routed is planning time too
                multipart_ms = (tick() - started) * 1000
            break
        if first:
            multipart_ms, multipart_parts = (tick() - started) * 1000, len(parts)
        for route in parts:
            refused = replay.send(route)
            if refused is None:
                payment.arrived(route, now)
            else:
                payment.failed(route, refused, now)
        now += 1.0
    replay.release()
    return Outcome(pair=pair, succeeded=payment.done, fee=payment.fee if payment.done else 0, rounds=payment.rounds,
                   parts=len(payment.held), single_route_ms=single_ms, multipart_ms=multipart_ms,
                   multipart_parts=multipart_parts)


class MaxFlow:
    """The ceiling no router can beat: can the drawn balances carry the amount at all?

    A max-flow over the enabled channel directions with their drawn balances as capacities
    (fees and per-part maximums ignored, so it is an upper bound), by shortest augmenting
    paths, stopped as soon as the amount is reached. Used by ``bench/bench_route.py`` to
    show the success rate beside what was possible.
    """

    def __init__(self, graph: Graph, balances: list[int]) -> None:
        self.n = graph.num_nodes
        self.to: list[int] = []
        self.cap: list[int] = []
        self.arcs: list[list[int]] = [[] for _ in range(self.n)]
        for e, edge in enumerate(graph.edges):
            if edge.enabled and balances[e] > 0:
                u, v = graph.src[e], graph.dst[e]
                self.arcs[u].append(len(self.to))
                self.to.append(v)
                self.cap.append(balances[e])
                self.arcs[v].append(len(self.to))
                self.to.append(u)
                self.cap.append(0)

    def reaches(self, source: int, target: int, amount: int) -> bool:
        cap, to, arcs = list(self.cap), self.to, self.arcs
        flow = 0
        while flow < amount:
            prev = [-1] * self.n
            prev[source] = -2
            queue = deque([source])
            while queue and prev[target] == -1:
                u = queue.popleft()
                for arc in arcs[u]:
                    if cap[arc] > 0 and prev[to[arc]] == -1:
                        prev[to[arc]] = arc
                        queue.append(to[arc])
            if prev[target] == -1:
                return False
            push, v = amount - flow, target
            while v != source:
                arc = prev[v]
                push = min(push, cap[arc])
                v = to[arc ^ 1]
            v = target
            while v != source:
                arc = prev[v]
                cap[arc] -= push
                cap[arc ^ 1] += push
                v = to[arc ^ 1]
            flow += push
        return True


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100), nearest rank: small samples give a value that occurred."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))]


def summarize(graph: Graph, outcomes: list[Outcome]) -> dict[str, Any]:
    """The benchmark's JSON figures (the keys are a contract)."""
    succeeded = [o for o in outcomes if o.succeeded]
    single = [o.single_route_ms for o in outcomes]
    multi = [o.multipart_ms for o in outcomes]
    fee_ppm = [o.fee * 1_000_000 / o.pair.amount for o in succeeded]
    split = [o for o in outcomes if o.multipart_parts > 1]
    return {
        "single_route_p50_ms": round(percentile(single, 50), 3),
        "single_route_p99_ms": round(percentile(single, 99), 3),
        "multipart_p50_ms": round(percentile(multi, 50), 3),
        "multipart_p99_ms": round(percentile(multi, 99), 3),
        "success_rate": round(len(succeeded) / len(outcomes), 4) if outcomes else 0.0,
        "mean_fee_ppm": round(statistics.fmean(fee_ppm), 3) if fee_ppm else 0.0,
        "pairs": len(outcomes),
        "nodes": graph.num_nodes,
        "channels": graph.num_channels,
        "mean_rounds": round(statistics.fmean(o.rounds for o in outcomes), 3) if outcomes else 0.0,
        "split_payments": len(split),
        "split_plan_p50_ms": round(percentile([o.multipart_ms for o in split], 50), 3),
    }


def run_benchmark(graph: Graph, pairs: int, seed: int, *, amount_min: int = AMOUNT_MIN,
                  amount_max: int = AMOUNT_MAX, scoring: ScoringParams | None = None,
                  params: RouteParams | None = None, split_params: SplitParams | None = None,
                  clock: Callable[[], float] | None = None) -> dict[str, Any]:
    """Draw balances and pairs from ``seed``, replay every payment, summarize."""
    balances, drawn = draw(graph, pairs, seed, amount_min, amount_max)
    outcomes = [replay_payment(graph, balances, pair, scoring=scoring, params=params, split_params=split_params,
                               clock=clock) for pair in drawn]
    report = summarize(graph, outcomes)
    report.update(seed=seed, amount_min=amount_min, amount_max=amount_max)
    return report
