"""Commit-reveal: each player commits to a secret in turn order, then each reveals it
(proto/06-games.md section 4). The base of rock-paper-scissors and dice.

A commitment is SHA-256 over a domain tag, the channel id, the player's index and the
secret. Binding the index stops a player copying the other's commitment (and later its
reveal) to force a draw; binding the channel id stops a commitment being replayed from
another channel. Until every player has committed, nobody has revealed anything: the state
holds only hashes.

App data: ``[stake, commitments, reveals]``; ``commitments`` is one 32-byte hash or nil per
player, ``reveals`` one revealed secret (an array of fields) or nil per player. A move is
``[0, commitment]`` or ``[1, *secret fields]``.

While the game runs the player to move forfeits if the channel settles, so a player who
refuses to reveal (having learnt it loses) loses its stake on chain anyway: never better
for it than revealing.
"""

from __future__ import annotations

import hashlib
import struct
from typing import Any

import attrs

from ..core.state import ChannelParams, State
from ..encoding import encode
from ..errors import DecodeError, InvalidTransition
from .base import Game, Table, forfeit, parse_fields

COMMIT, REVEAL = 0, 1
HASH_LEN = 32


@attrs.frozen
class Round:
    """Commitments and reveals so far, one slot per player (None: not yet)."""

    commitments: tuple[bytes | None, ...]
    reveals: tuple[tuple[Any, ...] | None, ...]


def filled_prefix(slots: tuple[Any, ...]) -> int:
    """How many slots from the first are filled; ``DecodeError`` if a gap precedes a filled one."""
    count = sum(1 for s in slots if s is not None)
    if any(s is None for s in slots[:count]):
        raise DecodeError("players commit and reveal in turn order")
    return count


