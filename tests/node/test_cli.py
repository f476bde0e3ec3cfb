"""The node daemon and its CLI as a user runs them: real processes on loopback.

One devnet daemon, two ``channels node start`` daemons, and every client command
as a subprocess with ``--json``. Plus the control socket's protocol edge cases
against a stub node (no network), where malformed input must never crash it.
"""

from __future__ import annotations

import json
import socket
import stat
import subprocess
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import attrs
import pytest
import trio

from channels.errors import UnknownChannel
from channels.frontend.control_client import NodeNotRunning, RpcFailed, call
from channels.frontend.control_server import MAX_REQUEST, NodeAlreadyRunning, serve_rpc
from tests.node.test_rpc_hardening import FakeNode
from tests.procs import CLI, ENV, LOOPBACK, REPO, stop_all, wait_for_file

CALL_TIMEOUT = 60.0


def run_cli(*args: str, json_out: bool = True) -> subprocess.CompletedProcess[str]:
    argv = [*CLI, *args, *(["--json"] if json_out else [])]
    return subprocess.run(argv, capture_output=True, text=True, timeout=CALL_TIMEOUT, env=ENV, cwd=REPO)


def cli(*args: str) -> Any:
    """A command that must succeed; its JSON result."""
    done = run_cli(*args)
    assert done.returncode == 0, f"channels {' '.join(args)} failed ({done.returncode}): {done.stderr}"
    return json.loads(done.stdout)


def cli_error(*args: str) -> str:
    """A command that must fail with exit 1 and one ``error: ...`` line; that line."""
    done = run_cli(*args)
    assert done.returncode == 1, f"channels {' '.join(args)} gave {done.returncode}: {done.stdout}{done.stderr}"
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    return lines[0]


def parallel(*calls: Callable[[], Any]) -> list[Any]:
    """Independent commands at once: each CLI process spends most of its time importing."""
    with ThreadPoolExecutor(len(calls)) as pool:
        return [f.result() for f in [pool.submit(c) for c in calls]]


@attrs.define
class Network:
    devnet: str
    dirs: dict[str, Path]
    procs: dict[str, subprocess.Popen[bytes]]


@pytest.fixture
def network(tmp_path: Path) -> Iterator[Network]:
    procs: dict[str, subprocess.Popen[bytes]] = {}
    dirs = {name: tmp_path / name for name in ("dv", "a", "b")}

    def spawn(name: str, *args: str) -> subprocess.Popen[bytes]:
        with open(tmp_path / f"{name}.log", "wb") as log:
            procs[name] = subprocess.Popen([*CLI, *args], stdout=log, stderr=subprocess.STDOUT, env=ENV, cwd=REPO)
        return procs[name]

    try:
        dv = spawn("dv", "devnet", "start", "--data-dir", str(dirs["dv"]), "--listen", LOOPBACK, "--block-time", "0.2")
        devnet = wait_for_file(dirs["dv"] / "devnet.addr", dv, 20)
        # Both ways of naming the devnet: its multiaddr, and its data dir.
        spawn("a", "node", "start", "--data-dir", str(dirs["a"]), "--listen", LOOPBACK, "--devnet", devnet)
        spawn("b", "--data-dir", str(dirs["b"]), "node", "start", "--listen", LOOPBACK, "--devnet-dir", str(dirs["dv"]))
        for name in ("a", "b"):
            wait_for_file(dirs[name] / "node.addr", procs[name], 30)
        yield Network(devnet=devnet, dirs=dirs, procs=procs)
    finally:
        stop_all(procs, tmp_path, timeout=10)


