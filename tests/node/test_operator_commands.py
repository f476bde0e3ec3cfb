"""Operator commands and readable output: ``list-peers``, ``disconnect``, ``list-payments``,
``list-funds``, ``devnet stop``, ``--version``, the default data dirs, and the formatters.

The commands run as a user runs them: subprocesses against a real devnet daemon and two
real node daemons (the ``network`` fixture of ``test_cli``)."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from channels import __version__
from channels.frontend import node_commands as nc
from channels.frontend.control_client import call_sync
from channels.frontend.control_server import handle_request
from channels.frontend.devnet_commands import _human_balance, _human_faucet, _human_status
from channels.frontend.formatting import format_amount, format_amounts, format_deadline, format_time
from channels.store import Store
from tests.node.test_cli import CALL_TIMEOUT, Network, cli, cli_error, network, parallel, run_cli
from tests.node.test_rpc_hardening import FakeNode
from tests.procs import CLI, ENV, LOOPBACK, REPO, wait_for_file, wait_until

__all__ = ["network"]  # the fixture, shared with test_cli



def peers(data_dir: Path) -> dict[str, dict[str, Any]]:
    return {p["peer_id"]: p for p in call_sync(data_dir / "rpc.sock", "list-peers", {})["peers"]}


def human(*args: str) -> str:
    done = run_cli(*args, json_out=False)
    assert done.returncode == 0, done.stderr
    for repr_mark in ("{", "}", "[", "]", "'"):  # readable: no Python dict/list reprs
        assert repr_mark not in done.stdout, f"channels {' '.join(args)} printed {done.stdout!r}"
    return done.stdout


def test_operator_commands_on_two_nodes(network: Network) -> None:
    a_dir, b_dir = network.dirs["a"], network.dirs["b"]
    a, b = str(a_dir), str(b_dir)
    b_address = (b_dir / "node.addr").read_text().strip()
    info_a, info_b, peers_before, _ = parallel(
        lambda: cli("--data-dir", a, "getinfo"), lambda: cli("--data-dir", b, "getinfo"),
        lambda: cli("--data-dir", a, "list-peers"),
        lambda: cli("devnet", "faucet", "--devnet", network.devnet, "--to", str(a_dir / "l1.key"),
                    "--amount", "1000"))
    a_id, b_id = info_a["peer_id"], info_b["peer_id"]
    assert peers_before == {"peers": []}

    # list-peers: a connected peer, with its announced addresses and L1 account.
    cli("--data-dir", a, "connect", b_address)
    (seen,) = cli("--data-dir", a, "list-peers")["peers"]
    assert seen == {"peer_id": b_id, "connected": True, "addresses": info_b["addresses"],
                    "l1_account": info_b["l1_account"], "num_channels": 0}
    wait_until("b sees a", lambda: peers(b_dir).get(a_id, {}).get("connected"))

    # disconnect: the connection is really closed, on both sides, and a channel-less peer is not redialled.
    assert cli("--data-dir", a, "disconnect", b_id) == {"peer_id": b_id, "disconnected": True, "reconnects": False}
    assert peers(a_dir)[b_id]["connected"] is False
    wait_until("b sees the connection closed", lambda: peers(b_dir)[a_id]["connected"] is False)
    assert "is not connected" in cli_error("--data-dir", a, "disconnect", b_id)
    assert "is not connected" in cli_error("--data-dir", a, "disconnect", "QmNobody")

    # A channel and payments both ways.
    cli("--data-dir", a, "connect", b_address)
    started = int(time.time())
    cid = cli("--data-dir", a, "open", b_id, "600", "--challenge-duration", "120")["channel_id"]
    sent = cli("--data-dir", a, "pay-direct", cid, "100")
    assert sent["asset"] == "native"
    back = cli("--data-dir", b, "pay-direct", cid, "30")
    paid_human = human("--data-dir", a, "pay-direct", cid, "7")
    assert paid_human.startswith(f"paid 7 native on {cid} ") and "balance 523 native" in paid_human

    pays_a, pays_b = (cli("--data-dir", d, "list-payments")["payments"] for d in (a, b))
    assert [(p["direction"], p["amount"]) for p in pays_a] == [("sent", 7), ("received", 30), ("sent", 100)]
    assert [(p["direction"], p["amount"]) for p in pays_b] == [("received", 7), ("sent", 30), ("received", 100)]
    for mine, theirs in zip(pays_a, pays_b, strict=True):  # one payment, seen from both ends
        assert mine["payment_id"] == theirs["payment_id"] and mine["version"] == theirs["version"]
        for p in (mine, theirs):
            assert p["status"] == "complete" and p["asset"] == "native" and p["channel_id"] == cid
            assert started - 1 <= p["time"] <= time.time() + 1 and p["detail"] == f"version {p['version']}"
    assert (pays_a[2]["payment_id"], pays_b[1]["payment_id"]) == (sent["payment_id"], back["payment_id"])
    assert cli("--data-dir", a, "list-payments", "--limit", "1")["payments"] == pays_a[:1]

    # list-funds adds up with getinfo and list-channels.
    funds_a, info_a, (chan_a,) = (cli("--data-dir", a, "list-funds"), cli("--data-dir", a, "getinfo"),
                                  cli("--data-dir", a, "list-channels")["channels"])
    assert funds_a["l1"] == info_a["l1_balances"] == {"native": 400} and "l1_error" not in funds_a
    assert funds_a["channels"] == {"native": {"ours": chan_a["balance"], "theirs": chan_a["peer_balance"],
                                              "locked": 0}} == {"native": {"ours": 523, "theirs": 77, "locked": 0}}
    assert funds_a["closing"] == {}
    assert peers(a_dir)[b_id]["num_channels"] == 1

    # Readable output: integers with their asset, full hex ids, no reprs.
    funds_text, pays_text, peers_text, chans_text, info_text = parallel(
        lambda: human("--data-dir", a, "list-funds"), lambda: human("--data-dir", a, "list-payments"),
        lambda: human("--data-dir", a, "list-peers"), lambda: human("--data-dir", a, "list-channels"),
        lambda: human("--data-dir", a, "getinfo"))
    assert "400 native" in funds_text and "ours 523 native / theirs 77 native" in funds_text
    assert len(pays_text.splitlines()) == 3 and "received" in pays_text and pays_a[0]["payment_id"] in pays_text
    assert "30 native" in pays_text and cid in pays_text
    assert f"{b_id}  connected" in peers_text and info_b["l1_account"] in peers_text
    assert "ours 523 native / theirs 77 native" in chans_text and "L1 balance:  400 native" in info_text

    # With an open channel the link is redialled: disconnect resets the connection, payments go on.
    assert cli("--data-dir", a, "disconnect", b_id)["reconnects"] is True
    wait_until("the link comes back", lambda: peers(a_dir)[b_id]["connected"])
    assert cli("--data-dir", a, "pay-direct", cid, "3")["balance"] == 520


def test_list_funds_never_reports_an_unknown_l1_balance_as_zero(tmp_path: Path) -> None:
    class Node(FakeNode):
        def funds_by_phase(self) -> dict[str, dict[str, dict[str, int]]]:
            return {"open": {"native": {"ours": 5, "theirs": 6, "locked": 1}},
                    "disputed": {"native": {"ours": 2, "theirs": 0, "locked": 0}},
                    "closing": {"gold": {"ours": 1, "theirs": 1, "locked": 0}}}

    import trio

    request = {"jsonrpc": "2.0", "id": 1, "method": "list-funds"}
    down = trio.run(handle_request, Node(tmp_path, l1_down=True), request)["result"]
    assert down["l1"] is None and "connection refused" in down["l1_error"]
    assert down["channels"] == {"native": {"ours": 5, "theirs": 6, "locked": 1}}
    assert down["closing"] == {"native": {"ours": 2, "theirs": 0, "locked": 0},
                               "gold": {"ours": 1, "theirs": 1, "locked": 0}}
    text = nc._human_funds(down)
    assert re.search(r"^L1 balance: +unknown$", text, re.MULTILINE)
    assert "connection refused" in text
    assert "ours 5 native / theirs 6 native, 1 native locked" in text
    up = trio.run(handle_request, Node(tmp_path), request)["result"]
    assert up["l1"] == {"native": 7} and "l1_error" not in up


# --- devnet stop, the default data dirs, --version -----------------------------------------------


@pytest.fixture
def home(tmp_path: Path) -> dict[str, str]:
    """An environment whose home is a fresh directory, with no data dir or devnet named."""
    env = {k: v for k, v in ENV.items() if k not in (nc.ENV_DATA_DIR, "CHANNELS_DEVNET")}
    env["HOME"] = str(tmp_path / "home")
    return env


def run_in(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=CALL_TIMEOUT, env=env, cwd=REPO)


def test_default_dirs_and_devnet_stop(home: dict[str, str], tmp_path: Path) -> None:
    default = Path(home["HOME"]) / ".channels"
    procs: list[subprocess.Popen[bytes]] = []
    try:
        with open(tmp_path / "dv.log", "wb") as log:  # no --data-dir: ~/.channels/devnet
            procs.append(subprocess.Popen([*CLI, "devnet", "start", "--listen", LOOPBACK, "--block-time", "0.2"],
                                          stdout=log, stderr=subprocess.STDOUT, env=home, cwd=REPO))
        address = wait_for_file(default / "devnet" / "devnet.addr", procs[0], 30)
        assert int((default / "devnet" / "devnet.pid").read_text()) == procs[0].pid
        status = run_in(home, "devnet", "status", "--json")  # found without being named
        assert status.returncode == 0 and json.loads(status.stdout)["devnet"] == address.rsplit("/", 1)[1]

        # A node with no --data-dir and no --devnet: ~/.channels, on the default devnet.
        with open(tmp_path / "node.log", "wb") as log:
            procs.append(subprocess.Popen([*CLI, "node", "start", "--listen", LOOPBACK], stdout=log,
                                          stderr=subprocess.STDOUT, env=home, cwd=REPO))
        wait_for_file(default / "node.addr", procs[1], 40)
        info = run_in(home, "getinfo", "--json")
        assert info.returncode == 0 and json.loads(info.stdout)["data_dir"] == str(default.resolve())
        assert run_in(home, "stop").returncode == 0
        assert procs[1].wait(timeout=20) == 0

        port = int(address.split("/")[4])
        stopped = run_in(home, "devnet", "stop", "--json")
        assert stopped.returncode == 0, stopped.stderr
        assert json.loads(stopped.stdout) == {"data_dir": str(default / "devnet"), "pid": procs[0].pid,
                                              "stopped": True}
        assert procs[0].wait(timeout=20) == 0  # a clean exit on SIGTERM
        assert not (default / "devnet" / "devnet.addr").exists() and not (default / "devnet" / "devnet.pid").exists()
        with socket.socket() as probe:  # no listener left: the port can be served again (as a restart would)
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # connections may linger in TIME_WAIT
            probe.bind(("127.0.0.1", port))
            probe.listen()

        again = run_in(home, "devnet", "stop")
        assert again.returncode == 1 and again.stderr == f"error: no devnet is running in {default / 'devnet'}\n"
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                proc.wait(timeout=10)


def test_devnet_stop_ignores_a_stale_pid_file(tmp_path: Path) -> None:
    """A daemon killed with -9 leaves its pid file; that pid may be another process by now."""
    (tmp_path / "devnet.pid").write_text(f"{os.getpid()}\n")
    (tmp_path / "devnet.lock").write_text("")
    done = run_cli("devnet", "stop", "--data-dir", str(tmp_path), json_out=False)
    assert done.returncode == 1 and done.stderr == f"error: no devnet is running in {tmp_path}\n"


def test_version(home: dict[str, str]) -> None:
    done = run_in(home, "--version")
    assert (done.returncode, done.stdout) == (0, f"channels {__version__}\n")


# --- formatters ----------------------------------------------------------------------------------


@pytest.fixture
def utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_amounts() -> None:
    assert format_amount(1200, "native") == "1200 native"
    assert format_amount(2**70, "gold") == f"{2**70} gold"  # integers, never floats or exponents
    assert format_amount(None, "native") == format_amount(5, None) == "unknown"  # never a made-up 0
    assert format_amounts({"native": 5, "gold": 2}) == "2 gold, 5 native"
    assert format_amounts({}) == "0 native" and format_amounts(None) == "unknown"


def test_deadlines_and_times(utc: None) -> None:
    t = 1_796_220_191  # 2026-12-02 14:03:11 UTC
    assert format_time(t) == "2026-12-02 14:03:11" and format_time(0) == "unknown"
    assert format_deadline(t, now=t - 42) == "2026-12-02 14:03:11 (in 42 s)"
    assert format_deadline(t, now=t + 7) == "2026-12-02 14:03:11 (7 s ago)"
    assert format_deadline(t, now=t) == "2026-12-02 14:03:11 (now)"
    assert format_deadline(None) == "unknown"


def test_human_output_of_node_and_devnet_commands(utc: None) -> None:
    deadline = int(time.time()) + 90
    closing = nc._human_close({"channel_id": "ab" * 32, "state": "disputed", "deadline": deadline,
                               "balance": 5, "asset": "native"})
    assert closing.startswith(f"channel {'ab' * 32} is disputed, challenge window ends {format_time(deadline)} (in ")
    settled = nc._human_close({"channel_id": "cd" * 32, "state": "settled", "balance": 480, "asset": "native"})
    assert "480 native back" in settled
    payments = nc._human_payments({"payments": [
        {"payment_id": "01" * 16, "direction": "sent", "status": "failed", "amount": None, "asset": None,
         "channel_id": "ab" * 32, "time": 0, "detail": "peer refused", "version": None}]})
    assert "time unknown" in payments and "unknown" in payments and "peer refused" in payments
    assert " 0 " not in payments
    assert nc._human_payments({"payments": []}) == "no payments"
    assert nc._human_peers({"peers": []}) == "no peers"
    assert "(its channels need it: the link reconnects)" in nc._human_disconnect(
        {"peer_id": "Qm", "disconnected": True, "reconnects": True})
    assert _human_balance({"address": "aa", "balances": {"native": 50, "CLI": 5}}).endswith("5 CLI, 50 native")
    assert _human_faucet({"to": "aa", "asset": "native", "amount": 50, "balance": 80}) == (
        "faucet sent 50 native to aa; balance now 80 native")
    status = _human_status({"height": 3, "time": 1_796_220_191, "chain_id": 1337, "block_time": 0.2, "devnet": "Qm"})
    assert "2026-12-02 14:03:11 (1796220191)" in status and "0.2 s" in status and "{" not in status


def test_list_payments_newest_first(tmp_path: Path) -> None:
    store = Store(tmp_path / "node.db")
    try:
        with store.transaction():
            store.record_payment(b"\x01", b"\xaa" * 32, "out", "native", 5, "sent", "1")
            store.record_payment(b"\x02" + b"/in/" + (2).to_bytes(8, "big"), b"\xaa" * 32, "in", "native", 2**64,
                                 "received", "2")
            store.record_payment(b"\x03", b"\xaa" * 32, "out", "", 0, "failed", "peer refused")
            store.record_payment(b"\x01", b"\xaa" * 32, "out", "native", 5, "sent", "1")  # an update keeps its place
        store._db.execute("UPDATE payments SET created = 0 WHERE payment_id = ?", (b"\x01",))  # from schema 3
        rows = store.list_payments()
        assert [r[0][:1] for r in rows] == [b"\x03", b"\x02", b"\x01"] and rows[1][4] == 2**64
        assert [r[0] for r in store.list_payments(1)] == [b"\x03"]
    finally:
        store.close()
    from channels.frontend.control_server import _payment_json

    received = _payment_json(rows[1])
    assert (received["payment_id"], received["direction"], received["status"], received["version"]) == (
        "02", "received", "complete", 2)
    failed = _payment_json(rows[0])
    assert (failed["amount"], failed["asset"], failed["status"], failed["detail"]) == (
        None, None, "failed", "peer refused")
