"""The shortest challenge window, in seconds and in L1 blocks (proto/02 section 12).

Finding: the default accepted 1-second windows; on the devnet a window ends at the next
block, and a stale state registered just before a block beat the honest refute.
"""

from __future__ import annotations

from pathlib import Path

import attrs
import pytest
import trio

from channels.chain.devnet.ledger import Devnet
from channels.errors import LocalProtocolError
from channels.node import ChannelNotOpened
from tests.node.test_memory_network import network


async def test_a_window_below_the_minimum_is_refused_before_anything_is_signed(tmp_path: Path) -> None:
    async with network(tmp_path, ["a", "b"]) as (_dev, _net, nodes):
        a, b = nodes["a"], nodes["b"]
        with trio.fail_after(10):
            await a.connect(b.addresses[0])
            with pytest.raises(LocalProtocolError, match="below our minimum of 60 s"):
                await a.open_channel(b.peer_id, 100, challenge_duration=59)
        assert not a.list_channels()


async def test_a_window_spanning_too_few_blocks_is_declined_by_the_peer(tmp_path: Path) -> None:
    # 10-second blocks: the default minimum of 10 blocks asks for 100 s, above 60 s.
    async with network(tmp_path, ["a", "b"], devnet=Devnet(None, clock=None, block_time=10)) as (_d, _n, nodes):
        a, b = nodes["a"], nodes["b"]
        a.config = attrs.evolve(a.config, min_challenge_blocks=1)  # a alone accepts it
        with trio.fail_after(10):
            await a.connect(b.addresses[0])
            with pytest.raises(ChannelNotOpened, match="the peer declined: challenge window of 60 s is below our "
                                                       "minimum of 100 s"):
                await a.open_channel(b.peer_id, 100, challenge_duration=60)
        [row] = a.list_channels()
        assert row.state == "settled", "b declined: the proposal never opened"
        with trio.fail_after(10):
            cid = await a.open_channel(b.peer_id, 100, challenge_duration=100)
        assert b.channel(cid).params.challenge_duration == 100
