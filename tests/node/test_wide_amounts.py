"""A channel holding more than 2^64-1 (an 18-decimals token's whole range needs 256 bits):
funded, paid both ways and closed through nodes on the devnet, with exact L1 payouts."""

from __future__ import annotations

from pathlib import Path

import trio
from trio.testing import MockClock

from channels.core.channel import Phase
from channels.core.ids import MAX_U64
from tests.node.test_memory_network import network, open_pair

BIG = 10**30  # a million tokens of 18 decimals: far above 2^64-1 (about 1.8e19)


async def test_a_wide_channel_pays_and_closes_exactly(tmp_path: Path, autojump_clock: MockClock) -> None:
    async with network(tmp_path, ["a", "b"]) as (dev, _net, nodes):
        a, b = nodes["a"], nodes["b"]
        dev.faucet_sync(a.l1_address, BIG)
        before = {n: await dev.balance(nodes[n].l1_address) for n in nodes}
        with trio.fail_after(30):
            cid = await open_pair(a, b, BIG)
            await a.pay(cid, MAX_U64 + 7)
            await a.pay(cid, BIG // 3)
            await b.pay(cid, 5)
            await a.wait_version(cid, 3)
            expected_b = MAX_U64 + 7 + BIG // 3 - 5
            assert a.channel(cid).allocation.balances[0] == (BIG - expected_b, expected_b)
            await a.close(cid)
            await a.wait_phase(cid, Phase.SETTLED)
            await b.wait_phase(cid, Phase.SETTLED)
        after = {n: await dev.balance(nodes[n].l1_address) for n in nodes}
        assert after["a"] - before["a"] == -expected_b
        assert after["b"] - before["b"] == expected_b
