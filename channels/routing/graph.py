"""The channel graph the pathfinder searches: flat lists indexed by integer ids.

Amounts are integers of the asset's smallest unit, and so are base fees and the minimum
and maximum amounts; proportional fees are parts per million of the amount forwarded.
A Lightning graph maps one unit to one millisatoshi (capacity in satoshis times 1000,
``base_fee_millisatoshi`` and ``htlc_*_msat`` as they are). Expiry deltas are in the L1's
expiry units (blocks for a Lightning graph).

Why flat lists and tuples: a search relaxes thousands of edges per route, and in CPython
that is fast only if the inner loop reads locals and unpacks tuples; attribute access on
objects there would cost more than the whole budget. ``Edge`` is the readable form used at
the boundary (loading, gossip, hints, routes), never in the inner loop.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import attrs

from .errors import RoutingError, UnknownNode

EdgeKey = tuple[bytes, int]
"""A directed channel: (channel id, direction 0 or 1). Stable across graph updates."""

EdgeTerms = tuple[int, int, int, int, int, int, float]
"""(edge id, base fee, fee ppm, expiry delta, minimum amount, largest amount (the maximum, at most
the capacity), 1 / (capacity + 1))."""
AdjEntry = tuple[int, EdgeTerms]
"""An edge as the search reads it: (node at the far end, terms), in ``in_adj`` (far end: the
source) and ``out_adj`` (far end: the target). Two levels, so that the search skips an edge
whose far end is already cheaper without unpacking the rest."""

HINT_CAPACITY = 2**62
"""Capacity assumed for a route-hint channel of unknown size: the payee vouches for it."""


@attrs.frozen
class Edge:
    """One direction of a channel: who pays into it and on which terms."""

    channel_id: bytes
    direction: int
    source: bytes
    target: bytes
    capacity: int
    base_fee: int = 0
    fee_ppm: int = 0
    expiry_delta: int = 0
    htlc_minimum: int = 0
    htlc_maximum: int | None = None
    enabled: bool = True

    @property
    def key(self) -> EdgeKey:
        return (self.channel_id, self.direction)

    @property
    def largest(self) -> int:
        """The largest amount this direction can forward at all (maximum, capped by capacity)."""
        return self.capacity if self.htlc_maximum is None else min(self.htlc_maximum, self.capacity)

    def fee(self, amount: int) -> int:
        """The fee the source charges to forward ``amount``: base + amount * ppm / 10^6, rounded down."""
        return self.base_fee + amount * self.fee_ppm // 1_000_000


def _check(edge: Edge) -> None:
    if edge.direction not in (0, 1):
        raise RoutingError(f"edge direction must be 0 or 1, got {edge.direction}")
    if edge.source == edge.target:
        raise RoutingError(f"channel {edge.channel_id.hex()[:16]} joins a node to itself")
    if edge.capacity <= 0:
        raise RoutingError(f"channel {edge.channel_id.hex()[:16]} has capacity {edge.capacity}; it must be positive")
    for name in ("base_fee", "fee_ppm", "expiry_delta", "htlc_minimum"):
        if getattr(edge, name) < 0:
            raise RoutingError(f"channel {edge.channel_id.hex()[:16]}: {name} must not be negative")
    if edge.htlc_maximum is not None and edge.htlc_maximum < 0:
        raise RoutingError(f"channel {edge.channel_id.hex()[:16]}: htlc_maximum must not be negative")


def _entry(u: int, e: int, edge: Edge) -> AdjEntry:
    return (u, (e, edge.base_fee, edge.fee_ppm, edge.expiry_delta, edge.htlc_minimum, edge.largest,
                1.0 / (edge.capacity + 1)))


class Graph:
    """Nodes by key and directed edges by (channel id, direction); disabled edges are kept but not searched."""

    def __init__(self) -> None:
        self.node_keys: list[bytes] = []
        self.node_index: dict[bytes, int] = {}
        self.edges: list[Edge] = []
        self.edge_index: dict[EdgeKey, int] = {}
        self.src: list[int] = []
        self.dst: list[int] = []
        self.in_adj: list[list[AdjEntry]] = []
        self.out_adj: list[list[AdjEntry]] = []
        """Enabled edges out of each node as (to node, terms): what the search's forward pass reads."""
        self.out_edges: list[list[int]] = []
        self._channels: set[bytes] = set()

    @classmethod
    def from_edges(cls, edges: Iterable[Edge]) -> Graph:
        graph = cls()
        for edge in edges:
            graph.add_edge(edge)
        return graph

    @property
    def num_nodes(self) -> int:
        return len(self.node_keys)

    @property
    def num_edges(self) -> int:
        return len(self.edges)

    @property
    def num_channels(self) -> int:
        return len(self._channels)

    def add_node(self, key: bytes) -> int:
        index = self.node_index.get(key)
        if index is None:
            index = self.node_index[key] = len(self.node_keys)
            self.node_keys.append(key)
            self.in_adj.append([])
            self.out_adj.append([])
            self.out_edges.append([])
        return index

    def add_edge(self, edge: Edge) -> int:
        """Add a channel direction, or replace its policy (a newer channel update); returns its edge id."""
        _check(edge)
        e = self.edge_index.get(edge.key)
        if e is not None and (self.node_keys[self.src[e]], self.node_keys[self.dst[e]]) != (edge.source, edge.target):
            raise RoutingError(f"channel {edge.channel_id.hex()[:16]} direction {edge.direction} "
                               "is already known between other nodes")
        u, v = self.add_node(edge.source), self.add_node(edge.target)
        if e is None:
            e = self.edge_index[edge.key] = len(self.edges)
            self.edges.append(edge)
            self.src.append(u)
            self.dst.append(v)
            self.out_edges[u].append(e)
            self._channels.add(edge.channel_id)
            if edge.enabled:
                entry = _entry(u, e, edge)
                self.in_adj[v].append(entry)
                self.out_adj[u].append((v, entry[1]))
            return e
        self.edges[e] = edge
        entry = _entry(u, e, edge)
        for adj, item in ((self.in_adj[v], entry), (self.out_adj[u], (v, entry[1]))):
            position = next((i for i, old in enumerate(adj) if old[1][0] == e), None)
            if position is not None and edge.enabled:
                adj[position] = item
            elif position is not None:
                del adj[position]
            elif edge.enabled:
                adj.append(item)
        return e

    def set_enabled(self, key: EdgeKey, enabled: bool) -> None:
        e = self.edge_index.get(key)
        if e is None:
            raise RoutingError(f"unknown channel direction {key[0].hex()[:16]}/{key[1]}")
        self.add_edge(attrs.evolve(self.edges[e], enabled=enabled))

    def index(self, key: bytes) -> int:
        index = self.node_index.get(key)
        if index is None:
            raise UnknownNode(f"node {key.hex()[:16]} is not in the channel graph")
        return index


