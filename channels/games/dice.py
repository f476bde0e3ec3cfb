"""Dice with commit-reveal randomness, for a stake (proto/06-games.md section 6).

Each player commits to a 32-byte random seed, then each reveals it. The roll is SHA-256 over
both seeds: no player can choose or foresee it, because each seed was fixed before the other
was known. The roll gives each player a die (1..6); the higher die takes the pot, equal dice
are a draw. Who refuses to reveal (having computed that it loses) loses the stake anyway.
"""

from __future__ import annotations

import hashlib
from typing import Any

from ..core.state import ChannelParams, State
from ..errors import DecodeError
from .base import Table, parse_fields
from .commitreveal import CommitReveal, parse_salt

ROLL_DOMAIN = b"p2p-channels/games/dice/v1/roll"


def roll(channel_id: bytes, seeds: list[bytes]) -> tuple[int, ...]:
    """Each player's die from the revealed seeds: digits of the roll hash in base 6, plus one."""
    value = int.from_bytes(hashlib.sha256(ROLL_DOMAIN + channel_id + b"".join(seeds)).digest(), "big")
    dice = []
    for _ in seeds:
        value, digit = divmod(value, 6)
        dice.append(digit + 1)
    return tuple(dice)


class Dice(CommitReveal):
    app_id = "dice"
    max_app_data = 256  # [stake, 2 commitments, 2 reveals of [32-byte seed]]: 175 bytes at most
    domain = b"p2p-channels/games/dice/v1/commit"

    def parse_secret(self, fields: list[Any]) -> tuple[Any, ...]:
        (seed,) = parse_fields(fields, "a dice secret [seed]", 1)
        return (parse_salt(seed, "the seed"),)

    def secret_bytes(self, secret: tuple[Any, ...]) -> bytes:
        return bytes(secret[0])

    def decide(self, table: Table, secrets: list[tuple[Any, ...]]) -> int | None:
        dice = roll(table.channel_id, [s[0] for s in secrets])
        best = max(dice)
        return dice.index(best) if dice.count(best) == 1 else None

    def dice(self, params: ChannelParams, state: State) -> tuple[int, ...] | None:
        """The players' dice once every seed is revealed, else None."""
        seeds = self.secrets(self.load(params, state)[1])
        return None if seeds is None else roll(state.channel_id, [s[0] for s in seeds])

    def secret(self, seed: bytes) -> tuple[bytes]:
        """The secret a player commits to: 32 unpredictable bytes."""
        try:
            return (parse_salt(seed, "the seed"),)
        except DecodeError as exc:
            raise ValueError(str(exc)) from None
