"""The Prometheus endpoint (channels.frontend.metrics) and the node's counters behind it.

In process: two nodes on the memory transport, a channel and payments, then the exposition
text parsed back. The HTTP side: only ``GET /metrics``, bounded request heads, silent clients
dropped. Real processes: ``channels node start --metrics`` serves a scrape that moves with a
payment; without the flag the daemon listens on nothing but libp2p; bad values are one line.
"""

from __future__ import annotations

import os
import socket
import subprocess
import urllib.request
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import trio
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from channels.core import effects as fx
from channels.core import inputs as ins
from channels.errors import ChannelsError, ConfigError
from channels.frontend import metrics as metrics_mod
from channels.frontend.metrics import metrics_registry, open_metrics_listener, parse_address, serve_metrics
from channels.node import Node, load_config
from channels.node.engine import CoreItem
from channels.node.stats import MAX_LABELS, OTHER, Histogram, NodeStats, reason_label
from tests.node.test_memory_network import network, open_pair
from tests.node.test_processes import devnet, fund
from tests.procs import CLI, ENV, REPO, NodeProc

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse(text: str) -> Samples:
    """Every sample of an exposition, by (name, sorted labels)."""
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(samples: Samples, name: str, **labels: str) -> float:
    key = (name, tuple(sorted(labels.items())))
    assert key in samples, f"no sample {name}{labels}; have {sorted(k for k in samples if k[0] == name)}"
    return samples[key]


def scrape_node(node: Node) -> Samples:
    return parse(generate_latest(metrics_registry(node)).decode())


# --- the counters --------------------------------------------------------------------------------


def test_histogram_buckets_are_cumulative_and_bounded() -> None:
    hist = Histogram((0.1, 1.0))
    for seconds in (0.05, 0.1, 0.5, 3.0, -1.0):
        hist.observe(seconds)
    assert hist.cumulative() == [(0.1, 3), (1.0, 4), (float("inf"), 5)]
    assert hist.count == 5 and hist.sum == pytest.approx(3.65)
    assert len(hist.counts) == 3  # fixed size, whatever was observed


def test_text_labels_are_normalised_and_capped() -> None:
    assert reason_label("stale proposal for version 17") == "stale proposal for version N"
    assert reason_label("update breaks the rules: balance 5 below 0") == "update breaks the rules"
    assert reason_label("declined proposal: we do not auto-fund 500") == "declined proposal"
    stats = NodeStats()
    for i in range(MAX_LABELS + 10):  # a peer inventing reasons cannot grow the label set
        stats.reject(f"made up reason {'x' * i}", "warn")
    assert len(stats.rejects.values) == MAX_LABELS + 1
    assert stats.rejects.get(OTHER, OTHER) == 10


# --- in process: the collector over a live node ---------------------------------------------------


async def test_exposition_after_open_and_payments(tmp_path: Path) -> None:
    with trio.fail_after(60):
        async with network(tmp_path, ["a", "b"]) as (_dev, _net, nodes):
            a, b = nodes["a"], nodes["b"]
            before = scrape_node(a)
            assert value(before, "channels_payments_total", direction="out", status="sent") == 0
            assert value(before, "channels_channels", phase="open") == 0
            cid = await open_pair(a, b, 10_000)
            for amount in (100, 200, 300):
                await a.pay(cid, amount)
            with pytest.raises(ChannelsError):
                await a.pay(cid, 10**9)  # more than the channel holds
            await b.wait_version(cid, a.channel(cid).version)

            sa, sb = scrape_node(a), scrape_node(b)
            assert value(sa, "channels_channels", phase="open") == 1
            assert value(sa, "channels_channels", phase="settled") == 0
            assert value(sa, "channels_payments_total", direction="out", status="sent") == 3
            assert value(sb, "channels_payments_total", direction="in", status="received") == 3
            assert value(sa, "channels_payment_seconds_count", status="sent") == 3
            assert value(sa, "channels_payment_seconds_bucket", status="sent", le="+Inf") == 3
            assert value(sa, "channels_payment_seconds_count", status="failed") == 1
            assert value(sa, "channels_updates_total", origin="local") >= 3
            assert value(sb, "channels_updates_total", origin="remote") >= 3
            assert value(sa, "channels_update_proposals_total", kind="update") >= 3
            assert value(sa, "channels_peers") == 1 and value(sb, "channels_peers") == 1
            assert value(sa, "channels_l1_submissions_total", kind="deposit") == 1
            assert value(sa, "channels_chain_cursor") >= 1  # the deposits were seen and committed
            assert value(sa, "channels_chain_cursor_lag_events") >= 0
            assert value(sa, "channels_alarms") == 0
            assert a.stats.payments.get("out", "sent") == 3


