"""In-process networks of nodes over the memory transport (ARCHITECTURE section 10):
lossy and reordering links, disconnects, a stale-state adversary. The devnet runs
without a clock, so challenge windows pass only when the test advances time; trio runs on
a ``MockClock`` that jumps ahead whenever every task waits, so timeouts cost no real time."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import trio
from trio.testing import MockClock

from channels.chain.devnet.ledger import Devnet
from channels.core.channel import Phase, verify_signed
from channels.core.ids import Address, ChannelId
from channels.errors import InsufficientFunds
from channels.net.memory import Faults, MemoryNetwork, open_memory_transport
from channels.node import Node, PaymentFailed, load_config


@asynccontextmanager
async def network(tmp_path: Path, names: list[str], faults: Faults | None = None,
                  devnet: Devnet | None = None) -> AsyncIterator[tuple[Devnet, MemoryNetwork, dict[str, Node]]]:
    dev = devnet or Devnet(None, clock=None)
    net = MemoryNetwork(faults)
    async with AsyncExitStack() as stack:
        nodes: dict[str, Node] = {}
        for name in names:
            transport = await stack.enter_async_context(open_memory_transport(net, name))
            config = load_config(tmp_path / name, tick_interval=0.05, reconnect_interval=0.02)
            nodes[name] = await stack.enter_async_context(Node.open(config, ledger=dev, transport=transport))
            dev.faucet_sync(nodes[name].l1_address, 1_000_000)
        yield dev, net, nodes


async def open_pair(a: Node, b: Node, amount: int) -> ChannelId:
    await a.connect(b.addresses[0])
    return await a.open_channel(b.peer_id, amount, challenge_duration=100)


async def settle(a: Node, b: Node, cid: ChannelId, timeout: float = 20) -> None:
    """Wait until both sides hold the same latest state and nothing is in flight."""
    with trio.move_on_after(timeout):
        while True:
            ca, cb = a.channel(cid), b.channel(cid)
            if ca.latest == cb.latest and not (ca.pending or cb.pending or ca.queue or cb.queue):
                return
            await trio.sleep(0.02)
    raise AssertionError(f"channel did not settle: {describe(a, cid)} / {describe(b, cid)}")


def describe(node: Node, cid: ChannelId) -> str:
    ch = node.channel(cid)
    pending = (ch.pending.kind.value, ch.pending.version) if ch.pending else None
    return (f"{node.peer_id}: v{ch.version} proposer={ch.latest_proposer} me={ch.me} pending={pending} "
            f"queue={len(ch.queue)} yielded={ch.yielded} highest_signed={ch.highest_signed}")


async def test_payments_over_a_faulty_network(tmp_path: Path, autojump_clock: MockClock) -> None:
    faults = Faults(drop_rate=0.02, reorder_rate=0.02, seed=4)
    async with network(tmp_path, ["a", "b", "c"], faults) as (_dev, net, nodes):
        a, b, c = nodes["a"], nodes["b"], nodes["c"]
        with trio.fail_after(60):
            net.faults.drop_rate = net.faults.reorder_rate = 0.0
            ab = await open_pair(a, b, 10_000)
            bc = await open_pair(b, c, 10_000)
            net.faults.drop_rate, net.faults.reorder_rate = 0.02, 0.02
            sent: dict[tuple[str, ChannelId], int] = {}
            failures = 0
            rng = random.Random(1)

            async def payer(node: Node, name: str, cid: ChannelId, count: int) -> None:
                nonlocal failures
                for _ in range(count):
                    amount = rng.randint(1, 20)
                    try:
                        with trio.fail_after(10):
                            await node.pay(cid, amount)
                    except (PaymentFailed, InsufficientFunds):
                        failures += 1
                        continue
                    except trio.TooSlowError:
                        continue  # may still complete after a reconnect: checked via balances
                    sent[(name, cid)] = sent.get((name, cid), 0) + amount

            async def chaos() -> None:
                for _ in range(10):
                    await trio.sleep(0.05)
                    net.disconnect("a", "b")

            async with trio.open_nursery() as nursery:
                nursery.start_soon(payer, a, "a", ab, 60)
                nursery.start_soon(payer, b, "b", bc, 60)
                nursery.start_soon(payer, c, "c", bc, 30)
                nursery.start_soon(chaos)
            net.faults.drop_rate = net.faults.reorder_rate = 0.0
            net.disconnect("a", "b")
            net.disconnect("b", "c")
            await settle(a, b, ab)
            await settle(b, c, bc)
        for x, y, cid in ((a, b, ab), (b, c, bc)):
            cx, cy = x.channel(cid), y.channel(cid)
            assert cx.latest == cy.latest
            assert verify_signed(cx.params, cx.latest, x.engine.env.scheme)
            assert cx.allocation.totals() == (10_000,)
        # Every acknowledged payment is reflected; nothing else moved money.
        assert a.channel(ab).allocation.balances[0] == (10_000 - sent.get(("a", ab), 0),
                                                       sent.get(("a", ab), 0))
        b_out = sent.get(("b", bc), 0)
        c_out = sent.get(("c", bc), 0)
        assert b.channel(bc).allocation.balances[0] == (10_000 - b_out + c_out, b_out - c_out)
        assert sent, "some payments went through"


async def test_stale_registration_is_refuted_and_adversary_gets_only_its_due(
        tmp_path: Path, autojump_clock: MockClock) -> None:
    async with network(tmp_path, ["honest", "cheat"]) as (dev, _net, nodes):
        honest, cheat = nodes["honest"], nodes["cheat"]
        with trio.fail_after(30):
            cid = await open_pair(honest, cheat, 1_000)
            await honest.pay(cid, 600)  # cheat is owed 600 ...
            stale = cheat.channel(cid).latest
            await cheat.pay(cid, 500)  # ... then pays 500 back: it is owed 100
            await settle(honest, cheat, cid)
            before = {n: await dev.balance(nodes[n].l1_address) for n in nodes}
            # The adversary registers the stale state in which it held 600.
            await dev.register(cheat.l1_key, cheat.channel(cid).params, stale)
            ch = await honest.wait_phase(cid, Phase.DISPUTED)
            while dev.channel_sync(cid).registered.state.version != ch.version:  # refuted
                await trio.sleep(0.02)
            dev.advance_time(101)
            await honest.wait_phase(cid, Phase.SETTLED)
        after = {n: await dev.balance(nodes[n].l1_address) for n in nodes}
        assert after["cheat"] - before["cheat"] == 100
        assert after["honest"] - before["honest"] == 900


async def test_node_restart_resumes_channel(tmp_path: Path, autojump_clock: MockClock) -> None:
    dev = Devnet(None, clock=None)
    net = MemoryNetwork()
    async with open_memory_transport(net, "b") as tb, Node.open(load_config(tmp_path / "b", tick_interval=0.05),
                                                                ledger=dev, transport=tb) as b:
        async with open_memory_transport(net, "a") as ta, Node.open(
                load_config(tmp_path / "a", tick_interval=0.05, reconnect_interval=0.02), ledger=dev,
                transport=ta) as a:
            dev.faucet_sync(a.l1_address, 10_000)
            with trio.fail_after(20):
                cid = await open_pair(a, b, 5_000)
                for _ in range(10):
                    await a.pay(cid, 3)
        # a is down; restart it from its data dir
        async with open_memory_transport(net, "a") as ta, Node.open(
                load_config(tmp_path / "a", tick_interval=0.05, reconnect_interval=0.02), ledger=dev,
                transport=ta) as a2:
            with trio.fail_after(20):
                assert a2.channel(cid).version == 10
                await a2.pay(cid, 5)
                await b.wait_version(cid, 11)
            assert b.channel(cid).allocation.balances[0] == (4_965, 35)


async def test_force_close_settles_after_the_window(tmp_path: Path, autojump_clock: MockClock) -> None:
    async with network(tmp_path, ["a", "b"]) as (dev, net, nodes):
        a, b = nodes["a"], nodes["b"]
        with trio.fail_after(30):
            cid = await open_pair(a, b, 1_000)
            await a.pay(cid, 250)
            before = {n: await dev.balance(nodes[n].l1_address) for n in nodes}
            net.disconnect("a", "b")
            nodes["b"].transport.up = False  # type: ignore[attr-defined]  # b vanishes
            await a.close(cid, force=True, wait=False)
            await a.wait_phase(cid, Phase.DISPUTED)
            while a.channel(cid).deadline is None:
                await trio.sleep(0.02)
            dev.advance_time(101)
            await a.wait_phase(cid, Phase.SETTLED)
        after = {n: await dev.balance(nodes[n].l1_address) for n in nodes}
        assert (after["a"] - before["a"], after["b"] - before["b"]) == (750, 250)


@pytest.mark.allow_error_logs  # the node logs the pruned events it had to re-read
async def test_stale_registration_is_refuted_after_its_events_were_pruned(
        tmp_path: Path, autojump_clock: MockClock) -> None:
    """The honest node was offline while the cheat registered and the L1 pruned those events:
    on restart it reads the channel from the L1 instead, and still refutes in time."""
    dev = Devnet(None, clock=None, log_kept=4)
    net = MemoryNetwork()

    def honest_node(transport: Any) -> Any:
        return Node.open(load_config(tmp_path / "honest", tick_interval=0.05, reconnect_interval=0.02),
                         ledger=dev, transport=transport)

    async with open_memory_transport(net, "cheat") as tc, Node.open(
            load_config(tmp_path / "cheat", tick_interval=0.05), ledger=dev, transport=tc) as cheat:
        async with open_memory_transport(net, "honest") as th, honest_node(th) as honest:
            dev.faucet_sync(honest.l1_address, 10_000)
            with trio.fail_after(20):
                cid = await open_pair(honest, cheat, 1_000)
                await honest.pay(cid, 600)
                stale = cheat.channel(cid).latest  # holds 600 for the cheat
                await cheat.pay(cid, 500)
                await settle(honest, cheat, cid)
        before = {"honest": await dev.balance(honest.l1_address), "cheat": await dev.balance(cheat.l1_address)}
        await dev.register(cheat.l1_key, cheat.channel(cid).params, stale)
        for i in range(10):  # unrelated L1 traffic pushes the registration out of the event log
            dev.faucet_sync(Address(bytes([i + 1]) * 32), 1)
        async with open_memory_transport(net, "honest") as th, honest_node(th) as honest:
            with trio.fail_after(20):
                while dev.channel_sync(cid).registered.state.version != honest.channel(cid).version:
                    await trio.sleep(0.02)  # refuted although no Registered event was ever seen
                dev.advance_time(101)
                await honest.wait_phase(cid, Phase.SETTLED)
    assert await dev.balance(cheat.l1_address) - before["cheat"] == 100
    assert await dev.balance(honest.l1_address) - before["honest"] == 900
