"""The gossip graph's rules: what to accept, what to drop and why (proto/08-gossip.md section 4).

``GossipState`` decides; it reads no clock (``now`` is passed in, in UNIX seconds) and does no
network I/O. Its one outside question is the async ``escrow_check``: is this channel funded on
the L1, and with how much? Everything accepted is written to the optional ``GraphStore``
before ``accept`` returns, so the graph survives a restart. Every dropped message is counted
by reason (``stats()["dropped"]``): a count that climbs is an attack or a broken peer.
"""

from __future__ import annotations

import bisect
from collections import Counter, OrderedDict
from collections.abc import Awaitable, Callable, Iterator, Mapping

import attrs

from ..core.backend import StateScheme
from ..core.ids import Address
from ..crypto import verify
from ..errors import ChannelsError, DecodeError, LocalProtocolError
from ..routing.graph import Edge, Graph
from .graph_store import GraphStore
from .messages import (
    MAX_GOSSIP_MESSAGE,
    MAX_SYNC_ITEMS,
    ChannelAnnouncement,
    ChannelUpdate,
    GossipMessage,
    NodeAnnouncement,
    SyncPage,
    decode_gossip,
)

MAX_GRAPH_CHANNELS = 200_000  # announced channels kept; more are dropped as graph_full
MAX_GRAPH_NODES = 100_000  # node announcements kept
MAX_PENDING_UPDATES = 1024  # updates held while their channel's announcement is on its way
MAX_CLOSED_REMEMBERED = 65_536  # closed channel ids refused at once, without asking the L1
MAX_SYNC_PAGE_BYTES = 48 * 1024  # message bytes per sync page (a page is one 64 KiB frame)

# Drop reasons: the keys of ``stats()["dropped"]``; proto/08-gossip.md section 4 says what each stops.
MALFORMED = "malformed"
BAD_SIGNATURE = "bad_signature"
WRONG_CHAIN = "wrong_chain"
CHANNEL_ID_MISMATCH = "channel_id_mismatch"
NOT_FUNDED = "not_funded"
CAPACITY_EXCEEDS_ESCROW = "capacity_exceeds_escrow"
UNVERIFIABLE = "unverifiable"
CLOSED = "closed"
UNKNOWN_CHANNEL = "unknown_channel"
DUPLICATE = "duplicate"
STALE = "stale"
TOO_OLD = "too_old"
FUTURE_TIMESTAMP = "future_timestamp"
RATE_LIMITED = "rate_limited"
NODE_WITHOUT_CHANNEL = "node_without_channel"
NODE_NOT_PARTICIPANT = "node_not_participant"
GRAPH_FULL = "graph_full"
DROP_REASONS = (MALFORMED, BAD_SIGNATURE, WRONG_CHAIN, CHANNEL_ID_MISMATCH, NOT_FUNDED, CAPACITY_EXCEEDS_ESCROW,
                UNVERIFIABLE, CLOSED, UNKNOWN_CHANNEL, DUPLICATE, STALE, TOO_OLD, FUTURE_TIMESTAMP, RATE_LIMITED,
                NODE_WITHOUT_CHANNEL, NODE_NOT_PARTICIPANT, GRAPH_FULL)


@attrs.frozen(kw_only=True)
class Escrow:
    """What the L1 says about one channel's escrow."""

    holdings: Mapping[str, int]  # per asset, what the escrow holds now
    open: bool = True  # False once concluded or withdrawn
    participants: tuple[bytes, ...] | None = None  # when the L1 exposes them (the devnet does not)


EscrowCheck = Callable[[bytes], Awaitable[Escrow | None]]
"""``await escrow_check(channel_id)``: the L1's view, or None if the L1 never saw the channel.
It may raise (the L1 is unreachable): the announcement is then dropped as ``unverifiable``."""


@attrs.frozen(kw_only=True)
class GossipConfig:
    """The rules' knobs. Times are seconds."""

    chain_id: int
    adjudicator: bytes
    rate_interval: float = 60.0  # one accepted update per direction per interval, on average ...
    rate_burst: int = 4  # ... with up to this many in a burst
    prune_age: int = 14 * 86400  # a channel with no update in either direction for this long is pruned
    max_clock_skew: int = 600  # timestamps further in the future are refused
    pending_ttl: int = 120  # how long an update for an unknown channel is held
    max_channels: int = MAX_GRAPH_CHANNELS
    max_nodes: int = MAX_GRAPH_NODES
    max_pending: int = MAX_PENDING_UPDATES

    def __attrs_post_init__(self) -> None:
        if not self.rate_interval > 0 or self.rate_burst < 1:
            raise LocalProtocolError("rate_interval must be positive and rate_burst at least 1")
        if self.prune_age <= 0 or self.max_clock_skew < 0 or self.pending_ttl < 0:
            raise LocalProtocolError("prune_age must be positive, max_clock_skew and pending_ttl not negative")
        if not (0 < self.max_channels <= MAX_GRAPH_CHANNELS and 0 < self.max_nodes <= MAX_GRAPH_NODES
                and 0 <= self.max_pending <= MAX_PENDING_UPDATES):
            raise LocalProtocolError("graph bounds must be positive and at most the MAX_* constants")


