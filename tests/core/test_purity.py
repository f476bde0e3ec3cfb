"""The core is sans-I/O: nothing under channels/core imports I/O or clocks."""

from __future__ import annotations

import ast
import pathlib

import channels

FORBIDDEN = {"trio", "libp2p", "sqlite3", "time", "random", "os", "socket", "asyncio", "subprocess", "threading",
             "nacl", "msgpack", "httpx", "datetime", "secrets", "multiaddr", "pathlib", "io"}
CORE = pathlib.Path(channels.__file__).parent / "core"


def _imported_modules(path: pathlib.Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_core_imports_no_io() -> None:
    files = sorted(CORE.rglob("*.py"))
    assert files, "the core package has modules"
    for path in files:
        bad = _imported_modules(path) & FORBIDDEN
        assert not bad, f"{path.name} imports {sorted(bad)}"


def test_core_relative_imports_stay_pure() -> None:
    """Relative imports from the core may reach only pure modules of the package."""
    allowed = {"errors", "core"}  # not chain.base: the core and the backends must not import each other
    for path in sorted(CORE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 2:
                assert node.module in allowed, f"{path.name} imports ..{node.module}"


def _absolute_imports(path: pathlib.Path, package: str) -> set[str]:
    """Modules ``path`` imports, relative ones resolved against ``package``."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
            out.add(".".join([*base, node.module or ""]).strip("."))
        elif isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
    return out


def test_the_node_knows_no_particular_backend() -> None:
    """Nothing under channels/node imports a backend: it is handed a ``Backend`` (or a
    ledger that builds one), so a new L1 is a new folder under channels/chain only."""
    node_dir = CORE.parent / "node"
    for path in sorted(node_dir.rglob("*.py")):
        imported = _absolute_imports(path, "channels.node")
        bad = {m for m in imported if m.startswith("channels.chain.") and m != "channels.chain.base"}
        assert not bad, f"{path.name} imports {sorted(bad)}"


def test_checker_catches_an_import(tmp_path: pathlib.Path) -> None:
    sample = tmp_path / "m.py"
    sample.write_text("import time\nfrom trio import sleep\n")
    assert _imported_modules(sample) & FORBIDDEN == {"time", "trio"}


def test_import_channels_resolves_to_this_repo() -> None:
    repo = pathlib.Path(__file__).resolve().parents[2]
    assert pathlib.Path(channels.__file__).resolve() == repo / "channels" / "__init__.py"
