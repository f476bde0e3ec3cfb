"""Tic-tac-toe for a stake, played off-chain by two cores: each outcome moves the stake,
every illegal move is refused naming its rule, and a stalling player loses the pot."""

from __future__ import annotations

import attrs
import pytest

from channels.core import effects as fx
from channels.core import inputs as ins
from channels.core.messages import UpdateProposal
from channels.core.ops import AppMove
from channels.encoding import encode
from channels.errors import InvalidTransition
from channels.games import TicTacToe
from channels.games.tictactoe import render
from channels.wire import decode_message, encode_message
from tests.games.gameutil import PairGame, make_params, start, step

APP = TicTacToe()
X_WINS = [(0, 0), (1, 3), (0, 1), (1, 4), (0, 2)]  # X takes the top row
O_WINS = [(0, 0), (1, 3), (0, 1), (1, 4), (0, 8), (1, 5)]  # O takes the middle row
DRAW = [(0, 4), (1, 0), (0, 2), (1, 6), (0, 3), (1, 5), (0, 1), (1, 7), (0, 8)]


@pytest.mark.parametrize(("moves", "balances", "winner"), [(X_WINS, (20, 0), 0), (O_WINS, (0, 20), 1),
                                                           (DRAW, (10, 10), None)], ids=["x-wins", "o-wins", "draw"])
def test_a_full_game_moves_the_stake_by_its_outcome(moves: list[tuple[int, int]], balances: tuple[int, int],
                                                    winner: int | None) -> None:
    game = PairGame(APP, (10, 10))
    for player, cell in moves:
        game.move(player, cell)
    assert game.balances == balances
    assert APP.is_terminal(game.params, game.state) and APP.turn(game.params, game.state) is None
    assert APP.winner(game.params, game.state) == winner
    assert APP.outcome(game.params, game.state) == game.state.allocation
    assert game.state.version == len(moves)
    with pytest.raises(InvalidTransition, match="the game is over"):
        game.move(1 - moves[-1][0], 7)


def test_the_stake_is_the_smallest_balance() -> None:
    game = PairGame(APP, (10, 25))
    for player, cell in X_WINS:
        game.move(player, cell)
    assert game.balances == (20, 15), "X won O's 10; O's other 15 were never at stake"
    assert APP.stake(game.params, game.state) == 10


def test_the_player_to_move_forfeits_if_the_channel_settles() -> None:
    """Every running state pays the pot to the player who is not to move: who stalls loses."""
    game = PairGame(APP, (10, 10))
    assert game.balances == (10, 10), "before the first move nothing is at stake"
    for player, cell in O_WINS[:-1]:
        game.move(player, cell)
        assert APP.turn(game.params, game.state) == 1 - player
        assert game.balances == ((20, 0) if player == 0 else (0, 20))


def test_every_illegal_move_names_its_rule() -> None:
    game = PairGame(APP)
    with pytest.raises(InvalidTransition, match="not your turn: player 0 is to move"):
        game.move(1, 4)
    game.move(0, 4)
    with pytest.raises(InvalidTransition, match="cell 4 is taken"):
        game.move(1, 4)
    for bad in (9, -1, "4", [4], True, None, b"\x04"):
        with pytest.raises(InvalidTransition, match=r"a move is a cell number 0\.\.8"):
            game.move(1, bad)
    for garbage in (b"", b"\xc1", b"\xcc\x04", b"\x04\x04", encode(bytes(200))):  # non-canonical, trailing, big
        with pytest.raises(InvalidTransition, match="malformed move"):
            game.play(1, garbage)
    assert game.state.version == 1 and game.balances == (20, 0), "nothing changed"


def test_a_peer_that_proposes_an_illegal_move_is_refused() -> None:
    game = PairGame(APP)
    game.move(0, 4)
    before = game.pair.channel(0)
    taken = AppMove(move_id=b"cheat", payload=encode(4))  # O on X's cell, past O's own checks
    ch = game.pair.channel(1)
    sig = game.pair.keys[1].sign_digest(game.pair.scheme.state_digest(game.params, ch.latest.state))
    msg = decode_message(encode_message(UpdateProposal(channel_id=ch.channel_id, version=ch.version + 1,
                                                       operations=(taken,), signature=sig)))
    assert isinstance(msg, UpdateProposal)
    out = game.pair.apply(0, ins.ReceiveUpdate(message=msg))
    assert [e.reason for e in out if isinstance(e, fx.Reject)] == ["update breaks the rules: cell 4 is taken"]
    assert game.pair.channel(0).latest == before.latest, "X signed nothing"


def test_the_adjudicators_check_names_the_rule() -> None:
    params = make_params(APP, 2, nonce=b"ttt-rules")
    v0 = start(APP, params, (10, 10))
    v1 = step(APP, params, v0, 4, 0)
    v2 = step(APP, params, v1, 0, 1)
    APP.validate_transition(params, v1, v2, 1)
    with pytest.raises(InvalidTransition, match="not your turn"):
        APP.validate_transition(params, v1, v2, 0)
    kept = v2.allocation.with_transfer(v2.allocation.assets[0], 5, 1, 0)  # O keeps back 5 of the pot
    with pytest.raises(InvalidTransition, match="allocation does not move the stakes"):
        APP.validate_transition(params, v1, attrs.evolve(v2, allocation=kept), 1)
    with pytest.raises(InvalidTransition, match="a move cannot mark the state final"):
        APP.validate_transition(params, v1, attrs.evolve(v2, is_final=True), 1)
    two = step(APP, params, v2, 8, 0)  # two marks in one move
    with pytest.raises(InvalidTransition, match="no legal move leads to this state"):
        APP.validate_transition(params, v1, attrs.evolve(two, version=2), 1)
    with pytest.raises(InvalidTransition, match="version must be 2"):
        APP.validate_transition(params, v1, two, 1)


def test_three_players_cannot_play() -> None:
    with pytest.raises(InvalidTransition, match="cannot be played by 3 players"):
        APP.initial_data(make_params(APP, 3))


def test_render_draws_the_board() -> None:
    params = make_params(APP)
    state = start(APP, params, (1, 1))
    for player, cell in O_WINS:
        state = step(APP, params, state, cell, player)
    assert render(APP.load(params, state)[1]) == "XX.\nOOO\n..X"
