"""The App protocol: the rules of what a channel's state may become.

A payment channel runs the built-in ``PaymentApp``; a game registers its own app
under its ``app_id``. The same rules run off-chain (the core checks every update)
and on the L1 (the adjudicator's ``progress`` validates a forced move), so a
player can never win on-chain with a move the rules forbid off-chain.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

from ..errors import InvalidTransition
from .state import Allocation, ChannelParams, State


class App(Protocol):
    """Rules for one kind of channel. Implementations must be pure and deterministic.

    A turn-based game is one class with these members (see ``TurnBasedApp`` for the
    defaults most games need); nothing in ``channels.core`` changes for a new game."""

    app_id: str
    max_app_data: int  # bytes of ``State.app_data`` this app ever needs

    def initial_data(self, params: ChannelParams) -> bytes:
        """The app data of version 0."""
        ...

    def apply_move(self, params: ChannelParams, state: State, payload: bytes, mover: int) -> State:
        """The state after ``mover`` plays ``payload`` (version unchanged); ``InvalidTransition`` if illegal."""
        ...

    def turn(self, params: ChannelParams, state: State) -> int | None:
        """Whose move it is (a participant index), or None when anyone may act / nobody must."""
        ...

    def is_terminal(self, params: ChannelParams, state: State) -> bool:
        """Whether the game is over: no further move is legal."""
        ...

    def outcome(self, params: ChannelParams, state: State) -> Allocation:
        """Who gets what when the channel settles in ``state``."""
        ...

    def validate_transition(self, params: ChannelParams, prev: State, next: State, mover: int) -> None:
        """Raise ``InvalidTransition`` unless ``mover`` may turn ``prev`` into ``next`` in one move.

        The adjudicator calls this for a move forced on chain (``progress``), where
        only the resulting state is shown, not the payload."""
        ...


def check_common(params: ChannelParams, prev: State, next: State) -> None:
    """Rules every app shares: same channel, version + 1, same assets, totals conserved.

    Conservation stops a state that prints money out of the escrow; version + 1
    stops a skipped move being forced on chain."""
    if next.channel_id != prev.channel_id:
        raise InvalidTransition("state belongs to another channel")
    if next.version != prev.version + 1:
        raise InvalidTransition(f"version must be {prev.version + 1}, got {next.version}")
    if next.allocation.assets != prev.allocation.assets:
        raise InvalidTransition("the set of assets cannot change")
    if next.allocation.totals() != prev.allocation.totals():
        raise InvalidTransition("totals per asset must be conserved")
    if prev.is_final:
        raise InvalidTransition("a final state cannot be followed")


class PaymentApp:
    """Plain payments and hash-time locks: no moves, no turns, the allocation is the outcome."""

    app_id = "payment"
    max_app_data = 0

    def initial_data(self, params: ChannelParams) -> bytes:
        return b""

    def apply_move(self, params: ChannelParams, state: State, payload: bytes, mover: int) -> State:
        raise InvalidTransition("a payment channel has no app moves")

    def turn(self, params: ChannelParams, state: State) -> int | None:
        return None

    def is_terminal(self, params: ChannelParams, state: State) -> bool:
        return False

    def outcome(self, params: ChannelParams, state: State) -> Allocation:
        return state.allocation

    def validate_transition(self, params: ChannelParams, prev: State, next: State, mover: int) -> None:
        check_common(params, prev, next)
        if next.app_data != prev.app_data or next.allocation.locks != prev.allocation.locks:
            raise InvalidTransition("a payment changes balances only")
        for old_row, new_row in zip(prev.allocation.balances, next.allocation.balances, strict=True):
            for who, (old, new) in enumerate(zip(old_row, new_row, strict=True)):
                # Theft: a payment may only take from the one who signs it first.
                if new < old and who != mover:
                    raise InvalidTransition("only the payer's balance may go down")


class TurnBasedApp:
    """Defaults for a strictly alternating game: subclass, then write ``apply_move``,
    ``is_terminal`` and ``outcome``. ``validate_transition`` replays nothing: it asks the
    subclass's ``transition_allowed`` (by default: ``next`` must be reachable by some
    payload in ``candidate_moves``)."""

    app_id = "turn-based"
    max_app_data = 1024

    def initial_data(self, params: ChannelParams) -> bytes:
        return b""

    def apply_move(self, params: ChannelParams, state: State, payload: bytes, mover: int) -> State:
        raise InvalidTransition("this app defines no moves")

    def turn(self, params: ChannelParams, state: State) -> int | None:
        return None if self.is_terminal(params, state) else int(state.version) % len(params.participants)

    def is_terminal(self, params: ChannelParams, state: State) -> bool:
        return False

    def outcome(self, params: ChannelParams, state: State) -> Allocation:
        return state.allocation

    def candidate_moves(self, params: ChannelParams, state: State, mover: int) -> list[bytes]:
        """Every payload ``mover`` could play in ``state`` (small games list them all)."""
        return []

    def validate_transition(self, params: ChannelParams, prev: State, next: State, mover: int) -> None:
        check_common(params, prev, next)
        if self.turn(params, prev) != mover:
            raise InvalidTransition("not your turn")
        for payload in self.candidate_moves(params, prev, mover):
            try:
                moved = self.apply_move(params, prev, payload, mover)
            except InvalidTransition:
                continue
            if (moved.allocation, moved.app_data) == (next.allocation, next.app_data):
                return
        raise InvalidTransition("no legal move leads to this state")


class AppRegistry:
    """Apps by id, fixed at construction: the node and the adjudicator are handed the same one
    (a global, mutable registry would let one import change the rules for everyone)."""

    def __init__(self, *apps: App) -> None:
        self._apps: dict[str, App] = {}
        for app in apps:
            if app.app_id in self._apps:
                raise InvalidTransition(f"app id {app.app_id!r} is given twice")
            self._apps[app.app_id] = app

    def with_apps(self, *apps: App) -> "AppRegistry":
        """A new registry with ``apps`` added."""
        return AppRegistry(*self._apps.values(), *apps)

    def get(self, app_id: str) -> App:
        try:
            return self._apps[app_id]
        except KeyError:
            raise InvalidTransition(f"no app registered under id {app_id!r}") from None

    def __contains__(self, app_id: object) -> bool:
        return app_id in self._apps

    def __iter__(self) -> Iterator[App]:
        return iter(self._apps.values())


DEFAULT_APPS = AppRegistry(PaymentApp())