def test_two_nodes_through_the_cli(network: Network) -> None:
    a, b = str(network.dirs["a"]), str(network.dirs["b"])

    def faucet(name: str, amount: int) -> Any:  # an account may be given as its key file
        account = str(network.dirs[name] / "l1.key")
        return cli("devnet", "faucet", "--devnet", network.devnet, "--to", account, "--amount", str(amount))

    b_address = (network.dirs["b"] / "node.addr").read_text().strip()
    info_a, info_b, connected, funded_a, funded_b = parallel(  # independent: one round of process start-ups
        lambda: cli("--data-dir", a, "getinfo"), lambda: cli("getinfo", "--data-dir", b),
        lambda: cli("--data-dir", a, "connect", b_address), lambda: faucet("a", 1000), lambda: faucet("b", 500))
    for info in (info_a, info_b):
        assert {"peer_id", "addresses", "l1_account", "l1_balances", "num_channels", "chain_id", "version"} <= set(info)
        assert info["num_channels"] == 0 and info["addresses"][0].endswith("/p2p/" + info["peer_id"])
    assert (funded_a["to"], funded_b["to"]) == (info_a["l1_account"], info_b["l1_account"])
    assert connected == {"peer_id": info_b["peer_id"]} and b_address in info_b["addresses"]
    stats = cli("--data-dir", b, "getinfo")["connections"]  # a dialled b: one live inbound slot
    assert (stats["inbound"], stats["max_inbound_total"], stats["max_inbound_per_ip"]) == (1, 256, 32)
    assert (network.dirs["a"] / "rpc.sock").stat().st_mode & 0o777 == 0o600

    opened = cli("--data-dir", a, "open", info_b["peer_id"], "600", "--challenge-duration", "120")
    cid = opened["channel_id"]
    assert opened["state"] == "open" and opened["balance"] == 600 and opened["peer_balance"] == 0

    paid = cli("--data-dir", a, "pay-direct", cid[:10], "100")  # a unique prefix is enough
    payment_id = paid.pop("payment_id")
    assert paid == {"channel_id": cid, "version": 1, "amount": 100, "asset": "native", "balance": 500,
                    "peer_balance": 100}
    # A retry with the same payment id is answered with the original outcome: it never pays twice.
    again = cli("--data-dir", a, "pay-direct", cid, "100", "--payment-id", payment_id)
    assert (again["version"], again["balance"]) == (1, 500)
    assert cli("pay-direct", cid, "30", "--data-dir", b)["version"] == 2
    assert cli("--json", "--data-dir", a, "pay-direct", cid, "50")["balance"] == 480

    unknown, too_much, bad_amount = parallel(
        lambda: cli_error("--data-dir", a, "pay-direct", "ffff", "1"),
        lambda: cli_error("--data-dir", b, "pay-direct", cid, "100000"),
        lambda: run_cli("--data-dir", a, "pay-direct", cid, "-3"))
    assert "no channel matches 'ffff'" in unknown
    assert "exceeds the spendable balance 120" in too_much
    assert bad_amount.returncode == 2 and bad_amount.stderr.startswith("error: ")
    assert "Traceback" not in bad_amount.stderr

    list_a, list_b, human = parallel(lambda: cli("--data-dir", a, "list-channels"),
                                     lambda: cli("--data-dir", b, "list-channels"),
                                     lambda: run_cli("--data-dir", a, "list-channels", json_out=False))
    (ch_a,), (ch_b,) = list_a["channels"], list_b["channels"]
    assert (ch_a["balance"], ch_a["peer_balance"], ch_a["version"], ch_a["state"]) == (480, 120, 3, "open")
    assert (ch_b["balance"], ch_b["peer_balance"], ch_b["version"]) == (120, 480, 3)
    assert ch_a["peer_id"] == info_b["peer_id"] and ch_b["peer_id"] == info_a["peer_id"] and ch_a["capacity"] == 600
    assert human.returncode == 0 and cid in human.stdout and "480" in human.stdout

    closed = cli("--data-dir", b, "close", cid[:12])
    assert closed["channel_id"] == cid and closed["state"] == "settled"

    def balance(account: str) -> int:
        return int(cli("devnet", "balance", "--devnet", network.devnet, account)["balances"].get("native", 0))

    # Settled means withdrawn: the unit is conserved, 1500 in and the channel's 600 split as it was left.
    *got, stop_a, stop_b = parallel(lambda: balance(info_a["l1_account"]), lambda: balance(info_b["l1_account"]),
                                    lambda: cli("--data-dir", a, "stop"), lambda: cli("stop", "--data-dir", b))
    assert got == [400 + 480, 500 + 120] and sum(got) == 1500
    assert stop_a == stop_b == {"stopping": True}
    for name in ("a", "b"):
        assert network.procs[name].wait(timeout=15) == 0
        assert not (network.dirs[name] / "rpc.sock").exists() and not (network.dirs[name] / "node.addr").exists()
    stopped = cli_error("--data-dir", a, "getinfo")
    assert stopped == f"error: no node is running in {a} (start one with: channels node start --data-dir {a} ...)"


