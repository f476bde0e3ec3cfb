"""``channels devnet start`` and ``channels node start`` as real processes: a data dir in use or
a port taken is one ``error:`` line and a non-zero exit, never a traceback; and the node's
log in ``--log-format json``.
"""

from __future__ import annotations

import json
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from daemon_util import DaemonProc

from tests.procs import CLI, ENV, REPO, NodeProc

TIMEOUT = 60


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=TIMEOUT, env=ENV, cwd=REPO)


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A loopback port some other program listens on."""
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen(1)
        yield held.getsockname()[1]


def in_use(port: int) -> str:
    return (f"error: address /ip4/127.0.0.1/tcp/{port} is in use: cannot listen on it (choose another port, "
            "or tcp/0 for any free one)")


def test_a_second_devnet_on_the_same_data_dir_is_one_line_naming_the_first(daemon: DaemonProc) -> None:
    done = run("devnet", "start", "--data-dir", str(daemon.data_dir))
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.splitlines() == [
        f"error: another devnet daemon is running on {daemon.data_dir} (listening on {daemon.address}); stop it "
        f"first: channels devnet stop --data-dir {daemon.data_dir}"]
    assert (daemon.data_dir / "devnet.addr").read_text().strip() == daemon.address  # the first one is untouched


def test_devnet_start_on_a_taken_port_is_one_line_and_touches_no_ledger(tmp_path: Path, taken_port: int) -> None:
    done = run("devnet", "start", "--data-dir", str(tmp_path / "dv"), "--listen", f"/ip4/127.0.0.1/tcp/{taken_port}")
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.splitlines() == [in_use(taken_port)]
    assert not (tmp_path / "dv" / "devnet.db").exists() and not (tmp_path / "dv" / "devnet.addr").exists()


def test_node_start_on_a_taken_port_is_one_line(daemon: DaemonProc, tmp_path: Path, taken_port: int) -> None:
    done = run("node", "start", "--data-dir", str(tmp_path / "n"), "--devnet", daemon.address,
               "--listen", f"/ip4/127.0.0.1/tcp/{taken_port}")
    assert done.returncode == 1 and done.stdout == ""
    errors = [line for line in done.stderr.splitlines() if "error" in line.lower() or "Traceback" in line]
    assert errors == [in_use(taken_port)], done.stderr


async def test_node_start_logs_json_lines(daemon: DaemonProc, tmp_path: Path) -> None:
    node = NodeProc(tmp_path / "n", daemon.address)
    node.args += ["--log-format", "json"]
    try:
        info = await node.start_and_wait()
    finally:
        assert node.stop() == 0
    entries = [json.loads(line) for line in (tmp_path / "n" / "node.log").read_text().splitlines()]
    assert entries and all({"time", "level", "logger", "message"} <= set(e) for e in entries)
    assert any(e["message"].startswith(f"node {info['peer_id']} listening on") for e in entries)
    assert "received SIGTERM; shutting down" in [e["message"] for e in entries]
