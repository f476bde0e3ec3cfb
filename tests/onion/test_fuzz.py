"""Decoder fuzzing: random and mutated bytes give only the typed errors, never a crash, and
whatever decodes re-encodes to the same bytes."""

from __future__ import annotations

import ast
import pathlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import channels.onion
from channels.onion import (
    FAILURE_PACKET_LEN,
    PACKET_LEN,
    BadOnion,
    FailureDecodeError,
    PayloadDecodeError,
    build_onion,
    decode_failure,
    decode_payload,
    peel_packet,
)
from channels.onion.payloads import FinalPayload, ForwardPayload

from .helpers import PAYMENT_HASH, SESSION, route, secret

HOPS, SECRETS = route(3)
PACKET = build_onion(HOPS, session_key=SESSION, associated_data=PAYMENT_HASH).packet
PAYLOADS = [h.payload.to_bytes() for h in HOPS] + [
    FinalPayload(amount=2**200, expiry=1, total_amount=2**201, payment_secret=bytes(32),
                 keysend_preimage=bytes(32)).to_bytes(),
    ForwardPayload(next_hop=bytes(40), amount=2**64 + 1, expiry=2**64 - 1).to_bytes(),
]


def check_payload(data: bytes) -> None:
    try:
        payload = decode_payload(data)
    except PayloadDecodeError:
        return
    assert payload.to_bytes() == data


@settings(max_examples=300)
@given(st.binary(max_size=300))
def test_random_payload_bytes(data: bytes) -> None:
    check_payload(data)


@settings(max_examples=300)
@given(st.sampled_from(PAYLOADS), st.integers(0, 200), st.integers(0, 255), st.sampled_from(["flip", "cut", "add"]))
def test_mutated_payloads(base: bytes, index: int, value: int, how: str) -> None:
    i = index % len(base)
    if how == "flip":
        data = base[:i] + bytes([value]) + base[i + 1:]
    elif how == "cut":
        data = base[:i]
    else:
        data = base[:i] + bytes([value]) + base[i:]
    check_payload(data)


@settings(max_examples=100)
@given(st.binary(max_size=PACKET_LEN + 10) | st.binary(min_size=PACKET_LEN, max_size=PACKET_LEN))
def test_random_packets(data: bytes) -> None:
    with pytest.raises(BadOnion):
        peel_packet(data, node_secret=secret(0), associated_data=PAYMENT_HASH)


@settings(max_examples=100)
@given(st.integers(0, PACKET_LEN - 1), st.binary(min_size=1, max_size=16))
def test_overwritten_packets(index: int, junk: bytes) -> None:
    data = (PACKET[:index] + junk + PACKET[index + len(junk):])[:PACKET_LEN]
    if data == PACKET:
        return
    with pytest.raises(BadOnion):
        peel_packet(data, node_secret=SECRETS[0], associated_data=PAYMENT_HASH)


@settings(max_examples=100)
@given(st.binary(max_size=FAILURE_PACKET_LEN + 10) | st.binary(min_size=FAILURE_PACKET_LEN,
                                                                max_size=FAILURE_PACKET_LEN))
def test_random_failures(data: bytes) -> None:
    with pytest.raises(FailureDecodeError):
        decode_failure([secret(i) for i in range(3)], data)


FORBIDDEN = {"trio", "libp2p", "sqlite3", "time", "random", "os", "socket", "asyncio", "subprocess", "threading",
             "datetime", "pathlib", "io", "multiaddr"}


def test_the_onion_package_is_pure() -> None:
    """No I/O, no clock: a node drives it with explicit times (the replay cache takes ``now``)."""
    files = sorted(pathlib.Path(channels.onion.__file__).parent.glob("*.py"))
    assert len(files) >= 6
    for path in files:
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names.update(a.name.split(".")[0] for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
        assert not names & FORBIDDEN, f"{path.name} imports {sorted(names & FORBIDDEN)}"
