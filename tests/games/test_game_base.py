"""What the built-in games share: the registry, strict canonical app data within its bound,
stakes moved as deltas that survive payments, and no way to jam the player to move."""

from __future__ import annotations

import random
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from channels.core.app import DEFAULT_APPS
from channels.core.ids import MAX_AMOUNT, NATIVE
from channels.core.state import Allocation
from channels.encoding import encode
from channels.errors import InvalidTransition
from channels.games import GAME_APPS, GAMES, Game, TicTacToe
from channels.games.base import Table, forfeit, settle
from tests.games.gameutil import PairGame, Player, legal_move, make_params, pay, random_game, start, step


def test_the_registry_holds_every_game_and_payments() -> None:
    assert {g.app_id for g in GAMES} == {"tictactoe", "rps", "dice", "last-one-standing"}
    for app_id in ("payment", *(g.app_id for g in GAMES)):
        assert app_id in GAME_APPS
    assert "tictactoe" not in DEFAULT_APPS, "the default registry is unchanged"


@pytest.mark.parametrize("app", GAMES, ids=lambda a: a.app_id)
def test_app_data_stays_within_its_bound_at_the_largest_stake(app: Game[Any]) -> None:
    n = app.max_players
    for i in range(20):
        params, states, _ = random_game(app, random.Random(i), n=n, nonce=b"big%d" % i,
                                        balances=[MAX_AMOUNT // n] * n, payments=False)
        assert app.stake(params, states[0]) is None and app.stake(params, states[-1]) == MAX_AMOUNT // n
        assert max(len(s.app_data) for s in states) <= app.max_app_data


@pytest.mark.parametrize("app", GAMES, ids=lambda a: a.app_id)
def test_malformed_app_data_is_refused(app: Game[Any]) -> None:
    params = make_params(app, 3 if app.max_players > 2 else 2)
    good = start(app, params, [10] * len(params.participants))
    good_fields = list(app.load(params, good))
    bad_data = [b"", b"\xc1", b"\x80", encode([]), encode([None]), encode([5, *app.data_fields(good_fields[1]), 0]),
                encode([b"\x05"]),  # a small stake as bytes: not its one form
                b"\x90" * (app.max_app_data + 1)]
    for data in bad_data:
        with pytest.raises(InvalidTransition, match=f"malformed {app.app_id} app data"):
            app.apply_move(params, attrs.evolve(good, app_data=data), encode(1), 0)
        with pytest.raises(InvalidTransition, match="malformed"):
            app.turn(params, attrs.evolve(good, app_data=data))


def test_a_board_no_game_can_reach_is_refused() -> None:
    app = TicTacToe()
    params = make_params(app)
    state = start(app, params, (1, 1))
    for board, rule in [(bytes([2] + [0] * 8), "X moves first"), (bytes([1, 1] + [0] * 7), "players alternate"),
                        (bytes([1, 1, 1, 2, 2, 0, 2, 0, 0]), "no move follows a win"),
                        (bytes([3] + [0] * 8), "each 0"), (bytes(8), "9 bytes")]:
        with pytest.raises(InvalidTransition, match=rule):
            app.load(params, attrs.evolve(state, app_data=encode([None, board])))


def test_settle_conserves_and_never_overdraws() -> None:
    alloc = Allocation(assets=(NATIVE,), balances=((3, 10, 10),))
    moved = settle(alloc, (0, 0, 0), (10, -10, 0))
    assert moved.balances[0] == (13, 0, 10)
    short = settle(alloc, (0, 0, 0), (-10, 5, 5))  # player 0 holds 3 of the 10 it owes
    assert short.balances[0] == (0, 13, 10) and sum(short.balances[0]) == 23
    assert forfeit(Table(channel_id=b"", players=3), 7, 1, [0, 2]) == (10, 0, 11)


def test_a_payment_during_a_game_cannot_jam_the_player_to_move() -> None:
    app = TicTacToe()
    game = PairGame(app, (10, 10))
    game.move(0, 4)  # X leads the pot: (20, 0)
    game.pair.pay(0, 15)  # X pays O 15 of what it holds in the channel
    game.pair.deliver_all()
    assert game.balances == (5, 15)
    game.move(1, 0)  # O's move takes the pot from X, which holds 5 of the 20 it owes: X pays 5
    assert game.balances == (0, 20)


@pytest.mark.parametrize("app", [g for g in GAMES if g.max_players == 2], ids=lambda a: a.app_id)
def test_paying_during_a_game_never_gains_the_payer_anything(app: Game[Any]) -> None:
    """Random games with random payments between moves, against the same moves without them:
    the player who paid nothing ends with at least what the rules give it."""
    rng = random.Random(app.app_id)
    for i in range(200):
        params = make_params(app, nonce=b"pay%d" % i)
        base = (rng.choice([5, 10]), rng.choice([5, 10, 30]))
        plain = with_payments = start(app, params, base)
        payers: set[int] = set()
        players = Player()
        while (move := legal_move(app, params, plain, rng, players)) is not None:
            if rng.random() < 0.3:
                payer = rng.randrange(2)
                have = with_payments.allocation.balances[0][payer]
                if have:
                    with_payments = pay(with_payments, rng.randint(1, have), payer, 1 - payer)
                    payers.add(payer)
            plain = step(app, params, plain, *move)
            with_payments = step(app, params, with_payments, *move)  # never jammed
        for p in set(range(2)) - payers:
            assert with_payments.allocation.balances[0][p] >= plain.allocation.balances[0][p]


def test_a_payment_between_moves_keeps_the_rules_on_chain() -> None:
    app = TicTacToe()
    params = make_params(app)
    v1 = step(app, params, start(app, params, (10, 10)), 4, 0)
    v2 = pay(v1, 3, 0, 1)
    v3 = step(app, params, v2, 0, 1)
    app.validate_transition(params, v2, v3, 1)
    assert v3.allocation.balances[0] == (0, 20)


_values = st.recursive(st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.binary(max_size=40)
                       | st.text(max_size=4), lambda inner: st.lists(inner, max_size=5), max_leaves=12)


@pytest.mark.parametrize("app", GAMES, ids=lambda a: a.app_id)
@settings(max_examples=100)
@given(fields=st.lists(_values, max_size=5), raw=st.binary(max_size=80), payload=_values)
def test_any_app_data_or_move_is_refused_with_invalid_transition_only(app: Game[Any], fields: list[Any], raw: bytes,
                                                                       payload: Any) -> None:
    """Garbage state or move: a clear ``InvalidTransition``, never another exception."""
    params = make_params(app, 3 if app.max_players > 2 else 2)
    good = start(app, params, [10] * len(params.participants))
    for data in (raw, encode(fields), encode([None, *fields]), encode([5, *fields])):
        state = attrs.evolve(good, app_data=data)
        try:
            app.apply_move(params, state, encode(payload), 0)
            app.turn(params, state)
        except InvalidTransition:
            pass
    try:
        app.apply_move(params, good, encode(payload), 0)
    except InvalidTransition:
        pass
