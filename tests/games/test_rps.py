"""Rock-paper-scissors with commit-reveal: each outcome moves the stake, a commitment hides
the move until both have committed, a reveal must open its own commitment, and a player who
refuses to reveal loses the stake on chain."""

from __future__ import annotations

import attrs
import pytest

from channels.chain.base import InvalidMove
from channels.chain.devnet import tx as t
from channels.chain.devnet.ledger import Devnet
from channels.core.ids import NATIVE
from channels.errors import InvalidTransition
from channels.games import GAME_APPS, RockPaperScissors
from channels.games.rps import PAPER, ROCK, SCISSORS
from tests.games.gameutil import KEYS, SCHEME, PairGame, make_params, sign_all, start, step, submit

APP = RockPaperScissors()
SALTS = (b"\x01" * 32, b"\x02" * 32)


def play_round(game: PairGame, moves: tuple[int, int]) -> None:
    secrets = [APP.secret(m, s) for m, s in zip(moves, SALTS, strict=True)]
    for player in (0, 1):
        game.move(player, APP.commit_payload(game.channel_id, player, secrets[player]))
    for player in (0, 1):
        game.move(player, APP.reveal_payload(secrets[player]))


@pytest.mark.parametrize(("moves", "balances", "winner"), [
    ((ROCK, SCISSORS), (20, 0), 0), ((PAPER, ROCK), (20, 0), 0), ((SCISSORS, PAPER), (20, 0), 0),
    ((ROCK, PAPER), (0, 20), 1), ((SCISSORS, ROCK), (0, 20), 1),
    ((ROCK, ROCK), (10, 10), None), ((SCISSORS, SCISSORS), (10, 10), None),
])
def test_a_full_game_moves_the_stake_by_its_outcome(moves: tuple[int, int], balances: tuple[int, int],
                                                    winner: int | None) -> None:
    game = PairGame(APP, (10, 10))
    play_round(game, moves)
    assert game.balances == balances and game.state.version == 4
    assert APP.is_terminal(game.params, game.state) and APP.winner(game.params, game.state) == winner
    with pytest.raises(InvalidTransition, match="the game is over"):
        game.move(0, APP.reveal_payload(APP.secret(moves[0], SALTS[0])))


def test_every_illegal_move_names_its_rule() -> None:
    game = PairGame(APP)
    rock, paper = APP.secret(ROCK, SALTS[0]), APP.secret(PAPER, SALTS[1])
    with pytest.raises(InvalidTransition, match="not your turn: player 0 is to move"):
        game.move(1, APP.commit_payload(game.channel_id, 1, paper))
    with pytest.raises(InvalidTransition, match="every player commits before anyone reveals"):
        game.move(0, APP.reveal_payload(rock))
    for bad in ([0, b"\x00" * 31], [0], [0, b"\x00" * 32, 1]):
        with pytest.raises(InvalidTransition, match=r"a commitment is \[0, 32-byte hash\]"):
            game.move(0, bad)
    for bad in ([2, b""], [], 0, [True, b"\x00" * 32], ["0"]):
        with pytest.raises(InvalidTransition, match=r"a move is \[0, commitment\] or \[1, secret...\]"):
            game.move(0, bad)
    with pytest.raises(InvalidTransition, match="malformed move"):
        game.play(0, b"\x92\x00")  # an array announced with two items, holding one
    game.move(0, APP.commit_payload(game.channel_id, 0, rock))
    game.move(1, APP.commit_payload(game.channel_id, 1, paper))
    with pytest.raises(InvalidTransition, match="commitments are closed: reveal your secret"):
        game.move(0, APP.commit_payload(game.channel_id, 0, paper))
    with pytest.raises(InvalidTransition, match="reveal does not match commitment"):
        game.move(0, APP.reveal_payload(APP.secret(ROCK, SALTS[1])))  # the wrong salt
    with pytest.raises(InvalidTransition, match="reveal does not match commitment"):
        game.move(0, APP.reveal_payload(APP.secret(SCISSORS, SALTS[0])))  # another move
    for bad in ([1, 3, SALTS[0]], [1, ROCK, b"short"], [1, ROCK]):
        with pytest.raises(InvalidTransition, match="malformed reveal"):
            game.move(0, bad)
    assert game.state.version == 2, "nothing changed"
    game.move(0, APP.reveal_payload(rock))
    assert game.balances == (20, 0), "player 1 must now reveal, or lose"


def test_a_commitment_reveals_nothing_until_both_have_committed() -> None:
    states = {}
    for move in (ROCK, PAPER, SCISSORS):
        game = PairGame(APP)
        game.move(0, APP.commit_payload(game.channel_id, 0, APP.secret(move, SALTS[0])))
        game.move(1, APP.commit_payload(game.channel_id, 1, APP.secret(PAPER, SALTS[1])))
        states[move] = game.state
    data = [APP.load(game.params, s)[1] for s in states.values()]
    assert all(d.reveals == (None, None) for d in data), "no move, no salt in the state"
    assert all(SALTS[0] not in s.app_data and SALTS[1] not in s.app_data for s in states.values())
    # The three states differ only in player 0's 32-byte commitment: nothing else depends on the move.
    a, b = states[ROCK].app_data, states[SCISSORS].app_data
    assert len(a) == len(b) and sum(x != y for x, y in zip(a, b, strict=True)) <= 32
    assert data[0].commitments[0] != data[1].commitments[0] != data[2].commitments[0]
    assert data[0].commitments[1] == data[1].commitments[1]


