"""Rock-paper-scissors with commit-reveal, for a stake (proto/06-games.md section 5).

Player 0 commits to ``(move, salt)``, then player 1; then player 0 reveals, then player 1.
Neither learns the other's move before committing its own: a commitment is a salted hash.
The secret is ``[move, salt]``: move 0 rock, 1 paper, 2 scissors; salt 32 random bytes,
which the player must keep until it reveals (without it the commitment cannot be opened).
Who refuses to reveal loses the stake when the channel settles (``CommitReveal``).
"""

from __future__ import annotations

import struct
from typing import Any

from ..errors import DecodeError
from .base import Table, parse_fields, parse_int
from .commitreveal import CommitReveal, parse_salt

ROCK, PAPER, SCISSORS = 0, 1, 2
NAMES = ("rock", "paper", "scissors")


class RockPaperScissors(CommitReveal):
    app_id = "rps"
    max_app_data = 256  # [stake, 2 commitments, 2 reveals of [move, 32-byte salt]]: 177 bytes at most
    domain = b"p2p-channels/games/rps/v1/commit"

    def parse_secret(self, fields: list[Any]) -> tuple[Any, ...]:
        move, salt = parse_fields(fields, "a rock-paper-scissors secret [move, salt]", 2)
        return (parse_int(move, "the move (0 rock, 1 paper, 2 scissors)", ROCK, SCISSORS), parse_salt(salt))

    def secret_bytes(self, secret: tuple[Any, ...]) -> bytes:
        move, salt = secret
        return struct.pack(">B", move) + bytes(salt)

    def decide(self, table: Table, secrets: list[tuple[Any, ...]]) -> int | None:
        (m0, _), (m1, _) = secrets
        return {0: None, 1: 0, 2: 1}[(m0 - m1) % 3]  # each move beats the one before it

    def secret(self, move: int, salt: bytes) -> tuple[int, bytes]:
        """The secret a player commits to; ``salt`` must be 32 unpredictable bytes."""
        try:
            return (parse_int(move, "the move", ROCK, SCISSORS), parse_salt(salt))
        except DecodeError as exc:
            raise ValueError(str(exc)) from None