@attrs.frozen(kw_only=True)
class Outcome:
    """What ``accept`` did. ``reason`` is a drop reason, or None when accepted or held."""

    accepted: bool
    message: GossipMessage | None = None
    reason: str | None = None
    held: bool = False
    released: tuple[ChannelUpdate, ...] = ()  # held updates accepted along with this announcement

    @property
    def dropped(self) -> bool:
        return not self.accepted and not self.held


@attrs.define
class _Bucket:
    tokens: float
    at: float

    def take(self, now: float, interval: float, burst: int) -> bool:
        self.tokens = min(float(burst), self.tokens + max(0.0, now - self.at) / interval)
        self.at = max(self.at, now)
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


@attrs.define
class _Channel:
    ann: ChannelAnnouncement
    raw: bytes
    received_at: int
    updates: list[ChannelUpdate | None] = attrs.field(factory=lambda: [None, None])
    update_raw: list[bytes | None] = attrs.field(factory=lambda: [None, None])
    buckets: list[_Bucket | None] = attrs.field(factory=lambda: [None, None])

    def last_seen(self) -> int:
        stamps = [u.timestamp for u in self.updates if u is not None]
        return max(stamps) if stamps else self.received_at


@attrs.define
class _Node:
    ann: NodeAnnouncement
    raw: bytes
    bucket: _Bucket | None = None


