"""The game examples run as a user runs them: ``examples/game_embedding.py`` (the game API in
one program, at most 40 lines) and ``examples/bot_match.py`` (a bot against a bot, each in a
process of its own driving ``NodeThread``/``GameHandle`` from a synchronous loop)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.procs import ENV, REPO

RUN_TIMEOUT = 300.0  # seconds per run: nodes on loopback libp2p, deposits, a game, a close


def run(*args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=RUN_TIMEOUT, env=ENV,
                          cwd=REPO)
    assert done.returncode == 0, f"{args}: {done.stdout}{done.stderr[-3000:]}"
    assert "Traceback" not in done.stderr
    return done


def test_the_embedding_example_plays_a_game_and_x_wins_the_stake() -> None:
    path = REPO / "examples" / "game_embedding.py"
    assert len(path.read_text().splitlines()) <= 40
    out = run(str(path)).stdout
    assert "bob sees OpponentMoved(player=0, move=7, text='7', on_chain=False)" in out
    assert "alice:\n O | X | X\n---+---+---\n X | X | O\n---+---+---\n O | X | O" in out
    assert "won, won" in out and "won, lost" in out
    assert "L1: {'alice': 1100, 'bob': 900}" in out  # 1000 each from the faucet; X won bob's 100


@pytest.mark.parametrize("game", ["tictactoe", "rps"])
def test_a_bot_match_between_two_processes_settles_by_its_outcome(game: str) -> None:
    report = json.loads(run(str(REPO / "examples" / "bot_match.py"), "--game", game, "--stake", "50").stdout)
    assert report["game"] == game and report["status"] in ("won", "drawn") and report["moves"] >= 2
    expected = {"alice": 0, "bob": 0}
    if report["winner"] is not None:
        loser = "bob" if report["winner"] == "alice" else "alice"
        expected = {report["winner"]: 50, loser: -50}
    assert report["l1_change"] == expected  # the winner's L1 balance grows by the stake exactly
    if game == "tictactoe":
        assert report["moves"] == 9 - "".join(report["board"]).count(".")