async def wait_until(node: Node, done: Any, timeout: float = 10) -> None:
    """Wait, step by engine step (the ticker makes one every tick), until ``done()``."""
    with trio.fail_after(timeout):
        while not done():
            await node.engine.changed.wait()


async def test_rejects_and_l1_failures_are_counted(tmp_path: Path) -> None:
    with trio.fail_after(60):
        async with network(tmp_path, ["a", "b"]) as (_dev, _net, nodes):
            a, b = nodes["a"], nodes["b"]
            cid = await open_pair(a, b, 10_000)
            ch = a.channel(cid)
            # A message for this channel from a peer it is not with: refused and counted.
            await a._inputs.send(CoreItem(channel_id=cid, input=ins.ActionReconnect(), peer_id="intruder"))
            await wait_until(a, lambda: a.stats.rejects.total() > 0)
            # A deposit the L1 refuses (more than the account holds): sent, and failed.
            a._queue_submit(ch, fx.SubmitDeposit(channel_id=cid, asset=ch.allocation.assets[0], amount=10**15), 0)
            await wait_until(a, lambda: a.stats.l1_failures.total() > 0)
            samples = scrape_node(a)
            assert value(samples, "channels_rejects_total", reason="message for a channel that is not ours with "
                         "this peer", action="disconnect") == 1
            assert value(samples, "channels_l1_submissions_total", kind="deposit") == 2
            assert value(samples, "channels_l1_submission_failures_total", kind="deposit",
                         code="insufficient_funds") == 1


# --- the HTTP endpoint ---------------------------------------------------------------------------


@asynccontextmanager
async def served(tmp_path: Path) -> AsyncIterator[tuple[Node, int]]:
    """A node with a channel, and its metrics endpoint on a free loopback port."""
    async with network(tmp_path, ["a", "b"]) as (_dev, _net, nodes), trio.open_nursery() as nursery:
        await open_pair(nodes["a"], nodes["b"], 1_000)
        listener = await open_metrics_listener("127.0.0.1:0")
        port = listener.socket.getsockname()[1]
        await nursery.start(serve_metrics, nodes["a"], listener)
        yield nodes["a"], port
        nursery.cancel_scope.cancel()


async def http(port: int, request: bytes) -> bytes:
    """Send raw request bytes; the whole answer (the server closes after one)."""
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        await stream.send_all(request)
        answer = bytearray()
        while chunk := await stream.receive_some(65536):
            answer += chunk
    return bytes(answer)


