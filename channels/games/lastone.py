"""Last one standing: a counting game for 2 to 8 players (proto/06-games.md section 7).

Players take turns in index order, skipping those who are out. A move adds 1, 2 or 3 to a
shared count; the count may not pass 21, and whoever brings it to exactly 21 is out. The
count then starts again from 0 with the next player. The last player left takes the whole pot.

App data: ``[stake, count, alive, turn]``: the count (0..20), a bit mask of the players
still in (bit ``p`` for player ``p``) and the player to move. While the game runs, the pot is
shared by the players still in other than the one to move (it forfeits if the channel settles).
"""

from __future__ import annotations

from typing import Any

import attrs

from ..errors import DecodeError, InvalidTransition
from .base import Game, Table, forfeit, parse_fields, parse_int, to_one

LIMIT = 21
STEPS = (1, 2, 3)


@attrs.frozen
class Count:
    count: int
    alive: int  # bit mask
    turn: int

    def players_in(self, n: int) -> list[int]:
        return [p for p in range(n) if self.alive >> p & 1]


def next_in(alive: int, after: int, n: int) -> int:
    """The first player still in after ``after``, in turn order."""
    for step in range(1, n + 1):
        p = (after + step) % n
        if alive >> p & 1:
            return p
    raise InvalidTransition("nobody is left in the game")


class LastOneStanding(Game[Count]):
    app_id = "last-one-standing"
    max_app_data = 64  # [stake (up to a 32-byte amount), count, alive, turn]: 38 bytes at most
    min_players = 2
    max_players = 8  # MAX_PARTICIPANTS of the core

    def new_data(self, table: Table) -> Count:
        return Count(count=0, alive=(1 << table.players) - 1, turn=0)

    def parse_data(self, table: Table, fields: list[Any]) -> Count:
        count, alive, turn = parse_fields(fields, "last-one-standing data", 3)
        n = table.players
        data = Count(count=parse_int(count, "the count", 0, LIMIT - 1),
                     alive=parse_int(alive, "the mask of players still in", 1, (1 << n) - 1),
                     turn=parse_int(turn, "the player to move", 0, n - 1))
        if not data.alive >> data.turn & 1:
            raise DecodeError("the player to move is out")
        if len(data.players_in(n)) == 1 and data.count:
            raise DecodeError("the count stops when one player is left")
        return data

    def data_fields(self, data: Count) -> list[Any]:
        return [data.count, data.alive, data.turn]

    def whose_turn(self, table: Table, data: Count) -> int | None:
        return None if len(data.players_in(table.players)) == 1 else data.turn

    def play(self, table: Table, data: Count, move: Any, mover: int) -> Count:
        if type(move) is not int or move not in STEPS:
            raise InvalidTransition("a move adds 1, 2 or 3")
        count = data.count + move
        if count > LIMIT:
            raise InvalidTransition(f"the count may not pass {LIMIT}: it is {data.count}")
        if count < LIMIT:
            return Count(count=count, alive=data.alive, turn=next_in(data.alive, mover, table.players))
        alive = data.alive & ~(1 << mover)  # who says 21 is out; the count starts again
        return Count(count=0, alive=alive, turn=next_in(alive, mover, table.players))

    def payouts(self, table: Table, data: Count, stake: int) -> tuple[int, ...]:
        players_in = data.players_in(table.players)
        if len(players_in) == 1:
            return to_one(table, stake, players_in[0])
        return forfeit(table, stake, data.turn, [p for p in players_in if p != data.turn])

    def moves_for(self, table: Table, data: Count, mover: int) -> list[Any]:
        return [step for step in STEPS if data.count + step <= LIMIT]

    def standing(self, params: Any, state: Any) -> tuple[int, list[int]]:
        """``(count, players still in)`` of a state."""
        data = self.load(params, state)[1]
        return data.count, data.players_in(len(params.participants))
