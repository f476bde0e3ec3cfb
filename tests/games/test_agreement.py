"""The off-chain rule and the adjudicator agree on every move.

For random (state, move) pairs of every built-in game, over states reached by random play
(payments sometimes made between moves) and moves that are legal, legal but out of turn,
near-legal (a taken cell, a wrong salt, a count past 21) or garbage bytes:

* off-chain, the core applies the payload with ``apply_move``;
* on chain, the adjudicator sees only the state the mover signed: the result of
  ``apply_move`` when the rules accept the move, otherwise what a cheater would sign for it.

Accept and refuse must match exactly, and an accepted move must leave the adjudicator
holding exactly the off-chain state. 10,000 pairs per game go through the function
``progress`` calls (``validate_transition`` of the registry handed to the ledger), a few
hundred through ``progress`` on an in-process devnet ledger. ``--run-slow`` runs ten times more.
"""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

import attrs
import pytest

from channels.chain.base import LedgerError
from channels.chain.devnet import tx as t
from channels.chain.devnet.ledger import Devnet
from channels.core.ids import NATIVE, Version
from channels.core.state import ChannelParams, State
from channels.encoding import encode
from channels.errors import InvalidTransition
from channels.games import GAME_APPS, Game, LastOneStanding, RockPaperScissors, TicTacToe
from channels.games.base import MAX_MOVE_BYTES
from channels.games.commitreveal import COMMIT, REVEAL, CommitReveal
from tests.games.gameutil import GAMES, KEYS, SCHEME, Player, cheat_claim, legal_move, random_game, sign_all, submit

PAIRS = 10_000
LEDGER_PAIRS = 100  # per game, through the real ledger


def players_for(app: Game[Any], rng: random.Random) -> int:
    return rng.choice([2, 3, 3, 4, 5, 8]) if isinstance(app, LastOneStanding) else 2


# --- moves ------------------------------------------------------------------------------------------


