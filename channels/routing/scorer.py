"""What a payer believes about the liquidity of channels it does not own, learned from attempts.

The prior: the liquidity available in one direction of a channel is uniform between 0 and
the capacity, so sending ``a`` over a channel of capacity ``c`` succeeds with probability
``(c + 1 - a) / (c + 1)``. Each attempt narrows it: a hop that forwarded ``a`` had at least
``a`` (a lower bound), the hop that failed had less (an upper bound). Within the bounds the
liquidity is still taken as uniform. Bounds decay back towards the prior with a half-life,
because liquidity moves with other people's payments.

The cost the pathfinder adds per hop is ``base_penalty`` plus
``(liquidity_penalty + amount * liquidity_penalty_ppm / 10^6) * -ln(probability)``, in
units of the amount (the same units as fees), so a route that is more likely to succeed
may cost a little more in fees. The model follows the idea of LDK's probabilistic scorer
and of Pickhardt and Richter's "Optimally reliable & cheap payment flows" (2021).

Pure and deterministic: time is a number the caller passes in (seconds), never read here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import attrs

from .graph import EdgeKey

MAX_LEARNED = 1 << 17
"""Channel directions with learned bounds; past it the least recently updated is forgotten."""


@attrs.frozen
class ScoringParams:
    """How much a payer pays (in units of the amount) to avoid an unlikely or long route."""

    base_penalty: int = 500
    """Per hop: prefers fewer hops between routes of equal fees and odds."""
    liquidity_penalty: int = 10_000
    """Per unit of -ln(success probability) of a hop."""
    liquidity_penalty_ppm: int = 3_000
    """Per unit of -ln(success probability) of a hop, in parts per million of the amount."""
    half_life: float = 6 * 3600.0
    """Seconds after which a learned bound has moved half way back to the prior."""


HopOutcome = tuple[EdgeKey, int, int]
"""(channel direction, its capacity, the amount it was asked to carry, our other parts on it included)."""


def success_probability(lo: int, hi: int, amount: int) -> float:
    """P(liquidity >= amount) with the liquidity uniform on [lo, hi]."""
    if amount <= lo:
        return 1.0
    if amount > hi:
        return 0.0
    return (hi + 1 - amount) / (hi + 1 - lo)


class Scorer:
    """Learned liquidity bounds per channel direction, with decay; no clock, no I/O."""

    def __init__(self, params: ScoringParams | None = None) -> None:
        self.params = params or ScoringParams()
        # key -> (lower bound, upper bound, capacity, time of the last update)
        self._learned: dict[EdgeKey, tuple[int, int, int, float]] = {}

    def __len__(self) -> int:
        return len(self._learned)

    def bounds(self, key: EdgeKey, capacity: int, now: float) -> tuple[int, int]:
        """The liquidity bounds believed at ``now``: the learned ones, decayed; the prior otherwise."""
        entry = self._learned.get(key)
        if entry is None or entry[2] != capacity:
            return 0, capacity
        return self._decayed(entry, now)

    def _decayed(self, entry: tuple[int, int, int, float], now: float) -> tuple[int, int]:
        lo, hi, capacity, updated = entry
        elapsed = now - updated
        if elapsed <= 0:
            return lo, hi
        factor = 0.5 ** (elapsed / self.params.half_life)
        return int(lo * factor), capacity - int((capacity - hi) * factor)

    def known(self, now: float) -> dict[EdgeKey, tuple[int, int]]:
        """Every direction whose bounds at ``now`` still differ from the prior: what a search needs."""
        out = {}
        for key, entry in self._learned.items():
            lo, hi = self._decayed(entry, now)
            if lo > 0 or hi < entry[2]:
                out[key] = (lo, hi)
        return out

    def probability(self, key: EdgeKey, capacity: int, amount: int, now: float) -> float:
        lo, hi = self.bounds(key, capacity, now)
        return success_probability(lo, hi, amount)

    def penalty(self, probability: float, amount: int) -> float:
        """The cost of one hop that succeeds with ``probability`` (infinite when it cannot)."""
        if probability <= 0.0:
            return math.inf
        p = self.params
        return p.base_penalty - (p.liquidity_penalty + amount * p.liquidity_penalty_ppm / 1e6) * math.log(probability)

    def _set(self, key: EdgeKey, lo: int, hi: int, capacity: int, now: float) -> None:
        self._learned.pop(key, None)
        self._learned[key] = (lo, hi, capacity, now)
        while len(self._learned) > MAX_LEARNED:
            del self._learned[next(iter(self._learned))]

    def _forwarded(self, key: EdgeKey, capacity: int, amount: int, now: float) -> None:
        lo, hi = self.bounds(key, capacity, now)
        if amount > hi:  # contradicts what we believed: the liquidity moved; start again from this fact
            hi = capacity
        self._set(key, max(lo, min(amount, capacity)), hi, capacity, now)

    def _refused(self, key: EdgeKey, capacity: int, amount: int, now: float) -> None:
        lo, hi = self.bounds(key, capacity, now)
        if amount <= lo:
            lo = 0
        self._set(key, lo, max(0, min(hi, amount - 1)), capacity, now)

    def path_failed(self, hops: Sequence[HopOutcome], failed: int, now: float) -> None:
        """An attempt got through ``hops[:failed]`` and was refused at ``hops[failed]`` for lack of liquidity."""
        for key, capacity, amount in hops[:failed]:
            self._forwarded(key, capacity, amount, now)
        key, capacity, amount = hops[failed]
        self._refused(key, capacity, amount, now)

    def path_succeeded(self, hops: Sequence[HopOutcome], now: float) -> None:
        """An attempt reached the payee: every hop had the amount."""
        for key, capacity, amount in hops:
            self._forwarded(key, capacity, amount, now)

    def prune(self, now: float) -> None:
        """Forget what has decayed back to the prior."""
        for key, entry in list(self._learned.items()):
            lo, hi = self._decayed(entry, now)
            if lo == 0 and hi == entry[2]:
                del self._learned[key]
