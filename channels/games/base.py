"""What every built-in game shares: stakes in the allocation, canonical app data, and one
move rule that serves both the off-chain check and the adjudicator (proto/06-games.md).

A game writes a few methods on its own decoded data (``new_data``, ``parse_data``,
``data_fields``, ``whose_turn``, ``play``, ``payouts``, ``moves_for``); ``Game`` turns them
into the App protocol of ``channels.core.app``.

Stakes. The first move of a game fixes the stake: the smallest balance of the channel's
first asset over all players, so every player can cover it. Every state after that carries in
its allocation what the pot pays *if the channel settles there*: the result once the game is
over, and while it runs, the result of the player to move never moving again (it forfeits,
the others split its stake). That is what makes a stalling player lose on chain: the
adjudicator pays the registered state's allocation when the challenge window ends.

Moves are applied as deltas to the allocation, so a payment or lock made in the channel
between moves is kept. A move never fails for want of balance: a player who paid or locked
away part of its stake during a game pays what it still has, so it cannot jam the game against
the player to move (who would forfeit). In a two-party channel a player who made no payment
during a game ends with at least what the rules give it (proto/06-games.md section 2).

Pure and deterministic: no I/O, no clock, no randomness (secrets come from the players).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any, Generic, TypeVar

import attrs

from ..core.app import TurnBasedApp, check_common
from ..core.ids import ChannelId
from ..core.state import Allocation, ChannelParams, State, amount_field, parse_amount
from ..encoding import decode, encode
from ..errors import DecodeError, InvalidTransition

MAX_MOVE_BYTES = 128  # a move of every built-in game fits (the core allows 4 KiB per move)
# The rematch move: once a game is over, either player may reset the game data to a new game
# in the same channel (the allocation is kept; the next stake is fixed at its first move).
# Co-signed only: the adjudicator refuses it (no move follows a finished game on chain), so
# nobody is forced into a new game.
NEW_GAME = "new-game"
NEW_GAME_PAYLOAD = encode(NEW_GAME)

D = TypeVar("D")


@attrs.frozen
class Table:
    """What a move's rules may depend on besides the game data: which channel, how many players.

    Commitments bind the channel id so they cannot be replayed from another channel."""

    channel_id: ChannelId
    players: int


class Game(TurnBasedApp, Generic[D]):
    """A turn-based game with a stake; subclasses define the rules on their decoded data ``D``."""

    app_id = "game"
    max_app_data = 256
    min_players = 2
    max_players = 2

    # --- what a game defines ------------------------------------------------------------------

    def new_data(self, table: Table) -> D:
        """The game data before the first move."""
        raise NotImplementedError

    def parse_data(self, table: Table, fields: list[Any]) -> D:
        """The game data from its decoded fields; ``DecodeError`` unless well-formed and consistent."""
        raise NotImplementedError

    def data_fields(self, data: D) -> list[Any]:
        raise NotImplementedError

    def whose_turn(self, table: Table, data: D) -> int | None:
        """The player to move, None once the game is over."""
        raise NotImplementedError

    def play(self, table: Table, data: D, move: Any, mover: int) -> D:
        """The data after ``mover`` (whose turn it is) plays the decoded ``move``; ``InvalidTransition``
        naming the rule broken."""
        raise NotImplementedError

    def payouts(self, table: Table, data: D, stake: int) -> tuple[int, ...]:
        """How the pot (``players * stake``) is shared if the channel settles with ``data``."""
        raise NotImplementedError

    def moves_for(self, table: Table, data: D, mover: int) -> list[Any]:
        """Every move value ``mover`` may play (empty for moves that need a secret)."""
        return []

    def inferred_moves(self, table: Table, prev: D, next: D, mover: int) -> list[Any]:
        """Moves that may turn ``prev`` into ``next``: the adjudicator sees states, not payloads."""
        return self.moves_for(table, prev, mover)

    # --- decoded views --------------------------------------------------------------------------

    def table(self, params: ChannelParams, state: State) -> Table:
        n = len(params.participants)
        if not self.min_players <= n <= self.max_players:
            want = (str(self.min_players) if self.min_players == self.max_players
                    else f"{self.min_players}..{self.max_players}")
            raise InvalidTransition(f"{self.app_id} is played by {want} players, this channel has {n}")
        return Table(channel_id=state.channel_id, players=n)

    def load(self, params: ChannelParams, state: State) -> tuple[int | None, D]:
        """``(stake, data)`` of a state's app data; the stake is None before the first move."""
        loaded = _parsed(self, self.table(params, state), state.app_data)
        if isinstance(loaded, str):
            raise InvalidTransition(f"malformed {self.app_id} app data: {loaded}")
        return loaded

    def parse(self, table: Table, app_data: bytes) -> tuple[int | None, D]:
        """Decode app data strictly; ``DecodeError`` unless it is a state's one canonical form."""
        value = decode(app_data, max_size=self.max_app_data)
        if type(value) is not list or not value:
            raise DecodeError("app data is an array [stake, ...]")
        stake = None if value[0] is None else parse_amount(value[0], "the stake")
        data = self.parse_data(table, value[1:])
        if self.dump(stake, data) != app_data:
            raise DecodeError("not in its one canonical form")
        return stake, data

    def dump(self, stake: int | None, data: D) -> bytes:
        return encode([None if stake is None else amount_field(stake), *self.data_fields(data)])

    def net(self, table: Table, data: D, stake: int | None) -> tuple[int, ...]:
        """Each player's gain (or loss, negative) from the pot if the channel settles with ``data``."""
        if stake is None:
            return (0,) * table.players
        shares = self.payouts(table, data, stake)
        return tuple(share - stake for share in shares)

    # --- the App protocol -------------------------------------------------------------------------

    def initial_data(self, params: ChannelParams) -> bytes:
        n = len(params.participants)
        if not self.min_players <= n <= self.max_players:
            raise InvalidTransition(f"{self.app_id} cannot be played by {n} players")
        return self.dump(None, self.new_data(Table(channel_id=params.channel_id, players=n)))

    def apply_move(self, params: ChannelParams, state: State, payload: bytes, mover: int) -> State:
        if state.is_final:
            raise InvalidTransition("the channel's state is final")
        table = self.table(params, state)
        stake, data = self.load(params, state)
        turn = self.whose_turn(table, data)
        if turn is None:
            if payload == NEW_GAME_PAYLOAD:  # a rematch: see NEW_GAME
                return attrs.evolve(state, app_data=self.dump(None, self.new_data(table)))
            raise InvalidTransition("the game is over")
        if mover != turn:
            raise InvalidTransition(f"not your turn: player {turn} is to move")
        try:
            move = decode(payload, max_size=MAX_MOVE_BYTES)
        except DecodeError as exc:
            raise InvalidTransition(f"malformed move: {exc}") from None
        new = self.play(table, data, move, mover)
        alloc = state.allocation
        if len(alloc.balances[0]) != table.players:
            raise InvalidTransition("the allocation has no balance per player")
        new_stake = min(alloc.balances[0]) if stake is None else stake
        moved = settle(alloc, self.net(table, data, stake), self.net(table, new, new_stake))
        return attrs.evolve(state, app_data=self.dump(new_stake, new), allocation=moved)

    def turn(self, params: ChannelParams, state: State) -> int | None:
        return self.whose_turn(self.table(params, state), self.load(params, state)[1])

    def is_terminal(self, params: ChannelParams, state: State) -> bool:
        return self.turn(params, state) is None

    def outcome(self, params: ChannelParams, state: State) -> Allocation:
        """The allocation: every state already holds what the pot pays if it settles there."""
        return state.allocation

    def candidate_moves(self, params: ChannelParams, state: State, mover: int) -> list[bytes]:
        table = self.table(params, state)
        data = self.load(params, state)[1]
        if self.whose_turn(table, data) != mover:
            return []
        return [encode(move) for move in self.moves_for(table, data, mover)]

    def validate_transition(self, params: ChannelParams, prev: State, next: State, mover: int) -> None:
        """The adjudicator's check: some move of ``mover`` turns ``prev`` into exactly ``next``.

        It replays ``apply_move``, the off-chain rule, on the moves ``next`` can come from, so
        the two can never disagree on what a move is allowed to do."""
        check_common(params, prev, next)
        table = self.table(params, prev)
        data = self.load(params, prev)[1]
        turn = self.whose_turn(table, data)
        if turn is None:
            raise InvalidTransition("the game is over")
        if mover != turn:
            raise InvalidTransition(f"not your turn: player {turn} is to move")
        new = self.load(params, next)[1]
        moves = self.inferred_moves(table, data, new, mover)
        errors: list[str] = []
        for move in moves:
            try:
                moved = self.apply_move(params, prev, encode(move), mover)
            except InvalidTransition as exc:
                errors.append(str(exc))
                continue
            if moved.app_data != next.app_data:
                continue
            if moved.allocation != next.allocation:
                raise InvalidTransition("the allocation does not move the stakes as the rules say")
            if moved.is_final != next.is_final:
                raise InvalidTransition("a move cannot mark the state final")
            return
        if len(moves) == 1 and errors:
            raise InvalidTransition(errors[0])  # the one move it can be breaks this rule
        raise InvalidTransition("no legal move leads to this state")

    # --- for players and interfaces ------------------------------------------------------------

    def winner(self, params: ChannelParams, state: State) -> int | None:
        """The player who takes the whole pot once the game is over; None while it runs or on a draw."""
        table = self.table(params, state)
        data = self.load(params, state)[1]
        if self.whose_turn(table, data) is not None:
            return None
        shares = self.payouts(table, data, 1)  # a unit stake: the winner takes ``players``
        top = [p for p, share in enumerate(shares) if share == table.players]
        return top[0] if top else None

    def stake(self, params: ChannelParams, state: State) -> int | None:
        """What each player has at stake (None before the first move)."""
        return self.load(params, state)[0]


