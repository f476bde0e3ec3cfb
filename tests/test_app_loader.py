"""``--apps module:attribute``: the game rules a node and the devnet load, with one-line errors."""

from __future__ import annotations

import pytest

from channels.app_loader import load_apps
from channels.core.app import DEFAULT_APPS
from channels.errors import ConfigError
from tests.apps import RaceToTen


@pytest.mark.parametrize("spec", ["tests.apps:RaceToTen", "tests.app_loader_samples:INSTANCE",
                                  "tests.app_loader_samples:REGISTRY", "tests.app_loader_samples:LIST"])
def test_an_app_is_loaded_from_any_usual_shape(spec: str) -> None:
    registry = load_apps([spec])
    assert "race-to-ten" in registry and "payment" in registry
    assert isinstance(registry.get("race-to-ten"), RaceToTen)


def test_no_apps_is_payments_and_the_built_in_games() -> None:
    from channels.games import GAME_APPS

    assert [app.app_id for app in load_apps([])] == [app.app_id for app in GAME_APPS]
    assert [app.app_id for app in DEFAULT_APPS] == ["payment"]  # the library's Node.open default
    assert {"payment", "tictactoe", "rps", "dice", "last-one-standing"} <= {app.app_id for app in load_apps([])}
    assert [app.app_id for app in load_apps(["channels.games:GAME_APPS", "channels.games:TicTacToe"])] == [
        app.app_id for app in GAME_APPS]  # naming a built-in again is no conflict


@pytest.mark.parametrize(("spec", "message"), [
    ("tests.apps", "module:attribute"),
    ("tests.apps:", "module:attribute"),
    ("no_such_module_here:Game", "cannot import no_such_module_here"),
    ("tests.apps:NoSuchGame", "has no NoSuchGame"),
    ("tests.app_loader_samples:NOT_AN_APP", "is not an app"),
])
def test_a_bad_spec_is_one_clear_line(spec: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        load_apps([spec])
    assert "\n" not in str(info.value)


def test_two_apps_under_one_id_are_refused() -> None:
    with pytest.raises(ConfigError, match="given twice"):
        load_apps(["tests.apps:RaceToTen", "tests.app_loader_samples:INSTANCE"])
