"""A small turn-based game written as one class on the App protocol, for tests.

"Race to ten": players alternate; a move adds 1, 2 or 3 to a shared counter (one byte
of payload) and the mover pays the other player 1 coin per step added. Whoever
reaches 10 ends the game. Nothing in ``channels.core`` knows about it.
"""

from __future__ import annotations

import attrs

from channels.core.app import TurnBasedApp
from channels.core.state import ChannelParams, State
from channels.errors import InvalidTransition

TARGET = 10


class RaceToTen(TurnBasedApp):
    app_id = "race-to-ten"
    max_app_data = 2  # [counter, player to move]

    def initial_data(self, params: ChannelParams) -> bytes:
        return bytes([0, 0])

    def apply_move(self, params: ChannelParams, state: State, payload: bytes, mover: int) -> State:
        if self.is_terminal(params, state):
            raise InvalidTransition("the game is over")
        if self.turn(params, state) != mover:
            raise InvalidTransition("not your turn")
        if len(payload) != 1 or payload[0] not in (1, 2, 3):
            raise InvalidTransition("a move adds 1, 2 or 3")
        step = payload[0]
        count = min(state.app_data[0] + step, TARGET)
        asset = state.allocation.assets[0]
        if state.allocation.balance(asset, mover) < step:
            raise InvalidTransition("the mover cannot pay for this move")
        alloc = state.allocation.with_transfer(asset, step, mover, 1 - mover)
        return attrs.evolve(state, app_data=bytes([count, 1 - mover]), allocation=alloc)

    def turn(self, params: ChannelParams, state: State) -> int | None:
        # Whose turn is kept in the app data, not derived from the version: payments and
        # locks may happen between moves in the same channel.
        return None if self.is_terminal(params, state) else state.app_data[1]

    def is_terminal(self, params: ChannelParams, state: State) -> bool:
        return state.app_data[0] >= TARGET

    def candidate_moves(self, params: ChannelParams, state: State, mover: int) -> list[bytes]:
        return [bytes([n]) for n in (1, 2, 3)]
