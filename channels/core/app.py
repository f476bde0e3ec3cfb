"""The App protocol: the rules of what a channel's state may become.

A payment channel runs the built-in ``PaymentApp``; a game registers its own app
under its ``app_id``. The same rules run off-chain (the core checks every update)
and on the L1 (the adjudicator's ``progress`` validates a forced move), so a
player can never win on-chain with a move the rules forbid off-chain.
"""

from __future__ import annotations

from typing import Protocol

from ..errors import InvalidTransition
from .state import ChannelParams, State


class App(Protocol):
    """Rules for one kind of channel. Implementations must be pure and deterministic."""

    app_id: str

    def validate_transition(self, params: ChannelParams, prev: State, next: State, mover: int) -> None:
        """Raise ``InvalidTransition`` unless ``mover`` may turn ``prev`` into ``next``."""
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
    """Plain payments: only the mover's balances may go down, locks and app data stay."""

    app_id = "payment"

    def validate_transition(self, params: ChannelParams, prev: State, next: State, mover: int) -> None:
        check_common(params, prev, next)
        if next.app_data != prev.app_data or next.allocation.locks != prev.allocation.locks:
            raise InvalidTransition("a payment changes balances only")
        for old_row, new_row in zip(prev.allocation.balances, next.allocation.balances, strict=True):
            for who, (old, new) in enumerate(zip(old_row, new_row, strict=True)):
                # Theft: a payment may only take from the one who signs it first.
                if new < old and who != mover:
                    raise InvalidTransition("only the payer's balance may go down")


_REGISTRY: dict[str, App] = {"payment": PaymentApp()}


def register_app(app: App) -> None:
    """Make ``app`` known by its id (games call this at import time)."""
    existing = _REGISTRY.get(app.app_id)
    if existing is not None and type(existing) is not type(app):
        raise InvalidTransition(f"app id {app.app_id!r} is already registered to another app")
    _REGISTRY[app.app_id] = app


def get_app(app_id: str) -> App:
    try:
        return _REGISTRY[app_id]
    except KeyError:
        raise InvalidTransition(f"no app registered under id {app_id!r}") from None
