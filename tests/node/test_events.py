"""The node's event log (``channels.node.events``): typed events in order with growing
cursors, resuming from a cursor without loss (consumer or node restarted), the bound and
``EventsLost``; then ``channels events`` and the ``events`` subscription on real processes."""

from __future__ import annotations

import json
import signal
import subprocess
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import trio
from trio.testing import MockClock

from channels.chain.devnet.ledger import Devnet
from channels.core.ids import ChannelId
from channels.errors import ConfigError
from channels.frontend.control_client import RpcFailed, call, subscribe_sync
from channels.frontend.control_server import serve_rpc
from channels.net.memory import MemoryNetwork, open_memory_transport
from channels.node import Node, load_config
from channels.node.events import (
    ChannelSettled,
    EventKind,
    EventsLost,
    NodeEvent,
    PaymentReceived,
    PaymentSent,
    UnknownCursor,
)
from tests.node.test_processes import devnet, fund, node_procs
from tests.procs import CLI, ENV, REPO

K = EventKind
CHANNEL_KINDS = {K.CHANNEL_PROPOSED, K.CHANNEL_OPENED, K.CHANNEL_UPDATED, K.CHANNEL_CLOSING, K.CHANNEL_SETTLED,
                 K.PAYMENT_SENT, K.PAYMENT_RECEIVED}


@asynccontextmanager
async def pair(tmp_path: Path, **settings: Any) -> AsyncIterator[tuple[Devnet, MemoryNetwork, Node, Node]]:
    dev, net = Devnet(None, clock=None), MemoryNetwork()
    async with AsyncExitStack() as stack:
        nodes = []
        for name in ("a", "b"):
            transport = await stack.enter_async_context(open_memory_transport(net, name))
            config = load_config(tmp_path / name, tick_interval=0.05, reconnect_interval=0.02, **settings)
            node = await stack.enter_async_context(Node.open(config, ledger=dev, transport=transport))
            dev.faucet_sync(node.l1_address, 100_000)
            nodes.append(node)
        yield dev, net, nodes[0], nodes[1]


async def open_channel(a: Node, b: Node, amount: int = 1_000) -> ChannelId:
    await a.connect(b.addresses[0])
    return await a.open_channel(b.peer_id, amount, challenge_duration=100)


