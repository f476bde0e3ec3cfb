"""docs/games.md works as written: its Nim class, registered beside the built-ins, is played
through the game API by two nodes (in process, memory transport, an L1 with the same rules),
to a win, a rematch, and a stalling player who loses on chain by Nim's own rules."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import trio
from trio.testing import MockClock

from channels.core.channel import Phase
from channels.errors import InvalidTransition
from channels.games import GAME_APPS, DisputeStarted, Game, GameOver, OpponentMoved
from tests.games.test_api import STAKE, WINDOW, l1, players, start, until

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "games.md"


def guide_game() -> Game[Any]:
    """The guide's first code block, run as a module: its ``Nim``."""
    code = re.findall(r"```python\n(.*?)```", GUIDE.read_text(), re.S)[0]
    namespace: dict[str, Any] = {"__name__": "guide_nim"}
    exec(compile(code, str(GUIDE), "exec"), namespace)  # our own document
    game = namespace["Nim"]()
    assert isinstance(game, Game) and game.app_id == "nim"
    return game


async def test_the_guide_game_is_played_won_and_played_again(tmp_path: Path, autojump_clock: MockClock) -> None:
    async with players(tmp_path, GAME_APPS.with_apps(guide_game())) as (dev, _net, alice, bob):
        with trio.fail_after(60):
            before = await l1(dev, alice, bob)
            a, b = await start(alice, bob, "nim")
            assert a.render() == f"heap: {'|' * 15} (15 left)" and a.view().moves == ["1", "2", "3"]
            with pytest.raises(InvalidTransition, match="a move takes 1, 2 or 3"):
                await a.move(4)
            for game, other, take in ((a, b, 3), (b, a, 3), (a, b, 3), (b, a, 3), (a, b, 2)):
                await game.move(take)
                assert (await until(other, OpponentMoved))[-1].move == take  # type: ignore[union-attr]
            with pytest.raises(InvalidTransition, match="only 1 left on the heap"):
                await b.move(2)
            await b.move_text("1")  # bob takes the last one
            assert (await until(a, GameOver))[-1] == GameOver(winner=1, draw=False, you_won=False)
            await until(b, GameOver)
            await a.rematch()
            assert b.board == [15, 0] and b.render().endswith("(15 left)")
            await bob.close(b.channel_id)
            after = await l1(dev, alice, bob)
        assert (after[0] - before[0], after[1] - before[1]) == (-STAKE, STAKE)


async def test_a_guide_game_staller_loses_on_chain(tmp_path: Path, autojump_clock: MockClock) -> None:
    async with players(tmp_path, GAME_APPS.with_apps(guide_game())) as (dev, _net, alice, bob):
        with trio.fail_after(120):
            before = await l1(dev, alice, bob)
            a, b = await start(alice, bob, "nim", move_timeout=10)
            await a.move(2)
            await until(b, OpponentMoved)  # bob never takes
            assert (await until(a, DisputeStarted))[-1].turn == 1  # type: ignore[union-attr]
            await until(b, DisputeStarted)
            dev.advance_time(WINDOW + 1)
            assert (await until(a, GameOver))[-1] == GameOver(winner=0, draw=False, you_won=True, forfeit=True)
            await bob.wait_phase(a.channel_id, Phase.SETTLED)
            after = await l1(dev, alice, bob)
        assert (after[0] - before[0], after[1] - before[1]) == (STAKE, -STAKE)