@functools.lru_cache(maxsize=4096)
def _parsed(game: Game[Any], table: Table, app_data: bytes) -> tuple[int | None, Any] | str:
    """``Game.parse`` remembered: a move decodes the same state several times (off-chain, the
    adjudicator's replay, the turn). Values are immutable, so sharing them is safe."""
    try:
        return game.parse(table, app_data)
    except DecodeError as exc:
        return str(exc)


def settle(alloc: Allocation, before: Sequence[int], after: Sequence[int]) -> Allocation:
    """Move the first asset's balances by ``after - before`` (which sums to zero).

    Losers pay into a pool in player order, each at most what it holds; winners are paid from
    the pool in player order. Totals are conserved whatever the balances."""
    row = list(alloc.balances[0])
    delta = [a - b for a, b in zip(after, before, strict=True)]
    pool = 0
    for p, d in enumerate(delta):
        if d < 0:
            paid = min(-d, row[p])
            row[p] -= paid
            pool += paid
    for p, d in enumerate(delta):
        if d > 0:
            got = min(d, pool)
            row[p] += got
            pool -= got
    if row == list(alloc.balances[0]):
        return alloc
    return attrs.evolve(alloc, balances=(tuple(row), *alloc.balances[1:]))


def forfeit(table: Table, stake: int, loser: int, among: Sequence[int]) -> tuple[int, ...]:
    """The pot shared equally by ``among`` (``loser`` gets nothing); the remainder goes one unit
    each to the first of them in turn order after ``loser``."""
    pot = table.players * stake
    order = sorted(among, key=lambda p: (p - loser) % table.players)
    shares = [0] * table.players
    each, rest = divmod(pot, len(order))
    for i, p in enumerate(order):
        shares[p] = each + (1 if i < rest else 0)
    return tuple(shares)


def to_one(table: Table, stake: int, winner: int) -> tuple[int, ...]:
    """The whole pot to ``winner``."""
    return tuple(table.players * stake if p == winner else 0 for p in range(table.players))


def parse_int(value: Any, what: str, low: int, high: int) -> int:
    """An integer field of app data or a move, in ``low .. high``; ``DecodeError`` otherwise."""
    if type(value) is not int or not low <= value <= high:
        raise DecodeError(f"{what} must be an integer in {low}..{high}")
    return value


def parse_fields(fields: Any, what: str, size: int) -> list[Any]:
    if type(fields) is not list or len(fields) != size:
        raise DecodeError(f"{what} has {size} fields")
    return fields