def test_a_copied_or_replayed_commitment_cannot_be_opened() -> None:
    game = PairGame(APP)
    rock = APP.secret(ROCK, SALTS[0])
    copied = APP.commit_payload(game.channel_id, 0, rock)
    game.move(0, copied)
    game.move(1, copied)  # player 1 copies player 0's commitment, hoping to copy its reveal too
    game.move(0, APP.reveal_payload(rock))
    with pytest.raises(InvalidTransition, match="reveal does not match commitment"):
        game.move(1, APP.reveal_payload(rock))  # bound to player 0's index
    other = PairGame(APP, labels=("carol", "dave"))  # a commitment from another channel does not open here
    assert other.channel_id != game.channel_id
    other.move(0, APP.commit_payload(game.channel_id, 0, rock))
    other.move(1, APP.commit_payload(other.channel_id, 1, rock))
    with pytest.raises(InvalidTransition, match="reveal does not match commitment"):
        other.move(0, APP.reveal_payload(rock))


def test_who_refuses_to_reveal_loses_on_chain() -> None:
    """Both committed; player 0 forces its reveal with ``progress``; player 1, seeing it lost,
    never reveals. When the window ends the L1 pays player 0 the pot."""
    params = make_params(APP, 2, nonce=b"rps-stall", duration=50)
    rock, scissors = APP.secret(ROCK, SALTS[0]), APP.secret(SCISSORS, SALTS[1])
    v0 = start(APP, params, (10, 10))
    v1 = step(APP, params, v0, APP.commit_payload(params.channel_id, 0, rock), 0)
    v2 = step(APP, params, v1, APP.commit_payload(params.channel_id, 1, scissors), 1)
    v3 = step(APP, params, v2, APP.reveal_payload(rock), 0)
    with Devnet(clock=None, apps=GAME_APPS) as dn:
        for key in KEYS[:2]:
            dn.faucet_sync(key.address, 100)
            submit(dn, t.Deposit(channel_id=params.channel_id, asset=NATIVE, amount=10), key)
        registered = sign_all(params, v2)
        submit(dn, t.Register(params=params, signed=registered), KEYS[0])
        wrong = step(APP, params, v2, APP.reveal_payload(rock), 0)
        wrong = attrs.evolve(wrong, app_data=v2.app_data)  # a reveal the L1 cannot check is no reveal
        with pytest.raises(InvalidMove, match="no legal move"):
            submit(dn, t.Progress(params=params, signed_prev=registered, next_state=wrong, mover=0,
                                  signature=SCHEME.sign(KEYS[0], params, wrong)), KEYS[0])
        submit(dn, t.Progress(params=params, signed_prev=registered, next_state=v3, mover=0,
                              signature=SCHEME.sign(KEYS[0], params, v3)), KEYS[0])
        dn.advance_time(51)  # player 1 never answers
        submit(dn, t.Withdraw(params=params), KEYS[0])
        assert [dn.store.balance(k.address, NATIVE) for k in KEYS[:2]] == [90 + 20, 90 + 0]


def test_a_player_who_reveals_on_chain_in_time_gets_the_game_decided() -> None:
    params = make_params(APP, 2, nonce=b"rps-answer", duration=50)
    rock, paper = APP.secret(ROCK, SALTS[0]), APP.secret(PAPER, SALTS[1])
    v0 = start(APP, params, (10, 10))
    v1 = step(APP, params, v0, APP.commit_payload(params.channel_id, 0, rock), 0)
    v2 = step(APP, params, v1, APP.commit_payload(params.channel_id, 1, paper), 1)
    v3 = step(APP, params, v2, APP.reveal_payload(rock), 0)
    v4 = step(APP, params, v3, APP.reveal_payload(paper), 1)
    with Devnet(clock=None, apps=GAME_APPS) as dn:
        for key in KEYS[:2]:
            dn.faucet_sync(key.address, 100)
            submit(dn, t.Deposit(channel_id=params.channel_id, asset=NATIVE, amount=10), key)
        submit(dn, t.Register(params=params, signed=sign_all(params, v3)), KEYS[0])
        dn.advance_time(49)
        held = dn.channel_sync(params.channel_id).registered
        assert held is not None
        submit(dn, t.Progress(params=params, signed_prev=held, next_state=v4, mover=1,
                              signature=SCHEME.sign(KEYS[1], params, v4)), KEYS[1])
        dn.advance_time(51)
        submit(dn, t.Withdraw(params=params), KEYS[1])
        assert [dn.store.balance(k.address, NATIVE) for k in KEYS[:2]] == [90, 110], "paper beats rock"


def test_a_bot_plays_its_secret_with_next_move() -> None:
    game = PairGame(APP)
    secrets = [APP.secret(SCISSORS, SALTS[0]), APP.secret(PAPER, SALTS[1])]
    assert APP.candidate_moves(game.params, game.state, 0) == [], "commit-reveal moves need a secret"
    assert APP.next_move(game.params, game.state, 1, secrets[1]) is None, "not player 1's turn"
    while not APP.is_terminal(game.params, game.state):
        player = APP.turn(game.params, game.state)
        assert player is not None
        payload = APP.next_move(game.params, game.state, player, secrets[player])
        assert payload is not None
        game.play(player, payload)
    assert game.balances == (20, 0) and game.state.version == 4
