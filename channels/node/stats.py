"""Counters the node keeps about itself, for monitoring (``node.stats``).

Plain Python on purpose: the node library imports no exporter. The daemon's Prometheus
endpoint (``channels.frontend.metrics``) reads these on the trio thread at scrape time,
with the gauges it computes from the node's state. Everything here has a fixed size:
latencies go into pre-set buckets, and labels that come from text (reject reasons, L1
error codes) are normalised and capped, so a peer cannot grow them without bound.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable, Mapping

from ..core.channel import Channel
from ..core.ids import ChannelId

# Upper bounds (seconds) of the payment latency buckets; the last bucket is +Inf.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
MAX_LABELS = 64  # label sets per counter; further ones count as "other" (peer-chosen text stays bounded)
MAX_LABEL_CHARS = 80
OTHER = "other"

_NUMBERS = re.compile(r"\b(?:0x)?[0-9a-fA-F]*[0-9][0-9a-fA-F]*\b")


def reason_label(text: str) -> str:
    """A reject reason as a bounded label: the text before the first ``:`` (what follows
    is detail), with numbers and hex ids replaced by ``N``."""
    head = text.split(":", 1)[0].strip()
    return _NUMBERS.sub("N", head)[:MAX_LABEL_CHARS] or "unknown"


class Histogram:
    """Counts per latency bucket, their sum and total: a fixed-size record."""

    def __init__(self, bounds: tuple[float, ...] = LATENCY_BUCKETS) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # the last one is +Inf
        self.sum = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        value = max(0.0, value)
        self.counts[bisect.bisect_left(self.bounds, value)] += 1  # the first bucket with value <= bound
        self.sum += value
        self.count += 1

    def cumulative(self) -> list[tuple[float, int]]:
        """(upper bound, observations at or below it), ending with (+Inf, count)."""
        out, total = [], 0
        for bound, n in zip((*self.bounds, float("inf")), self.counts, strict=True):
            total += n
            out.append((bound, total))
        return out


class Counter:
    """Counts by a tuple of label values; at most ``MAX_LABELS`` keys, then ``other``."""

    def __init__(self) -> None:
        self.values: dict[tuple[str, ...], int] = {}

    def inc(self, *labels: str, by: int = 1) -> None:
        if labels not in self.values and len(self.values) >= MAX_LABELS:
            labels = tuple(OTHER for _ in labels)
        self.values[labels] = self.values.get(labels, 0) + by

    def get(self, *labels: str) -> int:
        return self.values.get(labels, 0)

    def total(self) -> int:
        return sum(self.values.values())


class NodeStats:
    """What the node did since it started (counters reset on restart, as Prometheus expects)."""

    def __init__(self, *, chain_cursor: int = 0) -> None:
        self.payments = Counter()  # (direction "out"/"in", status "sent"/"received"/"failed")
        self.payment_seconds: dict[str, Histogram] = {"sent": Histogram(), "failed": Histogram()}
        self.updates = Counter()  # (origin "local"/"remote",): new states signed by both
        self.proposals = Counter()  # (kind "update"/"close",): states we proposed and signed
        self.rejects = Counter()  # (reason, action): peer messages refused
        self.l1_submissions = Counter()  # (kind,): L1 transactions sent
        self.l1_failures = Counter()  # (kind, code): L1 transactions refused or failed
        self.chain_seen = chain_cursor  # newest event cursor received from the L1's feed
        self.chain_cursor = chain_cursor  # event cursor committed to the store

    # --- hooks (one line at each place in the node and the engine) ----------------------------

    def committed(self, before: Mapping[ChannelId, Channel], staged: Mapping[ChannelId, Channel],
                  payments: Iterable[tuple[object, ...]], cursor: int) -> None:
        """One engine step was committed: ``before`` are the channels as they were, ``staged``
        the ones it changed, ``payments`` the outcome rows it stored (key, channel, direction,
        asset, amount, status, ...) and ``cursor`` the chain cursor it stored."""
        for row in payments:
            self.payments.inc(str(row[2]), str(row[5]))
        for cid, new in staged.items():
            old = before.get(cid)
            if new.pending is not None and (old is None or old.pending is None
                                            or old.pending.version != new.pending.version):
                self.proposals.inc(new.pending.kind.value)
            gained = new.version - old.version if old is not None else 0
            if gained > 0:
                self.updates.inc("local" if new.latest_proposer == new.me else "remote", by=gained)
        self.chain_committed(cursor)

    def payment_done(self, status: str, seconds: float) -> None:
        """A local ``pay`` call ended (``sent`` or ``failed``) after ``seconds``."""
        hist = self.payment_seconds.get(status)
        if hist is not None:
            hist.observe(seconds)

    def reject(self, reason: str, action: str) -> None:
        self.rejects.inc(reason_label(reason), action)

    def l1_submitted(self, kind: str) -> None:
        self.l1_submissions.inc(kind)

    def l1_failed(self, kind: str, code: str) -> None:
        self.l1_failures.inc(kind, reason_label(code or "error"))

    def chain_event(self, cursor: int) -> None:
        self.chain_seen = max(self.chain_seen, cursor)

    def chain_committed(self, cursor: int) -> None:
        self.chain_cursor = cursor
        self.chain_seen = max(self.chain_seen, cursor)

    @property
    def chain_lag(self) -> int:
        """Events received from the L1 but not yet applied and committed."""
        return max(0, self.chain_seen - self.chain_cursor)


def submission_kind(effect: object) -> str:
    """``SubmitDeposit`` -> ``deposit``: the L1 transaction's kind as a label."""
    name = type(effect).__name__
    return (name[len("Submit"):] if name.startswith("Submit") else name).lower()
