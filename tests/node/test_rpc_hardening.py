"""The control socket against hostile or broken input, and how alarms surface (getinfo, health).

Most of it runs against a fake node (no network): deep nesting, non-finite numbers,
odd ids and oversized batches must each get an error answer while the server goes on.
One real-process test stops the devnet under a running node.
"""

from __future__ import annotations

import json
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import attrs
import pytest
import trio

from channels.errors import LedgerError
from channels.frontend.cli import main
from channels.frontend.control_client import call
from channels.frontend.control_server import (
    MAX_BATCH,
    MAX_DEPTH,
    encode_response,
    handle_request,
    nesting_depth,
    serve_rpc,
)
from tests.procs import CLI, ENV, REPO, NodeProc

INVALID_REQUEST, PARSE_ERROR, INVALID_PARAMS = -32600, -32700, -32602


class FakeNode:
    """Just enough of ``Node`` for the RPC layer; ``l1_down`` makes L1 reads fail."""

    def __init__(self, data_dir: Path, alarms: dict[str, str] | None = None, *, l1_down: bool = False) -> None:
        self.stopped = trio.Event()
        self.peer_id, self.addresses, self.chain_id = "fake", ["/ip4/127.0.0.1/tcp/1/p2p/fake"], 1337
        self.l1_address = b"\x01" * 32
        self.config = attrs.make_class("Config", ["data_dir"])(data_dir)
        self.ledger = self
        self.current_alarms = dict(alarms or {})
        self.l1_down = l1_down

    def alarms(self) -> dict[str, str]:
        return dict(self.current_alarms)

    async def balances(self, account: bytes) -> dict[str, int]:
        if self.l1_down:
            raise LedgerError("cannot reach the L1 at /ip4/127.0.0.1/tcp/9: connection refused")
        return {"native": 7}

    def list_channels(self) -> list[Any]:
        return []

    def connection_stats(self) -> dict[str, int]:
        return {}


def strict_loads(line: bytes) -> Any:
    """RFC 8259 JSON only: NaN and Infinity are errors here."""
    def refuse(name: str) -> Any:
        raise ValueError(f"{name} in a response")
    return json.loads(line, parse_constant=refuse)


async def exchange(path: Path, lines: list[bytes]) -> list[Any]:
    """Send each line on one connection; one strict-JSON answer per line."""
    answers = []
    stream = await trio.open_unix_socket(str(path))
    async with stream:
        buffer = b""
        for line in lines:
            await stream.send_all(line + b"\n")
            while b"\n" not in buffer:
                chunk = await stream.receive_some(65536)
                assert chunk, f"connection closed after {line[:60]!r}"
                buffer += chunk
            answer, buffer = buffer.split(b"\n", 1)
            answers.append(strict_loads(answer))
    return answers


def request(rid: bytes, method: bytes = b'"getinfo"', params: bytes = b"{}") -> bytes:
    return b'{"jsonrpc":"2.0","id":' + rid + b',"method":' + method + b',"params":' + params + b"}"


async def test_deep_nesting_is_refused_and_the_node_keeps_serving(tmp_path: Path) -> None:
    path = tmp_path / "rpc.sock"
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            await nursery.start(serve_rpc, FakeNode(tmp_path), path)
            bomb = b"[" * 5000 + b"]" * 5000  # the 10 KB report: a RecursionError that stopped the daemon
            at_limit = request(b"1", params=b"[" * (MAX_DEPTH - 1) + b"]" * (MAX_DEPTH - 1))
            over_limit = request(b"2", params=b"[" * MAX_DEPTH + b"]" * MAX_DEPTH)
            lines = [bomb, b"[" * 100_000, b'{"a":' * 5000 + b"1" + b"}" * 5000, at_limit, over_limit,
                     b'["' + b"[" * 5000 + b'"]',  # brackets in a string are not nesting
                     request(b"3")]
            answers = await exchange(path, lines)
            for answer in answers[:3]:
                assert answer["id"] is None and answer["error"]["code"] == INVALID_REQUEST
                assert f"nested deeper than {MAX_DEPTH} levels" in answer["error"]["message"]
            assert answers[3]["id"] == 1 and answers[3]["error"]["code"] == INVALID_PARAMS  # parsed, then refused
            assert answers[4]["id"] is None and answers[4]["error"]["code"] == INVALID_REQUEST
            assert answers[5] == [{"jsonrpc": "2.0", "id": None,
                                   "error": {"code": INVALID_REQUEST, "message": "not a JSON-RPC 2.0 request"}}]
            assert answers[6]["id"] == 3 and answers[6]["result"]["peer_id"] == "fake"
            assert (await call(path, "getinfo"))["peer_id"] == "fake"  # a new connection too
            nursery.cancel_scope.cancel()


