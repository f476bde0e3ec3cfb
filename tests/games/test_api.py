"""The game API in process: two nodes over the memory transport on an in-process devnet
that knows the games' rules (``GAME_APPS``), on a ``MockClock`` (timeouts cost no real time;
the devnet's clock moves only when a test advances it, so challenge windows end on purpose).

Every built-in game is played to completion through ``open_game``/``join``/``move`` and its
events; illegal moves raise ``InvalidTransition`` naming the rule with nothing signed; a
rematch starts in the same channel; stalling opponents are taken to the L1 by the referee."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import trio
from trio.testing import MockClock

from channels.chain.devnet.ledger import Devnet
from channels.core.app import AppRegistry
from channels.core.channel import Phase
from channels.errors import InvalidTransition
from channels.games import (
    GAME_APPS,
    DisputeResolved,
    DisputeStarted,
    GameChannel,
    GameEvent,
    GameOver,
    OpponentMoved,
    RematchStarted,
    UnknownGame,
    join,
    open_game,
)
from channels.games.dice import roll
from channels.net.memory import MemoryNetwork, open_memory_transport
from channels.node import Node, load_config

STAKE = 100
WINDOW = 100  # challenge window (L1 seconds) of the game channels


@asynccontextmanager
async def players(tmp_path: Path, apps: AppRegistry = GAME_APPS) -> AsyncIterator[
        tuple[Devnet, MemoryNetwork, Node, Node]]:
    dev = Devnet(None, clock=None, apps=apps)  # the L1 judges forced moves by the same rules
    net = MemoryNetwork()
    async with AsyncExitStack() as stack:
        nodes = []
        for name in ("alice", "bob"):
            transport = await stack.enter_async_context(open_memory_transport(net, name))
            config = load_config(tmp_path / name, tick_interval=0.05, reconnect_interval=0.02,
                                 auto_accept_funding=1_000, min_challenge_duration=1, min_challenge_blocks=1)
            nodes.append(await stack.enter_async_context(Node.open(config, ledger=dev, transport=transport,
                                                                   apps=apps)))
            dev.faucet_sync(nodes[-1].l1_address, 10_000)
        await nodes[0].connect(nodes[1].addresses[0])
        yield dev, net, nodes[0], nodes[1]


async def start(alice: Node, bob: Node, game: str, **kwargs: Any) -> tuple[GameChannel, GameChannel]:
    async with trio.open_nursery() as nursery:
        joined: list[GameChannel] = []

        async def accept() -> None:
            joined.append(await join(bob, game=game, **kwargs))

        nursery.start_soon(accept)
        opened = await open_game(alice, game, bob.peer_id, STAKE, challenge_duration=WINDOW, **kwargs)
    return opened, joined[0]


async def until(game: GameChannel, kind: type[GameEvent]) -> list[GameEvent]:
    """Events of ``game`` up to and including the first of ``kind``."""
    seen: list[GameEvent] = []
    async for event in game:
        seen.append(event)
        if isinstance(event, kind):
            return seen
    raise AssertionError(f"no {kind.__name__} before the channel settled: {seen}")


async def l1(dev: Devnet, *nodes: Node) -> list[int]:
    return [await dev.balance(n.l1_address) for n in nodes]


async def test_tic_tac_toe_to_a_win_with_illegal_moves_refused(tmp_path: Path, autojump_clock: MockClock) -> None:
    async with players(tmp_path) as (dev, _net, alice, bob):
        with trio.fail_after(60):
            before = await l1(dev, alice, bob)
            x, o = await start(alice, bob, "tictactoe")
            assert (x.you, o.you, x.turn, x.your_turn, o.your_turn) == (0, 1, 0, True, False)
            assert x.view().status == "playing" and x.view().stake == STAKE and x.board == ["...", "...", "..."]
            for game, move, rule in ((o, 4, "not your turn: player 0 is to move"),
                                     (x, 9, "a move is a cell number 0..8"), (x, "b2", "a move is a cell number")):
                version = game.channel.version
                with pytest.raises(InvalidTransition, match=rule):
                    await game.move(move)
                assert game.channel.version == version and not game.channel.in_flight  # nothing signed
            await x.move(4)
            assert await until(o, OpponentMoved) == [OpponentMoved(player=0, move=4, text="4", on_chain=False)]
            with pytest.raises(InvalidTransition, match="cell 4 is taken"):
                await o.move(4)
            for mover, other, cell in ((o, x, 0), (x, o, 2), (o, x, 6), (x, o, 3), (o, x, 5), (x, o, 1), (o, x, 8)):
                await mover.move(cell)
                assert (await until(other, OpponentMoved))[-1].move == cell  # type: ignore[union-attr]
            assert x.board == o.board == ["OXX", "XXO", "O.O"]
            assert "X | X | O" in x.render()
            await x.move(7)  # 1, 4, 7: a column of X
            over = await until(o, GameOver)
            assert over[-1] == GameOver(winner=0, draw=False, you_won=False)
            assert (await until(x, GameOver))[-1] == GameOver(winner=0, draw=False, you_won=True)
            view = x.view()
            assert (view.status, view.winner, view.you_won, view.stake, view.turn) == ("won", 0, True, STAKE, None)
            assert (view.balance, view.peer_balance) == (2 * STAKE, 0)
            with pytest.raises(InvalidTransition, match="the game is over"):
                await o.move(8)
            await alice.close(x.channel_id)
            after = await l1(dev, alice, bob)
        assert (after[0] - before[0], after[1] - before[1]) == (STAKE, -STAKE)  # the winner gains the stake


async def test_a_draw_then_a_rematch_in_the_same_channel(tmp_path: Path, autojump_clock: MockClock) -> None:
    async with players(tmp_path) as (dev, _net, alice, bob):
        with trio.fail_after(60):
            x, o = await start(alice, bob, "tictactoe")
            with pytest.raises(InvalidTransition, match="the game is not over"):
                await x.rematch()  # only once the game is over
            for mover, cell in zip([x, o] * 5, (0, 4, 8, 1, 7, 6, 2, 5, 3), strict=False):
                await mover.move(cell)
            assert (await until(o, GameOver))[-1] == GameOver(winner=None, draw=True, you_won=False)
            assert (await until(x, GameOver))[-1] == GameOver(winner=None, draw=True, you_won=False)
            assert x.view().status == "drawn" and x.view().balance == STAKE
            deposits = dev.channel_sync(x.channel_id).holdings
            await o.rematch()  # either player may start the next game
            assert RematchStarted() in await until(x, RematchStarted)
            assert x.board == ["...", "...", "..."] and x.turn == 0 and x.view().stake == STAKE
            for mover, cell in zip([x, o] * 3, (0, 3, 1, 4, 2), strict=False):
                await mover.move(cell)
            assert (await until(o, GameOver))[-1].you_won is False  # type: ignore[union-attr]
            assert (x.view().balance, x.view().stake) == (2 * STAKE, STAKE)  # the same stake again
            assert dev.channel_sync(x.channel_id).holdings == deposits  # no new deposit


async def test_rock_paper_scissors_commits_then_reveals_by_itself(tmp_path: Path,
                                                                  autojump_clock: MockClock) -> None:
    async with players(tmp_path) as (dev, _net, alice, bob):
        with trio.fail_after(60):
            before = await l1(dev, alice, bob)
            a, b = await start(alice, bob, "rps")
            with pytest.raises(InvalidTransition, match="a move is one of rock, paper, scissors"):
                await a.move("lizard")
            assert not a.channel.in_flight and alice.store.get_meta("game-secret/" + a.channel_id.hex()) is None
            await a.move("rock")
            committed = await until(b, OpponentMoved)
            assert committed[-1] == OpponentMoved(player=0, move=committed[-1].move, text="committed",  # type: ignore
                                                  on_chain=False)
            assert b.view().board == {"committed": [True, False], "revealed": [None, None]}  # nothing learnt
            assert b.view().moves == ["rock", "paper", "scissors"]
            await b.move("paper")
            over = await until(a, GameOver)  # both reveals are made by the referee
            assert [e.text for e in over if isinstance(e, OpponentMoved)] == ["committed", "revealed paper"]
            assert over[-1] == GameOver(winner=1, draw=False, you_won=False)
            assert (await until(b, GameOver))[-1] == GameOver(winner=1, draw=False, you_won=True)
            assert b.view().board["revealed"] == ["rock", "paper"]
            await bob.close(b.channel_id)
            after = await l1(dev, alice, bob)
        assert (after[0] - before[0], after[1] - before[1]) == (-STAKE, STAKE)


async def test_dice_roll_is_decided_by_both_seeds(tmp_path: Path, autojump_clock: MockClock) -> None:
    async with players(tmp_path) as (_dev, _net, alice, bob):
        with trio.fail_after(60):
            a, b = await start(alice, bob, "dice")
            assert a.view().moves == ["roll"]
            await a.move()
            await until(b, OpponentMoved)
            await b.move("roll")
            over = await until(b, GameOver)
            board = a.view().board
            dice = list(roll(a.channel_id, [seed_of(a), seed_of(b)]))
            assert board["dice"] == dice
            winner = None if dice[0] == dice[1] else dice.index(max(dice))
            assert over[-1] == GameOver(winner=winner, draw=winner is None, you_won=winner == 1)
            assert a.view().balance == {None: STAKE, 0: 2 * STAKE, 1: 0}[winner]


def seed_of(game: GameChannel) -> bytes:
    """The seed a player committed to, from its store (each player knows only its own)."""
    secret = game._svc.secret(game.channel_id)
    assert secret is not None
    return bytes(secret[0])


async def test_last_one_standing_between_two(tmp_path: Path, autojump_clock: MockClock) -> None:
    async with players(tmp_path) as (_dev, _net, alice, bob):
        with trio.fail_after(60):
            a, b = await start(alice, bob, "last-one-standing")
            games = [a, b]
            turn = 0
            while a.turn is not None:
                game = games[turn]
                view = game.view()
                assert view.your_turn and view.moves
                await game.move(int(view.moves[-1]))  # the biggest step
                await until(games[1 - turn], OpponentMoved)
                turn = a.turn if a.turn is not None else turn
            view = a.view()
            assert view.status == "won" and view.board["players_in"] == [view.winner]
            with pytest.raises(InvalidTransition, match=r"the game is over"):
                await games[view.winner].move(3)  # type: ignore[index]


async def test_an_unknown_game_is_refused_before_anything_is_opened(tmp_path: Path,
                                                                     autojump_clock: MockClock) -> None:
    async with players(tmp_path) as (_dev, _net, alice, bob):
        with pytest.raises(UnknownGame, match="unknown game 'chess'; this node plays: dice, last-one-standing"):
            await open_game(alice, "chess", bob.peer_id, STAKE)
        assert alice.list_channels() == []


async def test_a_stalling_opponent_loses_on_chain(tmp_path: Path, autojump_clock: MockClock) -> None:
    """Bob stops moving: after the move timeout alice's referee registers the game; bob answers
    on chain once, alice answers on chain, then bob stalls again and forfeits when the window ends."""
    async with players(tmp_path) as (dev, _net, alice, bob):
        with trio.fail_after(120):
            before = await l1(dev, alice, bob)
            x, o = await start(alice, bob, "tictactoe", move_timeout=30)
            await x.move(4)
            await until(o, OpponentMoved)
            assert x.view().deadline is not None  # when alice's referee goes to the L1
            started = await until(x, DisputeStarted)  # bob never moved within 30 s
            assert started[-1] == DisputeStarted(deadline=started[-1].deadline, turn=1, your_turn=False)  # type: ignore
            assert trio.current_time() >= 30
            assert (await until(o, DisputeStarted))[-1].your_turn  # type: ignore[union-attr]
            assert o.view().status == "disputed" and o.view().moves
            await o.move(0)  # bob answers on chain (progress)
            moved = await until(x, OpponentMoved)
            assert moved[-1] == OpponentMoved(player=1, move=0, text="0", on_chain=True)
            await x.move(8)  # alice answers on chain too
            assert (await until(o, OpponentMoved))[-1].on_chain  # type: ignore[union-attr]  # seen on the L1
            dev.advance_time(WINDOW + 1)  # bob does not answer within the window
            events = await until(x, GameOver)
            assert DisputeResolved(balance=2 * STAKE, peer_balance=0, winner=0, you_won=True) in events
            assert events[-1] == GameOver(winner=0, draw=False, you_won=True, forfeit=True)
            await bob.wait_phase(x.channel_id, Phase.SETTLED)
            after = await l1(dev, alice, bob)
        assert (after[0] - before[0], after[1] - before[1]) == (STAKE, -STAKE)


async def test_forcing_moves_on_chain_costs_the_griefer_at_least_what_it_costs_the_victim(
        tmp_path: Path, autojump_clock: MockClock) -> None:
    """proto/06-games.md section 10: alice takes a game bob plays in good faith to the L1 and
    forces her moves there; each costs her one transaction and bob at most one answer, and
    opening the dispute is hers alone, so she always pays for more transactions than bob."""
    async with players(tmp_path) as (dev, _net, alice, bob):
        with trio.fail_after(120):
            before = await l1(dev, alice, bob)
            x, o = await start(alice, bob, "tictactoe", move_timeout=None)
            await x.move(4)
            await until(o, OpponentMoved)
            sent = [await dev.nonce(alice.l1_address), await dev.nonce(bob.l1_address)]
            await alice.close(x.channel_id, force=True, wait=False)  # the griefer opens a dispute
            assert (await until(o, DisputeStarted))[-1].your_turn  # type: ignore[union-attr]
            for bob_cell, alice_cell in ((0, 8), (2, 6)):
                await o.move(bob_cell)  # bob answers on chain
                await until(x, OpponentMoved)
                await x.move(alice_cell)  # alice forces her next move on chain
                await until(o, OpponentMoved)
                griefer, victim = (await dev.nonce(alice.l1_address) - sent[0],
                                   await dev.nonce(bob.l1_address) - sent[1])
                assert griefer >= victim + 1, (griefer, victim)  # the dispute, then one move each
            await o.move(1)  # X: 4, 8, 6; O: 0, 2, 1 -- bob completes the top row on chain and wins
            await until(x, GameOver)
            dev.advance_time(WINDOW + 1)
            await alice.wait_phase(x.channel_id, Phase.SETTLED)
            after = await l1(dev, alice, bob)
        assert (after[0] - before[0], after[1] - before[1]) == (-STAKE, STAKE), "griefing did not pay off"


async def on_chain(game: GameChannel) -> None:
    """Wait until the L1 holds the game's current state (our forced move confirmed)."""
    while True:
        changed = game.node.engine.changed
        ch = game.channel
        if ch.registered_version == (ch.forced or ch.latest).state.version:
            return
        await changed.wait()


async def test_a_move_the_opponent_never_countersigns_is_forced_on_chain(tmp_path: Path,
                                                                        autojump_clock: MockClock) -> None:
    async with players(tmp_path) as (dev, net, alice, bob):
        with trio.fail_after(120):
            before = await l1(dev, alice, bob)
            x, o = await start(alice, bob, "tictactoe", move_timeout=20)
            await x.move(4)
            await until(o, OpponentMoved)
            await o.move(0)
            await until(x, OpponentMoved)
            net.transports["bob"].up = False  # bob's node stops answering
            net.disconnect("alice", "bob")
            await x.move(8)  # waits; after 20 s the referee registers, then the move is forced on chain
            assert x.channel.phase is Phase.DISPUTED and x.board == ["O..", ".X.", "..X"]
            assert trio.current_time() >= 20
            await on_chain(x)
            dev.advance_time(WINDOW + 1)  # bob never answers on chain
            await alice.wait_phase(x.channel_id, Phase.SETTLED)
            after = await l1(dev, alice, bob)
        assert (after[0] - before[0], after[1] - before[1]) == (STAKE, -STAKE)
