"""A bounded replay cache of accepted onions (proto/04-onion.md section 7). Pure: time is passed in.

An entry is the packet's replay tag (derived from its shared secret) and the payload's expiry.
It may be forgotten once that expiry has passed because every hop refuses an expired payload,
and this cache is where that refusal happens: a replay after eviction is refused as expired.
When full of unexpired entries the cache refuses new packets instead of evicting old ones
(eviction would let exactly those packets be replayed). A per-source share keeps one peer
from filling the cache for everyone; the horizon keeps an entry from living for ever.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable

from ..errors import LocalProtocolError
from .errors import OnionExpiryOutOfRange, ReplayCacheFull, ReplayedOnion

TAG_LEN = 32
DEFAULT_REPLAY_ENTRIES = 100_000
MAX_REPLAY_ENTRIES = 10_000_000  # the largest ``max_entries`` accepted: about 3 GB of entries
DEFAULT_MAX_HORIZON = 14 * 24 * 3600  # L1 seconds: a payload may expire at most two weeks ahead
MAX_SOURCE_LEN = 64


class ReplayCache:
    """Tags of accepted packets until their payload expires, at most ``max_entries`` of them and
    ``max_per_source`` from one source (the incoming channel or peer)."""

    def __init__(self, *, max_entries: int = DEFAULT_REPLAY_ENTRIES, max_per_source: int | None = None,
                 max_horizon: int = DEFAULT_MAX_HORIZON) -> None:
        if type(max_entries) is not int or not 1 <= max_entries <= MAX_REPLAY_ENTRIES:
            raise LocalProtocolError(f"max_entries must be 1..{MAX_REPLAY_ENTRIES}")
        if max_per_source is None:
            max_per_source = max_entries
        if type(max_per_source) is not int or not 1 <= max_per_source <= max_entries:
            raise LocalProtocolError("max_per_source must be 1..max_entries")
        if type(max_horizon) is not int or max_horizon < 1:
            raise LocalProtocolError("max_horizon must be a positive number of L1 seconds")
        self.max_entries = max_entries
        self.max_per_source = max_per_source
        self.max_horizon = max_horizon
        self._entries: dict[bytes, tuple[int, bytes]] = {}
        self._by_expiry: list[tuple[int, bytes]] = []
        self._per_source: dict[bytes, int] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, tag: object) -> bool:
        return tag in self._entries

    def prune(self, now: int) -> int:
        """Forget entries whose expiry is at or before ``now``; returns how many."""
        dropped = 0
        while self._by_expiry and self._by_expiry[0][0] <= now:
            _, tag = heapq.heappop(self._by_expiry)
            _, source = self._entries.pop(tag)
            left = self._per_source[source] - 1
            if left:
                self._per_source[source] = left
            else:
                del self._per_source[source]
            dropped += 1
        return dropped

    def check_and_add(self, tag: bytes, *, expiry: int, now: int, source: bytes = b"") -> None:
        """Accept a packet once: raises ``ReplayedOnion`` for a tag seen before,
        ``OnionExpiryOutOfRange`` for an expiry not after ``now`` or beyond the horizon, and
        ``ReplayCacheFull`` when there is no room; a refused packet is not recorded."""
        if type(tag) is not bytes or len(tag) != TAG_LEN:
            raise LocalProtocolError(f"a replay tag is {TAG_LEN} bytes")
        if type(source) is not bytes or len(source) > MAX_SOURCE_LEN:
            raise LocalProtocolError(f"a replay source is bytes, at most {MAX_SOURCE_LEN}")
        if type(expiry) is not int or type(now) is not int:
            raise LocalProtocolError("expiry and now are integers (L1 seconds)")
        self.prune(now)
        if tag in self._entries:
            raise ReplayedOnion("this onion was already accepted here")
        if expiry <= now:
            raise OnionExpiryOutOfRange(f"the payload expired at {expiry}; it is {now}", too_far=False)
        if expiry - now > self.max_horizon:
            raise OnionExpiryOutOfRange(f"the payload expires {expiry - now} s ahead; at most {self.max_horizon}",
                                        too_far=True)
        if len(self._entries) >= self.max_entries:
            raise ReplayCacheFull(f"the replay cache holds {self.max_entries} unexpired onions; retry later")
        if self._per_source.get(source, 0) >= self.max_per_source:
            raise ReplayCacheFull(f"this source has {self.max_per_source} unexpired onions here; retry later")
        self._entries[tag] = (expiry, source)
        heapq.heappush(self._by_expiry, (expiry, tag))
        self._per_source[source] = self._per_source.get(source, 0) + 1

    def entries(self) -> list[tuple[bytes, int, bytes]]:
        """``(tag, expiry, source)`` of every entry, for a store that keeps them across restarts."""
        return [(tag, expiry, source) for tag, (expiry, source) in self._entries.items()]

    def restore(self, entries: Iterable[tuple[bytes, int, bytes]], *, now: int) -> None:
        """Reload saved entries after a restart, skipping expired ones; all or nothing."""
        fresh: dict[bytes, tuple[int, bytes]] = {}
        for tag, expiry, source in entries:
            if (type(tag) is not bytes or len(tag) != TAG_LEN or type(expiry) is not int
                    or type(source) is not bytes or len(source) > MAX_SOURCE_LEN):
                raise LocalProtocolError("a saved replay entry is (32-byte tag, expiry, source)")
            if expiry > now and tag not in self._entries:
                fresh[tag] = (expiry, source)
        if len(self._entries) + len(fresh) > self.max_entries:
            raise ReplayCacheFull(f"{len(fresh)} saved replay entries do not fit max_entries {self.max_entries}")
        for tag, (expiry, source) in fresh.items():
            self._entries[tag] = (expiry, source)
            heapq.heappush(self._by_expiry, (expiry, tag))
            self._per_source[source] = self._per_source.get(source, 0) + 1