def test_nesting_depth() -> None:
    assert [nesting_depth(t) for t in (b"", b"1", b"[]", b'{"a":[1,{}]}', b'[{},[1]]')] == [0, 0, 1, 3, 2]
    assert nesting_depth(b'{"k":"[[[\\"[[{{"}') == 1  # escaped quotes do not end a string
    assert nesting_depth(b'"\\\\"[[') == 2  # an escaped backslash does
    assert nesting_depth(b"]]]][") == 0 and nesting_depth(b'["open string [[[') == 1
    assert nesting_depth(b"[" * 5000) == 5000


async def test_ids_and_numbers_keep_responses_valid_json(tmp_path: Path) -> None:
    path = tmp_path / "rpc.sock"
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            await nursery.start(serve_rpc, FakeNode(tmp_path), path)
            refused = [b"NaN", b"Infinity", b"-Infinity", b"1e999", b"1.5", b"true", b"[1]", b'{"a":1}']
            lines = [request(rid) for rid in refused]
            lines += [request(b"7", params=b'{"x":NaN}'), request(b'"s"'), request(b"null"), request(b"2.0"),
                      request(b"-40"), b'[{"jsonrpc":"2.0","id":NaN,"method":"getinfo"}]']
            answers = await exchange(path, lines)  # each is parsed strictly: no NaN ever comes back
            for rid, answer in zip(refused, answers, strict=False):
                assert answer["id"] is None and answer["error"]["code"] == INVALID_REQUEST, (rid, answer)
            assert "non-finite" in answers[0]["error"]["message"] and "out of range" in answers[3]["error"]["message"]
            assert answers[4]["error"]["message"] == "id must be a string, an integer or null"
            non_finite_param = answers[len(refused)]
            assert non_finite_param["id"] is None and non_finite_param["error"]["code"] == INVALID_REQUEST
            good = answers[len(refused) + 1:-1]
            assert [a["id"] for a in good] == ["s", None, 2.0, -40] and all("result" in a for a in good)
            assert answers[-1]["error"]["code"] == INVALID_REQUEST  # NaN anywhere in a batch: the line is refused
            assert (await call(path, "getinfo"))["peer_id"] == "fake"
            nursery.cancel_scope.cancel()


async def test_batches_are_bounded(tmp_path: Path) -> None:
    path = tmp_path / "rpc.sock"
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            await nursery.start(serve_rpc, FakeNode(tmp_path), path)
            one = request(b"1", method=b'"health"')
            full, over = (b"[" + b",".join([one] * n) + b"]" for n in (MAX_BATCH, MAX_BATCH + 1))
            answered, refused = await exchange(path, [full, over])
            assert len(answered) == MAX_BATCH and all(a["result"]["healthy"] for a in answered)
            assert refused["error"] == {"code": INVALID_REQUEST,
                                        "message": f"batch of {MAX_BATCH + 1} calls; at most {MAX_BATCH}"}
            nursery.cancel_scope.cancel()


@pytest.mark.allow_error_logs  # the server logs the response it could not encode
def test_a_response_is_strict_json_or_an_error() -> None:
    bad = encode_response({"jsonrpc": "2.0", "id": 4, "result": {"x": float("nan")}})
    answer = strict_loads(bad)
    assert answer["id"] == 4 and answer["error"]["code"] == -32603 and "not encodable" in answer["error"]["message"]
    assert strict_loads(encode_response({"jsonrpc": "2.0", "id": 1, "result": {"x": 1}}))["result"] == {"x": 1}


# --- alarms: getinfo and health ------------------------------------------------------------------


async def rpc(node: Any, method: str) -> dict[str, Any]:
    answer = await handle_request(node, {"jsonrpc": "2.0", "id": 1, "method": method})
    assert answer is not None and "result" in answer, answer
    return answer["result"]  # type: ignore[no-any-return]


async def test_getinfo_and_health_report_alarms(tmp_path: Path) -> None:
    healthy = FakeNode(tmp_path)
    info = await rpc(healthy, "getinfo")
    assert (info["healthy"], info["alarms"], info["l1_balances"]) == (True, {}, {"native": 7})
    assert "l1_error" not in info
    assert await rpc(healthy, "health") == {"healthy": True, "alarms": {}}

    message = "cannot reach the L1 at /ip4/127.0.0.1/tcp/9 since 12 s: connection refused"
    down = FakeNode(tmp_path, {"l1_unreachable": message}, l1_down=True)
    info = await rpc(down, "getinfo")
    assert info["healthy"] is False and info["alarms"] == {"l1_unreachable": message}
    assert info["l1_balances"] is None and "connection refused" in info["l1_error"]  # unknown, not {} or 0
    assert await rpc(down, "health") == {"healthy": False, "alarms": {"l1_unreachable": message}}

    class NoAlarms(FakeNode):  # a Node without the method yet: healthy, nothing to report
        alarms = None  # type: ignore[assignment]

    assert await rpc(NoAlarms(tmp_path), "health") == {"healthy": True, "alarms": {}}


