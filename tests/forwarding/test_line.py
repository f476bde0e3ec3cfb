"""Payments across a line of nodes over the memory transport (in process, MockClock)."""

from __future__ import annotations

from pathlib import Path

import trio
from trio.testing import MockClock

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
