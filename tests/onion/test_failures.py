"""Failures travel back so that only the sender learns which hop failed and why (proto/04-onion.md section 6)."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from channels.errors import LocalProtocolError
from channels.onion import (
    FAILURE_PACKET_LEN,
    BadOnionMac,
    DecodedFailure,
    Failure,
    FailureDecodeError,
    MalformedFailure,
    UnreadableFailure,
    bad_onion_failure,
    build_onion,
    create_failure,
    decode_failure,
    peel_packet,
    wrap_failure,
)
from channels.onion import failures as f
from channels.onion import keys as k

from .helpers import PAYMENT_HASH, SESSION, route

N = 5


def secrets_of_route() -> tuple[bytes, ...]:
    hops, _ = route(N)
    return build_onion(hops, session_key=SESSION, associated_data=PAYMENT_HASH).shared_secrets


SECRETS = secrets_of_route()
FAILURE = Failure(code=f.TEMPORARY_CHANNEL_FAILURE, data=b"a channel update" * 3)


def send_back(origin: int, failure: Failure) -> list[bytes]:
    """The packet as it leaves each hop on the way back: [from origin, ..., from hop 0]."""
    pkt = create_failure(SECRETS[origin], failure)
    out = [pkt]
    for i in range(origin - 1, -1, -1):
        pkt = wrap_failure(SECRETS[i], pkt)
        out.append(pkt)
    return out


@pytest.mark.parametrize("origin", range(N))
def test_the_sender_identifies_every_hop_position(origin: int) -> None:
    failure = Failure(code=f.FEE_INSUFFICIENT + origin, data=bytes([origin]) * 8)
    packets = send_back(origin, failure)
    assert {len(p) for p in packets} == {FAILURE_PACKET_LEN}
    assert decode_failure(SECRETS, packets[-1]) == DecodedFailure(hop_index=origin, failure=failure)


def _authenticates(ss: bytes, pkt: bytes) -> bool:
    tag, body = pkt[:32], pkt[32:]
    return hmac.compare_digest(k.mac(k.derive(k.LABEL_UM, ss), body), tag)


@pytest.mark.parametrize("origin", range(1, N))
def test_hops_on_the_way_back_cannot_read_it(origin: int) -> None:
    """Each earlier hop holds only its own secret: removing its own layer (or not) authenticates
    nothing, and the code and data appear nowhere in what it handles."""
    failure = Failure(code=0x1234, data=b"secret reason, do not leak")
    packets = send_back(origin, failure)
    for step, i in enumerate(range(origin - 1, -1, -1)):
        received = packets[step]
        ss = SECRETS[i]
        peeled_once = k.xor(received, k.stream(k.derive(k.LABEL_AMMAG, ss), FAILURE_PACKET_LEN))
        assert not _authenticates(ss, received) and not _authenticates(ss, peeled_once)
        for view in (received, peeled_once, packets[step + 1]):
            assert failure.data not in view and failure.to_bytes() not in view
        with pytest.raises(UnreadableFailure):
            decode_failure([ss], received)


def test_only_the_right_secret_order_reads_it() -> None:
    packets = send_back(3, FAILURE)
    with pytest.raises(UnreadableFailure):
        decode_failure(SECRETS[1:], packets[-1])  # the first layer is hop 0's
    with pytest.raises(UnreadableFailure):
        decode_failure(list(reversed(SECRETS)), packets[-1])


@settings(max_examples=40)
@given(origin=st.integers(0, N - 1), index=st.integers(0, FAILURE_PACKET_LEN - 1), mask=st.integers(1, 255))
def test_an_altered_failure_is_unreadable(origin: int, index: int, mask: int) -> None:
    pkt = bytearray(send_back(origin, FAILURE)[-1])
    pkt[index] ^= mask
    with pytest.raises(UnreadableFailure):
        decode_failure(SECRETS, bytes(pkt))


@pytest.mark.parametrize("data", [b"", bytes(FAILURE_PACKET_LEN - 1), bytes(FAILURE_PACKET_LEN + 1), "x", None])
def test_wrong_sizes_are_typed(data: object) -> None:
    with pytest.raises(FailureDecodeError):
        decode_failure(SECRETS, data)  # type: ignore[arg-type]
    with pytest.raises(FailureDecodeError):
        wrap_failure(SECRETS[0], data)  # type: ignore[arg-type]


def _forged_body(ss: bytes, body: bytes) -> bytes:
    """A hop that holds ``ss`` authenticates a body of its own choosing."""
    assert len(body) == f.FAILURE_BODY_LEN
    stream = k.stream(k.derive(k.LABEL_AMMAG, ss), FAILURE_PACKET_LEN)
    return k.xor(k.mac(k.derive(k.LABEL_UM, ss), body) + body, stream)


@pytest.mark.parametrize("body", [
    bytes(256),                                      # length 0
    b"\xff\xff" + bytes(254),                        # length above 254
    b"\x00\x01\xc0" + bytes(252) + b"\x01",          # non-zero padding
    b"\x00\x01\xc1" + bytes(253),                    # not msgpack
    b"\x00\x01\xc0" + bytes(253),                    # nil, not [code, data]
    b"\x00\x06\x92\xcd\x00\x01\xc4\x00" + bytes(248),  # non-canonical code (uint16 for 1)
    b"\x00\x04\x92\x01\xa1\x61" + bytes(250),        # data as a string
])
def test_a_malformed_body_names_its_hop(body: bytes) -> None:
    pkt = _forged_body(SECRETS[2], body)
    pkt = wrap_failure(SECRETS[1], pkt)
    pkt = wrap_failure(SECRETS[0], pkt)
    with pytest.raises(MalformedFailure) as info:
        decode_failure(SECRETS, pkt)
    assert info.value.hop_index == 2


def test_failure_values_are_bounded() -> None:
    Failure(code=0xFFFF, data=bytes(f.MAX_FAILURE_DATA))
    largest = create_failure(SECRETS[0], Failure(code=0xFFFF, data=bytes(f.MAX_FAILURE_DATA)))
    assert decode_failure(SECRETS, largest).failure.data == bytes(f.MAX_FAILURE_DATA)
    for bad in ({"code": -1}, {"code": 0x10000}, {"code": True}, {"code": 1, "data": bytes(f.MAX_FAILURE_DATA + 1)},
                {"code": 1, "data": "text"}):
        with pytest.raises(LocalProtocolError):
            Failure(**bad)
    with pytest.raises(LocalProtocolError):
        create_failure(b"short", FAILURE)


def test_flags_and_names() -> None:
    assert Failure(f.PERMANENT_NODE_FAILURE).is_permanent and Failure(f.PERMANENT_NODE_FAILURE).is_node
    assert not Failure(f.TEMPORARY_CHANNEL_FAILURE).is_permanent
    assert Failure(f.INVALID_ONION_HMAC).is_bad_onion
    assert Failure(f.FEE_INSUFFICIENT).name == "fee_insufficient"
    assert Failure(0x0777).name == "unknown_failure_0x0777"
    assert len(set(f.CODE_NAMES.values())) == len(f.CODE_NAMES)


def test_bad_onion_report_becomes_the_upstream_hops_failure() -> None:
    """Hop 2 cannot peel what hop 1 sent; hop 1 reports it under its own secret (section 6.4)."""
    hops, secrets = route(N)
    built = build_onion(hops, session_key=SESSION, associated_data=PAYMENT_HASH)
    to_hop1 = peel_packet(built.packet, node_secret=secrets[0], associated_data=PAYMENT_HASH).next_packet
    assert to_hop1 is not None
    to_hop2 = peel_packet(to_hop1, node_secret=secrets[1], associated_data=PAYMENT_HASH).next_packet
    assert to_hop2 is not None
    corrupted = to_hop2[:-1] + bytes([to_hop2[-1] ^ 1])
    with pytest.raises(BadOnionMac) as info:  # the refusal hop 2 reports upstream, in clear
        peel_packet(corrupted, node_secret=secrets[2], associated_data=PAYMENT_HASH)
    failure = bad_onion_failure(info.value.failure_code, corrupted)
    pkt = wrap_failure(built.shared_secrets[0], create_failure(built.shared_secrets[1], failure))
    decoded = decode_failure(built.shared_secrets, pkt)
    assert decoded.hop_index == 1 and decoded.failure.code == f.INVALID_ONION_HMAC
    assert decoded.failure.data == hashlib.sha256(corrupted).digest()
    with pytest.raises(LocalProtocolError):
        bad_onion_failure(f.TEMPORARY_CHANNEL_FAILURE, corrupted)
