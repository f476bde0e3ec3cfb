"""Reading listchannels-style graph files: plain and .xz, and a typed one-line error for bad ones."""

from __future__ import annotations

import json
import lzma
from pathlib import Path

import pytest

from channels.errors import ChannelsError
from channels.routing.errors import GraphFileError
from channels.routing.loader import MAX_GRAPH_BYTES, channel_key, load_graph, node_key

DATA = Path(__file__).parent / "data"
SMALL = DATA / "small-graph.json"


def entry(**overrides: object) -> dict[str, object]:
    base: dict[str, object] = {
        "source": "02aa", "destination": "03bb", "short_channel_id": "1x2x3", "direction": 0, "satoshis": 1000,
        "active": True, "base_fee_millisatoshi": 1000, "fee_per_millionth": 100, "delay": 40,
        "htlc_minimum_msat": 1, "htlc_maximum_msat": 990_000}
    base.update(overrides)
    return base


def write(tmp_path: Path, document: object, name: str = "g.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(document))
    return path


def test_small_fixture_keeps_capacities_fees_delays_and_flags() -> None:
    document = json.loads(SMALL.read_text())
    graph = load_graph(SMALL)
    assert graph.num_nodes == 10 and graph.num_channels == 15 and graph.num_edges == 30
    for item in document["channels"]:
        e = graph.edge_index[(channel_key(item["short_channel_id"]), item["direction"])]
        edge = graph.edges[e]
        assert (edge.source, edge.target) == (node_key(item["source"]), node_key(item["destination"]))
        assert edge.capacity == item["satoshis"] * 1000  # one unit is one millisatoshi
        assert (edge.base_fee, edge.fee_ppm, edge.expiry_delta) == (
            item["base_fee_millisatoshi"], item["fee_per_millionth"], item["delay"])
        assert (edge.htlc_minimum, edge.htlc_maximum, edge.enabled) == (
            item["htlc_minimum_msat"], item["htlc_maximum_msat"], item["active"])
    disabled = [edge for edge in graph.edges if not edge.enabled]
    assert len(disabled) == 1
    assert all(entry[1][0] != graph.edge_index[disabled[0].key] for adj in graph.in_adj for entry in adj)


def test_node_ids_map_to_our_own_keys() -> None:
    graph = load_graph(SMALL)
    ln_ids = {item["source"] for item in json.loads(SMALL.read_text())["channels"]}
    assert set(graph.node_keys) == {node_key(i) for i in ln_ids}
    assert all(len(k) == 32 and k.hex() not in ln_ids for k in graph.node_keys)


def test_xz_file_gives_the_same_graph(tmp_path: Path) -> None:
    packed = tmp_path / "graph.json.xz"
    packed.write_bytes(lzma.compress(SMALL.read_bytes()))
    plain, xz = load_graph(SMALL), load_graph(packed)
    assert xz.edges == plain.edges and xz.node_keys == plain.node_keys


def test_older_msat_strings_and_missing_direction(tmp_path: Path) -> None:
    item = entry(htlc_minimum_msat="1msat", htlc_maximum_msat="5000msat")
    del item["satoshis"], item["direction"]
    item["amount_msat"] = "2000000msat"
    graph = load_graph(write(tmp_path, {"channels": [item]}))
    (edge,) = graph.edges
    assert (edge.capacity, edge.htlc_minimum, edge.htlc_maximum, edge.direction) == (2_000_000, 1, 5000, 0)


@pytest.mark.parametrize(("content", "message"), [
    (b"", "not JSON"),
    (b"{not json", "not JSON"),
    (b"\xfd7zXZ\x00garbage", "not valid xz"),
    (json.dumps({"nodes": []}).encode(), "no \"channels\" list"),
    (json.dumps({"channels": []}).encode(), "lists no channels"),
    (json.dumps({"channels": [5]}).encode(), "channels[0] is not an object"),
    (json.dumps({"channels": [entry(satoshis=-1)]}).encode(), "satoshis must be a non-negative integer"),
    (json.dumps({"channels": [entry(satoshis=0)]}).encode(), "capacity 0"),
    (json.dumps({"channels": [entry(delay="x")]}).encode(), "delay must be a non-negative integer"),
    (json.dumps({"channels": [entry(fee_per_millionth=True)]}).encode(), "fee_per_millionth must be"),
    (json.dumps({"channels": [{k: v for k, v in entry().items() if k != "delay"}]}).encode(), "'delay' is missing"),
    (json.dumps({"channels": [entry(source="")]}).encode(), "source must be a non-empty string"),
    (json.dumps({"channels": [entry(direction=2)]}).encode(), "direction must be 0 or 1"),
    (json.dumps({"channels": [entry(active="yes")]}).encode(), "active must be true or false"),
    (json.dumps({"channels": [entry(destination="02aa")]}).encode(), "joins a node to itself"),
    (json.dumps({"channels": [entry(), entry()]}).encode(), "repeats a channel direction"),
    (json.dumps({"channels": [entry(htlc_maximum_msat="lots")]}).encode(), "htlc_maximum_msat must be"),
])
def test_bad_files_raise_one_typed_line(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "bad.json"
    path.write_bytes(content)
    with pytest.raises(GraphFileError) as caught:
        load_graph(path)
    assert isinstance(caught.value, ChannelsError)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(GraphFileError, match="does not exist"):
        load_graph(tmp_path / "nope.json")
    with pytest.raises(GraphFileError, match="is a directory"):
        load_graph(tmp_path)


def test_decompressed_size_is_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from channels.routing import loader

    monkeypatch.setattr(loader, "MAX_GRAPH_BYTES", 100)
    path = tmp_path / "big.json.xz"
    path.write_bytes(lzma.compress(b" " * 1000 + b"{}"))
    with pytest.raises(GraphFileError, match="larger than"):
        load_graph(path)
    assert MAX_GRAPH_BYTES == 1 << 30
