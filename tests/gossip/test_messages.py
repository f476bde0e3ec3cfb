"""Gossip encodings: exact round trips, and strict decoders that only ever raise GossipDecodeError."""

from __future__ import annotations

import random

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from channels import encoding
from channels.errors import DecodeError
from channels.gossip import messages as m
from channels.gossip.errors import GossipDecodeError

from .util import CHAIN_ID, channel, node, update

ANN = channel("alice", "bob", capacity=2**70)  # a capacity above 64 bits is encoded as bytes
SAMPLES = [ANN.encode(), update(ANN, "alice").encode(), node("alice").encode(),
           m.SyncRequest(cursor=b"\x00" + b"\x11" * 32).encode(),
           m.SyncPage(messages=(ANN.encode(),), next_cursor=None).encode(),
           m.SigRequest(announcement=ANN, node_signature=b"\x01" * 64, l1_signature=b"\x02" * 64).encode(),
           m.SigReply(node_signature=b"\x01" * 64, l1_signature=b"\x02" * 64).encode()]
DECODERS = [m.decode_gossip, m.decode_sync_request, m.decode_sync_page, m.decode_sig_request, m.decode_sig_reply]


def test_round_trips() -> None:
    for msg in (ANN, update(ANN, "alice"), node("alice")):
        assert m.decode_gossip(msg.encode()) == msg
    assert m.decode_sig_request(SAMPLES[5]).announcement == attrs.evolve(ANN, node_signatures=(b"", b""),
                                                                         l1_signatures=(b"", b""))
    assert m.decode_sync_page(SAMPLES[4]).messages == (ANN.encode(),)


def test_digests_are_domain_separated_and_bound_to_the_chain() -> None:
    upd, nd = update(ANN, "alice"), node("alice")
    assert len({ANN.digest(), upd.digest(CHAIN_ID), nd.digest(CHAIN_ID)}) == 3
    assert upd.digest(CHAIN_ID) != upd.digest(CHAIN_ID + 1) and nd.digest(CHAIN_ID) != nd.digest(CHAIN_ID + 1)
    assert upd.digest(CHAIN_ID) == attrs.evolve(upd, signature=b"\x00" * 64).digest(CHAIN_ID)


@pytest.mark.parametrize(("fields", "match"), [
    ([ANN.to_fields()[0][:31], *ANN.to_fields()[1:]], "channel id"),
    ([*ANN.to_fields()[:4], list(reversed(ANN.node_keys)), *ANN.to_fields()[5:]], "ascending"),
    ([*ANN.to_fields()[:3], 0, *ANN.to_fields()[4:]], "capacity"),
    ([*ANN.to_fields()[:5], [b"\x00" * 64], ANN.to_fields()[6]], "2 elements"),
])
def test_bad_announcements_are_refused(fields: list[object], match: str) -> None:
    with pytest.raises(GossipDecodeError, match=match):
        m.decode_gossip(encoding.encode_record(m.CHANNEL_ANNOUNCEMENT, fields))


def test_bad_updates_and_nodes_are_refused() -> None:
    f = update(ANN, "alice").to_fields()
    for i, bad in [(1, 2), (4, 2**32), (7, 0), (8, 1), (9, b"\x00" * 63)]:
        with pytest.raises(GossipDecodeError):
            m.decode_gossip(encoding.encode_record(m.CHANNEL_UPDATE, [*f[:i], bad, *f[i + 1:]]))
    n = node("alice").to_fields()
    for i, bad in [(3, "é" * 17), (3, "a\nb"), (2, ["no-slash"]), (2, ["/ip4"] * 9), (6, b"")]:
        with pytest.raises(GossipDecodeError):
            m.decode_gossip(encoding.encode_record(m.NODE_ANNOUNCEMENT, [*n[:i], bad, *n[i + 1:]]))
    with pytest.raises(GossipDecodeError, match="unknown gossip message type"):
        m.decode_gossip(encoding.encode_record(99, []))
    with pytest.raises(GossipDecodeError, match="malformed"):
        m.decode_gossip(b"\x00" * (m.MAX_GOSSIP_MESSAGE + 1))


def check(decoder: object, data: bytes) -> None:
    """Any input: a value that re-encodes to the same bytes, or GossipDecodeError; nothing else."""
    try:
        value = decoder(data)  # type: ignore[operator]
    except GossipDecodeError:
        return
    assert isinstance(value, (m.NodeAnnouncement, m.ChannelAnnouncement, m.ChannelUpdate, m.SyncRequest,
                              m.SyncPage, m.SigRequest, m.SigReply))
    if not isinstance(value, m.SigRequest):  # its signature slots are not encoded
        assert value.encode() == data


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600), st.sampled_from(DECODERS))
def test_fuzz_random_bytes(data: bytes, decoder: object) -> None:
    check(decoder, data)


@settings(max_examples=500, deadline=None)
@given(st.sampled_from(range(len(SAMPLES))), st.data())
def test_fuzz_mutated_samples(index: int, data: st.DataObject) -> None:
    sample = bytearray(SAMPLES[index])
    for _ in range(data.draw(st.integers(1, 4))):
        pos = data.draw(st.integers(0, len(sample) - 1))
        sample[pos] = data.draw(st.integers(0, 255))
    for decoder in DECODERS:
        check(decoder, bytes(sample))


def test_seeded_truncations_and_splices() -> None:
    rng = random.Random(8)
    for _ in range(2000):
        a, b = rng.choice(SAMPLES), rng.choice(SAMPLES)
        cut = rng.randrange(len(a))
        for decoder in DECODERS:
            check(decoder, a[:cut])
            check(decoder, a[:cut] + b[rng.randrange(len(b)):])
    assert issubclass(GossipDecodeError, DecodeError)