async def test_http_serves_metrics_and_nothing_else(tmp_path: Path) -> None:
    with trio.fail_after(60):
        async with served(tmp_path) as (_node, port):
            answer = await http(port, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            head, _, body = answer.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 200 OK")
            assert b"Content-Type: text/plain; version=0.0.4" in head
            assert value(parse(body.decode()), "channels_channels", phase="open") == 1
            assert b"process_resident_memory_bytes" in body or not os.path.exists("/proc/self/stat")
            head_only = await http(port, b"HEAD /metrics?x=1 HTTP/1.1\r\n\r\n")
            assert head_only.startswith(b"HTTP/1.1 200 OK") and head_only.endswith(b"\r\n\r\n")
            assert (await http(port, b"GET / HTTP/1.1\r\n\r\n")).startswith(b"HTTP/1.1 404 ")
            assert (await http(port, b"POST /metrics HTTP/1.1\r\n\r\n")).startswith(b"HTTP/1.1 405 ")
            assert (await http(port, b"nonsense\r\n\r\n")).startswith(b"HTTP/1.1 400 ")
            huge = b"GET /metrics HTTP/1.1\r\nX: " + b"a" * (metrics_mod.MAX_REQUEST + 10) + b"\r\n\r\n"
            assert (await http(port, huge)).startswith(b"HTTP/1.1 431 ")


async def test_a_silent_client_is_dropped_and_does_not_block_scrapes(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(metrics_mod, "READ_TIMEOUT", 0.5)
    with trio.fail_after(60):
        async with served(tmp_path) as (_node, port):
            silent = await trio.open_tcp_stream("127.0.0.1", port)
            async with silent:
                await silent.send_all(b"GET /metr")  # and then nothing
                answer = await http(port, b"GET /metrics HTTP/1.1\r\n\r\n")
                assert answer.startswith(b"HTTP/1.1 200 OK")
                with trio.fail_after(10):  # closed by the server after READ_TIMEOUT, unanswered
                    assert await silent.receive_some(100) == b""


# --- addresses and settings ----------------------------------------------------------------------


@pytest.mark.parametrize("text", ["abc", "127.0.0.1:70000", "127.0.0.1:", ":9464", "127.0.0.1:-1", "[::1]"])
def test_bad_addresses_are_refused(text: str) -> None:
    with pytest.raises(ConfigError, match="not HOST:PORT"):
        parse_address(text)


def test_good_addresses() -> None:
    assert parse_address("127.0.0.1:0") == ("127.0.0.1", 0)
    assert parse_address("[::1]:9464") == ("::1", 9464)
    assert parse_address("localhost:9464") == ("localhost", 9464)


async def test_a_taken_port_is_one_error() -> None:
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen(1)
        port = held.getsockname()[1]
        with pytest.raises(ConfigError, match=f"cannot serve metrics on 127.0.0.1:{port}"):
            await open_metrics_listener(f"127.0.0.1:{port}")


def test_metrics_are_off_by_default_and_a_config_key(tmp_path: Path) -> None:
    assert load_config(tmp_path / "a").metrics is None
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "config.toml").write_text('metrics = "127.0.0.1:9464"\n')
    assert load_config(tmp_path / "b").metrics == "127.0.0.1:9464"


# --- real processes ------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def listening_ports(pid: int) -> set[int]:
    """TCP ports a process listens on (Linux: its socket fds matched against /proc/net/tcp*)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    ports = set()
    for table in ("tcp", "tcp6"):
        path = Path(f"/proc/{pid}/net/{table}")
        for line in path.read_text().splitlines()[1:] if path.exists() else ():
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def scrape_url(port: int) -> Samples:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
        assert answer.status == 200
        return parse(answer.read().decode())


@pytest.mark.skipif(not Path("/proc/self/net/tcp").exists(), reason="reads listening sockets from /proc")
async def test_daemon_serves_metrics_that_move_with_a_payment(tmp_path: Path) -> None:
    with trio.fail_after(180):
        async with devnet(tmp_path) as (addr, ledger):
            port = free_port()
            a = NodeProc(tmp_path / "a", addr)
            a.args += ["--metrics", f"127.0.0.1:{port}"]
            b = NodeProc(tmp_path / "b", addr)  # no --metrics: no endpoint
            try:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(a.start_and_wait)
                    nursery.start_soon(b.start_and_wait)
                info_a: Any = await a.call("getinfo")
                info_b: Any = await b.call("getinfo")
                p2p_a = {int(x.split("/")[4]) for x in info_a["addresses"]}
                p2p_b = {int(x.split("/")[4]) for x in info_b["addresses"]}
                assert a.proc is not None and b.proc is not None
                assert listening_ports(a.proc.pid) == p2p_a | {port}
                assert listening_ports(b.proc.pid) == p2p_b  # off by default

                before = await trio.to_thread.run_sync(scrape_url, port)
                assert value(before, "channels_payments_total", direction="out", status="sent") == 0
                assert value(before, "channels_peers") == 0
                await fund(ledger, info_a["l1_account"], 100_000)
                await a.call("connect", address=info_b["addresses"][0])
                opened: Any = await a.call("open", peer_id=info_b["peer_id"], amount=50_000)
                await a.call("pay-direct", channel_id=opened["channel_id"], amount=1_234)
                after = await trio.to_thread.run_sync(scrape_url, port)
                assert value(after, "channels_payments_total", direction="out", status="sent") == 1
                assert value(after, "channels_payment_seconds_count", status="sent") == 1
                assert value(after, "channels_channels", phase="open") == 1
                assert value(after, "channels_peers") == 1
                assert value(after, "channels_l1_submissions_total", kind="deposit") == 1
                assert value(after, "channels_chain_cursor") >= 1
            finally:
                a.stop()
                b.stop()


NO_DEVNET = "/ip4/127.0.0.1/tcp/1/p2p/12D3KooWK99VoVxNE7XzyBwXEzW7xhK7Gpv85r9F3V3fyKSUKPH5"  # never dialled


def run_start(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    argv = [*CLI, "node", "start", "--data-dir", str(tmp_path / "n"), "--devnet", NO_DEVNET, *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, env=ENV, cwd=REPO)


@pytest.mark.parametrize("bad", ["abc", "127.0.0.1:70000"])
def test_cli_bad_metrics_value_is_one_line(tmp_path: Path, bad: str) -> None:
    done = run_start(tmp_path, "--metrics", bad)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 1 and len(lines) == 1, done.stderr
    assert lines[0].startswith("error: ") and "metrics" in lines[0] and "HOST:PORT" in lines[0], lines
    assert not (tmp_path / "n" / "node.db").exists()  # nothing was touched


def test_cli_taken_port_is_one_line(tmp_path: Path) -> None:
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen(1)
        port = held.getsockname()[1]
        done = run_start(tmp_path, "--metrics", f"127.0.0.1:{port}")
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 1
    assert lines[-1] == f"error: cannot serve metrics on 127.0.0.1:{port}: Address already in use", lines
    assert [line for line in lines if "error" in line.lower()] == lines[-1:]
    assert not (tmp_path / "n" / "node.db").exists()