async def collect(node: Node, since: int | None, until: EventKind, into: list[NodeEvent],
                  task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
    """Follow ``node``'s events into ``into`` until one of kind ``until`` arrives."""
    feed = node.events(since)
    task_status.started()
    async for event in feed:
        into.append(event)
        if event.kind is until:
            return


def channel_kinds(events: list[NodeEvent]) -> list[EventKind]:
    return [e.kind for e in events if e.kind in CHANNEL_KINDS]


async def test_open_pay_close_events_arrive_in_order(tmp_path: Path, autojump_clock: MockClock) -> None:
    async with pair(tmp_path) as (_dev, _net, a, b):
        seen_a: list[NodeEvent] = []
        seen_b: list[NodeEvent] = []
        with trio.fail_after(60):
            async with trio.open_nursery() as nursery:
                await nursery.start(collect, a, None, K.CHANNEL_SETTLED, seen_a)  # followers from now on
                await nursery.start(collect, b, None, K.CHANNEL_SETTLED, seen_b)
                cid = await open_channel(a, b)
                await a.pay(cid, 300, payment_id=b"\x01" * 16)
                await b.wait_version(cid, 1)
                await b.pay(cid, 100, payment_id=b"\x02" * 16)
                await a.wait_version(cid, 2)
                await a.close(cid)
        assert channel_kinds(seen_a) == [K.CHANNEL_PROPOSED, K.CHANNEL_OPENED, K.CHANNEL_UPDATED, K.PAYMENT_SENT,
                                         K.CHANNEL_UPDATED, K.PAYMENT_RECEIVED, K.CHANNEL_CLOSING, K.CHANNEL_SETTLED]
        assert channel_kinds(seen_b) == [K.CHANNEL_PROPOSED, K.CHANNEL_OPENED, K.CHANNEL_UPDATED, K.PAYMENT_RECEIVED,
                                         K.CHANNEL_UPDATED, K.PAYMENT_SENT, K.CHANNEL_CLOSING, K.CHANNEL_SETTLED]
        for seen in (seen_a, seen_b):
            cursors = [e.cursor for e in seen]
            assert cursors == sorted(set(cursors)) and cursors[0] >= 1  # strictly growing
        # The follower saw exactly what the log holds, and each event says what a consumer needs.
        assert [e.cursor for e in a.read_events()] == [e.cursor for e in seen_a]
        proposed = seen_a[[e.kind for e in seen_a].index(K.CHANNEL_PROPOSED)].as_json()
        assert proposed["ours"] is True and proposed["channel_id"] == cid.hex() and proposed["peer_id"] == b.peer_id
        assert next(e for e in seen_b if e.kind is K.CHANNEL_PROPOSED).as_json()["ours"] is False
        sent = next(e.data for e in seen_a if isinstance(e.data, PaymentSent))
        got = next(e.data for e in seen_b if isinstance(e.data, PaymentReceived))
        assert (sent.amount, sent.payment_id, sent.version, sent.asset) == (300, "01" * 16, 1, "native")
        assert (got.amount, got.payment_id, got.version, got.peer_id) == (300, "01" * 16, 1, a.peer_id)
        settled = seen_a[-1].data
        assert isinstance(settled, ChannelSettled) and settled.reason == ""
        assert (settled.balance, settled.peer_balance, settled.state) == (800, 200, "settled")
        assert {e.data.peer_id for e in seen_a if e.kind is K.PEER_CONNECTED} == {b.peer_id}
        line = json.loads(json.dumps(seen_a[-1].as_json()))  # JSON-able as is
        assert {"cursor", "time", "kind", "channel_id", "version"} <= set(line) and line["kind"] == "channel_settled"


async def test_a_disconnect_and_a_failed_payment_are_events(tmp_path: Path, autojump_clock: MockClock) -> None:
    async with pair(tmp_path) as (_dev, net, a, b):
        with trio.fail_after(60):
            cid = await open_channel(a, b)
            start = a.last_event_cursor
            net.transports["b"].up = False  # b goes away
            net.disconnect("a", "b")
            events: list[NodeEvent] = []
            await collect(a, start, K.PEER_DISCONNECTED, events)
            async with trio.open_nursery() as nursery:
                nursery.start_soon(a.pay, cid, 50)  # signed and waiting for b
                while a.channel(cid).pending is None:
                    await a.engine.changed.wait()
                with trio.move_on_after(1):  # queued behind it; the caller gives up: withdrawn
                    await a.pay(cid, 60, payment_id=b"\x04" * 16)
                await collect(a, events[-1].cursor, K.PAYMENT_FAILED, events)
                net.transports["b"].up = True  # b is back: the first payment goes through
                await collect(a, events[-1].cursor, K.PAYMENT_SENT, events)
        kinds = [e.kind for e in events]
        assert kinds[0] is K.PEER_DISCONNECTED and events[0].as_json()["peer_id"] == b.peer_id
        assert kinds.index(K.PAYMENT_FAILED) < kinds.index(K.PEER_CONNECTED) < kinds.index(K.PAYMENT_SENT)
        failed = next(e.as_json() for e in events if e.kind is K.PAYMENT_FAILED)
        assert (failed["amount"], failed["payment_id"], failed["asset"]) == (60, "04" * 16, "native")
        assert failed["reason"] == "cancelled before it was signed"
        assert next(e.as_json() for e in events if e.kind is K.PAYMENT_SENT)["amount"] == 50


async def test_a_consumer_resumes_from_its_cursor_without_loss(tmp_path: Path, autojump_clock: MockClock) -> None:
    async with pair(tmp_path) as (_dev, _net, a, b):
        with trio.fail_after(60):
            cid = await open_channel(a, b)
            first: list[NodeEvent] = []
            async for event in a.events(0):  # the consumer handles a few, then "crashes"
                first.append(event)
                if len(first) == 3:
                    break
            for i in range(5):  # meanwhile the node goes on
                await a.pay(cid, 10 + i)
            second: list[NodeEvent] = []
            await collect(a, first[-1].cursor, K.PAYMENT_SENT, second)  # restarted with its cursor
            while sum(e.kind is K.PAYMENT_SENT for e in second) < 5:
                await collect(a, second[-1].cursor, K.PAYMENT_SENT, second)
        everything = a.read_events(0)
        assert [e.cursor for e in first + second] == [e.cursor for e in everything]
        assert first + second == everything  # nothing lost, nothing twice, byte for byte the same
        assert [e.data.amount for e in second if isinstance(e.data, PaymentSent)] == [10, 11, 12, 13, 14]


async def test_cursors_survive_a_node_restart(tmp_path: Path, autojump_clock: MockClock) -> None:
    dev, net = Devnet(None, clock=None), MemoryNetwork()

    def config(name: str) -> Any:
        return load_config(tmp_path / name, tick_interval=0.05, reconnect_interval=0.02)

    with trio.fail_after(60):
        async with open_memory_transport(net, "b") as tb, Node.open(config("b"), ledger=dev, transport=tb) as b:
            followed: list[NodeEvent] = []

            async def follow(node: Node) -> None:
                async for event in node.events(0):
                    followed.append(event)

            async with trio.open_nursery() as outside:  # a consumer outside the node's own tasks
                async with open_memory_transport(net, "a") as ta, \
                        Node.open(config("a"), ledger=dev, transport=ta) as a:
                    dev.faucet_sync(a.l1_address, 10_000)
                    outside.start_soon(follow, a)
                    cid = await open_channel(a, b)
                    await a.pay(cid, 100)
                    before = a.read_events(0)
                    last = a.last_event_cursor
            # The node stopped: the consumer's loop ended (it did not hang), in order so far; a
            # restarted consumer resumes after its last cursor.
            assert before[-1].cursor == last and last > 0
            assert followed and followed == before[:len(followed)]
            async with open_memory_transport(net, "a") as ta, Node.open(config("a"), ledger=dev, transport=ta) as a:
                assert a.last_event_cursor == last
                assert a.read_events(0) == before  # the log survived as it was
                after: list[NodeEvent] = []
                async with trio.open_nursery() as nursery:
                    await nursery.start(collect, a, last, K.PAYMENT_SENT, after)
                    await a.pay(cid, 5)
                assert after[0].cursor == last + 1 and after[-1].data == PaymentSent(
                    channel_id=cid.hex(), peer_id=b.peer_id, payment_id=after[-1].data.payment_id,  # type: ignore
                    asset="native", amount=5, version=2)
                assert K.PEER_CONNECTED in [e.kind for e in after]  # peers are announced again


async def test_the_log_is_bounded_and_a_lost_cursor_is_an_error(tmp_path: Path, autojump_clock: MockClock) -> None:
    async with pair(tmp_path, max_events=4) as (_dev, _net, a, b):
        with trio.fail_after(60):
            cid = await open_channel(a, b)
            behind = a.events(a.last_event_cursor)  # a follower that stops reading
            for _ in range(6):
                await a.pay(cid, 1)
            kept = a.read_events()  # from the oldest kept
            assert len(kept) == 4 and kept[-1].cursor == a.last_event_cursor
            assert [e.cursor for e in kept] == list(range(kept[0].cursor, kept[0].cursor + 4))
            assert a.store.count_events() == 4
            with pytest.raises(EventsLost, match=f"resume with since={kept[0].cursor - 1}") as lost:
                a.events(0)
            assert lost.value.resume_from == kept[0].cursor - 1
            with pytest.raises(EventsLost):
                a.read_events(1)
            with pytest.raises(EventsLost):  # fell behind while following: told, never a silent gap
                await behind.__anext__()
            resumed = a.events(lost.value.resume_from)
            assert [await resumed.__anext__() for _ in range(4)] == kept
            with pytest.raises(UnknownCursor, match="not one of this node's"):
                a.events(a.last_event_cursor + 1)


async def rpc_lines(stream: Any, buffer: bytearray, count: int) -> list[Any]:
    """The next ``count`` JSON lines the control socket sends."""
    out = []
    while len(out) < count:
        newline = buffer.find(b"\n")
        if newline < 0:
            chunk = await stream.receive_some(65536)
            assert chunk, "the server closed the connection"
            buffer += chunk
            continue
        out.append(json.loads(bytes(buffer[:newline])))
        del buffer[:newline + 1]
    return out


async def test_the_events_method_pages_and_streams(tmp_path: Path) -> None:
    path = tmp_path / "rpc.sock"
    async with pair(tmp_path, max_events=4) as (_dev, _net, a, b), trio.open_nursery() as nursery:
        with trio.fail_after(60):
            await nursery.start(serve_rpc, a, path)
            cid = await open_channel(a, b)
            for _ in range(3):
                await a.pay(cid, 1)
            first = await call(path, "events", {"follow": False, "limit": 3})
            assert len(first["events"]) == 3 and first["more"] is True
            rest = await call(path, "events", {"follow": False, "since": first["cursor"]})
            assert rest["more"] is False and [e["cursor"] for e in first["events"] + rest["events"]] == [
                e.cursor for e in a.read_events()]
            assert rest["cursor"] == a.last_event_cursor
            with pytest.raises(RpcFailed, match="resume with since=") as lost:
                await call(path, "events", {"follow": False, "since": 0})
            assert lost.value.type == "EventsLost"

            stream = await trio.open_unix_socket(str(path))
            async with stream:
                buffer = bytearray()
                # A refused subscription is answered and the connection serves on.
                await stream.send_all(b'{"jsonrpc":"2.0","id":1,"method":"events","params":{"since":-1}}\n')
                (bad,) = await rpc_lines(stream, buffer, 1)
                assert bad["error"]["code"] == -32602 and bad["id"] == 1
                await stream.send_all(b'[{"jsonrpc":"2.0","id":3,"method":"events"}]\n')  # a stream in a batch
                ((batched,),) = await rpc_lines(stream, buffer, 1)
                assert batched["error"]["code"] == -32602 and "of its own with an id" in batched["error"]["message"]
                since = a.last_event_cursor
                await stream.send_all(b'{"jsonrpc":"2.0","id":2,"method":"events","params":{"since":%d}}\n' % since)
                (ack,) = await rpc_lines(stream, buffer, 1)
                assert ack == {"jsonrpc": "2.0", "id": 2, "result": {"following": True, "cursor": since}}
                await a.pay(cid, 2)  # made after the subscription started: streamed as it happens
                notes = await rpc_lines(stream, buffer, 2)
                assert [(n["method"], n["params"]["kind"]) for n in notes] == [
                    ("event", "channel_updated"), ("event", "payment_sent")]
                assert notes[1]["params"]["amount"] == 2 and notes[0]["params"]["cursor"] == since + 1
            nursery.cancel_scope.cancel()


def test_max_events_must_be_positive(tmp_path: Path) -> None:
    from channels.node.events import EventLog
    from channels.store import Store

    store = Store(tmp_path / "node.db")
    try:
        with pytest.raises(ConfigError, match="max_events must be at least 1"):
            EventLog(store, 0)
    finally:
        store.close()


# --- real processes: channels events and the subscription ----------------------------------------


def run_events(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, "--data-dir", str(data_dir), "events", *args], capture_output=True, text=True,
                          timeout=60, env=ENV, cwd=REPO)