class CommitReveal(Game[Round]):
    """Subclasses name the secret (``parse_secret``, ``secret_bytes``) and who wins (``decide``)."""

    domain = b"p2p-channels/games/commit-reveal/v1"

    def parse_secret(self, fields: list[Any]) -> tuple[Any, ...]:
        """The secret from a reveal's fields; ``DecodeError`` naming its shape otherwise."""
        raise NotImplementedError

    def secret_bytes(self, secret: tuple[Any, ...]) -> bytes:
        """The bytes a commitment hashes for ``secret``."""
        raise NotImplementedError

    def decide(self, table: Table, secrets: list[tuple[Any, ...]]) -> int | None:
        """Who wins once all have revealed; None for a draw."""
        raise NotImplementedError

    # --- commitments -----------------------------------------------------------------------------

    def commitment(self, channel_id: bytes, player: int, secret: tuple[Any, ...]) -> bytes:
        return hashlib.sha256(self.domain + channel_id + struct.pack(">B", player)
                              + self.secret_bytes(secret)).digest()

    def commit_payload(self, channel_id: bytes, player: int, secret: tuple[Any, ...]) -> list[Any]:
        """The move that commits ``player`` to ``secret`` (encode it to play it)."""
        return [COMMIT, self.commitment(channel_id, player, secret)]

    def reveal_payload(self, secret: tuple[Any, ...]) -> list[Any]:
        """The move that reveals ``secret``."""
        return [REVEAL, *secret]

    def next_move(self, params: ChannelParams, state: State, player: int, secret: tuple[Any, ...]) -> bytes | None:
        """The payload ``player`` plays now with its ``secret``: its commitment, then its reveal;
        None when it is not its turn. Commit-reveal moves need a secret, so ``candidate_moves``
        lists none: a player (or bot) draws its secret, keeps it, and plays this."""
        data = self.load(params, state)[1]
        if self.whose_turn(self.table(params, state), data) != player:
            return None
        if data.commitments[player] is None:
            return encode(self.commit_payload(state.channel_id, player, secret))
        return encode(self.reveal_payload(secret))

    # --- Game ----------------------------------------------------------------------------------

    def new_data(self, table: Table) -> Round:
        return Round(commitments=(None,) * table.players, reveals=(None,) * table.players)

    def parse_data(self, table: Table, fields: list[Any]) -> Round:
        raw_c, raw_r = parse_fields(fields, "commit-reveal data", 2)
        if type(raw_c) is not list or type(raw_r) is not list or not len(raw_c) == len(raw_r) == table.players:
            raise DecodeError("one commitment slot and one reveal slot per player")
        commitments: list[bytes | None] = []
        for c in raw_c:
            if c is not None and (type(c) is not bytes or len(c) != HASH_LEN):
                raise DecodeError("a commitment is 32 bytes")
            commitments.append(c)
        reveals: list[tuple[Any, ...] | None] = []
        for r in raw_r:
            if r is not None and type(r) is not list:
                raise DecodeError("a reveal is an array")
            reveals.append(None if r is None else self.parse_secret(r))
        rnd = Round(commitments=tuple(commitments), reveals=tuple(reveals))
        committed, revealed = filled_prefix(rnd.commitments), filled_prefix(rnd.reveals)
        if revealed and committed < table.players:
            raise DecodeError("nobody reveals before every player has committed")
        for player, secret in enumerate(rnd.reveals):
            if secret is not None and self.commitment(table.channel_id, player, secret) != rnd.commitments[player]:
                raise DecodeError(f"player {player}'s reveal does not match its commitment")
        return rnd

    def data_fields(self, data: Round) -> list[Any]:
        return [list(data.commitments), [None if r is None else list(r) for r in data.reveals]]

    def whose_turn(self, table: Table, data: Round) -> int | None:
        for slots in (data.commitments, data.reveals):
            for player, slot in enumerate(slots):
                if slot is None:
                    return player
        return None

    def play(self, table: Table, data: Round, move: Any, mover: int) -> Round:
        if type(move) is not list or not move or type(move[0]) is not int or move[0] not in (COMMIT, REVEAL):
            raise InvalidTransition("a move is [0, commitment] or [1, secret...]")
        committing = data.commitments[mover] is None
        if move[0] == COMMIT:
            if not committing:
                raise InvalidTransition("commitments are closed: reveal your secret")
            if len(move) != 2 or type(move[1]) is not bytes or len(move[1]) != HASH_LEN:
                raise InvalidTransition("a commitment is [0, 32-byte hash]")
            commitments = list(data.commitments)
            commitments[mover] = move[1]
            return attrs.evolve(data, commitments=tuple(commitments))
        if committing:
            raise InvalidTransition("every player commits before anyone reveals")
        try:
            secret = self.parse_secret(move[1:])
        except DecodeError as exc:
            raise InvalidTransition(f"malformed reveal: {exc}") from None
        if self.commitment(table.channel_id, mover, secret) != data.commitments[mover]:
            raise InvalidTransition("reveal does not match commitment")
        reveals = list(data.reveals)
        reveals[mover] = secret
        return attrs.evolve(data, reveals=tuple(reveals))

    def payouts(self, table: Table, data: Round, stake: int) -> tuple[int, ...]:
        turn = self.whose_turn(table, data)
        if turn is not None:
            return forfeit(table, stake, turn, [p for p in range(table.players) if p != turn])
        won = self.decide(table, [r for r in data.reveals if r is not None])
        if won is None:
            return (stake,) * table.players
        return tuple(table.players * stake if p == won else 0 for p in range(table.players))

    def inferred_moves(self, table: Table, prev: Round, next: Round, mover: int) -> list[Any]:
        if prev.commitments[mover] is None and next.commitments[mover] is not None:
            return [[COMMIT, next.commitments[mover]]]
        secret = next.reveals[mover]
        if prev.reveals[mover] is None and secret is not None:
            return [self.reveal_payload(secret)]
        return []

    def secrets(self, data: Round) -> list[tuple[Any, ...]] | None:
        """Every player's revealed secret, or None until all have revealed."""
        if any(r is None for r in data.reveals):
            return None
        return [r for r in data.reveals if r is not None]


def parse_salt(value: Any, what: str = "the salt") -> bytes:
    if type(value) is not bytes or len(value) != HASH_LEN:
        raise DecodeError(f"{what} is 32 bytes")
    return value

