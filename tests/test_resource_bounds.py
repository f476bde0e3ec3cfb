"""Walk docs/resource-bounds.md: every documented bound is the code's, every bound is documented.

A bound that drifts from its documentation, or a new ``MAX_*`` that nobody wrote down,
fails here; the table is what an operator reads to size a node.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path
from typing import Any

import attrs
import pytest

from channels.net.limits import ConnectionLimits
from channels.node.config import NodeConfig

TABLE = Path(__file__).resolve().parents[1] / "docs" / "resource-bounds.md"
SETTINGS = {"NodeConfig": NodeConfig, "ConnectionLimits": ConnectionLimits}
# Modules whose MAX_* constants must each appear in the table.
SCANNED = ["channels.core.channel", "channels.core.ops", "channels.node.engine", "channels.encoding",
           "channels.store.records", "channels.node.node",
           "channels.node.links", "channels.net.host", "channels.frontend.control_server",
           "channels.frontend.control_client", "channels.logs", "channels.chain.devnet.service",
           "channels.watchtower.constants", "channels.onion.replay", "channels.invoice.fields",
           "channels.games.base", "channels.gossip.messages", "channels.gossip.validate",
           "channels.gossip.service", "channels.net.pubsub"]
UNITS = {"": 1, "KiB": 1024, "MiB": 1024 * 1024}


@attrs.frozen
class Row:
    resource: str
    bound: str
    where: str
    at_bound: str


def rows() -> list[Row]:
    out = []
    for line in TABLE.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if not line.startswith("|") or len(cells) != 4 or cells[0] == "resource" or set(cells[1]) <= {"-", " "}:
            continue
        out.append(Row(*(c.strip("`") if i == 2 else c for i, c in enumerate(cells))))
    return out


def resolve(where: str) -> Any:
    if ":" in where:
        module, path = where.split(":")
        value: Any = importlib.import_module(module)
        for name in path.split("."):
            value = getattr(value, name)
        return value
    cls, field = where.split(".")
    return attrs.fields_dict(SETTINGS[cls])[field].default


def parse(bound: str) -> int:
    match = re.fullmatch(r"(\d+)\s*(KiB|MiB|)", bound)
    assert match, f"bound {bound!r} is not a number"
    return int(match[1]) * UNITS[match[2]]


def test_the_table_is_not_empty() -> None:
    assert len(rows()) > 50


@pytest.mark.parametrize("row", [r for r in rows() if r.where != "—"], ids=lambda r: r.where)
def test_each_documented_bound_is_the_codes(row: Row) -> None:
    assert row.at_bound, f"{row.where}: say what happens at the bound"
    value = resolve(row.where)
    assert isinstance(value, (int, float)) and not isinstance(value, bool)
    assert parse(row.bound) == value, f"{row.where} is {value} in the code, {row.bound} in the table"


def test_unbounded_rows_say_why() -> None:
    for row in rows():
        if row.where == "—":
            assert row.bound and row.at_bound, row


def defined_bounds(module: str) -> list[str]:
    """``MAX_*`` integer constants a module defines itself (not the ones it imports)."""
    mod = importlib.import_module(module)
    source = Path(mod.__file__ or "").read_text()
    return [name for name in re.findall(r"^(MAX_[A-Z0-9_]+)\s*=", source, re.MULTILINE)
            if isinstance(getattr(mod, name), int)]


def test_every_bound_in_the_code_is_in_the_table() -> None:
    listed = {re.sub(r"(:[A-Z0-9_]+)\..*", r"\1", r.where) for r in rows()}  # module:NAME.attr -> module:NAME
    missing = [f"{m}:{name}" for m in SCANNED for name in defined_bounds(m) if f"{m}:{name}" not in listed]
    for cls_name, cls in SETTINGS.items():
        missing += [f"{cls_name}.{f.name}" for f in attrs.fields(cls)
                    if (f.name.startswith("max_") or f.name.endswith("_timeout")) and f.name != "max_challenge_duration"
                    and f"{cls_name}.{f.name}" not in listed]
    assert not missing, f"bounds missing from {TABLE.name}: {missing}"
