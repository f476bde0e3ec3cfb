"""Generate ``proto/vectors/games.json``: one scripted game of each built-in game, byte for byte.

Run from the repository root::

    .venv/bin/python -m tests.games.make_game_vectors

Everything derives from fixed labels and constants, so the output is deterministic, and
``tests/games/test_game_vectors.py`` fails when the committed file is out of date. Each
vector gives the channel id, the players' balances, the app data of version 0, then every
move (mover, payload) with the app data and balances after it, and moves the rules refuse.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path
from typing import Any

import attrs

from channels.core.ids import NATIVE, ChannelId, Version
from channels.core.state import Allocation, ChannelParams, State
from channels.encoding import encode
from channels.errors import InvalidTransition
from channels.games import Dice, Game, LastOneStanding, RockPaperScissors, TicTacToe
from channels.games.rps import PAPER, SCISSORS
from tests.games.gameutil import make_params
from tests.wire.make_vectors import render

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "proto" / "vectors" / "games.json"
CHANNEL_ID = ChannelId(hashlib.sha256(b"p2p-channels/games/vectors").digest())
SALT0, SALT1 = hashlib.sha256(b"salt 0").digest(), hashlib.sha256(b"salt 1").digest()


def scripted(app: Game[Any], n: int, balances: list[int], moves: list[tuple[int, Any]],
             refused: list[tuple[int, int, bytes]]) -> dict[str, Any]:
    """``refused``: (after how many moves, mover, payload) that the rules must refuse."""
    params: ChannelParams = make_params(app, n, nonce=b"vectors")
    state = State(channel_id=CHANNEL_ID, version=Version(0), allocation=Allocation(
        assets=(NATIVE,), balances=(tuple(balances),)), app_data=app.initial_data(params))
    states, out = [state], []
    for mover, move in moves:
        payload = encode(move)
        state = attrs.evolve(app.apply_move(params, state, payload, mover), version=Version(state.version + 1))
        states.append(state)
        out.append({"mover": mover, "payload": payload.hex(), "app_data": state.app_data.hex(),
                    "balances": list(state.allocation.balances[0]), "turn": app.turn(params, state)})
    bad = []
    for after, mover, payload in refused:
        try:
            app.apply_move(params, states[after], payload, mover)
        except InvalidTransition as exc:
            bad.append({"after": after, "mover": mover, "payload": payload.hex(), "error": str(exc)})
        else:
            raise AssertionError(f"{app.app_id}: {payload.hex()} should be refused")
    return {"game": app.app_id, "players": n, "channel_id": CHANNEL_ID.hex(), "balances": balances,
            "initial_app_data": states[0].app_data.hex(), "moves": out, "refused": bad}


def build() -> dict[str, Any]:
    ttt = TicTacToe()
    rps = RockPaperScissors()
    dice = Dice()
    last = LastOneStanding()
    paper, scissors = rps.secret(PAPER, SALT0), rps.secret(SCISSORS, SALT1)
    seed0, seed1 = dice.secret(SALT0), dice.secret(SALT1)
    vectors = [
        scripted(ttt, 2, [10, 10], [(0, 4), (1, 0), (0, 2), (1, 6), (0, 3), (1, 5), (0, 1), (1, 7), (0, 8)],
                 [(1, 1, encode(4)), (1, 0, encode(0)), (0, 0, encode(9)), (0, 0, b"\xcc\x04"), (9, 1, encode(0))]),
        scripted(ttt, 2, [10, 25], [(0, 0), (1, 3), (0, 1), (1, 4), (0, 2)], []),
        scripted(rps, 2, [10, 10], [(0, rps.commit_payload(CHANNEL_ID, 0, paper)),
                                    (1, rps.commit_payload(CHANNEL_ID, 1, scissors)),
                                    (0, rps.reveal_payload(paper)), (1, rps.reveal_payload(scissors))],
                 [(2, 0, encode(rps.reveal_payload(rps.secret(PAPER, SALT1)))),
                  (0, 0, encode(rps.reveal_payload(paper))), (2, 0, encode([0, bytes(32)]))]),
        scripted(dice, 2, [10, 10], [(0, dice.commit_payload(CHANNEL_ID, 0, seed0)),
                                     (1, dice.commit_payload(CHANNEL_ID, 1, seed1)),
                                     (0, dice.reveal_payload(seed0)), (1, dice.reveal_payload(seed1))],
                 [(3, 1, encode(dice.reveal_payload(seed0)))]),
        # Player 1 must say 21 (out); then player 2 does: player 0 is the last one standing.
        scripted(last, 3, [10, 10, 10], [(p % 3, 3) for p in range(6)] + [(0, 2), (1, 1)]
                 + [(2 if p % 2 == 0 else 0, 3) for p in range(7)],
                 [(7, 1, encode(2)), (8, 1, encode(1)), (0, 1, encode(1)), (0, 0, encode(4))]),
    ]
    return {"description": "built-in games (proto/06-games.md): scripted games, app data and balances "
                           "after every move, and moves the rules refuse",
            "commit_domains": {"rps": rps.domain.decode(), "dice": dice.domain.decode()},
            "vectors": vectors}


def main() -> None:
    OUT.write_text(render(build()), encoding="utf-8")
    print(f"wrote {OUT.relative_to(ROOT)}", file=sys.stderr)


if __name__ == "__main__":
    main()
