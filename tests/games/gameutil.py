"""Helpers of the game tests: channels of n players, stepping states, random legal play,
and the states a cheater would claim for a move the rules refuse."""

from __future__ import annotations

import itertools
import random
from collections.abc import Sequence
from typing import Any

import attrs

from channels.chain.devnet import tx as t
from channels.chain.devnet.constants import DEFAULT_CHAIN_ID
from channels.chain.devnet.ledger import Devnet
from channels.chain.devnet.scheme import ADJUDICATOR, DevnetKey, DevnetScheme
from channels.core.ids import NATIVE, Version
from channels.core.ops import AppMove
from channels.core.state import Allocation, ChannelParams, SignedState, State
from channels.crypto import sha256
from channels.encoding import decode, encode
from channels.errors import DecodeError, InvalidTransition
from channels.games import GAME_APPS, Dice, Game, LastOneStanding, RockPaperScissors, TicTacToe
from channels.games.base import settle
from channels.games.commitreveal import COMMIT, REVEAL, CommitReveal, Round
from channels.games.lastone import LIMIT, Count
from channels.testing import CorePair

KEYS = [DevnetKey.from_label(name) for name in
        ("alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi")]
SUBMITTER = DevnetKey.from_label("referee")
SCHEME = DevnetScheme()
GAMES: list[Game[Any]] = [TicTacToe(), RockPaperScissors(), Dice(), LastOneStanding()]


def make_params(app: Game[Any], n: int = 2, *, nonce: bytes = b"game", duration: int = 100) -> ChannelParams:
    return ChannelParams(chain_id=DEFAULT_CHAIN_ID, adjudicator=ADJUDICATOR,
                         participants=tuple(k.address for k in KEYS[:n]), challenge_duration=duration,
                         nonce=sha256(nonce), app_id=app.app_id)


def start(app: Game[Any], params: ChannelParams, balances: Sequence[int]) -> State:
    """Version 0 of a game channel holding ``balances``."""
    alloc = Allocation(assets=(NATIVE,), balances=(tuple(balances),))
    return State(channel_id=params.channel_id, version=Version(0), allocation=alloc,
                 app_data=app.initial_data(params))


def step(app: Game[Any], params: ChannelParams, state: State, move: Any, mover: int) -> State:
    """The next version after ``mover`` plays ``move`` (a value, encoded here)."""
    moved = app.apply_move(params, state, encode(move), mover)
    return attrs.evolve(moved, version=Version(state.version + 1))


def pay(state: State, amount: int, payer: int, payee: int) -> State:
    """A payment made in the channel between two moves (the core allows it)."""
    alloc = state.allocation.with_transfer(NATIVE, amount, payer, payee)
    return attrs.evolve(state, version=Version(state.version + 1), allocation=alloc)


def sign_all(params: ChannelParams, state: State) -> SignedState:
    n = len(params.participants)
    return SignedState(state=state, signatures=tuple(SCHEME.sign(k, params, state) for k in KEYS[:n]))


def submit(dn: Devnet, op: Any, key: DevnetKey = SUBMITTER) -> None:
    dn.submit(t.sign_tx(key, chain_id=dn.chain_id, nonce=dn.store.nonce(key.address), op=op))


# --- random play ---------------------------------------------------------------------------------


@attrs.define
class Player:
    """What each player keeps for itself in a commit-reveal game: its secret."""

    secrets: dict[int, tuple[Any, ...]] = attrs.Factory(dict)


def random_secret(app: Game[Any], rng: random.Random) -> tuple[Any, ...]:
    salt = rng.randbytes(32)
    if isinstance(app, RockPaperScissors):
        return app.secret(rng.randrange(3), salt)
    assert isinstance(app, Dice)
    return app.secret(salt)


def legal_move(app: Game[Any], params: ChannelParams, state: State, rng: random.Random,
               players: Player) -> tuple[Any, int] | None:
    """A random legal ``(move, mover)``, None once the game is over."""
    mover = app.turn(params, state)
    if mover is None:
        return None
    if isinstance(app, CommitReveal):
        data: Round = app.load(params, state)[1]
        if data.commitments[mover] is None:
            players.secrets[mover] = random_secret(app, rng)
            return app.commit_payload(state.channel_id, mover, players.secrets[mover]), mover
        return app.reveal_payload(players.secrets[mover]), mover
    table = app.table(params, state)
    return rng.choice(app.moves_for(table, app.load(params, state)[1], mover)), mover


