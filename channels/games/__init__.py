"""Built-in games on the App protocol (proto/06-games.md).

``GAME_APPS`` is the registry to hand to a node and to the adjudicator: both must check
moves by the same rules. Each game is one class; ``Game`` in ``base`` holds what they share
(stakes in the allocation, canonical app data, the adjudicator's check).
"""

from __future__ import annotations

from typing import Any

from ..core.app import DEFAULT_APPS
from .base import Game, Table
from .dice import Dice
from .lastone import LastOneStanding
from .rps import RockPaperScissors
from .tictactoe import TicTacToe

GAMES: tuple[Game[Any], ...] = (TicTacToe(), RockPaperScissors(), Dice(), LastOneStanding())
GAME_APPS = DEFAULT_APPS.with_apps(*GAMES)

__all__ = ["GAMES", "GAME_APPS", "Dice", "Game", "LastOneStanding", "RockPaperScissors", "Table", "TicTacToe"]

# The game API (channels.games.api): open, join and play games without seeing signatures.
from .api import (  # noqa: E402 - after GAME_APPS, which the API's node thread plays by default
    DEFAULT_MOVE_TIMEOUT,
    DisputeResolved,
    DisputeStarted,
    GameChannel,
    GameEvent,
    GameHandle,
    GameOver,
    GameView,
    NodeThread,
    OpponentMoved,
    RematchStarted,
    UnknownGame,
    join,
    open_game,
)

__all__ += ["DEFAULT_MOVE_TIMEOUT", "DisputeResolved", "DisputeStarted", "GameChannel", "GameEvent", "GameHandle",
            "GameOver", "GameView", "NodeThread", "OpponentMoved", "RematchStarted", "UnknownGame", "join",
            "open_game"]
