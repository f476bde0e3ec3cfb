"""A small app played through the node, and through ``progress`` on the devnet when one
player stops answering: the other forces its move on chain and the L1 pays out the state
after that move."""

from __future__ import annotations

from contextlib import AsyncExitStack
from pathlib import Path

import trio
from trio.testing import MockClock

from channels.chain.devnet.ledger import Devnet
from channels.core.app import DEFAULT_APPS
from channels.core.channel import Phase
from channels.net.memory import MemoryNetwork, open_memory_transport
from channels.node import Node, load_config
from tests.apps import RaceToTen

APPS = DEFAULT_APPS.with_apps(RaceToTen())  # the nodes and the L1 are handed the same rules


async def test_a_game_is_played_off_chain_then_forced_on_chain(tmp_path: Path, autojump_clock: MockClock) -> None:
    dev = Devnet(None, clock=None, apps=APPS)
    net = MemoryNetwork()
    async with AsyncExitStack() as stack:
        nodes = {}
        for name in ("a", "b"):
            transport = await stack.enter_async_context(open_memory_transport(net, name))
            config = load_config(tmp_path / name, tick_interval=0.05, reconnect_interval=0.02,
                                 auto_accept_funding=100)
            nodes[name] = await stack.enter_async_context(Node.open(config, ledger=dev, transport=transport, apps=APPS))
            dev.faucet_sync(nodes[name].l1_address, 1_000)
        a, b = nodes["a"], nodes["b"]
        with trio.fail_after(30):
            await a.connect(b.addresses[0])
            cid = await a.open_channel(b.peer_id, 20, peer_amount=20, app_id="race-to-ten", challenge_duration=100)
            await a.move(cid, bytes([3]))
            await b.wait_version(cid, 1)
            await b.move(cid, bytes([2]))
            await a.wait_version(cid, 2)
            assert a.channel(cid).latest.state.app_data == bytes([5, 0])  # a to move
            before = {n: await dev.balance(nodes[n].l1_address) for n in nodes}
            net.transports["b"].up = False  # b stops answering
            net.disconnect("a", "b")
            await a.close(cid, force=True, wait=False)
            while b.channel(cid).phase is not Phase.DISPUTED or a.channel(cid).deadline is None:
                await trio.sleep(0.02)
            await a.move(cid, bytes([3]))  # forced on chain: a's signature only
            while (dev.channel_sync(cid).registered or a.channel(cid).latest).state.version < 3:
                await trio.sleep(0.02)
            forced = dev.channel_sync(cid).registered
            assert forced is not None and forced.state.app_data == bytes([8, 1])
            while b.channel(cid).forced is None:  # b saw the forced move and checked it
                await trio.sleep(0.02)
            dev.advance_time(101)  # b never answers on chain within the window
            await a.wait_phase(cid, Phase.SETTLED)
        after = {n: await dev.balance(nodes[n].l1_address) for n in nodes}
        # Off-chain: a paid 3, b paid 2; on chain a paid 3 more: a 20-3+2-3 = 16, b 20+3-2+3 = 24.
        assert (after["a"] - before["a"], after["b"] - before["b"]) == (16, 24)
