"""The stale-state attack through the kit: the hostile peer registers an old co-signed
state that pays it more, then withdraws after the window. The node must refute in
time, so the payout follows the latest state."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import trio

from channels.core.ids import Address
from channels.testing.hostile import open_hostile_peer
from tests.adversary.harness import channels, devnet, funded_channel, info, victim, wait_for
from tests.procs import SHORT_WINDOWS


async def test_registered_stale_state_is_refuted(tmp_path: Path) -> None:
    with trio.fail_after(60):
        async with devnet(tmp_path) as (addr, ledger), victim(tmp_path, addr, **SHORT_WINDOWS) as node, \
                open_hostile_peer(ledger=ledger) as peer:
            node_info = await info(node)
            node_l1 = Address(bytes.fromhex(node_info["l1_account"]))
            cid = await funded_channel(peer, node_info["addresses"][0], 1_000, challenge_duration=3)
            await peer.pay(cid, 600)  # version 1: the node is owed 600; version 0 owed it nothing
            before: Any = {a: await ledger.balance(a) for a in (peer.l1_address, node_l1)}

            await peer.register_stale(cid, 0)
            await peer.withdraw(cid, timeout=20)
            assert await ledger.balance(peer.l1_address) - before[peer.l1_address] == 400, "the stale state won"

            async def settled() -> bool:
                return any(c["channel_id"] == cid.hex() and c["state"] == "settled" for c in await channels(node))

            await wait_for("the node sees the channel settled", settled, timeout=15)
            assert await ledger.balance(node_l1) - before[node_l1] == 600
