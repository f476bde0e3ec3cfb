"""``proto/vectors/nparty.json`` is current, and replays: every frame decodes and re-encodes
to its bytes, and each listed state verifies under all three participants' keys."""

from __future__ import annotations

import json

from channels.chain.devnet.scheme import DevnetScheme
from channels.core.messages import ChannelAccept, ChannelProposal, Countersign
from channels.wire import decode_message, encode_message
from tests.core import make_nparty_vectors
from tests.wire.make_vectors import render

SCHEME = DevnetScheme()
DOC = json.loads(make_nparty_vectors.OUT.read_text(encoding="utf-8"))


def test_the_vectors_are_up_to_date() -> None:
    assert make_nparty_vectors.OUT.read_text(encoding="utf-8") == render(make_nparty_vectors.build()), (
        "proto/vectors/nparty.json is stale: run `python -m tests.core.make_nparty_vectors` and review the diff")


def test_frames_decode_and_signatures_verify() -> None:
    frames = [decode_message(bytes.fromhex(f["frame"])) for f in DOC["frames"]]
    assert [type(m).__name__ for m in frames] == [f["message"] for f in DOC["frames"]]
    assert all(encode_message(m).hex() == f["frame"] for m, f in zip(frames, DOC["frames"], strict=True))
    proposal = frames[0]
    assert isinstance(proposal, ChannelProposal) and len(proposal.params.participants) == 3
    params = proposal.params
    assert [a.hex() for a in params.participants] == DOC["participants"]
    assert SCHEME.channel_id(params).hex() == DOC["channel_id"]
    accepts = [(f["from"], m) for f, m in zip(DOC["frames"], frames, strict=True) if isinstance(m, ChannelAccept)]
    assert {who for who, _ in accepts} == {1, 2} and all(f["to"] == "all" for f in DOC["frames"][:3])
    counters = [f for f, m in zip(DOC["frames"], frames, strict=True) if isinstance(m, Countersign)]
    assert counters and all(f["to"] == "all" for f in counters), "countersignatures go to every participant"
    for state in DOC["states"]:
        digest = bytes.fromhex(state["digest"])
        for address, signature in zip(params.participants, state["signatures"], strict=True):
            assert SCHEME.verify_digest(address, digest, bytes.fromhex(signature))