# --- the control socket's protocol, against a stub node ------------------------------------------


class StubNode(FakeNode):
    """``FakeNode`` whose ``connect`` fails unexpectedly on purpose."""

    def find_channel(self, prefix: str) -> bytes:
        raise UnknownChannel(f"no channel matches {prefix!r}")

    async def connect(self, address: str) -> str:
        raise RuntimeError("boom")


async def _exchange(path: Path, payload: bytes, answers: int) -> list[Any]:
    stream = await trio.open_unix_socket(str(path))
    async with stream:
        await stream.send_all(payload)
        buffer = b""
        while buffer.count(b"\n") < answers:
            chunk = await stream.receive_some(65536)
            if not chunk:
                break
            buffer += chunk
    return [json.loads(line) for line in buffer.splitlines()]


@pytest.mark.allow_error_logs  # a stub method raises on purpose: the server logs the internal error
async def test_rpc_protocol_edges(tmp_path: Path) -> None:
    path = tmp_path / "rpc.sock"
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(str(path))  # a socket file nobody listens on: removed at start
    stale.close()
    node = StubNode(tmp_path)
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            await nursery.start(serve_rpc, node, path)
            assert stat.S_IMODE(path.stat().st_mode) == 0o600
            with pytest.raises(NodeAlreadyRunning):
                await serve_rpc(node, path)  # type: ignore[arg-type]

            requests = [b"{not json", b"[1]", b'{"jsonrpc":"2.0","id":2,"method":"nope"}',
                        b'{"jsonrpc":"2.0","id":3,"method":"getinfo","params":{"x":1}}',
                        b'{"jsonrpc":"2.0","method":"getinfo"}',  # a notification: no answer
                        b'{"jsonrpc":"2.0","id":4,"method":"pay-direct","params":{"channel_id":"ab","amount":1}}',
                        b'{"jsonrpc":"2.0","id":5,"method":"connect","params":["/ip4/1.2.3.4"]}',
                        b'{"jsonrpc":"2.0","id":6,"method":"open","params":{"peer_id":"p","amount":true}}',
                        b'{"jsonrpc":"2.0","id":"seven","method":"getinfo"}']
            answers = await _exchange(path, b"\n".join(requests) + b"\n", 8)
            assert answers[0]["id"] is None and answers[0]["error"]["code"] == -32700
            (batch,) = answers[1]  # a batch of one invalid request: a list of one error
            assert batch["id"] is None and batch["error"]["code"] == -32600
            codes = [(r["id"], r.get("error", {}).get("code")) for r in answers[2:]]
            assert codes == [(2, -32601), (3, -32602), (4, -32000), (5, -32603), (6, -32602), ("seven", None)]
            assert answers[3]["error"]["data"]["type"] == "InvalidParams"
            assert answers[4]["error"]["data"]["type"] == "UnknownChannel"
            assert answers[7]["result"]["l1_balances"] == {"native": 7}

            (too_big,) = await _exchange(path, b"x" * (MAX_REQUEST + 2), 1)
            assert too_big["error"]["code"] == -32600

            assert (await call(path, "getinfo"))["peer_id"] == "fake"  # still serving
            with pytest.raises(RpcFailed, match="no channel matches 'zz'") as failed:
                await call(path, "close", {"channel_id": "zz"})
            assert failed.value.type == "UnknownChannel"
            assert await call(path, "stop") == {"stopping": True}
            await node.stopped.wait()
            nursery.cancel_scope.cancel()
    assert not path.exists()
    with pytest.raises(NodeNotRunning, match="no node is running in"):
        await call(path, "getinfo")
