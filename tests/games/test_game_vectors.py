"""``proto/vectors/games.json`` is current, replays move by move through the games, and its
commitments and dice follow the layouts of proto/06-games.md, recomputed here by hand."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import attrs
import msgpack
import pytest

from channels.core.ids import NATIVE, ChannelId, Version
from channels.core.state import Allocation, State
from channels.errors import InvalidTransition
from channels.games import GAME_APPS
from tests.games import make_game_vectors
from tests.games.gameutil import make_params
from tests.wire.make_vectors import render

DOC = json.loads(make_game_vectors.OUT.read_text(encoding="utf-8"))


def test_the_vectors_are_up_to_date() -> None:
    assert make_game_vectors.OUT.read_text(encoding="utf-8") == render(make_game_vectors.build()), (
        "proto/vectors/games.json is stale: run `python -m tests.games.make_game_vectors` and review the diff")


@pytest.mark.parametrize("vector", DOC["vectors"], ids=lambda v: v["game"])
def test_a_vector_replays_move_by_move(vector: dict[str, Any]) -> None:
    app: Any = GAME_APPS.get(vector["game"])
    params = make_params(app, vector["players"], nonce=b"vectors")
    state = State(channel_id=ChannelId(bytes.fromhex(vector["channel_id"])), version=Version(0),
                  allocation=Allocation(assets=(NATIVE,), balances=(tuple(vector["balances"]),)),
                  app_data=bytes.fromhex(vector["initial_app_data"]))
    assert app.initial_data(params) == state.app_data
    states = [state]
    for move in vector["moves"]:
        nxt = attrs.evolve(app.apply_move(params, state, bytes.fromhex(move["payload"]), move["mover"]),
                           version=Version(state.version + 1))
        app.validate_transition(params, state, nxt, move["mover"])
        assert nxt.app_data.hex() == move["app_data"] and list(nxt.allocation.balances[0]) == move["balances"]
        assert app.turn(params, nxt) == move["turn"]
        states.append(state := nxt)
    assert app.is_terminal(params, state)
    for bad in vector["refused"]:
        with pytest.raises(InvalidTransition) as info:
            app.apply_move(params, states[bad["after"]], bytes.fromhex(bad["payload"]), bad["mover"])
        assert str(info.value) == bad["error"]


def unpack(hex_data: str) -> list[Any]:
    value = msgpack.unpackb(bytes.fromhex(hex_data), raw=False)
    assert isinstance(value, list)
    return value


@pytest.mark.parametrize("vector", [v for v in DOC["vectors"] if v["game"] in ("rps", "dice")],
                         ids=lambda v: v["game"])
def test_commitments_and_the_roll_follow_the_documented_layout(vector: dict[str, Any]) -> None:
    cid = bytes.fromhex(vector["channel_id"])
    domain = DOC["commit_domains"][vector["game"]].encode()
    stake, commitments, reveals = unpack(vector["moves"][-1]["app_data"])
    assert stake == min(vector["balances"])
    for player, (commitment, secret) in enumerate(zip(commitments, reveals, strict=True)):
        # commitment = SHA-256(domain || channel id || u8 player || secret bytes)
        body = bytes([secret[0]]) + secret[1] if vector["game"] == "rps" else secret[0]
        assert hashlib.sha256(domain + cid + bytes([player]) + body).digest() == commitment
    before_reveals = unpack(vector["moves"][1]["app_data"])
    assert before_reveals[2] == [None, None], "nothing but hashes before the reveals"
    if vector["game"] == "dice":
        # roll = SHA-256("p2p-channels/games/dice/v1/roll" || channel id || seed 0 || seed 1) as an
        # integer; die p = 1 + the p-th base-6 digit, least significant first.
        value = int.from_bytes(hashlib.sha256(b"p2p-channels/games/dice/v1/roll" + cid + reveals[0][0]
                                              + reveals[1][0]).digest(), "big")
        d0, d1 = value % 6 + 1, value // 6 % 6 + 1
        want = [20, 0] if d0 > d1 else [0, 20] if d1 > d0 else [10, 10]
        assert vector["moves"][-1]["balances"] == want


def test_tic_tac_toe_app_data_is_stake_and_nine_cells() -> None:
    vector = DOC["vectors"][0]
    assert unpack(vector["initial_app_data"]) == [None, bytes(9)]
    stake, board = unpack(vector["moves"][0]["app_data"])
    assert stake == 10 and board == bytes([0, 0, 0, 0, 1, 0, 0, 0, 0])
