"""Multi-part payments: one payment hash, parts along several routes; the payee waits for all.

The split is a greedy approximation of a min-cost flow over the scorer's costs: it routes
the largest part one route may carry and, while the cheapest route for that part is less
likely than ``min_probability`` (or does not exist), halves the part; the last part allowed
takes any route that carries the rest. Each chosen part counts as in flight: later parts
see the liquidity it uses (its channels' bounds shrink by its amount), so they spread over
other channels, as the flow would, instead of piling onto one. The parts sum exactly to
the amount. Searches and parts are bounded.
"""

from __future__ import annotations

import attrs

from .errors import NoRoute, RoutingError
from .pathfind import Query, Route

MAX_PARTS = 16
"""Parts of one payment in flight at once at most."""
MAX_SEARCHES = 48
"""Route searches one split may run."""


@attrs.frozen
class SplitParams:
    """How finely a payment may be split."""

    max_parts: int = MAX_PARTS
    min_part: int = 10_000
    """The smallest part the split makes by halving (a remainder may be smaller)."""
    min_probability: float = 0.5
    """A part whose best route is less likely than this is halved, unless it is already the smallest."""

    def __attrs_post_init__(self) -> None:
        if not 1 <= self.max_parts <= MAX_PARTS:
            raise RoutingError(f"max_parts must be between 1 and {MAX_PARTS}, got {self.max_parts}")
        if self.min_part <= 0 or not 0.0 <= self.min_probability <= 1.0:
            raise RoutingError("min_part must be positive and min_probability between 0 and 1")


def split(query: Query, amount: int, params: SplitParams | None = None, *, max_parts: int | None = None,
          max_fee: int | None = None) -> list[Route]:
    """Parts summing exactly to ``amount``, each with its route; ``NoRoute`` if the parts cannot be found.

    The query's in-flight liquidity is updated with the parts chosen (so a caller sending
    them need not). ``max_parts`` and ``max_fee`` bound this split (what is left of a payment's
    budgets); they default to the params' parts and the query's fee limit.
    """
    params = params or SplitParams()
    if amount <= 0:
        raise RoutingError(f"the amount must be positive, got {amount}")
    parts_left = params.max_parts if max_parts is None else max_parts
    fee_left = query.params.max_fee if max_fee is None else max_fee
    largest, total = query.reach()
    if total < amount:  # the payer knows its own balances: the commonest hopeless case, answered at once
        raise NoRoute(f"the payer's channels out or the payee's channels in carry at most {total} of {amount}")
    if largest <= 0:
        raise NoRoute("the payer has no channel out, or the payee none in, that can carry a part")
    part = min(amount, largest)
    chosen: list[Route] = []
    remaining, searches = amount, 0
    try:
        while remaining > 0:
            if len(chosen) >= parts_left:
                raise NoRoute(f"{remaining} of {amount} left unrouted after {len(chosen)} parts")
            if searches >= MAX_SEARCHES:
                raise NoRoute(f"{remaining} of {amount} left unrouted after {searches} route searches")
            part = min(part, remaining)
            if 0 < remaining - part < params.min_part:  # no tail too small for the channels' minimums
                part = remaining if remaining < 2 * params.min_part else remaining - params.min_part
            searches += 1
            route = query.route(part, max_fee=fee_left)
            smallest = part <= params.min_part
            last = len(chosen) + 1 >= parts_left and part == remaining  # no part to spare: take any route
            if route is None or (route.probability < params.min_probability and not smallest and not last):
                if smallest:
                    raise NoRoute(f"no route carries a part of {part} ({remaining} of {amount} left)")
                part = max(params.min_part, part // 2)
                continue
            chosen.append(route)
            query.add_inflight(route)
            remaining -= part
            if fee_left is not None:
                fee_left -= route.fee
    except NoRoute:
        for route in chosen:
            query.add_inflight(route, sign=-1)
        raise
    return chosen
