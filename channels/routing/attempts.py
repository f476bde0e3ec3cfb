"""One payment's attempts: plan parts, learn from each outcome, retry on other routes.

A round plans parts for the amount neither held at the payee nor in flight; the caller
sends them and reports each outcome. A part that reached the payee is held there (the
payee waits for all parts, so its liquidity stays used); a part refused at a hop frees its
liquidity, and the scorer learns that the hop lacked the amount while the hops before it
had it, so the next round routes around it. The payment is done when the parts held sum
to the amount, and gives up after ``max_rounds`` rounds or when nothing more can be routed.

Pure: no clock (``now`` is passed in), no I/O; the caller does the sending.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from .errors import NoRoute, RoutingError
from .graph import Edge, EdgeKey, Graph, HintHop, hint_edges
from .mpp import SplitParams, split
from .pathfind import Query, Route, RouteParams
from .scorer import HopOutcome, Scorer

MAX_ROUNDS = 10
"""Rounds of attempts one payment makes before it gives up."""


class Payment:
    """The parts of one payment (one payment hash) and what each attempt taught the scorer."""

    def __init__(self, graph: Graph, source: bytes, target: bytes, amount: int, scorer: Scorer, *,
                 params: RouteParams | None = None, split_params: SplitParams | None = None,
                 hints: Sequence[Sequence[HintHop]] = (), extra_edges: Sequence[Edge] = (),
                 liquidity: Mapping[EdgeKey, tuple[int, int]] | None = None, max_rounds: int = MAX_ROUNDS) -> None:
        if amount <= 0:
            raise RoutingError(f"the amount must be positive, got {amount}")
        if not 1 <= max_rounds <= MAX_ROUNDS:
            raise RoutingError(f"max_rounds must be between 1 and {MAX_ROUNDS}, got {max_rounds}")
        self.graph, self.source, self.target, self.amount = graph, source, target, amount
        self.scorer = scorer
        self.params = params or RouteParams()
        self.split_params = split_params or SplitParams()
        self.hints, self.extra_edges, self.liquidity = hints, extra_edges, dict(liquidity or {})
        self.max_rounds = max_rounds
        self._private = {edge.key: edge.capacity for edge in (*extra_edges, *hint_edges(hints, target))}
        self.rounds = 0
        self.held: list[Route] = []
        self.in_flight: list[Route] = []
        self.failures = 0

    @property
    def held_amount(self) -> int:
        return sum(route.amount for route in self.held)

    @property
    def done(self) -> bool:
        return self.held_amount == self.amount

    @property
    def fee(self) -> int:
        return sum(route.fee for route in self.held)

    def _used(self, exclude: Route | None = None) -> dict[EdgeKey, int]:
        """What our own parts (held or in flight) use on each channel direction."""
        used: dict[EdgeKey, int] = {}
        for route in (*self.held, *self.in_flight):
            if route is exclude:
                continue
            for hop in route.hops:
                key = (hop.channel_id, hop.direction)
                used[key] = used.get(key, 0) + hop.amount
        return used

    def plan(self, now: float) -> list[Route]:
        """The parts of the next round, for what is neither held nor in flight; ``NoRoute`` when
        the payment must give up (out of rounds, parts or routes)."""
        unassigned = self.amount - self.held_amount - sum(route.amount for route in self.in_flight)
        if unassigned <= 0:
            raise RoutingError("every part of the payment is already held or in flight")
        if self.rounds >= self.max_rounds:
            raise NoRoute(f"gave up after {self.rounds} rounds of attempts ({self.failures} parts failed)")
        self.rounds += 1
        query = Query(self.graph, self.source, self.target, scorer=self.scorer, now=now, params=self.params,
                      extra_edges=self.extra_edges, hints=self.hints, liquidity=self.liquidity)
        for route in (*self.held, *self.in_flight):
            query.add_inflight(route)
        parts_left = self.split_params.max_parts - len(self.held) - len(self.in_flight)
        fee_left = None if self.params.max_fee is None else self.params.max_fee - self.fee - sum(
            route.fee for route in self.in_flight)
        if parts_left <= 0 or (fee_left is not None and fee_left < 0):
            raise NoRoute("no parts or fee budget left for the rest of the payment")
        parts = split(query, unassigned, self.split_params, max_parts=parts_left, max_fee=fee_left)
        self.in_flight.extend(parts)
        return parts

    def _outcomes(self, route: Route) -> list[HopOutcome]:
        """Each hop with what it had to have: this part plus our other parts on the same channel."""
        used = self._used(exclude=route)
        outcomes = []
        for hop in route.hops:
            key = (hop.channel_id, hop.direction)
            e = self.graph.edge_index.get(key)
            capacity = self.graph.edges[e].capacity if e is not None else self._private.get(key, hop.amount)
            outcomes.append((key, capacity, hop.amount + used.get(key, 0)))
        return outcomes

    def _take(self, route: Route) -> None:
        for i, flying in enumerate(self.in_flight):
            if flying is route:
                del self.in_flight[i]
                return
        raise RoutingError("this part is not in flight")

    def arrived(self, route: Route, now: float) -> None:
        """A part reached the payee, who holds it until all parts are there."""
        outcomes = self._outcomes(route)
        self._take(route)
        self.held.append(route)
        self.scorer.path_succeeded(outcomes, now)

    def failed(self, route: Route, hop: int, now: float) -> None:
        """A part was refused at ``route.hops[hop]`` for lack of liquidity; its amount is routed again."""
        if not 0 <= hop < len(route.hops):
            raise RoutingError(f"hop {hop} is not on a route of {len(route.hops)} hops")
        outcomes = self._outcomes(route)
        self._take(route)
        self.failures += 1
        self.scorer.path_failed(outcomes, hop, now)
