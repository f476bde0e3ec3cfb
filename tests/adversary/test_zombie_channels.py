"""Zombie channels: Sybil identities propose channels they never fund.

Every accepted proposal costs the node a stored channel, a link and a reconnect loop;
per-peer limits do not help when each identity is fresh. Forty identities attack one
node configured with small limits. The node must keep the channels in ``proposed`` or
``funding`` at or below ``max_unfinished_channels`` at every moment, decline proposals
whose proposer deposits nothing, drop the unfunded ones after ``funding_timeout``, and
not keep dialing peers it has no funded channel with."""

from __future__ import annotations

from pathlib import Path

import trio

from channels.core.ids import Address
from channels.core.messages import ChannelAccept, ChannelDecline
from channels.errors import ChannelsError
from channels.testing.hostile import HostilePeer, NoMessage, open_hostile_peer, open_hostile_peers
from tests.adversary.harness import devnet, info, survives, unfinished, victim, wait_for

SYBILS = 40
PROPOSALS_EACH = 2
LIMITS = {"max_unfinished_channels": 8, "max_peers_without_channel": 10, "funding_timeout": 3}


async def test_sybil_zombie_channels_are_bounded_and_expire(tmp_path: Path) -> None:
    with trio.fail_after(60):
        async with devnet(tmp_path) as (addr, ledger), victim(tmp_path, addr, **LIMITS) as node:
            node_info = await info(node)
            address, node_l1 = node_info["addresses"][0], Address(bytes.fromhex(node_info["l1_account"]))

            # 1. A proposer that deposits nothing risks nothing: declined.
            async with open_hostile_peer(ledger=ledger) as freeloader:
                await freeloader.connect(address)
                proposal = await freeloader.propose(0, 0)
                answer = await freeloader.next_message((ChannelAccept, ChannelDecline), timeout=10,
                                                       where=lambda m: m.channel_id == proposal.params.channel_id)
                assert isinstance(answer, ChannelDecline), "a channel without any deposit was accepted"

            # 2. Forty fresh identities, each proposing channels it will never fund.
            peak = 0
            attack_over = trio.Event()

            async def sample() -> None:
                nonlocal peak
                while not attack_over.is_set():
                    peak = max(peak, await unfinished(node))
                    await trio.sleep(0.1)

            async def zombie(peer: HostilePeer) -> None:
                peer.withhold()  # never deposit, never answer
                try:
                    await peer.connect(address)
                    for _ in range(PROPOSALS_EACH):
                        await peer.propose(1_000, participants=(peer.l1_address, node_l1))
                    await peer.next_message((ChannelAccept, ChannelDecline), timeout=3)
                except (ChannelsError, NoMessage):
                    pass  # refused or ignored: that is the node's right

            async with open_hostile_peers(SYBILS, ledger=ledger) as sybils:
                with survives(node, f"{SYBILS} Sybil identities proposing zombie channels"):
                    async with trio.open_nursery() as nursery:
                        nursery.start_soon(sample)
                        async with trio.open_nursery() as attack:
                            for peer in sybils:
                                attack.start_soon(zombie, peer)
                        attack_over.set()
                    peak = max(peak, await unfinished(node))
                    assert peak <= LIMITS["max_unfinished_channels"], (
                        f"{peak} channels were unfinished at once; the limit is {LIMITS['max_unfinished_channels']}")

                    # 3. Never funded: gone from proposed/funding after the funding timeout.
                    async def none_unfinished() -> bool:
                        return await unfinished(node) == 0

                    await wait_for("unfunded channels dropped after funding_timeout", none_unfinished,
                                   timeout=LIMITS["funding_timeout"] + 10)

                    # 4. No redial loop: a peer without a funded channel that goes away stays away.
                    introduced = [p for p in sybils if p.inbound]
                    assert introduced, "no Sybil got as far as the node's Init"
                    sentinel = introduced[0]
                    await sentinel.disconnect()
                    gone = trio.current_time()
                    await trio.sleep(3)  # the reference redials at once, then after 0.5, 1 and 2 s
                    redials = [t for t in sentinel.inbound if t > gone]
                    assert not redials, f"the node dialed a peer without a funded channel {len(redials)} times"
                    peers = (await info(node)).get("peers")  # only if getinfo reports peers
                    if peers is not None:
                        count = peers if isinstance(peers, int) else len(peers)
                        assert count <= LIMITS["max_peers_without_channel"], f"the node keeps {count} peers"
