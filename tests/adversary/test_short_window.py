"""A channel with a 1-second challenge window is a trap: the proposer registers a stale
state and the window closes before the victim can refute. A node with default settings
must decline it, saying why."""

from __future__ import annotations

from pathlib import Path

import trio

from channels.core.messages import ChannelAccept, ChannelDecline
from channels.testing.hostile import open_hostile_peer
from tests.adversary.harness import devnet, info, victim


async def test_one_second_window_is_declined(tmp_path: Path) -> None:
    with trio.fail_after(60):
        async with devnet(tmp_path) as (addr, ledger), victim(tmp_path, addr) as node:
            node_info = await info(node)
            async with open_hostile_peer(ledger=ledger) as peer:
                await peer.connect(node_info["addresses"][0])
                proposal = await peer.propose(1_000, challenge_duration=1)
                cid = proposal.params.channel_id
                answer = await peer.next_message((ChannelDecline, ChannelAccept), timeout=10,
                                                 where=lambda m: m.channel_id == cid)
                assert isinstance(answer, ChannelDecline), "the node accepted a 1-second challenge window"
                assert "challenge" in answer.reason.lower(), answer.reason
            await info(node)  # still up
