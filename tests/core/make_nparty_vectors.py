"""Generate ``proto/vectors/nparty.json``: a three-party channel (proto/02 section 13), frame by frame.

Run from the repository root::

    .venv/bin/python -m tests.core.make_nparty_vectors

Three cores (``CoreGroup``, keys from fixed labels, Ed25519 signatures are deterministic) open
a last-one-standing channel, play two moves and close it cooperatively. The file lists every
frame each participant sent, in order, with its recipients (``all``: every other participant),
and each state that got all three signatures: its digest and the three signatures.
``tests/core/test_nparty_vectors.py`` fails when the committed file is out of date.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from channels.core import inputs as ins
from channels.games import GAME_APPS, LastOneStanding
from channels.testing.coregroup import CoreGroup
from channels.wire import decode_message
from tests.wire.make_vectors import render

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "proto" / "vectors" / "nparty.json"
LABEL = "nparty-vectors"


def script() -> tuple[CoreGroup, list[dict[str, Any]]]:
    """The exchange, and each fully signed state as the participants hold it."""
    g = CoreGroup((100, 100, 100), app_id=LastOneStanding.app_id, apps=GAME_APPS, label=LABEL)
    states = []

    def snapshot(what: str) -> None:
        latest = g.channel(0).latest
        assert all(g.channel(i).latest == latest for i in range(g.n)), what
        states.append({"description": what, "version": latest.state.version, "is_final": latest.state.is_final,
                       "app_data": latest.state.app_data.hex(), "balances": list(latest.state.allocation.balances[0]),
                       "digest": g.scheme.state_digest(g.params, latest.state).hex(),
                       "signatures": [s.hex() for s in latest.signatures]})

    g.open()
    snapshot("version 0: the opening, signed by all three before anyone deposits")
    g.move(0, 3)
    g.run()
    snapshot("version 1: participant 0 adds 3")
    g.move(1, 2)
    g.run()
    snapshot("version 2: participant 1 adds 2")
    g.apply(2, ins.ActionClose())
    g.run()
    snapshot("version 3: participant 2 closes; the final state")
    return g, states


def build() -> dict[str, Any]:
    g, states = script()
    frames = [{"from": src, "to": "all" if to is None else to, "message": type(decode_message(frame)).__name__,
               "frame": frame.hex()} for src, to, frame in g.sent]
    return {
        "description": "A three-party channel, frame by frame (proto/02-channel-lifecycle.md section 13). Keys: "
                       "DevnetKey.from_label('nparty-vectors-<index>'); the channel's nonce is sha256 of the label. "
                       "Frames are listed in the order the harness relayed them; 'to' is a participant index or "
                       "'all' (every other participant). Deposits are L1 transactions, not frames.",
        "participants": [k.address.hex() for k in g.keys],
        "channel_id": g.channel(0).channel_id.hex(),
        "frames": frames,
        "states": states,
    }


def main() -> None:
    OUT.write_text(render(build()), encoding="utf-8")
    sys.stdout.write(f"wrote {OUT.relative_to(ROOT)}\n")


if __name__ == "__main__":
    main()