def random_value(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.randrange(8 if depth < 2 else 6)
    if kind == 0:
        return rng.choice([None, True, False])
    if kind == 1:
        return rng.choice([-1, 0, 1, 2, 3, 4, 8, 9, 21, 255, 2**64 - 1, -(2**63)])
    if kind == 2:
        return rng.randbytes(rng.choice([0, 1, 9, 31, 32, 33]))
    if kind == 3:
        return rng.choice(["", "x", "rock", "4"])
    if kind in (4, 5):
        return rng.randrange(-2, 12)
    return [random_value(rng, depth + 1) for _ in range(rng.randrange(4))]


def near_legal(app: Game[Any], params: ChannelParams, state: State, players: Player, rng: random.Random) -> Any:
    """A move of the right shape that the rules may well refuse."""
    if isinstance(app, TicTacToe):
        return rng.randrange(-2, 12)
    if isinstance(app, LastOneStanding):
        return rng.randrange(-1, 6)
    assert isinstance(app, CommitReveal)
    secrets = list(players.secrets.values()) or [(rng.randrange(3), rng.randbytes(32))]
    secret = list(rng.choice(secrets))
    choice = rng.randrange(6)
    if choice == 0:
        return [COMMIT, rng.randbytes(32)]
    if choice == 1:  # the right secret with one bit of the salt or seed flipped
        salt = bytearray(secret[-1])
        salt[rng.randrange(32)] ^= 1 << rng.randrange(8)
        return [REVEAL, *secret[:-1], bytes(salt)]
    if choice == 2 and isinstance(app, RockPaperScissors):  # another move with the right salt
        return [REVEAL, (secret[0] + rng.randrange(1, 3)) % 3, secret[1]]
    if choice == 3:  # somebody's secret, revealed by whoever moves
        return [REVEAL, *secret]
    if choice == 4:  # a copy of a commitment already made
        made = [c for c in app.load(params, state)[1].commitments if c is not None] or [bytes(32)]
        return [COMMIT, rng.choice(made)]
    tail = random_value(rng, 1)
    return [rng.choice([COMMIT, REVEAL, 2, -1]), *(tail if isinstance(tail, list) else [tail])]


def garbage(rng: random.Random) -> bytes:
    choice = rng.randrange(4)
    if choice == 0:
        return rng.randbytes(rng.randrange(40))
    if choice == 1:
        return rng.choice([b"", b"\xcc\x04", b"\xd0\x01", b"\x92\x00", b"\xc1", b"\x80", b"\xca\x00\x00\x00\x00"])
    if choice == 2:
        return encode(rng.randbytes(MAX_MOVE_BYTES))  # over the move bound
    return encode(random_value(rng))


def random_move(app: Game[Any], params: ChannelParams, state: State, players: Player,
                rng: random.Random) -> tuple[str, bytes, int]:
    """``(kind, payload, mover)`` for one pair."""
    n = len(params.participants)
    turn = app.turn(params, state)
    mover = turn if turn is not None else rng.randrange(n)
    roll = rng.random()
    legal = legal_move(app, params, state, rng, attrs.evolve(players, secrets=dict(players.secrets)))
    if roll < 0.4 and legal is not None:
        return "legal", encode(legal[0]), legal[1]
    if roll < 0.5 and legal is not None:
        other = rng.choice([p for p in range(n + 1) if p != legal[1]])  # n: no such player
        return "out of turn", encode(legal[0]), other
    if roll < 0.8:
        return "near-legal", encode(near_legal(app, params, state, players, rng)), mover
    return "garbage", garbage(rng), mover


# --- the two judges ------------------------------------------------------------------------------------


def off_chain(params: ChannelParams, prev: State, payload: bytes, mover: int) -> State | str:
    """What the core does with a move: the next version, or the rule it breaks."""
    try:
        moved = GAME_APPS.get(params.app_id).apply_move(params, prev, payload, mover)
    except InvalidTransition as exc:
        return str(exc)
    return attrs.evolve(moved, version=Version(prev.version + 1))


def adjudicator(params: ChannelParams, prev: State, claim: State, mover: int) -> str | None:
    """What ``progress`` asks of the app (channels/chain/devnet/rules.py): None if it accepts."""
    try:
        GAME_APPS.get(params.app_id).validate_transition(params, prev, claim, mover)
    except Exception as exc:  # the adjudicator refuses a move whatever the app raised
        return f"{type(exc).__name__}: {exc}"
    return None


def mutations(state: State, rng: random.Random) -> list[State]:
    """States that differ from an accepted result only where the move has no say."""
    out = [attrs.evolve(state, is_final=True)]
    row = state.allocation.balances[0]
    payers = [p for p, b in enumerate(row) if b]
    if payers:
        payer = rng.choice(payers)
        payee = rng.choice([p for p in range(len(row)) if p != payer])
        out.append(attrs.evolve(state, allocation=state.allocation.with_transfer(NATIVE, 1, payer, payee)))
    return out


def pool(app: Game[Any], rng: random.Random, size: int) -> list[tuple[ChannelParams, State, Player]]:
    out: list[tuple[ChannelParams, State, Player]] = []
    for i in range(10**6):
        params, states, players = random_game(app, rng, n=players_for(app, rng), nonce=b"pool%d" % i)
        out.extend((params, s, players) for s in states)
        if len(out) >= size:
            return out
    raise AssertionError("unreachable")


def check_pairs(app: Game[Any], pairs: int, seed: int) -> Counter[str]:
    rng = random.Random(seed)
    states = pool(app, rng, pairs // 8)
    seen: Counter[str] = Counter()
    for _ in range(pairs):
        params, prev, players = rng.choice(states)
        kind, payload, mover = random_move(app, params, prev, players, rng)
        off = off_chain(params, prev, payload, mover)
        if isinstance(off, State):
            verdict = adjudicator(params, prev, off, mover)
            assert verdict is None, (f"{app.app_id}: the adjudicator refused a legal move ({kind}, "
                                     f"{payload.hex()}, mover {mover}): {verdict}")
            seen[f"accepted {kind}"] += 1
            if rng.random() < 0.3:
                for wrong in mutations(off, rng):
                    assert adjudicator(params, prev, wrong, mover) is not None, (
                        f"{app.app_id}: the adjudicator accepted a state the move does not lead to: {wrong}")
                    seen["refused mutation"] += 1
        else:
            claim = cheat_claim(app, params, prev, payload, mover, rng)
            verdict = adjudicator(params, prev, claim, mover)
            assert verdict is not None, (f"{app.app_id}: the adjudicator accepted a move the rules refuse "
                                         f"({kind}, {payload.hex()}, mover {mover}: {off}): {claim}")
            seen[f"refused {kind}"] += 1
    return seen


@pytest.mark.parametrize("app", GAMES, ids=lambda a: a.app_id)
def test_the_adjudicator_agrees_with_the_off_chain_rule(app: Game[Any]) -> None:
    seen = check_pairs(app, PAIRS, seed=11)
    assert sum(n for k, n in seen.items() if k != "refused mutation") == PAIRS
    # Both verdicts are common, and every kind of move was tried.
    assert seen["accepted legal"] > PAIRS // 4 and seen["refused near-legal"] > PAIRS // 20
    assert seen["refused garbage"] > PAIRS // 10 and seen["refused out of turn"] > PAIRS // 40
    assert seen["refused mutation"] > PAIRS // 20


@pytest.mark.slow
@pytest.mark.parametrize("app", GAMES, ids=lambda a: a.app_id)
def test_the_adjudicator_agrees_on_many_more_pairs(app: Game[Any]) -> None:
    seen = check_pairs(app, 10 * PAIRS, seed=12)
    assert seen["accepted legal"] > PAIRS


# --- through the ledger -------------------------------------------------------------------------------


def check_ledger(app: Game[Any], pairs: int, seed: int) -> Counter[str]:
    """Each pair on its own channel: register the state, force the move with ``progress``."""
    rng = random.Random(seed)
    seen: Counter[str] = Counter()
    with Devnet(clock=None, apps=GAME_APPS) as dn:
        for i in range(pairs):
            params, states, players = random_game(app, rng, n=players_for(app, rng), nonce=b"ledger%d" % i)
            prev = rng.choice(states)
            kind, payload, mover = random_move(app, params, prev, players, rng)
            off = off_chain(params, prev, payload, mover)
            claim = off if isinstance(off, State) else cheat_claim(app, params, prev, payload, mover, rng)
            signed_prev = sign_all(params, prev)
            submit(dn, t.Register(params=params, signed=signed_prev))
            before = dn.state_digest()
            signature = SCHEME.sign(KEYS[mover % len(KEYS)], params, claim)
            try:
                submit(dn, t.Progress(params=params, signed_prev=signed_prev, next_state=claim, mover=mover,
                                      signature=signature))
            except LedgerError as exc:
                assert not isinstance(off, State), f"{app.app_id}: progress refused a legal move: {exc}"
                assert dn.state_digest() == before, "a refused progress changed the ledger"
                seen[f"refused {kind}"] += 1
                continue
            assert isinstance(off, State), f"{app.app_id}: progress accepted a move the rules refuse: {off}"
            held = dn.channel_sync(params.channel_id).registered
            assert held is not None and held.state == off, "the ledger holds another state than the players"
            seen[f"accepted {kind}"] += 1
    return seen


@pytest.mark.parametrize("app", GAMES, ids=lambda a: a.app_id)
def test_progress_on_the_ledger_agrees_with_the_off_chain_rule(app: Game[Any]) -> None:
    seen = check_ledger(app, LEDGER_PAIRS, seed=21)
    accepted = sum(n for k, n in seen.items() if k.startswith("accepted"))
    assert LEDGER_PAIRS // 5 < accepted < LEDGER_PAIRS - LEDGER_PAIRS // 5, seen


@pytest.mark.slow
@pytest.mark.parametrize("app", GAMES, ids=lambda a: a.app_id)
def test_progress_on_the_ledger_agrees_on_many_more_pairs(app: Game[Any]) -> None:
    seen = check_ledger(app, 10 * LEDGER_PAIRS, seed=22)
    assert seen["accepted legal"] > LEDGER_PAIRS
