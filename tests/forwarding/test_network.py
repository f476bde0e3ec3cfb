"""Twenty nodes in a random topology over the memory transport (MockClock): payments of one to
five hops while some forwarders are offline, refuse everything, or hold locks until they expire.
Every payment ends (succeeded or failed, none stuck), and money is conserved per node with the
fees accounted for."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import trio
from trio.testing import MockClock

from channels.chain.devnet.ledger import Devnet
from channels.core.channel import Phase
from channels.core.ids import ChannelId
from channels.forwarding import HopTxn, PaymentRecord
from channels.net.memory import Faults
from channels.node import Node

from .helpers import channel, hop_network, quiet, teach_graph

NAMES = [f"n{i:02d}" for i in range(20)]
# Locks of about a minute of L1 time, so that a held lock expires after a few turns of the clock.
SHORT_LOCKS = {"lock_margin": 20, "expiry_delta": 40, "min_final_expiry_delta": 60}


async def totals(dev: Devnet, node: Node) -> int:
    """What a node owns: its L1 balance and, in channels not yet settled on the L1, its balance
    and its locks as payer (still its money until settled)."""
    total = await dev.balance(node.l1_address)
    for ch in node.engine.channels.values():
        if ch.phase is not Phase.SETTLED:
            total += ch.allocation.balances[0][ch.me]
            total += sum(lk.amount for lk in ch.allocation.locks if lk.payer == ch.me)
    return total


def distance(adjacent: dict[str, set[str]], a: str, b: str) -> int:
    seen, frontier, hops = {a}, {a}, 0
    while frontier and b not in frontier:
        frontier = {y for x in frontier for y in adjacent[x]} - seen
        seen |= frontier
        hops += 1
    return hops if b in frontier else -1


async def test_twenty_nodes_with_bad_forwarders(tmp_path: Path, autojump_clock: MockClock) -> None:
    rng = random.Random(20)
    async with hop_network(tmp_path, NAMES, Faults(reorder_rate=0.01, seed=3),
                           tick_interval=1.0, **SHORT_LOCKS) as (dev, net, nodes):
        pairs: list[tuple[Node, Node, ChannelId]] = []
        adjacent: dict[str, set[str]] = {n: set() for n in NAMES}
        edges = {(NAMES[i], NAMES[(i + 1) % 20]) for i in range(20)}  # a ring, plus chords
        edges |= {("n07", "n12"), ("n07", "n16"), ("n02", "n07")}  # the greedy node is a hub
        while len(edges) < 32:
            x, y = rng.sample(NAMES, 2)
            if (y, x) not in edges:
                edges.add((x, y))
        with trio.fail_after(3000):
            for x, y in sorted(edges):
                cid = await channel(nodes[x], nodes[y], 200_000)
                await nodes[x].pay(cid, 80_000)  # liquidity both ways
                pairs.append((nodes[x], nodes[y], cid))
                adjacent[x].add(y)
                adjacent[y].add(x)
            await quiet(list(nodes.values()))
            for _, _, cid in pairs:  # the greedy hub forwards for free: routes go through it
                if cid in nodes["n07"].engine.channels:
                    await nodes["n07"].payments.set_fees(cid, base=0, ppm=0)
            for node in nodes.values():
                teach_graph(node, pairs)
            before = {n: await totals(dev, nodes[n]) for n in NAMES}
            # Misbehaviour: n05 goes offline, n06 refuses every forward, n07 holds locks until expiry.
            net.transports[nodes["n05"].peer_id].up = False
            for other in NAMES:
                net.disconnect(nodes["n05"].peer_id, nodes[other].peer_id)
            for _, _, cid in pairs:
                if cid in nodes["n06"].engine.channels:
                    await nodes["n06"].payments.set_fees(cid, enabled=False)
            greedy = nodes["n07"].engine.hops
            assert greedy is not None
            held_back: list[bytes] = []

            class Greedy(HopTxn):
                def lock_added(self, channel_id: bytes, ch: Any, op: Any, *args: Any) -> None:
                    held_back.append(op.lock_id)  # neither forwards nor fails: the lock waits for expiry

            greedy.begin = lambda now, unix_now: Greedy(greedy, now, unix_now)  # type: ignore[method-assign]

            async def hold_then_fail() -> None:
                # The greedy node wakes up only when locks are near expiry: L1 time moves on.
                while True:
                    await trio.sleep(1)
                    dev.advance_time(5)

            results: list[tuple[str, str, PaymentRecord]] = []
            honest = [n for n in NAMES if n not in ("n05", "n06", "n07")]

            async def pay(src: str, dst: str, amount: int) -> None:
                text, _ = await nodes[dst].payments.create_invoice(amount)
                record = await nodes[src].payments.pay_invoice(text, timeout=3600)
                results.append((src, dst, record))

            async def come_back() -> None:
                await trio.sleep(60)  # n05 was offline for a minute: its peers' locks to it end now
                net.transports[nodes["n05"].peer_id].up = True

            async with trio.open_nursery() as nursery:
                nursery.start_soon(hold_then_fail)
                nursery.start_soon(come_back)
                async with trio.open_nursery() as payers:
                    for k in range(60):
                        src, dst = rng.sample(honest, 2)
                        payers.start_soon(pay, src, dst, rng.randrange(1_000, 20_000))
                        if k % 8 == 7:
                            await trio.sleep(1)
                nursery.cancel_scope.cancel()
            assert len(results) == 60
            assert all(r.status in ("succeeded", "failed") for _, _, r in results)  # none stuck
            # Wait for quiet channels: every lock settled, on or off the L1.
            async with trio.open_nursery() as nursery:
                nursery.start_soon(hold_then_fail)
                await quiet(list(nodes.values()), timeout=3000)
                nursery.cancel_scope.cancel()
        succeeded = [(s, d, r) for s, d, r in results if r.status == "succeeded"]
        hops = {distance(adjacent, s, d) for s, d, _ in results}
        assert len(succeeded) >= 45, [r.failure for _, _, r in results if r.status == "failed"]
        assert max(hops) >= 3 and min(hops) == 1, hops
        assert any(len(r.route) >= 3 for _, _, r in succeeded)
        # Conservation per node: what it paid (with fees), received and earned forwarding.
        for name in NAMES:
            node = nodes[name]
            paid = sum(r.amount + r.fee_paid for s, _, r in succeeded if s == name)
            got = sum(r.amount for _, d, r in succeeded if d == name)
            earned = node.payments.fees_earned()
            assert await totals(dev, node) == before[name] - paid + got + earned, name
        assert sum([await totals(dev, nodes[n]) for n in NAMES]) == sum(before.values())
        assert nodes["n06"].payments.fees_earned() == 0 and nodes["n05"].payments.fees_earned() == 0
        retried = sum(r.attempts for _, _, r in results) - len(results)
        assert held_back and retried >= len(held_back)  # the greedy node held parts; they were routed again
