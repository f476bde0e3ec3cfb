"""The tower's wire: round trips, strict decoders, fuzzing (only typed errors, one encoding each)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from channels.encoding import encode, encode_record
from channels.watchtower.appointment import Appointment, EncryptedAppointment, Receipt
from channels.watchtower.client import seal
from channels.watchtower.errors import (
    ERRORS,
    MalformedAppointment,
    NonMonotonic,
    OverQuota,
    RateLimited,
    TowerError,
    Unsigned,
)
from channels.watchtower.peerid import peer_id_of, public_key_of
from channels.watchtower.protocol import (
    APPOINTMENT,
    MAX_REQUEST,
    ForgetRequest,
    InfoRequest,
    TowerInfo,
    decode_request,
    decode_response,
    encode_forgotten,
    encode_info,
    encode_receipt,
    encode_refusal,
    encode_request,
)
from tests.watchtower.helpers import appointment, channel, lock, make_tower, preimage, signed

P = channel()
APPT = appointment(P, 3, locks=[lock("x", expiry=99)], preimages=[preimage("x")])
BLOB = seal(appointment(P, 4), signed(P, 3), 0, seq=4, nonce=b"\x01" * 24)
RECEIPT = make_tower().accept(APPT, "c", 1_000).receipt
INFO = TowerInfo(tower_key=RECEIPT.tower_key, chain_id=1337, adjudicator=P.adjudicator, genesis=b"\x02" * 32,
                 max_appointment_bytes=1, per_client_appointments=2, per_client_bytes=3)
REQUESTS = [encode_request(r) for r in (APPT, BLOB, InfoRequest(), ForgetRequest((BLOB.locator,)))]
RESPONSES = [encode_receipt(RECEIPT), encode_info(INFO), encode_forgotten(3)]


def test_requests_and_responses_round_trip() -> None:
    assert decode_request(REQUESTS[0]) == APPT
    assert decode_request(REQUESTS[1]) == BLOB
    assert decode_request(REQUESTS[2]) == InfoRequest()
    assert decode_request(REQUESTS[3]) == ForgetRequest((BLOB.locator,))
    assert decode_response(RESPONSES[0]) == RECEIPT
    assert decode_response(RESPONSES[1]) == INFO
    assert decode_response(RESPONSES[2]) == 3
    for data in REQUESTS:
        assert encode_request(decode_request(data)) == data


@pytest.mark.parametrize("error", [Unsigned("no"), NonMonotonic("old"), OverQuota("full"), RateLimited("slow")])
def test_a_refusal_is_raised_as_its_typed_error(error: TowerError) -> None:
    with pytest.raises(type(error), match=str(error)):
        decode_response(encode_refusal(error))
    unknown = encode_record(12, ["brand_new", "a newer tower's reason"])
    with pytest.raises(TowerError) as caught:
        decode_response(unknown)
    assert caught.value.code == "brand_new"
    assert set(ERRORS) >= {"unsigned", "wrong_domain", "non_monotonic", "oversize", "over_quota", "malformed"}


@pytest.mark.parametrize("bad", [
    b"", b"\x90", encode([APPOINTMENT]), encode([99]), encode(["x"]), encode([APPOINTMENT, 1, 2, 3]),
    encode_record(4, [b"\x00" * 15, 1, b"\x00" * 24, b"\x00" * 40]),  # a 15-byte locator
    encode_record(4, [b"\x00" * 16, 1, b"\x00" * 24, b"\x00" * 16]),  # nothing but a tag
    encode_record(4, [b"\x00" * 16, -1, b"\x00" * 24, b"\x00" * 40]),  # a negative sequence
    encode_record(6, [1]), encode_record(8, [[b"\x00" * 16] * 257]),
    encode_record(2, [P.to_fields(), signed(P, 1).to_fields(), [b""]]),  # an empty preimage
    encode_record(2, [P.to_fields(), signed(P, 1).to_fields(), [b"\x01" * 257]]),
    b"\xdb" + b"\x00" * 8,  # a str32 header with nothing behind it
])
def test_malformed_requests_are_refused(bad: bytes) -> None:
    with pytest.raises(MalformedAppointment):
        decode_request(bad)


def test_a_request_over_the_frame_cap_is_refused_before_decoding() -> None:
    with pytest.raises(MalformedAppointment):
        decode_request(encode_record(APPOINTMENT, [b"\x00" * MAX_REQUEST]))


def check(data: bytes) -> None:
    try:
        value = decode_request(data)
    except MalformedAppointment:
        return
    assert isinstance(value, Appointment | EncryptedAppointment | InfoRequest | ForgetRequest)
    assert encode_request(value) == data


def check_response(data: bytes) -> None:
    try:
        value = decode_response(data)
    except TowerError:
        return
    assert isinstance(value, Receipt | TowerInfo | int)


@settings(max_examples=400)
@given(st.binary(max_size=512))
def test_random_bytes_give_only_typed_errors(data: bytes) -> None:
    check(data)
    check_response(data)


@settings(max_examples=600)
@given(st.sampled_from(REQUESTS + RESPONSES), st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)),
                                                         min_size=1, max_size=4), st.integers(0, 3))
def test_mutated_frames_give_only_typed_errors(frame: bytes, flips: list[tuple[int, int]], cut: int) -> None:
    data = bytearray(frame)
    for pos, value in flips:
        data[pos % len(data)] = value
    mutated = bytes(data[: len(data) - cut])
    check(mutated)
    check_response(mutated)


def test_peer_ids_carry_the_key() -> None:
    key = RECEIPT.tower_key
    assert public_key_of(peer_id_of(key)) == key
    for bad in ("", "0OIl", "QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N", peer_id_of(key) + "1"):
        with pytest.raises(Exception) as caught:
            public_key_of(bad)
        assert type(caught.value).__name__ == "DecodeError"
