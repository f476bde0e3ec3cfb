"""Amounts at the top of the u64 range: a hostile peer pays the node 2**63, and 2**64 - 1,
in one update each. The protocol allows both (01-encoding: u64 is 0 .. 2**64 - 1), so the
node must countersign, show the balance to the unit, and keep it across a clean restart
and a ``kill -9``. (An integer column that only holds 2**63 - 1 used to kill the node.)"""

from __future__ import annotations

from pathlib import Path

import trio

from channels.testing.hostile import open_hostile_peers
from tests.adversary.harness import channels, devnet, funded_channel, info, survives, victim

AMOUNTS = (2**63, 2**64 - 1)


async def test_top_of_range_payments_survive_restarts(tmp_path: Path) -> None:
    with trio.fail_after(90):
        async with devnet(tmp_path) as (addr, ledger), victim(tmp_path, addr) as node, \
                open_hostile_peers(len(AMOUNTS), ledger=ledger) as peers:
            address = (await info(node))["addresses"][0]
            expected: dict[str, int] = {}
            for peer, amount in zip(peers, AMOUNTS, strict=True):
                cid = await funded_channel(peer, address, amount)
                with survives(node, f"a payment of {amount}"):
                    await peer.pay(cid, amount, timeout=20)  # returns on the node's countersignature
                expected[cid.hex()] = amount

            async def balances() -> dict[str, tuple[str, int, int]]:
                return {c["channel_id"]: (c["state"], c["balance"], c["peer_balance"])
                        for c in await channels(node) if c["channel_id"] in expected}

            want = {cid: ("open", amount, 0) for cid, amount in expected.items()}
            assert await balances() == want
            await info(node)

            node.stop()  # SIGTERM
            await node.start_and_wait()
            assert await balances() == want, "a clean restart changed the balances"
            node.kill9()
            await node.start_and_wait()
            assert await balances() == want, "kill -9 and a restart changed the balances"
            await info(node)
