"""docs/settings.md against the code: every setting, flag, variable and file is documented.

The reference is written by hand (it says why, not only what), so this test is what keeps
it from rotting: a new ``NodeConfig`` field, a new command or option of ``channels`` (the
argparse tree of ``build_parser()``, subcommands included), a new ``CHANNELS_*`` variable
or data dir file that is not in the document fails here, and so does a documented default
that is no longer the code's. It also checks that every option has ``--help`` text.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest

from channels.chain.devnet import constants as devnet_files
from channels.frontend import node_daemon
from channels.frontend.cli import build_parser
from channels.node.config import CONFIG_FILE, NodeConfig

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "settings.md"
SETTINGS_HEADING = "## config.toml"


def commands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> Iterator[
        tuple[tuple[str, ...], argparse.ArgumentParser]]:
    """Every (sub)parser with its command path: ``()``, ``("node",)``, ``("node", "start")``..."""
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from commands(sub, (*path, name))


def sections(text: str) -> list[tuple[str, str]]:
    """(heading, body) for every ``##``/``###`` heading; a body runs to the next heading."""
    parts = re.split(r"^(#{2,3} .*)$", text, flags=re.MULTILINE)
    return [(parts[i], parts[i + 1]) for i in range(1, len(parts) - 1, 2)]


def section_of(path: tuple[str, ...], doc: str) -> list[str]:
    """The sections whose heading names ``channels PATH`` (in backticks)."""
    name = f"`{' '.join(('channels', *path))}`"
    return [heading + body for heading, body in sections(doc) if name in heading]


def settings_rows(doc: str) -> dict[str, list[str]]:
    """The rows of the config.toml table: key -> cells (key, type, default, meaning)."""
    body = next(b for h, b in sections(doc) if h.startswith(SETTINGS_HEADING))
    rows = {}
    for line in body.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and len(cells) == 4 and cells[0].startswith("`"):
            rows[cells[0].strip("`")] = cells
    return rows


@pytest.fixture(scope="module")
def doc() -> str:
    return DOC.read_text()


def test_readme_links_the_reference() -> None:
    assert "(docs/settings.md)" in (ROOT / "README.md").read_text()


def test_every_setting_is_documented_with_its_default(doc: str) -> None:
    rows = settings_rows(doc)
    fields = {f.name: f.default for f in attrs.fields(NodeConfig) if f.name != "data_dir"}
    missing = sorted(set(fields) - set(rows))
    assert not missing, f"settings missing from the config.toml table of {DOC.name}: {missing}"
    stale = sorted(set(rows) - set(fields))
    assert not stale, f"{DOC.name} documents settings the code does not have: {stale}"
    for name, default in fields.items():
        cell = rows[name][2].strip("`").replace("_", "")
        assert documented(cell, default), f"{name}: the default is {default!r} in the code, {cell!r} in {DOC.name}"


def documented(cell: str, default: Any) -> bool:
    if default is None:
        return cell == "none"
    if isinstance(default, tuple):
        return all(item in cell for item in default)
    if isinstance(default, bool):  # before int (bool is one): documented as TOML spells it
        return cell.strip("`") == str(default).lower()
    if isinstance(default, (int, float)):
        return re.fullmatch(r"-?\d+(\.\d+)?", cell) is not None and float(cell) == default
    return str(default) in cell


def test_every_command_and_option_is_documented(doc: str) -> None:
    top = section_of((), doc)
    assert top, f"{DOC.name} has no section for the options of `channels` itself"
    missing = []
    for path, parser in commands(build_parser()):
        found = section_of(path, doc)
        if not found:
            missing.append(f"command `channels {' '.join(path)}` (a heading naming it)")
            continue
        for action in parser._actions:
            if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
                continue
            names = action.option_strings or [action.metavar if isinstance(action.metavar, str) else action.dest]
            if not any(f"`{n}" in text for n in names for text in found + top):
                missing.append(f"`channels {' '.join(path)}` option {names[-1]}")
    assert not missing, f"missing from {DOC.name}: " + "; ".join(missing)


def test_every_option_has_help() -> None:
    bare = []
    for path, parser in commands(build_parser()):
        for action in parser._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            if isinstance(action, argparse._SubParsersAction):
                bare += [f"channels {' '.join((*path, c.dest))}" for c in action._choices_actions
                         if not (c.help or "").strip()]
                continue
            if not (action.help or "").strip() or action.help == argparse.SUPPRESS:
                bare.append(f"channels {' '.join(path)} {(action.option_strings or [action.dest])[-1]}")
    assert not bare, f"options and commands without --help text: {bare}"


def test_every_environment_variable_is_documented(doc: str) -> None:
    used = set()
    for source in (ROOT / "channels").rglob("*.py"):
        used |= set(re.findall(r"\bCHANNELS_[A-Z0-9_]+\b", source.read_text()))
    assert used >= {"CHANNELS_DATA_DIR", "CHANNELS_DEVNET"}
    missing = sorted(name for name in used if f"`{name}`" not in doc)
    assert not missing, f"environment variables missing from {DOC.name}: {missing}"


def test_every_data_dir_file_is_documented(doc: str) -> None:
    config = NodeConfig(data_dir=Path("/d"))
    node_files = {CONFIG_FILE, node_daemon.ADDR_FILE, node_daemon.LOCK_FILE, node_daemon.LOG_FILE,
                  config.db_path.name, config.identity_path.name, config.l1_key_path.name, config.rpc_path.name}
    devnet = {value for name, value in vars(devnet_files).items() if name.endswith("_FILE")}
    missing = sorted(name for name in node_files | devnet if f"`{name}`" not in doc)
    assert not missing, f"data dir files missing from {DOC.name}: {missing}"
