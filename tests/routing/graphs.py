"""Small graphs for the routing tests: hand-built ones and seeded random ones."""

from __future__ import annotations

import random

from channels.routing.graph import Edge, Graph


def key(name: str) -> bytes:
    """A readable node key: the name, padded to 32 bytes."""
    return name.encode().ljust(32, b"\0")


def chan(name: str) -> bytes:
    return b"chan:" + name.encode()


def channel(graph: Graph, a: str, b: str, capacity: int = 1_000_000, *, name: str | None = None,
            base_fee: int = 0, fee_ppm: int = 0, expiry_delta: int = 10, htlc_minimum: int = 0,
            htlc_maximum: int | None = None, enabled: bool = True, back: dict[str, object] | None = None) -> bytes:
    """Both directions of a channel a-b; ``back`` overrides terms of the b->a direction."""
    cid = chan(name or f"{a}-{b}")
    terms = dict(base_fee=base_fee, fee_ppm=fee_ppm, expiry_delta=expiry_delta, htlc_minimum=htlc_minimum,
                 htlc_maximum=htlc_maximum, enabled=enabled)
    graph.add_edge(Edge(channel_id=cid, direction=0, source=key(a), target=key(b), capacity=capacity, **terms))
    graph.add_edge(Edge(channel_id=cid, direction=1, source=key(b), target=key(a), capacity=capacity,
                        **{**terms, **(back or {})}))
    return cid


def random_graph(seed: int, nodes: int = 30, channels: int = 70, leaves: int = 8) -> Graph:
    """A connected random graph with Lightning-like terms: a ring plus random chords, and leaves
    (nodes with one channel, which can pay and be paid but never forward)."""
    rng = random.Random(seed)
    graph = Graph()
    names = [f"n{i}" for i in range(nodes)]
    pairs = {(i, (i + 1) % nodes) for i in range(nodes)}
    while len(pairs) < channels:
        a, b = rng.sample(range(nodes), 2)
        if (b, a) not in pairs:
            pairs.add((a, b))
    for index, (a, b) in enumerate(sorted(pairs)):
        capacity = rng.choice([200_000, 1_000_000, 5_000_000, 20_000_000])
        channel(graph, names[a], names[b], capacity, name=f"c{index}", base_fee=rng.choice([0, 0, 1000]),
                fee_ppm=rng.choice([0, 1, 100, 1000, 5000]), expiry_delta=rng.choice([6, 40, 144]),
                back=dict(base_fee=rng.choice([0, 1000]), fee_ppm=rng.choice([1, 500, 2000]),
                          enabled=rng.random() > 0.1))
    for leaf in range(leaves):
        channel(graph, f"leaf{leaf}", rng.choice(names), rng.choice([100_000, 2_000_000]), name=f"l{leaf}",
                fee_ppm=rng.choice([0, 100]))
    return graph