def random_game(app: Game[Any], rng: random.Random, *, n: int, nonce: bytes,
                balances: Sequence[int] | None = None,
                payments: bool = True) -> tuple[ChannelParams, list[State], Player]:
    """Every state of one random game (payments sometimes made between moves), and the
    players' secrets."""
    params = make_params(app, n, nonce=nonce)
    if balances is None:
        balances = [rng.choice([0, 1, 7, 10, 10, 10, 50, 2**64, 2**200]) for _ in range(n)]
        if rng.random() < 0.7:
            balances = [balances[0]] * n
    state = start(app, params, balances)
    states, players = [state], Player()
    while (move := legal_move(app, params, state, rng, players)) is not None:
        if payments and n == 2 and rng.random() < 0.1:  # payments are two-party
            payer, payee = rng.sample(range(n), 2)
            have = state.allocation.balances[0][payer]
            if have:
                state = pay(state, rng.randint(1, have), payer, payee)
                states.append(state)
        state = step(app, params, state, *move)
        states.append(state)
    return params, states, players


# --- what a cheater would sign for a move the rules refuse ----------------------------------------


def cheat_claim(app: Game[Any], params: ChannelParams, prev: State, payload: bytes, mover: int,
                rng: random.Random) -> State:
    """The state a player would sign for ``payload`` ignoring every rule: the move written
    into the game data as it stands, the stakes moved as the formula would move them."""
    nxt = attrs.evolve(prev, version=Version(prev.version + 1))
    try:
        stake, data = app.load(params, prev)
        table = app.table(params, prev)
        move = decode(payload)
        new = naive(app, data, move, mover, table.players)
    except (DecodeError, InvalidTransition, ValueError, IndexError, TypeError, KeyError):
        # Not even a move: sign the garbage itself as app data, or the old data again.
        return attrs.evolve(nxt, app_data=payload if rng.random() < 0.5 else prev.app_data)
    new_stake = stake if stake is not None else min(prev.allocation.balances[0])
    try:
        alloc = settle(prev.allocation, app.net(table, data, stake), app.net(table, new, new_stake))
    except (InvalidTransition, DecodeError, IndexError, ValueError, TypeError, ZeroDivisionError):
        alloc = prev.allocation  # the claimed data has no payout: keep the balances
    try:
        app_data = app.dump(new_stake, new)
    except (DecodeError, ValueError, TypeError):
        app_data = payload
    return attrs.evolve(nxt, app_data=app_data, allocation=alloc)


def naive(app: Game[Any], data: Any, move: Any, mover: int, n: int) -> Any:
    """The game data with ``move`` written in, checking nothing but shapes."""
    if isinstance(app, TicTacToe):
        board = list(data)
        if type(move) is not int or not 0 <= move < 9:  # False is not cell 0, -1 not cell 8
            raise IndexError("no such cell")
        board[move] = 1 + mover % 2
        return tuple(board)
    if isinstance(app, CommitReveal):
        if type(move) is not list or type(move[0]) is not int:
            raise TypeError("a move is [kind, ...]")
        if move[0] == COMMIT and len(move) == 2:
            commitments = list(data.commitments)
            commitments[mover] = move[1]
            return attrs.evolve(data, commitments=tuple(commitments))
        if move[0] == REVEAL:
            reveals = list(data.reveals)
            reveals[mover] = tuple(move[1:])
            return attrs.evolve(data, reveals=tuple(reveals))
        raise ValueError("no such move kind")
    assert isinstance(app, LastOneStanding)
    if type(move) is not int:
        raise TypeError("a move is a number")
    count = data.count + move  # past 21 or below 0 it stays so (no wrapping onto a legal count)
    if count == LIMIT:
        return Count(count=0, alive=data.alive & ~(1 << mover), turn=(mover + 1) % n)
    return Count(count=count, alive=data.alive, turn=(mover + 1) % n)


# --- off-chain play between two cores --------------------------------------------------------------


class PairGame:
    """A two-player game played off-chain by two channel cores (``CorePair``): every move is
    proposed by one core, sent through the real wire encoding and checked by the other."""

    def __init__(self, app: Game[Any], deposits: Sequence[int] = (10, 10),
                 labels: tuple[str, str] = ("alice", "bob")) -> None:
        self.app = app
        self.pair = CorePair(deposits, app_id=app.app_id, apps=GAME_APPS, labels=labels)
        self.params = self.pair.params
        self._ids = itertools.count(1)

    def move(self, player: int, value: Any) -> None:
        self.play(player, encode(value))

    def play(self, player: int, payload: bytes) -> None:
        self.pair.propose(player, AppMove(move_id=next(self._ids).to_bytes(4, "big"), payload=payload))
        self.pair.deliver_all()

    @property
    def state(self) -> State:
        ours, theirs = (self.pair.channel(i).latest for i in (0, 1))
        assert ours == theirs and ours.is_fully_signed, "both cores hold the same, fully signed state"
        return ours.state

    @property
    def channel_id(self) -> bytes:
        return self.pair.channel(0).channel_id

    @property
    def balances(self) -> tuple[int, ...]:
        return self.state.allocation.balances[0]
