"""Dice with commit-reveal randomness: the roll comes from both players' seeds, fixed before
either was known; each outcome moves the stake; a wrong seed cannot be revealed."""

from __future__ import annotations

from collections import Counter

import pytest

from channels.crypto import sha256
from channels.errors import InvalidTransition
from channels.games import Dice
from channels.games.dice import roll
from tests.games.gameutil import PairGame

APP = Dice()


def seeds_for(channel_id: bytes, outcome: int | None) -> tuple[bytes, bytes]:
    """Two seeds whose roll gives ``outcome`` (the winner, None for a draw) in this channel."""
    for i in range(10_000):
        seeds = (sha256(b"seed0/%d" % i), sha256(b"seed1/%d" % i))
        d0, d1 = roll(channel_id, list(seeds))
        if (d0 > d1 and outcome == 0) or (d1 > d0 and outcome == 1) or (d0 == d1 and outcome is None):
            return seeds
    raise AssertionError("no seeds found")


def play_round(game: PairGame, seeds: tuple[bytes, bytes]) -> None:
    for player in (0, 1):
        game.move(player, APP.commit_payload(game.channel_id, player, APP.secret(seeds[player])))
    for player in (0, 1):
        game.move(player, APP.reveal_payload(APP.secret(seeds[player])))


@pytest.mark.parametrize(("outcome", "balances"), [(0, (20, 0)), (1, (0, 20)), (None, (10, 10))],
                         ids=["first-wins", "second-wins", "draw"])
def test_a_full_game_moves_the_stake_by_the_roll(outcome: int | None, balances: tuple[int, int]) -> None:
    game = PairGame(APP, (10, 10))
    seeds = seeds_for(game.channel_id, outcome)
    play_round(game, seeds)
    assert game.balances == balances
    dice = APP.dice(game.params, game.state)
    assert dice == roll(game.channel_id, list(seeds)) and all(1 <= d <= 6 for d in dice)
    assert APP.winner(game.params, game.state) == outcome and APP.is_terminal(game.params, game.state)


def test_illegal_moves_name_their_rule() -> None:
    game = PairGame(APP)
    mine, theirs = sha256(b"mine"), sha256(b"theirs")
    with pytest.raises(InvalidTransition, match="every player commits before anyone reveals"):
        game.move(0, APP.reveal_payload(APP.secret(mine)))
    game.move(0, APP.commit_payload(game.channel_id, 0, APP.secret(mine)))
    with pytest.raises(InvalidTransition, match="not your turn: player 1 is to move"):
        game.move(0, APP.commit_payload(game.channel_id, 0, APP.secret(mine)))
    game.move(1, APP.commit_payload(game.channel_id, 1, APP.secret(theirs)))
    with pytest.raises(InvalidTransition, match="reveal does not match commitment"):
        game.move(0, APP.reveal_payload(APP.secret(theirs)))  # a seed chosen after seeing nothing
    with pytest.raises(InvalidTransition, match="malformed reveal: the seed is 32 bytes"):
        game.move(0, [1, mine[:16]])
    with pytest.raises(ValueError, match="the seed is 32 bytes"):
        APP.secret(b"short")
    assert game.state.version == 2 and game.balances == (0, 20), "player 0 must reveal, or lose"


def test_the_state_before_the_reveals_holds_no_seed() -> None:
    game = PairGame(APP)
    seeds = (sha256(b"a"), sha256(b"b"))
    for player in (0, 1):
        game.move(player, APP.commit_payload(game.channel_id, player, APP.secret(seeds[player])))
    assert all(seed not in game.state.app_data for seed in seeds)
    assert APP.dice(game.params, game.state) is None
    game.move(0, APP.reveal_payload(APP.secret(seeds[0])))
    assert seeds[0] in game.state.app_data and seeds[1] not in game.state.app_data


def test_the_roll_is_fair_and_needs_both_seeds() -> None:
    cid = sha256(b"channel")
    faces: Counter[int] = Counter()
    changed = 0
    for i in range(600):
        a, b = sha256(b"a%d" % i), sha256(b"b%d" % i)
        dice = roll(cid, [a, b])
        faces.update(dice)
        changed += roll(cid, [a, sha256(b"c%d" % i)]) != dice  # the second seed alone moves the roll
    assert set(faces) == {1, 2, 3, 4, 5, 6} and all(150 <= n <= 250 for n in faces.values()), faces
    assert changed > 500
    elsewhere = sum(roll(sha256(b"other"), [sha256(b"a%d" % i), sha256(b"b%d" % i)])
                    != roll(cid, [sha256(b"a%d" % i), sha256(b"b%d" % i)]) for i in range(100))
    assert elsewhere > 80, "the same seeds roll differently in another channel"