async def test_channels_events_and_the_subscription(tmp_path: Path) -> None:
    with trio.fail_after(180):
        async with devnet(tmp_path) as (addr, ledger), node_procs(tmp_path, addr, "a", "b") as nodes:
            a, b = nodes["a"], nodes["b"]
            info_a: Any = await a.call("getinfo")
            info_b: Any = await b.call("getinfo")
            await fund(ledger, info_a["l1_account"], 10_000)
            await a.call("connect", address=info_b["addresses"][0])
            cid = (await a.call("open", peer_id=info_b["peer_id"], amount=1_000))["channel_id"]  # type: ignore
            await a.call("pay-direct", channel_id=cid, amount=100)

            done = await trio.to_thread.run_sync(run_events, a.data_dir, "--json", "--no-follow")
            assert done.returncode == 0, done.stderr
            backlog = [json.loads(line) for line in done.stdout.splitlines()]
            kinds = [e["kind"] for e in backlog]
            assert [k for k in kinds if not k.startswith("peer_")] == [
                "channel_proposed", "channel_opened", "channel_updated", "payment_sent"]
            assert backlog[-1]["amount"] == 100 and backlog[-1]["channel_id"] == cid
            human = await trio.to_thread.run_sync(run_events, a.data_dir, "--no-follow", "--since",
                                                  str(backlog[-2]["cursor"]))
            assert human.returncode == 0 and human.stdout.count("\n") == 1 and "payment_sent" in human.stdout
            lost = await trio.to_thread.run_sync(run_events, a.data_dir, "--since", "99999")
            assert lost.returncode == 1 and lost.stderr.startswith("error: cursor 99999 is not one of this node's")

            # Following: the CLI prints the backlog after --since (the payment of 100: it is then
            # subscribed), then a payment made after that, as it happens.
            since = backlog[-2]["cursor"]
            proc = await trio.lowlevel.open_process(
                [*CLI, "--data-dir", str(a.data_dir), "events", "--json", "--since", str(since)],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV, cwd=str(REPO))
            sub = subscribe_sync(a.rpc, "events", {"since": since})  # the library's own, alongside
            try:
                assert proc.stdout is not None and proc.stderr is not None
                out = JsonLines(proc.stdout)
                assert (await out.until("payment_sent"))[-1]["cursor"] == backlog[-1]["cursor"]
                assert (await trio.to_thread.run_sync(lambda: next(sub), abandon_on_cancel=True))["cursor"] == since
                await b.call("pay-direct", channel_id=cid, amount=7)
                lines = await out.until("payment_received")
                got = lines[-1]
                assert (got["amount"], got["channel_id"], got["peer_id"]) == (7, cid, info_b["peer_id"])
                assert all(e["cursor"] > backlog[-1]["cursor"] for e in lines)
                streamed: list[dict[str, Any]] = []
                while not streamed or streamed[-1]["kind"] != "payment_received":
                    streamed.append(await trio.to_thread.run_sync(lambda: next(sub), abandon_on_cancel=True))
                assert [e["cursor"] for e in streamed] == [e["cursor"] for e in out.seen]
                proc.send_signal(signal.SIGINT)  # Ctrl-C: exit 130, quietly
                assert await proc.wait() == 130
                assert await read_all(proc.stderr) == b""
            finally:
                sub.close()
                if proc.returncode is None:
                    proc.kill()
                    await proc.wait()

            # A follower of a node that stops ends with one line saying where to resume.
            follower = await trio.lowlevel.open_process(
                [*CLI, "--data-dir", str(b.data_dir), "events", "--json", "--since", "0"],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV, cwd=str(REPO))
            try:
                assert follower.stdout is not None and follower.stderr is not None
                first = await follower.stdout.receive_some(65536)  # the backlog: it is subscribed
                assert json.loads(first.split(b"\n")[0])["cursor"] == 1
                await b.call("stop")
                assert await follower.wait() == 1
                err = (await read_all(follower.stderr)).decode()
                assert err.startswith("error: the node stopped; resume with: channels events --since ")
                assert err.count("\n") == 1
            finally:
                if follower.returncode is None:
                    follower.kill()
                    await follower.wait()


class JsonLines:
    """JSON objects, one per line, read from a process's stdout (bounded by the test's deadline)."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream
        self.buffer = b""
        self.seen: list[dict[str, Any]] = []

    async def until(self, kind: str) -> list[dict[str, Any]]:
        """The objects read until one of ``kind`` (inclusive)."""
        got: list[dict[str, Any]] = []
        while not got or got[-1]["kind"] != kind:
            while b"\n" not in self.buffer:
                chunk = await self.stream.receive_some(65536)
                assert chunk, "channels events ended early"
                self.buffer += chunk
            line, self.buffer = self.buffer.split(b"\n", 1)
            got.append(json.loads(line))
        self.seen += got
        return got


async def read_all(stream: Any) -> bytes:
    out = b""
    while chunk := await stream.receive_some(65536):
        out += chunk
    return out
