"""Read a Lightning ``listchannels``-style JSON graph (plain or .xz) into a ``Graph``.

Lightning node ids and short channel ids are mapped to keys of our own (32-byte BLAKE2b
digests), so nothing downstream mistakes them for real peers. Units: one of our units is
one millisatoshi, so a capacity of ``satoshis`` becomes ``satoshis * 1000`` (or
``amount_msat`` as it is) and the ``*_msat`` fields are kept. Capacities, fees, delays and
the enabled flag (``active``) are kept; everything else is ignored.

This is the one I/O module of the package.
"""

from __future__ import annotations

import hashlib
import json
import lzma
from pathlib import Path
from typing import Any

from .errors import GraphFileError, RoutingError
from .graph import Edge, Graph

MAX_GRAPH_BYTES = 1 << 30
"""Decompressed size of a graph file read at most: a file past it is refused (``GraphFileError``)."""


def node_key(ln_node_id: str) -> bytes:
    """Our key for a Lightning node id: stable, so the same file always gives the same graph."""
    return hashlib.blake2b(ln_node_id.encode(), digest_size=32, person=b"ln-graph-node").digest()


def channel_key(short_channel_id: str) -> bytes:
    return hashlib.blake2b(short_channel_id.encode(), digest_size=32, person=b"ln-graph-chan").digest()


def read_graph_json(path: Path) -> Any:
    """The parsed JSON of a graph file; .xz files are decompressed (detected by content)."""
    try:
        with path.open("rb") as raw:
            magic = raw.read(6)
            raw.seek(0)
            if magic == b"\xfd7zXZ\x00":
                with lzma.open(raw) as stream:
                    data = stream.read(MAX_GRAPH_BYTES + 1)
            else:
                data = raw.read(MAX_GRAPH_BYTES + 1)
    except FileNotFoundError:
        raise GraphFileError(f"graph file {path} does not exist") from None
    except IsADirectoryError:
        raise GraphFileError(f"graph file {path} is a directory") from None
    except (lzma.LZMAError, EOFError) as exc:
        raise GraphFileError(f"graph file {path} is not valid xz: {exc}") from None
    except OSError as exc:
        raise GraphFileError(f"cannot read graph file {path}: {exc.strerror or exc}") from None
    if len(data) > MAX_GRAPH_BYTES:
        raise GraphFileError(f"graph file {path} is larger than {MAX_GRAPH_BYTES >> 20} MiB decompressed")
    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise GraphFileError(f"graph file {path} is not JSON: {str(exc)[:100]}") from None


def _msat(value: Any, where: str, name: str) -> int:
    """An amount field: an integer, or an older ``"1234msat"`` string."""
    if isinstance(value, str) and value.endswith("msat") and value[:-4].isdigit():
        return int(value[:-4])
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    raise GraphFileError(f"{where}: {name} must be a non-negative integer, got {str(value)[:40]!r}")


def _int(entry: dict[str, Any], name: str, where: str) -> int:
    if name not in entry:
        raise GraphFileError(f"{where}: the field {name!r} is missing")
    value = entry[name]
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise GraphFileError(f"{where}: {name} must be a non-negative integer, got {str(value)[:40]!r}")
    return value


def _str(entry: dict[str, Any], name: str, where: str) -> str:
    value = entry.get(name)
    if not isinstance(value, str) or not value:
        raise GraphFileError(f"{where}: {name} must be a non-empty string")
    return value


def _edge(entry: Any, index: int) -> Edge:
    where = f"channels[{index}]"
    if not isinstance(entry, dict):
        raise GraphFileError(f"{where} is not an object")
    source, destination = _str(entry, "source", where), _str(entry, "destination", where)
    scid = _str(entry, "short_channel_id", where)
    if "satoshis" in entry:
        capacity = _int(entry, "satoshis", where) * 1000
    elif "amount_msat" in entry:
        capacity = _msat(entry["amount_msat"], where, "amount_msat")
    else:
        raise GraphFileError(f"{where}: the capacity (satoshis or amount_msat) is missing")
    direction = entry.get("direction", 0 if source < destination else 1)
    if direction not in (0, 1) or isinstance(direction, bool):
        raise GraphFileError(f"{where}: direction must be 0 or 1")
    active = entry.get("active", True)
    if not isinstance(active, bool):
        raise GraphFileError(f"{where}: active must be true or false")
    maximum = entry.get("htlc_maximum_msat")
    return Edge(channel_id=channel_key(scid), direction=direction, source=node_key(source),
                target=node_key(destination), capacity=capacity,
                base_fee=_int(entry, "base_fee_millisatoshi", where), fee_ppm=_int(entry, "fee_per_millionth", where),
                expiry_delta=_int(entry, "delay", where),
                htlc_minimum=_msat(entry.get("htlc_minimum_msat", 0), where, "htlc_minimum_msat"),
                htlc_maximum=None if maximum is None else _msat(maximum, where, "htlc_maximum_msat"), enabled=active)


def graph_from_json(document: Any, name: str = "graph") -> Graph:
    """A ``Graph`` from a parsed ``{"channels": [...]}`` document (or a bare list of channels)."""
    channels = document.get("channels") if isinstance(document, dict) else document
    if not isinstance(channels, list):
        raise GraphFileError(f"{name} has no \"channels\" list: not a listchannels-style graph")
    graph = Graph()
    for index, entry in enumerate(channels):
        edge = _edge(entry, index)
        if edge.key in graph.edge_index:
            raise GraphFileError(f"{name}: channels[{index}] repeats a channel direction already listed")
        try:
            graph.add_edge(edge)
        except RoutingError as exc:
            raise GraphFileError(f"{name}: channels[{index}]: {exc}") from None
    if graph.num_nodes == 0:
        raise GraphFileError(f"{name} lists no channels")
    return graph


def load_graph(path: str | Path) -> Graph:
    """Read a listchannels-style JSON file (optionally .xz); ``GraphFileError`` says what is wrong."""
    path = Path(path)
    return graph_from_json(read_graph_json(path), str(path))
