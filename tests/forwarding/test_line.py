"""Payments across a line of nodes over the memory transport (in process, MockClock)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs
import trio
from trio.testing import MockClock

from channels.core.ops import AddLock
from channels.forwarding import HopTxn

from .helpers import balance, hop_network, line, quiet, teach_graph


async def test_invoice_paid_across_three_hops(tmp_path: Path, autojump_clock: MockClock) -> None:
    async with hop_network(tmp_path, ["a", "b", "c", "d"]) as (_dev, _net, nodes):
        a, b, c, d = (nodes[n] for n in "abcd")
        with trio.fail_after(60):
            ab, bc, cd = await line([a, b, c, d], 100_000)
            # d has no balance on its side of c-d; the invoice's hint is c's channel to d.
            text, _ = await d.payments.create_invoice(5_000, description="coffee")
            # a knows b's channel to c only if told: give a the graph by hand as gossip would.
            teach_graph(a, [(b, c, bc)])
            record = await a.payments.pay_invoice(text, max_fee=100)
            assert record.status == "succeeded", record.failure
            await quiet([a, b, c, d])
        fee_b = b.payments.fees_earned()
        fee_c = c.payments.fees_earned()
        assert fee_b > 0 and fee_c > 0 and record.fee_paid == fee_b + fee_c
        assert balance(d, cd) == 5_000
        assert balance(a, ab) == 100_000 - 5_000 - record.fee_paid
        assert balance(b, ab) == 5_000 + fee_b + fee_c and balance(b, bc) == 100_000 - 5_000 - fee_c
        # Paying again returns the first payment: nothing moves.
        again = await a.payments.pay_invoice(text)
        assert again.payment_hash == record.payment_hash and again.status == "succeeded"
        assert balance(a, ab) == 100_000 - 5_000 - record.fee_paid


async def test_a_hop_asking_more_fee_is_paid_after_one_retry(tmp_path: Path, autojump_clock: MockClock) -> None:
    async with hop_network(tmp_path, ["a", "b", "c"]) as (_dev, _net, nodes):
        a, b, c = (nodes[n] for n in "abc")
        with trio.fail_after(60):
            ab, bc = await line([a, b, c], 100_000)
            # c's invoice hints b's channel with the default fees; b asks ten times more.
            await b.payments.set_fees(bc, base=10, ppm=1_000)
            text, _ = await c.payments.create_invoice(10_000)
            record = await a.payments.pay_invoice(text)
            assert record.status == "succeeded", record.failure
            assert record.attempts == 2  # fee_insufficient with b's terms, then paid with them
            assert record.fee_paid == 10 + 10_000 * 1_000 // 1_000_000
            await quiet([a, b, c])
        forwards = b.payments.list_forwards()
        # The underpaid attempt was refused before b locked anything: it is no forward.
        assert [f["status"] for f in forwards] == ["settled"]
        assert b.payments.fees_earned() == record.fee_paid
        assert balance(c, bc) == 10_000 and balance(a, ab) == 100_000 - 10_000 - record.fee_paid


async def test_keysend_and_a_refused_invoice(tmp_path: Path, autojump_clock: MockClock) -> None:
    async with hop_network(tmp_path, ["a", "b", "c"]) as (_dev, _net, nodes):
        a, b, c = (nodes[n] for n in "abc")
        with trio.fail_after(60):
            ab, bc = await line([a, b, c], 100_000)
            teach_graph(a, [(b, c, bc)])
            sent = await a.payments.keysend(c.peer_id, 777)
            assert sent.status == "succeeded" and len(sent.route) == 2 and sent.route[-1] == c.peer_id
            await quiet([a, b, c])
            assert balance(c, bc) == 777
            # An invoice whose secret the payer gets wrong is refused by the payee, not retried.
            text, inv = await c.payments.create_invoice(1_000)
            c.payments.hops.invoices[inv.payment_hash] = attrs.evolve(inv, payment_secret=bytes(32))
            failed = await a.payments.pay_invoice(text)
            assert failed.status == "failed" and "incorrect_or_unknown_payment_details" in failed.failure
            await quiet([a, b, c])
        assert balance(c, bc) == 777 and balance(a, ab) == 100_000 - 777 - sent.fee_paid


async def test_a_replayed_onion_is_refused(tmp_path: Path, autojump_clock: MockClock) -> None:
    async with hop_network(tmp_path, ["a", "b", "c"]) as (_dev, _net, nodes):
        a, b, c = (nodes[n] for n in "abc")
        seen: list[AddLock] = []
        machine = b.engine.hops
        assert machine is not None

        class Recording(HopTxn):
            def lock_added(self, channel_id: bytes, ch: Any, op: AddLock, *rest: Any) -> None:
                seen.append(op)
                super().lock_added(channel_id, ch, op, *rest)

        machine.begin = lambda now, unix_now: Recording(machine, now, unix_now)  # type: ignore[method-assign]
        with trio.fail_after(60):
            ab, bc = await line([a, b, c], 100_000)
            teach_graph(a, [(b, c, bc)])
            first = await a.payments.keysend(c.peer_id, 1_000)
            assert first.status == "succeeded"
            await quiet([a, b, c])
            # a (or anyone who saw the packet) sends the same onion again in a new lock of its own:
            # b must not forward it a second time.
            replay = attrs.evolve(seen[0], lock_id=b"replayed-lock-01")
            await a._propose(ab, replay)
            await quiet([a, b, c])
        assert len(b.payments.list_forwards()) == 1  # refused before anything was locked downstream
        assert balance(c, bc) == 1_000
        assert balance(a, ab) == 100_000 - 1_000 - first.fee_paid  # the replayed lock came back to a