@contextmanager
def served(node: FakeNode, path: Path) -> Iterator[None]:
    """``serve_rpc`` in a thread of its own trio run, so that the (synchronous) CLI can call it."""
    ready = threading.Event()
    running: list[tuple[trio.lowlevel.TrioToken, trio.CancelScope]] = []

    async def serve() -> None:
        async with trio.open_nursery() as nursery:
            await nursery.start(serve_rpc, node, path)
            running.append((trio.lowlevel.current_trio_token(), nursery.cancel_scope))
            ready.set()

    thread = threading.Thread(target=trio.run, args=(serve,), daemon=True)
    thread.start()
    assert ready.wait(10), "serve_rpc did not start"
    try:
        yield
    finally:
        token, scope = running[0]
        trio.from_thread.run_sync(scope.cancel, trio_token=token)
        thread.join(10)


def run_main(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_health_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path, d = tmp_path / "rpc.sock", str(tmp_path)
    node = FakeNode(tmp_path)
    with served(node, path):
        assert run_main(capsys, "--data-dir", d, "health") == (0, "ok\n", "")
        code, out, _ = run_main(capsys, "health", "--data-dir", d, "--json")
        assert code == 0 and json.loads(out) == {"healthy": True, "alarms": {}}

        node.current_alarms = {"l1_unreachable": "cannot reach the L1 since 12 s", "b_other": "second alarm"}
        code, out, err = run_main(capsys, "--data-dir", d, "health")
        assert (code, err) == (1, "")
        assert out.splitlines() == ["b_other: second alarm", "l1_unreachable: cannot reach the L1 since 12 s"]
        code, out, _ = run_main(capsys, "--json", "--data-dir", d, "health")
        assert code == 1 and json.loads(out) == {"healthy": False, "alarms": node.current_alarms}

    code, out, err = run_main(capsys, "--data-dir", d, "health")  # nothing is serving any more
    assert (code, out) == (2, "") and err == f"error: no node is running in {d} (start one with: " \
                                            f"channels node start --data-dir {d} ...)\n"
    assert run_main(capsys, "--data-dir", d, "health", "--json")[0] == 2


def test_getinfo_shows_an_unknown_balance_and_the_alarms(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path, d = tmp_path / "rpc.sock", str(tmp_path)
    node = FakeNode(tmp_path, {"l1_unreachable": "cannot reach the L1 since 12 s"}, l1_down=True)
    with served(node, path):
        code, out, err = run_main(capsys, "--data-dir", d, "getinfo")
        assert code == 1 and err.startswith("error: cannot reach the L1: ")  # the info, and one error line
        assert "L1 balance:  unknown" in out and "L1 balance:  0" not in out
        assert "L1 error:    cannot reach the L1" in out
        assert "alarm:       l1_unreachable: cannot reach the L1 since 12 s" in out and "health:      ALARM" in out
        code, out, _ = run_main(capsys, "--data-dir", d, "getinfo", "--json")
        info = json.loads(out)
        assert info["l1_balances"] is None and info["healthy"] is False and "l1_unreachable" in info["alarms"]

        node.l1_down, node.current_alarms = False, {}
        code, out, _ = run_main(capsys, "--data-dir", d, "getinfo")
        assert code == 0 and "L1 balance:  7 native" in out and "health:      ok" in out and "L1 error" not in out


# --- a real node whose devnet goes away ----------------------------------------------------------


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=60, env=ENV, cwd=REPO)


async def test_health_goes_bad_when_the_devnet_stops(tmp_path: Path) -> None:
    from tests.devnet.daemon_util import DaemonProc

    devnet = DaemonProc(tmp_path / "devnet", block_time=0.2)
    node = NodeProc(tmp_path / "a", devnet.start())
    d = str(node.data_dir)
    try:
        with trio.fail_after(90):
            await node.start_and_wait()
            done = await trio.to_thread.run_sync(run_cli, "--data-dir", d, "health")
            assert (done.returncode, done.stdout) == (0, "ok\n"), done.stderr
            devnet.stop()

            info: Any = await node.call("getinfo")  # the L1 is gone: its balance is unknown, not 0
            assert info["l1_balances"] is None and info["l1_error"]
            human = await trio.to_thread.run_sync(run_cli, "--data-dir", d, "getinfo")
            assert human.returncode == 1 and "L1 balance:  unknown" in human.stdout
            while True:  # the node notices within its own alarm delay
                done = await trio.to_thread.run_sync(run_cli, "--data-dir", d, "health")
                if done.returncode != 0:
                    break
                assert done.stdout == "ok\n"
                await trio.sleep(0.5)
            assert done.returncode == 1 and done.stdout.strip(), done.stderr
            assert all(": " in line for line in done.stdout.splitlines())
    finally:
        node.stop()
        devnet.stop()
