"""A peer that answers every update with ``UpdateReject(retry=True)`` makes an honest
proposer re-propose at once, forever: each round is a new signature and a durable
commit on the node. The node must rate-limit its re-proposals (a few per second),
stay up, and come back after ``kill -9`` with the channel intact."""

from __future__ import annotations

from pathlib import Path

import trio

from channels.core.messages import UpdateProposal
from channels.frontend.control_client import RpcFailed
from channels.testing.hostile import open_hostile_peer, reject_updates
from tests.adversary.harness import channels, devnet, funded_channel, info, survives, victim

FLOOD_SECONDS = 5.0
MAX_REPROPOSALS = 50  # in FLOOD_SECONDS: generous for "a few per second", far below "at once"


async def test_retry_rejects_are_rate_limited(tmp_path: Path) -> None:
    with trio.fail_after(90):
        async with devnet(tmp_path) as (addr, ledger), victim(tmp_path, addr) as node, \
                open_hostile_peer(ledger=ledger) as peer:
            cid = await funded_channel(peer, (await info(node))["addresses"][0], 1_000)
            await peer.pay(cid, 500)  # the node now has something to pay back
            peer.policy = reject_updates(retry=True)
            since = len(peer.inbox)

            outcome = "still pending"

            async def pay() -> None:
                nonlocal outcome
                try:
                    await node.call("pay-direct", channel_id=cid.hex(), amount=1)
                    outcome = "paid"
                except RpcFailed as exc:  # giving up on a peer that refuses everything is fine
                    outcome = f"failed: {exc}"

            with survives(node, "the retry-reject flood"):
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(pay)  # never countersigned: it fails, or is cancelled below
                    await peer.next_message(UpdateProposal, timeout=10)
                    start = trio.current_time()
                    await trio.sleep(FLOOD_SECONDS)
                    proposals = [r for r in peer.inbox[since:]
                                 if isinstance(r.message, UpdateProposal) and r.at <= start + FLOOD_SECONDS]
                    with trio.fail_after(10):
                        await info(node)  # answers while under attack
                    nursery.cancel_scope.cancel()
            assert len(proposals) <= MAX_REPROPOSALS, (
                f"{len(proposals)} proposals in {FLOOD_SECONDS:g} s: re-proposals are not rate-limited")
            assert outcome != "paid", "a payment went through although every update was refused"

            peer.withhold()
            node.kill9()
            await node.start_and_wait()
            row = next((c for c in await channels(node) if c["channel_id"] == cid.hex()), None)
            assert row is not None, "the channel is gone after kill -9 and a restart"
            assert row["capacity"] == 1_000 and row["state"] == "open", row