class GossipState:
    """The graph as gossip built it, and the rules that guard it."""

    def __init__(self, config: GossipConfig, scheme: StateScheme, escrow_check: EscrowCheck,
                 store: GraphStore | None = None) -> None:
        self.config = config
        self.scheme = scheme
        self.escrow_check = escrow_check
        self.store = store
        self.dropped: Counter[str] = Counter()
        self.accepted: Counter[str] = Counter()
        self._channels: dict[bytes, _Channel] = {}
        self._nodes: dict[bytes, _Node] = {}
        # Bumped by every change to channels or their terms: the routing graph is rebuilt only then.
        self.generation = 0
        self._graphs: dict[str | None, tuple[int, Graph]] = {}
        self._node_channels: dict[bytes, set[bytes]] = {}
        self._pending: dict[tuple[bytes, int], tuple[ChannelUpdate, bytes, int]] = {}
        self._closed: OrderedDict[bytes, None] = OrderedDict()
        self._sorted: list[bytes] | None = None
        if store is not None:
            self._load(store)

    # ------------------------------------------------------------------ reading

    @property
    def num_channels(self) -> int:
        return len(self._channels)

    @property
    def num_nodes(self) -> int:
        """Nodes with at least one announced channel (announced themselves or not)."""
        return len(self._node_channels)

    def channel(self, channel_id: bytes) -> ChannelAnnouncement | None:
        ch = self._channels.get(channel_id)
        return None if ch is None else ch.ann

    def update(self, channel_id: bytes, direction: int) -> ChannelUpdate | None:
        ch = self._channels.get(channel_id)
        return None if ch is None else ch.updates[direction]

    def node(self, node_key: bytes) -> NodeAnnouncement | None:
        node = self._nodes.get(node_key)
        return None if node is None else node.ann

    def channels(self) -> Iterator[ChannelAnnouncement]:
        return (ch.ann for ch in self._channels.values())

    def stats(self) -> dict[str, object]:
        return {"num_nodes": self.num_nodes, "num_channels": self.num_channels,
                "num_node_announcements": len(self._nodes),
                "num_updates": sum(u is not None for ch in self._channels.values() for u in ch.updates),
                "held": len(self._pending), "accepted": dict(self.accepted), "dropped": dict(self.dropped)}

    def to_routing_graph(self, asset: str | None = None) -> Graph:
        """The pathfinder's graph: one edge per channel direction with an update (node keys are
        the 32-byte Ed25519 identity keys); ``asset`` keeps only that asset's channels. Built once
        per change of the graph (a payer asks for it on every payment); callers must not change it."""
        cached = self._graphs.get(asset)
        if cached is not None and cached[0] == self.generation:
            return cached[1]
        graph = self._build_graph(asset)
        self._graphs[asset] = (self.generation, graph)
        return graph

    def _build_graph(self, asset: str | None) -> Graph:
        graph = Graph()
        for cid, ch in self._channels.items():
            if asset is not None and ch.ann.asset != asset:
                continue
            for d, upd in enumerate(ch.updates):
                if upd is None:
                    continue
                graph.add_edge(Edge(channel_id=cid, direction=d, source=ch.ann.node_keys[d],
                                    target=ch.ann.node_keys[1 - d], capacity=ch.ann.capacity,
                                    base_fee=upd.base_fee, fee_ppm=upd.fee_ppm, expiry_delta=upd.expiry_delta,
                                    htlc_minimum=upd.htlc_minimum, htlc_maximum=upd.htlc_maximum,
                                    enabled=upd.enabled))
        return graph

    # ------------------------------------------------------------------ accepting

    async def accept(self, message: bytes | GossipMessage, *, now: int) -> Outcome:
        """Check one message (bytes from a peer, or a message we built) and keep it if valid."""
        if isinstance(message, (bytes, bytearray)):
            if len(message) > MAX_GOSSIP_MESSAGE:
                return self._drop(MALFORMED)
            try:
                msg = decode_gossip(bytes(message))
            except DecodeError:
                return self._drop(MALFORMED)
            raw = bytes(message)
        else:
            msg = message
            try:
                raw = msg.encode()
                if decode_gossip(raw) != msg:
                    raise DecodeError("does not survive its own encoding")
            except (ChannelsError, ValueError, TypeError) as exc:
                raise LocalProtocolError(f"not a valid gossip message: {exc}") from None
        self._expire_pending(now)
        if isinstance(msg, ChannelAnnouncement):
            return await self._accept_channel(msg, raw, now)
        if isinstance(msg, ChannelUpdate):
            return self._accept_update(msg, raw, now)
        return self._accept_node(msg, raw, now)

    def _drop(self, reason: str) -> Outcome:
        self.dropped[reason] += 1
        return Outcome(accepted=False, reason=reason)

    async def _accept_channel(self, ann: ChannelAnnouncement, raw: bytes, now: int) -> Outcome:
        cid = ann.channel_id
        if cid in self._channels:
            return self._drop(DUPLICATE)
        if cid in self._closed:
            return self._drop(CLOSED)
        if ann.params.chain_id != self.config.chain_id or ann.params.adjudicator != self.config.adjudicator:
            return self._drop(WRONG_CHAIN)
        try:
            derived = self.scheme.channel_id(ann.params)
        except (ChannelsError, ValueError, TypeError):
            return self._drop(CHANNEL_ID_MISMATCH)
        if derived != cid:
            return self._drop(CHANNEL_ID_MISMATCH)
        digest = ann.digest()
        if not all(verify(k, digest, s) for k, s in zip(ann.node_keys, ann.node_signatures, strict=True)):
            return self._drop(BAD_SIGNATURE)
        if not all(self._l1_ok(a, digest, s) for a, s in zip(ann.params.participants, ann.l1_signatures,
                                                                strict=True)):
            return self._drop(BAD_SIGNATURE)
        if len(self._channels) >= self.config.max_channels:
            return self._drop(GRAPH_FULL)
        try:
            escrow = await self.escrow_check(cid)
        except Exception:  # the L1 could not answer: we cannot tell, so we do not believe it
            return self._drop(UNVERIFIABLE)
        if escrow is None or not escrow.open:
            return self._drop(NOT_FUNDED)
        if escrow.participants is not None and tuple(escrow.participants) != tuple(ann.params.participants):
            return self._drop(NOT_FUNDED)
        if escrow.holdings.get(ann.asset, 0) < ann.capacity:
            return self._drop(CAPACITY_EXCEEDS_ESCROW)
        if cid in self._channels:  # another task added it while we asked the L1
            return self._drop(DUPLICATE)
        if cid in self._closed:
            return self._drop(CLOSED)
        self._channels[cid] = _Channel(ann=ann, raw=raw, received_at=now)
        self._sorted = None
        self.generation += 1
        for key in ann.node_keys:
            self._node_channels.setdefault(key, set()).add(cid)
        if self.store is not None:
            self.store.put_channel(cid, raw, now)
        self.accepted["channel_announcement"] += 1
        released = []
        for d in (0, 1):
            held = self._pending.pop((cid, d), None)
            if held is not None and self._accept_update(held[0], held[1], now).accepted:
                released.append(held[0])
        return Outcome(accepted=True, message=ann, released=tuple(released))

    def _l1_ok(self, address: bytes, digest: bytes, signature: bytes) -> bool:
        try:
            return bool(self.scheme.verify_digest(Address(address), digest, signature))
        except (ChannelsError, ValueError, TypeError):
            return False

    def _timestamp_reason(self, timestamp: int, now: int) -> str | None:
        if timestamp > now + self.config.max_clock_skew:
            return FUTURE_TIMESTAMP
        if timestamp < now - self.config.prune_age:
            return TOO_OLD
        return None

    def _accept_update(self, upd: ChannelUpdate, raw: bytes, now: int) -> Outcome:
        cid, d = upd.channel_id, upd.direction
        reason = self._timestamp_reason(upd.timestamp, now)
        if reason is not None:
            return self._drop(reason)
        ch = self._channels.get(cid)
        if ch is None:
            if cid in self._closed:
                return self._drop(CLOSED)
            return self._hold(upd, raw, now)
        last = ch.updates[d]
        if last is not None and upd.timestamp <= last.timestamp:
            return self._drop(DUPLICATE if raw == ch.update_raw[d] else STALE)
        if not verify(ch.ann.node_keys[d], upd.digest(self.config.chain_id), upd.signature):
            return self._drop(BAD_SIGNATURE)
        bucket = ch.buckets[d]
        if bucket is None:
            bucket = ch.buckets[d] = _Bucket(tokens=float(self.config.rate_burst), at=float(now))
        if not bucket.take(now, self.config.rate_interval, self.config.rate_burst):
            return self._drop(RATE_LIMITED)
        ch.updates[d], ch.update_raw[d] = upd, raw
        self.generation += 1
        if self.store is not None:
            self.store.put_update(cid, d, raw)
        self.accepted["channel_update"] += 1
        return Outcome(accepted=True, message=upd)

    def _hold(self, upd: ChannelUpdate, raw: bytes, now: int) -> Outcome:
        """An update may overtake its channel's announcement: keep the newest per direction for
        ``pending_ttl`` seconds (unchecked, so bounded and never evicting: when full, drop)."""
        key = (upd.channel_id, upd.direction)
        held = self._pending.get(key)
        if held is not None and held[0].timestamp >= upd.timestamp:
            return self._drop(DUPLICATE if held[1] == raw else STALE)
        if held is None and len(self._pending) >= self.config.max_pending:
            return self._drop(UNKNOWN_CHANNEL)
        self._pending[key] = (upd, raw, now)
        return Outcome(accepted=False, message=upd, held=True)

    def _expire_pending(self, now: int) -> None:
        expired = [k for k, (_, _, at) in self._pending.items() if now - at > self.config.pending_ttl]
        for key in expired:
            del self._pending[key]
            self.dropped[UNKNOWN_CHANNEL] += 1

    def _accept_node(self, ann: NodeAnnouncement, raw: bytes, now: int) -> Outcome:
        if ann.timestamp > now + self.config.max_clock_skew:
            return self._drop(FUTURE_TIMESTAMP)
        cids = self._node_channels.get(ann.node_key)
        if not cids:
            return self._drop(NODE_WITHOUT_CHANNEL)
        if not any(ann.l1_address in self._channels[c].ann.params.participants for c in cids):
            return self._drop(NODE_NOT_PARTICIPANT)
        old = self._nodes.get(ann.node_key)
        if old is not None and ann.timestamp <= old.ann.timestamp:
            return self._drop(DUPLICATE if raw == old.raw else STALE)
        digest = ann.digest(self.config.chain_id)
        if not verify(ann.node_key, digest, ann.node_signature) or not self._l1_ok(ann.l1_address, digest,
                                                                                     ann.l1_signature):
            return self._drop(BAD_SIGNATURE)
        if old is None and len(self._nodes) >= self.config.max_nodes:
            return self._drop(GRAPH_FULL)
        bucket = old.bucket if old is not None and old.bucket is not None else \
            _Bucket(tokens=float(self.config.rate_burst), at=float(now))
        if not bucket.take(now, self.config.rate_interval, self.config.rate_burst):
            return self._drop(RATE_LIMITED)
        self._nodes[ann.node_key] = _Node(ann=ann, raw=raw, bucket=bucket)
        if self.store is not None:
            self.store.put_node(ann.node_key, raw)
        self.accepted["node_announcement"] += 1
        return Outcome(accepted=True, message=ann)

    # ------------------------------------------------------------------ pruning

    def channel_closed(self, channel_id: bytes) -> bool:
        """The L1 says this channel closed: forget it and refuse it from now on. True if it was known."""
        self._closed[channel_id] = None
        self._closed.move_to_end(channel_id)
        while len(self._closed) > MAX_CLOSED_REMEMBERED:
            self._closed.popitem(last=False)  # forgotten ids are refused by the L1 check instead
        for d in (0, 1):
            self._pending.pop((channel_id, d), None)
        return self._remove([channel_id]) == 1

    def prune(self, now: int) -> list[bytes]:
        """Forget channels with no update in either direction for ``prune_age`` seconds (a channel
        never updated counts from when we accepted its announcement); returns their ids."""
        self._expire_pending(now)
        stale = [cid for cid, ch in self._channels.items() if now - ch.last_seen() > self.config.prune_age]
        self._remove(stale)
        return stale

    def _remove(self, channel_ids: list[bytes]) -> int:
        removed, orphans = 0, []
        for cid in channel_ids:
            ch = self._channels.pop(cid, None)
            if ch is None:
                continue
            removed += 1
            for key in ch.ann.node_keys:
                left = self._node_channels.get(key)
                if left is not None:
                    left.discard(cid)
                    if not left:
                        del self._node_channels[key]
                        if self._nodes.pop(key, None) is not None:
                            orphans.append(key)
        if removed:
            self._sorted = None
            self.generation += 1
            if self.store is not None:
                self.store.delete_channels(channel_ids)
                self.store.delete_nodes(orphans)
        return removed

    # ------------------------------------------------------------------ sync (proto/08-gossip.md section 6)

    def sync_page(self, cursor: bytes, *, max_items: int = MAX_SYNC_ITEMS,
                  max_bytes: int = MAX_SYNC_PAGE_BYTES) -> SyncPage:
        """Messages after ``cursor`` in sync order: each channel's announcement then its updates,
        by channel id; then node announcements by node key. Never splits a channel's group."""
        if self._sorted is None:
            self._sorted = sorted(self._channels)
        out: list[bytes] = []
        size = 0
        last = prev = b""
        section, after = (cursor[:1], cursor[1:]) if cursor else (b"\x00", b"")
        if section == b"\x00":
            start = bisect.bisect_right(self._sorted, after) if after else 0
            for cid in self._sorted[start:]:
                ch = self._channels[cid]
                group = [ch.raw, *(r for r in ch.update_raw if r is not None)]
                weight = sum(len(r) for r in group)
                if out and (len(out) + len(group) > max_items or size + weight > max_bytes):
                    return SyncPage(messages=tuple(out), next_cursor=b"\x00" + last)
                out += group
                size += weight
                last = cid
            section, after = b"\x01", b""
        if section != b"\x01":
            return SyncPage(messages=tuple(out), next_cursor=None)
        for key in sorted(k for k in self._nodes if k > after):
            raw = self._nodes[key].raw
            if out and (len(out) + 1 > max_items or size + len(raw) > max_bytes):
                return SyncPage(messages=tuple(out), next_cursor=b"\x01" + prev)
            out.append(raw)
            size += len(raw)
            prev = key
        return SyncPage(messages=tuple(out), next_cursor=None)

    # ------------------------------------------------------------------ loading

    def _load(self, store: GraphStore) -> None:
        """Our own file: decoded strictly again, but signatures and the L1 are not re-checked."""
        for raw, received_at in store.channels():
            try:
                ann = decode_gossip(raw)
            except DecodeError:
                continue
            if isinstance(ann, ChannelAnnouncement):
                self._channels[ann.channel_id] = _Channel(ann=ann, raw=raw, received_at=received_at)
                for key in ann.node_keys:
                    self._node_channels.setdefault(key, set()).add(ann.channel_id)
        for raw in store.updates():
            try:
                upd = decode_gossip(raw)
            except DecodeError:
                continue
            if isinstance(upd, ChannelUpdate) and upd.channel_id in self._channels:
                ch = self._channels[upd.channel_id]
                ch.updates[upd.direction], ch.update_raw[upd.direction] = upd, raw
        for raw in store.nodes():
            try:
                node = decode_gossip(raw)
            except DecodeError:
                continue
            if isinstance(node, NodeAnnouncement) and node.node_key in self._node_channels:
                self._nodes[node.node_key] = _Node(ann=node, raw=raw)
