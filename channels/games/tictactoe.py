"""Tic-tac-toe for a stake (proto/06-games.md section 3).

Player 0 is X and moves first, player 1 is O. App data: ``[stake, board]`` where ``board``
is 9 bytes, cells 0..8 row by row, each 0 (empty), 1 (X) or 2 (O). A move is one cell number.
Three in a row takes the pot; a full board without one is a draw (stakes back).
"""

from __future__ import annotations

from typing import Any

from ..errors import DecodeError, InvalidTransition
from .base import Game, Table, forfeit, parse_fields, to_one

EMPTY, CROSS, NOUGHT = 0, 1, 2
LINES = ((0, 1, 2), (3, 4, 5), (6, 7, 8), (0, 3, 6), (1, 4, 7), (2, 5, 8), (0, 4, 8), (2, 4, 6))
MARKS = ".XO"

Board = tuple[int, ...]


LINE_MASKS = tuple(sum(1 << c for c in line) for line in LINES)


def line_of(board: Board, mark: int) -> bool:
    """Whether ``mark`` holds three in a row."""
    mask = sum(1 << c for c, v in enumerate(board) if v == mark)
    return any(mask & line == line for line in LINE_MASKS)


def winner_mark(board: Board) -> int | None:
    for mark in (CROSS, NOUGHT):
        if line_of(board, mark):
            return mark
    return None


class TicTacToe(Game[Board]):
    app_id = "tictactoe"
    max_app_data = 64  # [stake (up to a 32-byte amount), 9-byte board]: 46 bytes at most

    def new_data(self, table: Table) -> Board:
        return (EMPTY,) * 9

    def parse_data(self, table: Table, fields: list[Any]) -> Board:
        raw = parse_fields(fields, "tic-tac-toe data", 1)[0]
        if type(raw) is not bytes or len(raw) != 9 or any(c > NOUGHT for c in raw):
            raise DecodeError("the board is 9 bytes, each 0 (empty), 1 (X) or 2 (O)")
        board = tuple(raw)
        xs, os_ = board.count(CROSS), board.count(NOUGHT)
        if xs - os_ not in (0, 1):
            raise DecodeError("X moves first and the players alternate")
        x_won, o_won = line_of(board, CROSS), line_of(board, NOUGHT)
        if (x_won and o_won) or (x_won and xs == os_) or (o_won and xs != os_):
            raise DecodeError("no move follows a win")
        return board

    def data_fields(self, data: Board) -> list[Any]:
        return [bytes(data)]

    def whose_turn(self, table: Table, data: Board) -> int | None:
        if winner_mark(data) is not None or EMPTY not in data:
            return None
        return 0 if data.count(CROSS) == data.count(NOUGHT) else 1

    def play(self, table: Table, data: Board, move: Any, mover: int) -> Board:
        if type(move) is not int or not 0 <= move <= 8:
            raise InvalidTransition("a move is a cell number 0..8")
        if data[move] != EMPTY:
            raise InvalidTransition(f"cell {move} is taken")
        board = list(data)
        board[move] = CROSS if mover == 0 else NOUGHT
        return tuple(board)

    def payouts(self, table: Table, data: Board, stake: int) -> tuple[int, ...]:
        won = winner_mark(data)
        if won is not None:
            return to_one(table, stake, 0 if won == CROSS else 1)
        turn = self.whose_turn(table, data)
        if turn is None:
            return (stake, stake)  # a draw
        return forfeit(table, stake, turn, [1 - turn])

    def moves_for(self, table: Table, data: Board, mover: int) -> list[Any]:
        return [cell for cell in range(9) if data[cell] == EMPTY]

    def inferred_moves(self, table: Table, prev: Board, next: Board, mover: int) -> list[Any]:
        return [cell for cell in range(9) if prev[cell] != next[cell]]


def render(board: Board) -> str:
    """The board as three lines of ``CROSS``, ``NOUGHT`` and ``.``."""
    return "\n".join("".join(MARKS[c] for c in board[row * 3:row * 3 + 3]) for row in range(3))
