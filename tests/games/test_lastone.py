"""Last one standing, a counting game for n >= 2 players: turn order cycles through the
players still in, the pot follows the outcome, and a 3-player channel is registered,
progressed, concluded and paid out by the devnet adjudicator."""

from __future__ import annotations

import random

import attrs
import pytest

from channels.chain.base import InvalidMove
from channels.chain.devnet import tx as t
from channels.chain.devnet.ledger import Devnet
from channels.core.ids import NATIVE, Version
from channels.core.state import ChannelParams, State
from channels.errors import InvalidTransition
from channels.games import GAME_APPS, LastOneStanding
from tests.games.gameutil import KEYS, SCHEME, PairGame, make_params, sign_all, start, step, submit

APP = LastOneStanding()
# Three players add 3 each: player 0 must say 21 (out), then player 1 (out): player 2 is last.
SCRIPT = [3] * 6 + [3] + [3] * 6 + [3]


def play_script(params: ChannelParams, state: State, steps: list[int]) -> list[State]:
    states = [state]
    for amount in steps:
        mover = APP.turn(params, states[-1])
        assert mover is not None
        states.append(step(APP, params, states[-1], amount, mover))
    return states


def test_a_full_three_player_game() -> None:
    params = make_params(APP, 3, nonce=b"three")
    states = play_script(params, start(APP, params, (10, 10, 10)), SCRIPT)
    movers = [APP.turn(params, s) for s in states]
    assert movers[:8] == [0, 1, 2, 0, 1, 2, 0, 1], "turns cycle through the three players"
    assert APP.standing(params, states[7]) == (0, [1, 2]), "who says 21 is out and the count starts again"
    assert movers[7:15] == [1, 2, 1, 2, 1, 2, 1, None], "player 0 is skipped once out"
    final = states[-1]
    assert APP.standing(params, final) == (0, [2]) and APP.is_terminal(params, final)
    assert final.allocation.balances[0] == (0, 0, 30) and APP.winner(params, final) == 2
    # While the game runs, the pot goes to the players still in other than the one to move.
    assert [s.allocation.balances[0] for s in states[:4]] == [(10, 10, 10), (15, 0, 15), (15, 15, 0), (0, 15, 15)]
    assert states[7].allocation.balances[0] == (0, 0, 30), "player 1 to move, player 0 out"
    assert states[8].allocation.balances[0] == (0, 30, 0)
    assert all(sum(s.allocation.balances[0]) == 30 for s in states)
    with pytest.raises(InvalidTransition, match="the game is over"):
        step(APP, params, final, 1, 2)


def test_an_uneven_split_gives_the_remainder_in_turn_order() -> None:
    params = make_params(APP, 3, nonce=b"uneven")
    v1 = step(APP, params, start(APP, params, (7, 7, 9)), 1, 0)
    assert APP.stake(params, v1) == 7
    # Pot 21, player 1 to move: players 2 and 0 share it, 2 first after 1 in turn order.
    assert v1.allocation.balances[0] == (10, 0, 9 - 7 + 11)


@pytest.mark.parametrize("n", range(2, 9))
def test_random_games_end_with_one_player_holding_the_pot(n: int) -> None:
    rng = random.Random(n)
    for game in range(20):
        params = make_params(APP, n, nonce=b"n%d/%d" % (n, game))
        state = start(APP, params, [5] * n)
        order: list[int] = []
        while (mover := APP.turn(params, state)) is not None:
            in_before = APP.standing(params, state)[1]
            if order:  # the next player still in after the previous mover
                later = [p for p in in_before if p > order[-1]] or in_before
                assert mover == later[0]
            order.append(mover)
            state = step(APP, params, state, rng.choice(APP.moves_for(APP.table(params, state),
                                                                      APP.load(params, state)[1], mover)), mover)
            assert sum(state.allocation.balances[0]) == 5 * n
        [winner] = APP.standing(params, state)[1]
        assert state.allocation.balances[0] == tuple(5 * n if p == winner else 0 for p in range(n))


