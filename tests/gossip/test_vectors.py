"""``proto/vectors/gossip.json`` against the code, and the digests and signatures rebuilt from the
text of proto/08-gossip.md with msgpack and PyNaCl directly (not through ``channels``)."""

from __future__ import annotations

import hashlib
import json
import struct
from pathlib import Path
from typing import Any

import msgpack
import nacl.signing
import pytest

from channels.gossip import messages as m
from channels.gossip.errors import GossipDecodeError

from . import make_vectors

VECTORS = Path(__file__).resolve().parents[2] / "proto" / "vectors" / "gossip.json"
DOC = json.loads(VECTORS.read_text(encoding="utf-8"))
KEYS = {k["label"]: k for k in DOC["keys"]}
SIGNED = [v for v in DOC["valid"] if "digest" in v]
# type -> (domain, number of fields the digest covers)
LAYOUT = {64: (DOC["domains"]["node"], 5), 66: (DOC["domains"]["channel"], 5), 68: (DOC["domains"]["update"], 9)}


def test_the_committed_vectors_are_what_the_generator_writes() -> None:
    assert VECTORS.read_text(encoding="utf-8") == make_vectors.render(), \
        "proto/vectors/gossip.json is stale: run python -m tests.gossip.make_vectors and review the diff"


@pytest.mark.parametrize("vector", DOC["valid"], ids=lambda v: v["name"])
def test_valid_vectors_decode_and_encode_again(vector: dict[str, Any]) -> None:
    data = bytes.fromhex(vector["encoded"])
    decoders = {"sync_request": m.decode_sync_request, "sync_page": m.decode_sync_page,
                "sig_request": m.decode_sig_request, "sig_reply": m.decode_sig_reply}
    decoder = next((d for prefix, d in decoders.items() if vector["name"].startswith(prefix)), m.decode_gossip)
    assert decoder(data).encode() == data  # type: ignore[operator]


@pytest.mark.parametrize("vector", SIGNED, ids=lambda v: v["name"])
def test_digests_and_signatures_follow_the_spec(vector: dict[str, Any]) -> None:
    record = msgpack.unpackb(bytes.fromhex(vector["encoded"]), raw=False)
    domain, covered = LAYOUT[record[0]]
    unsigned = msgpack.packb(record[1:1 + covered], use_bin_type=True)
    assert unsigned.hex() == vector["unsigned"]
    digest = hashlib.sha256(domain.encode() + struct.pack(">Q", vector["chain_id"]) + unsigned).digest()
    assert digest.hex() == vector["digest"]
    msg = m.decode_gossip(bytes.fromhex(vector["encoded"]))
    assert (msg.digest() if isinstance(msg, m.ChannelAnnouncement) else msg.digest(vector["chain_id"])) == digest

    node_keys = {bytes.fromhex(k["node_key"]): k for k in KEYS.values()}
    l1_keys = {bytes.fromhex(k["l1_address"]): k for k in KEYS.values()}
    if record[0] == 66:  # four signatures: node keys in node-key order, L1 keys in participant order
        pairs = list(zip(record[5], record[6], strict=True)) + list(zip(record[2][2], record[7], strict=True))
    elif record[0] == 68:  # the update's source: node_keys[direction] of its channel (the first vector's)
        channel = msgpack.unpackb(bytes.fromhex(SIGNED[0]["encoded"]), raw=False)
        assert channel[1] == record[1]
        pairs = [(channel[5][record[2]], record[10])]
    else:
        pairs = [(record[1], record[6]), (record[2], record[7])]
    for key, signature in pairs:
        assert key in node_keys or key in l1_keys
        nacl.signing.VerifyKey(key).verify(digest, signature)  # raises if it does not verify


@pytest.mark.parametrize("vector", DOC["invalid"], ids=lambda v: v["name"])
def test_invalid_vectors_are_refused(vector: dict[str, Any]) -> None:
    assert vector["error"] == "GossipDecodeError"
    with pytest.raises(GossipDecodeError):
        m.decode_gossip(bytes.fromhex(vector["encoded"]))


def test_keys_are_the_labels_keys() -> None:
    for k in DOC["keys"]:
        node = nacl.signing.SigningKey(bytes.fromhex(k["node_seed"]))
        assert bytes(node.verify_key).hex() == k["node_key"]
        assert k["peer_id"].startswith("12D3KooW")
