"""The graph file: what was accepted survives a reopen; pruning and closing reach the file too."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from channels.gossip.errors import GraphStoreError
from channels.gossip.graph_store import SCHEMA_VERSION, GraphStore

from .util import NOW, FakeL1, channel, node, node_key, state, update


async def test_the_graph_survives_a_reopen(tmp_path: Path) -> None:
    path = tmp_path / "graph.sqlite"
    l1 = FakeL1()
    store = GraphStore(path)
    gs = state(l1, store)
    ab, cd = channel("alice", "bob"), channel("carol", "dave")
    for ann in (ab, cd):
        l1.fund(ann)
        assert (await gs.accept(ann, now=NOW)).accepted
    for upd in (update(ab, "alice"), update(ab, "bob", fee_ppm=5), update(cd, "carol")):
        assert (await gs.accept(upd, now=NOW)).accepted
    assert (await gs.accept(update(ab, "alice", timestamp=NOW + 1, fee_ppm=9), now=NOW + 1)).accepted
    assert (await gs.accept(node("alice"), now=NOW)).accepted
    store.close()

    store = GraphStore(path)
    assert store.schema_version == SCHEMA_VERSION
    again = state(FakeL1(), store)
    assert again.stats()["num_updates"] == 3 and (again.num_nodes, again.num_channels) == (4, 2)
    assert again.update(ab.channel_id, update(ab, "alice").direction).fee_ppm == 9  # type: ignore[union-attr]
    assert again.node(node_key("alice").public_key) == node("alice")
    assert again.to_routing_graph().num_edges == gs.to_routing_graph().num_edges == 3

    assert again.channel_closed(cd.channel_id)
    assert again.prune(NOW + 14 * 86400 + 2) == [ab.channel_id]
    store.close()
    store = GraphStore(path)
    assert (state(FakeL1(), store).num_channels, list(store.nodes())) == (0, [])
    store.close()


def test_an_unreadable_row_is_skipped_and_a_newer_schema_refused(tmp_path: Path) -> None:
    path = tmp_path / "graph.sqlite"
    store = GraphStore(path)
    store.put_channel(b"\x01" * 32, b"not a message", NOW)
    store.put_node(b"\x02" * 32, b"\x90")
    store.close()
    store = GraphStore(path)
    assert state(FakeL1(), store).num_channels == 0
    store.close()
    with sqlite3.connect(path) as db:
        db.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (SCHEMA_VERSION + 1,))
    with pytest.raises(GraphStoreError, match="newer"):
        GraphStore(path)
    (tmp_path / "junk.sqlite").write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(GraphStoreError, match="delete it"):
        GraphStore(tmp_path / "junk.sqlite")