def test_every_illegal_move_names_its_rule() -> None:
    params = make_params(APP, 3, nonce=b"rules")
    states = play_script(params, start(APP, params, (10, 10, 10)), [3] * 6 + [2])  # count 20, player 1 to move
    state = states[-1]
    with pytest.raises(InvalidTransition, match="not your turn: player 1 is to move"):
        step(APP, params, state, 1, 2)
    with pytest.raises(InvalidTransition, match="the count may not pass 21: it is 20"):
        step(APP, params, state, 2, 1)
    for bad in (0, 4, -1, "1", [1], None, True):
        with pytest.raises(InvalidTransition, match="a move adds 1, 2 or 3"):
            step(APP, params, state, bad, 1)
    out = step(APP, params, state, 1, 1)  # player 1 says 21
    assert APP.standing(params, out) == (0, [0, 2]) and APP.turn(params, out) == 2
    with pytest.raises(InvalidTransition, match="not your turn"):
        step(APP, params, out, 1, 1)  # out of the game for good


def test_two_players_play_it_through_the_cores() -> None:
    game = PairGame(APP, (10, 10))
    for amount in [3] * 7:  # 3, 6, ..., 21: player 0 says 21
        game.move(APP.turn(game.params, game.state) or 0, amount)
    assert game.balances == (0, 20) and APP.winner(game.params, game.state) == 1


# --- three participants on the devnet adjudicator ----------------------------------------------------


def funded(dn: Devnet, params: ChannelParams, amount: int = 10) -> None:
    for key in KEYS[:3]:
        dn.faucet_sync(key.address, 100)
        submit(dn, t.Deposit(channel_id=params.channel_id, asset=NATIVE, amount=amount), key)


def l1_balances(dn: Devnet) -> list[int]:
    return [dn.store.balance(k.address, NATIVE) for k in KEYS[:3]]


def test_three_players_register_progress_and_withdraw_on_the_devnet() -> None:
    params = make_params(APP, 3, nonce=b"devnet-progress", duration=40)
    states = play_script(params, start(APP, params, (10, 10, 10)), [3, 3, 3, 3])  # count 12, player 1 to move
    with Devnet(clock=None, apps=GAME_APPS) as dn:
        funded(dn, params)
        held = sign_all(params, states[-1])
        submit(dn, t.Register(params=params, signed=held), KEYS[0])
        nxt = step(APP, params, states[-1], 3, 1)
        for mover in (0, 2):  # only player 1 may move, and only by the rules
            with pytest.raises(InvalidMove, match="not your turn"):
                submit(dn, t.Progress(params=params, signed_prev=held, next_state=nxt, mover=mover,
                                      signature=SCHEME.sign(KEYS[mover], params, nxt)))
        too_far = attrs.evolve(nxt, app_data=APP.dump(10, attrs.evolve(APP.load(params, nxt)[1], count=19)))
        with pytest.raises(InvalidMove, match="no legal move"):
            submit(dn, t.Progress(params=params, signed_prev=held, next_state=too_far, mover=1,
                                  signature=SCHEME.sign(KEYS[1], params, too_far)))
        submit(dn, t.Progress(params=params, signed_prev=held, next_state=nxt, mover=1,
                              signature=SCHEME.sign(KEYS[1], params, nxt)))
        held = dn.channel_sync(params.channel_id).registered
        assert held is not None and held.state == nxt and held.signatures[1] and not held.signatures[0]
        after = step(APP, params, nxt, 2, 2)  # count 17, player 0 to move
        submit(dn, t.Progress(params=params, signed_prev=held, next_state=after, mover=2,
                              signature=SCHEME.sign(KEYS[2], params, after)))
        dn.advance_time(41)  # player 0 never answers: it forfeits, players 1 and 2 share the pot
        submit(dn, t.Withdraw(params=params), KEYS[1])
        assert after.allocation.balances[0] == (0, 15, 15)
        assert l1_balances(dn) == [90, 105, 105]


def test_three_players_conclude_a_finished_game_on_the_devnet() -> None:
    params = make_params(APP, 3, nonce=b"devnet-conclude")
    final = play_script(params, start(APP, params, (10, 10, 10)), SCRIPT)[-1]
    closing = attrs.evolve(final, version=Version(final.version + 1), is_final=True)
    with Devnet(clock=None, apps=GAME_APPS) as dn:
        funded(dn, params)
        submit(dn, t.Conclude(params=params, signed=sign_all(params, closing)), KEYS[2])
        submit(dn, t.Withdraw(params=params), KEYS[2])
        assert l1_balances(dn) == [90, 90, 120], "player 2, the last one standing, takes the pot"
