"""The routing package is pure: no I/O, no clock, no network; only ``loader`` reads files."""

from __future__ import annotations

import ast
import pathlib

import channels

ROUTING = pathlib.Path(channels.__file__).parent / "routing"
FORBIDDEN = {"trio", "libp2p", "sqlite3", "time", "os", "socket", "asyncio", "subprocess", "threading", "nacl",
             "msgpack", "datetime", "secrets", "multiaddr", "pathlib", "io", "lzma", "json"}
RELATIVE_ALLOWED = {"errors"}  # of the package above: nothing of the node, the net or the store


def imports(path: pathlib.Path) -> tuple[set[str], set[str]]:
    """(absolute top-level modules, modules imported from the parent package) of one file."""
    absolute, parent = set(), set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            absolute.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            absolute.add(node.module.split(".")[0])
        elif isinstance(node, ast.ImportFrom) and node.level == 2:
            parent.add(node.module or "")
    return absolute, parent


def test_routing_modules_import_no_io() -> None:
    files = sorted(ROUTING.glob("*.py"))
    assert len(files) >= 8
    for path in files:
        absolute, parent = imports(path)
        allowed = {"json", "lzma", "pathlib", "hashlib"} if path.name == "loader.py" else set()
        bad = (absolute & FORBIDDEN) - allowed
        assert not bad, f"{path.name} imports {sorted(bad)}"
        assert parent <= RELATIVE_ALLOWED, f"{path.name} imports ..{sorted(parent - RELATIVE_ALLOWED)}"