@attrs.frozen
class HintHop:
    """One hop of a route hint (an invoice's private route to the payee): the channel from ``node``
    to the next hop of the hint, or to the payee after the last hop."""

    node: bytes
    channel_id: bytes
    base_fee: int = 0
    fee_ppm: int = 0
    expiry_delta: int = 0
    htlc_maximum: int | None = None


def hint_edges(hints: Sequence[Sequence[HintHop]], payee: bytes) -> list[Edge]:
    """Route hints as edges; their capacity is unknown, so they are assumed large enough."""
    edges = []
    for hint in hints:
        for i, hop in enumerate(hint):
            after = hint[i + 1].node if i + 1 < len(hint) else payee
            edges.append(Edge(channel_id=hop.channel_id, direction=0 if hop.node < after else 1, source=hop.node,
                              target=after, capacity=HINT_CAPACITY, base_fee=hop.base_fee, fee_ppm=hop.fee_ppm,
                              expiry_delta=hop.expiry_delta, htlc_maximum=hop.htlc_maximum))
    return edges


class Overlay:
    """A graph plus extra edges (route hints, our own private channels) for one search, without
    changing the graph: extra nodes and edges get ids after the graph's."""

    def __init__(self, graph: Graph, extra: Sequence[Edge] = ()) -> None:
        self.graph = graph
        self.node_keys: list[bytes] = []
        self.node_index: dict[bytes, int] = {}
        self.edges: list[Edge] = []
        self.edge_index: dict[EdgeKey, int] = {}
        self.in_adj: dict[int, list[AdjEntry]] = {}
        self.out_adj: dict[int, list[AdjEntry]] = {}
        self.out_edges: dict[int, list[int]] = {}
        for edge in extra:
            _check(edge)
            if edge.key in graph.edge_index or edge.key in self.edge_index or not edge.enabled:
                continue  # the graph's own record of a public channel is the fresher one
            u, v = self._node(edge.source), self._node(edge.target)
            e = graph.num_edges + len(self.edges)
            self.edge_index[edge.key] = e
            self.edges.append(edge)
            entry = _entry(u, e, edge)
            self.in_adj.setdefault(v, []).append(entry)
            self.out_adj.setdefault(u, []).append((v, entry[1]))
            self.out_edges.setdefault(u, []).append(e)

    def _node(self, key: bytes) -> int:
        index = self.graph.node_index.get(key, self.node_index.get(key))
        if index is None:
            index = self.node_index[key] = self.graph.num_nodes + len(self.node_keys)
            self.node_keys.append(key)
        return index

    @property
    def num_nodes(self) -> int:
        return self.graph.num_nodes + len(self.node_keys)

    def index(self, key: bytes) -> int:
        index = self.graph.node_index.get(key, self.node_index.get(key))
        if index is None:
            raise UnknownNode(f"node {key.hex()[:16]} is not in the channel graph nor in the route hints")
        return index

    def node_key(self, index: int) -> bytes:
        n = self.graph.num_nodes
        return self.graph.node_keys[index] if index < n else self.node_keys[index - n]

    def edge(self, e: int) -> Edge:
        n = self.graph.num_edges
        return self.graph.edges[e] if e < n else self.edges[e - n]

    def edge_id(self, key: EdgeKey) -> int | None:
        e = self.graph.edge_index.get(key)
        return self.edge_index.get(key) if e is None else e

    def outgoing(self, node: int) -> list[int]:
        base = self.graph.out_edges[node] if node < self.graph.num_nodes else []
        return base + self.out_edges.get(node, [])

    def incoming(self, node: int) -> list[AdjEntry]:
        base = self.graph.in_adj[node] if node < self.graph.num_nodes else []
        return base + self.in_adj.get(node, [])
