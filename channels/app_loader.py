"""Channel apps (game rules) named on the command line or in ``config.toml`` as ``module:attribute``.

A node and the L1 it uses must judge moves by the same rules (a forced move the node signs
must be one the adjudicator accepts), so ``node start`` and ``devnet start`` both take
``--apps``. The attribute may be an ``App`` instance, an ``App`` class (built with no
arguments), an ``AppRegistry``, or a list of apps. The payment app and the built-in games
(``channels.games.GAME_APPS``: tic-tac-toe, rock-paper-scissors, dice, last one standing) are
always included, so nodes and the devnet play them without ``--apps``; a library user's
``Node.open`` plays payments only unless handed ``apps=GAME_APPS``.
Importing runs the module's code: name only modules you trust.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Sequence
from typing import Any

from .core.app import DEFAULT_APPS, App, AppRegistry
from .errors import ChannelsError, ConfigError

SPEC = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*")


def check_app_spec(spec: Any) -> str:
    """The syntax of one spec, ``package.module:attribute``; raises ``ConfigError``."""
    if not isinstance(spec, str) or not SPEC.fullmatch(spec):
        raise ConfigError(f"an app is named as module:attribute (e.g. mygame.rules:TicTacToe), got {spec!r:.80}")
    return spec


def load_apps(specs: Sequence[str]) -> AppRegistry:
    """The registry of the payment app and the built-in games, plus every app ``specs`` name."""
    from .games import GAME_APPS  # here: config checks import this module and need no game rules

    apps: list[App] = []
    for spec in specs:
        module_name, _, attribute = check_app_spec(spec).partition(":")
        try:
            module = importlib.import_module(module_name)
        except Exception as exc:  # any import failure is the operator's to fix: one line
            raise ConfigError(f"cannot import {module_name} for app {spec}: {type(exc).__name__}: {exc}") from None
        try:
            found = getattr(module, attribute)
        except AttributeError:
            raise ConfigError(f"module {module_name} has no {attribute} (app {spec})") from None
        apps.extend(app for app in _apps_of(found, spec)  # a built-in named again is no conflict
                    if app.app_id not in GAME_APPS or type(GAME_APPS.get(app.app_id)) is not type(app))
    try:
        return GAME_APPS.with_apps(*apps)
    except ChannelsError as exc:  # two apps under one id
        raise ConfigError(f"apps {', '.join(specs)}: {exc}") from None


MEMBERS = ("app_id", "initial_data", "apply_move", "turn", "is_terminal", "outcome", "validate_transition")


def _apps_of(found: Any, spec: str) -> list[App]:
    if isinstance(found, AppRegistry):
        return [app for app in found if app.app_id not in DEFAULT_APPS]
    if isinstance(found, type):
        try:
            found = found()
        except Exception as exc:
            raise ConfigError(f"cannot build app {spec}: {type(exc).__name__}: {exc}") from None
    if isinstance(found, (list, tuple)):
        items = list(found)
    else:
        items = [found]
    for item in items:
        missing = [name for name in MEMBERS if not hasattr(item, name)]
        if missing:
            raise ConfigError(f"{spec} is not an app: it has no {', '.join(missing)}")
    return items
