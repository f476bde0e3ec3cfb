"""A game for three players in process (proto/02 section 13): three nodes over the memory
transport on an in-process devnet, on a ``MockClock``. Last one standing is opened by one node
with the two others, joined by each, played to the end through the game API, and the channel
closed cooperatively: the L1 pays the winner the pot."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import trio
from trio.testing import MockClock

from channels.chain.devnet.ledger import Devnet
from channels.core.channel import Phase
from channels.errors import ChannelsError, InvalidTransition, LocalProtocolError
from channels.games import GAME_APPS, DisputeStarted, GameChannel, GameOver, OpponentMoved, join, open_game
from channels.net.memory import MemoryNetwork, open_memory_transport
from channels.node import Node, load_config
from tests.games.test_api import until

STAKE = 100
GAME = "last-one-standing"


@asynccontextmanager
async def three(tmp_path: Path, *, connect_all: bool = True) -> AsyncIterator[tuple[Devnet, list[Node]]]:
    dev = Devnet(None, clock=None, apps=GAME_APPS)
    net = MemoryNetwork()
    async with AsyncExitStack() as stack:
        nodes: list[Node] = []
        for name in ("alice", "bob", "carol"):
            transport = await stack.enter_async_context(open_memory_transport(net, name))
            config = load_config(tmp_path / name, tick_interval=0.05, reconnect_interval=0.02,
                                 auto_accept_funding=1_000, min_challenge_duration=1, min_challenge_blocks=1)
            nodes.append(await stack.enter_async_context(Node.open(config, ledger=dev, transport=transport,
                                                                   apps=GAME_APPS)))
            dev.faucet_sync(nodes[-1].l1_address, 10_000)
        await nodes[0].connect(nodes[1].addresses[0])
        await nodes[0].connect(nodes[2].addresses[0])
        if connect_all:
            await nodes[1].connect(nodes[2].addresses[0])
        yield dev, nodes


async def any_of(events: Sequence[trio.Event]) -> None:
    """Until one of ``events`` is set."""
    async with trio.open_nursery() as nursery:
        async def one(event: trio.Event) -> None:
            await event.wait()
            nursery.cancel_scope.cancel()

        for event in events:
            nursery.start_soon(one, event)


async def in_step(games: Sequence[GameChannel]) -> None:
    """Until every player holds the same fully signed state and nothing is in flight."""
    while True:
        changed = [g.node.engine.changed for g in games]  # taken before looking: no step is missed
        chans = [g.channel for g in games]
        if len({c.latest for c in chans}) == 1 and all(c.pending is None and c.cosign is None for c in chans):
            return
        await any_of(changed)


async def start(nodes: list[Node], move_timeout: float | None = 300.0) -> list[GameChannel]:
    alice, bob, carol = nodes
    joined: dict[int, GameChannel] = {}
    async with trio.open_nursery() as nursery:
        async def accept(i: int) -> None:
            joined[i] = await join(nodes[i], game=GAME, move_timeout=move_timeout)

        nursery.start_soon(accept, 1)
        nursery.start_soon(accept, 2)
        opened = await open_game(alice, GAME, [bob.peer_id, carol.peer_id], STAKE, challenge_duration=100,
                                 move_timeout=move_timeout)
    return [opened, joined[1], joined[2]]


async def test_three_players_play_last_one_standing_to_the_end(tmp_path: Path, autojump_clock: MockClock) -> None:
    async with three(tmp_path) as (dev, nodes):
        with trio.fail_after(120):
            before = [await dev.balance(n.l1_address) for n in nodes]
            games = await start(nodes)
            assert [g.you for g in games] == [0, 1, 2]
            assert games[0].view().peer_ids == [nodes[1].peer_id, nodes[2].peer_id]
            assert games[1].view().peer_ids == [nodes[0].peer_id, nodes[2].peer_id]
            assert games[2].view().peer_id == nodes[0].peer_id, "peer_id: the first other player"
            movers = []
            while games[0].turn is not None:
                turn = games[0].turn
                assert [g.turn for g in games] == [turn] * 3, "every player sees the same turn"
                other = games[(turn + 1) % 3]
                version = other.channel.version
                with pytest.raises(InvalidTransition, match="not your turn"):
                    await other.move(1)
                assert other.channel.version == version and not other.channel.in_flight
                view = games[turn].view()
                await games[turn].move(int(view.moves[-1]))  # the biggest step
                movers.append(turn)
                await in_step(games)
            assert movers[:3] == [0, 1, 2], "turns go in player order"
            views = [g.view() for g in games]
            winner = views[0].winner
            assert winner is not None and all(v.winner == winner and v.status == "won" for v in views)
            assert views[winner].you_won and views[winner].balance == 3 * STAKE
            for g in games:
                events = g.poll_events()
                assert any(isinstance(e, GameOver) for e in events)
            await nodes[1].close(games[1].channel_id)  # any player may close: all three sign the final state
            for n, g in zip(nodes, games, strict=True):
                await n.wait_phase(g.channel_id, Phase.SETTLED)
            after = [await dev.balance(n.l1_address) for n in nodes]
        net = [a - b for a, b in zip(after, before, strict=True)]
        assert net == [2 * STAKE if i == winner else -STAKE for i in range(3)]


async def test_a_proposal_is_declined_unless_every_participant_is_connected(tmp_path: Path,
                                                                              autojump_clock: MockClock) -> None:
    async with three(tmp_path, connect_all=False) as (dev, nodes):
        with trio.fail_after(60):
            before = await dev.balance(nodes[0].l1_address)
            with pytest.raises(LocalProtocolError, match=r"^tictactoe is played by 2 players, not 3$"):
                await open_game(nodes[0], "tictactoe", [nodes[1].peer_id, nodes[2].peer_id], STAKE)
            with pytest.raises(ChannelsError, match="connect"):
                await open_game(nodes[0], GAME, [nodes[1].peer_id, nodes[2].peer_id], STAKE, challenge_duration=100)
            assert await dev.balance(nodes[0].l1_address) == before, "nothing deposited"


async def test_an_n_party_channel_without_a_game_is_declined(tmp_path: Path, autojump_clock: MockClock) -> None:
    async with three(tmp_path) as (dev, nodes):
        with trio.fail_after(60):
            before = await dev.balance(nodes[0].l1_address)
            with pytest.raises(ChannelsError, match="carries a game, not payments"):
                await nodes[0].open_channel([nodes[1].peer_id, nodes[2].peer_id], STAKE, peer_amount=STAKE,
                                            challenge_duration=100)
            assert await dev.balance(nodes[0].l1_address) == before, "nothing deposited"


async def test_a_stalling_player_of_three_loses_on_chain(tmp_path: Path, autojump_clock: MockClock) -> None:
    """Carol stops moving: the referees register the state all three signed; carol answers on
    chain, alice answers on chain, then bob stalls and forfeits when the window ends. The L1
    pays each player what the last state on chain gives it: bob, to move, loses his stake."""
    async with three(tmp_path) as (dev, nodes):
        with trio.fail_after(300):
            before = [await dev.balance(n.l1_address) for n in nodes]
            games = await start(nodes, move_timeout=30)
            alice, bob, carol = games
            await alice.move(3)
            await in_step(games)
            await bob.move(3)
            await in_step(games)
            assert carol.your_turn
            for g in games:
                assert g.poll_events(), "each saw the moves of the others"
            await until(alice, DisputeStarted)  # carol did not move within 30 s
            assert trio.current_time() >= 30
            started = await until(carol, DisputeStarted)
            assert started[-1].your_turn  # type: ignore[union-attr]
            assert alice.channel.registered_version == 2, "the state all three signed is on the L1"
            await carol.move(3)  # on chain (progress), signed by carol alone
            moved = await until(alice, OpponentMoved)
            assert moved[-1] == OpponentMoved(player=2, move=3, text="+3", on_chain=True)
            await alice.move(3)
            seen = [e for e in await until(bob, OpponentMoved) if isinstance(e, OpponentMoved)]
            assert [(e.player, e.on_chain) for e in seen] == [(2, True)]
            seen = [e for e in await until(bob, OpponentMoved) if isinstance(e, OpponentMoved)]
            assert [(e.player, e.on_chain) for e in seen] == [(0, True)]
            dev.advance_time(100 + 1)  # bob does not answer within the window
            for n, g in zip(nodes, games, strict=True):
                await n.wait_phase(g.channel_id, Phase.SETTLED)
            final = alice.view()
            after = [await dev.balance(n.l1_address) for n in nodes]
        assert final.turn == 1 and final.phase == "settled"
        net = [a - b for a, b in zip(after, before, strict=True)]
        assert net[1] == -STAKE, "the player to move forfeits"
        assert net == [STAKE // 2, -STAKE, STAKE // 2] and sum(net) == 0


async def test_a_player_restarted_mid_game_catches_up(tmp_path: Path, autojump_clock: MockClock) -> None:
    """Carol's node stops; bob moves meanwhile (alice countersigns, the move cannot count without
    carol). Carol's node restarts from its data dir, redials both peers from its store, signs the
    move, and the game goes on to its end and a close signed by all three."""
    dev = Devnet(None, clock=None, apps=GAME_APPS)
    net = MemoryNetwork()

    def config(name: str) -> Any:
        return load_config(tmp_path / name, tick_interval=0.05, reconnect_interval=0.02, auto_accept_funding=1_000,
                           min_challenge_duration=1, min_challenge_blocks=1)

    async def node(stack: AsyncExitStack, name: str) -> Node:
        transport = await stack.enter_async_context(open_memory_transport(net, name))
        return await stack.enter_async_context(Node.open(config(name), ledger=dev, transport=transport,
                                                         apps=GAME_APPS))

    with trio.fail_after(120):
        async with AsyncExitStack() as outer:
            alice, bob = await node(outer, "alice"), await node(outer, "bob")
            async with AsyncExitStack() as inner:
                carol = await node(inner, "carol")
                for n in (alice, bob, carol):
                    dev.faucet_sync(n.l1_address, 10_000)
                before = [await dev.balance(n.l1_address) for n in (alice, bob, carol)]
                await alice.connect(bob.addresses[0])
                await alice.connect(carol.addresses[0])
                await bob.connect(carol.addresses[0])
                games = await start([alice, bob, carol])
                await games[0].move(3)
                await in_step(games)
            # carol is down
            cid = games[0].channel_id
            async with trio.open_nursery() as nursery:
                nursery.start_soon(games[1].move, 3)
                while not (bob.channel(cid).pending and alice.channel(cid).cosign):
                    await any_of([bob.engine.changed, alice.engine.changed])
                assert alice.channel(cid).version == bob.channel(cid).version == 1, "it does not count yet"
                async with AsyncExitStack() as again:
                    carol = await node(again, "carol")
                    assert carol.channel(cid).version == 1
                    games[2] = await join(carol, cid)
                    await in_step(games)
                    assert [g.channel.version for g in games] == [2, 2, 2]
                    while games[0].turn is not None:
                        turn = games[0].turn
                        await games[turn].move(int(games[turn].view().moves[-1]))
                        await in_step(games)
                    winner = games[0].view().winner
                    assert winner is not None
                    await alice.close(cid)
                    for n in (alice, bob, carol):
                        await n.wait_phase(cid, Phase.SETTLED)
                    after = [await dev.balance(n.l1_address) for n in (alice, bob, carol)]
    assert [a - b for a, b in zip(after, before, strict=True)] == [2 * STAKE if i == winner else -STAKE
                                                                   for i in range(3)]
