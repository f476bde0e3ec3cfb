"""Amounts up to 2^256-1 (an EVM uint256) through the core, the wire, the store records and
the devnet scheme; amounts that fit 64 bits keep the bytes 0.1.0 wrote (proto/01 section 4)."""

from __future__ import annotations

import pytest

from channels import encoding
from channels.chain.devnet.scheme import PROTOCOL_VERSION, WIDE_VERSION, DevnetScheme, state_layout
from channels.core.ids import MAX_AMOUNT, MAX_U64, NATIVE, Version
from channels.core.ops import Payment
from channels.core.state import Allocation, State, amount_field, parse_amount
from channels.errors import DecodeError, LocalProtocolError
from channels.store.records import channel_from_bytes, channel_to_bytes
from channels.testing import CorePair
from channels.wire import decode_message, encode_message
from channels.wire.fields import KINDS

BIG = 2**200


def test_an_amount_has_one_form() -> None:
    for n in (0, 1, MAX_U64, MAX_U64 + 1, BIG, MAX_AMOUNT):
        field = amount_field(n)
        assert parse_amount(encoding.decode(encoding.encode(field)), "x") == n
        assert type(field) is (int if n <= MAX_U64 else bytes)
    for bad in (b"\x00" + b"\x01" * 9, b"\x01" * 8, b"\x01" * 33, -1, True, None, "1", b""):
        with pytest.raises(DecodeError):
            parse_amount(bad, "amount")


def test_a_channel_of_huge_balances_pays_and_conserves() -> None:
    pair = CorePair((BIG, MAX_U64))
    pair.pay(0, BIG // 2 + 1)
    pair.deliver_all()
    assert pair.balances(0) == pair.balances(1) == (BIG // 2 - 1, MAX_U64 + BIG // 2 + 1)
    assert pair.channel(0).allocation.totals() == (BIG + MAX_U64,)
    record = channel_to_bytes(pair.channel(1))
    assert channel_from_bytes(record) == pair.channel(1), "the store keeps wide balances losslessly"


def test_a_payment_above_the_range_is_refused_before_anything_is_signed() -> None:
    pair = CorePair((BIG, BIG))
    before = pair.channel(0)
    with pytest.raises(LocalProtocolError):
        pair.pay(0, MAX_AMOUNT + 1)
    assert pair.channel(0) == before


def test_wide_operations_cross_the_wire() -> None:
    to_wire, from_wire = KINDS["operations"]
    ops = (Payment(payment_id=b"p", asset=NATIVE, amount=MAX_AMOUNT),)
    assert from_wire(encoding.decode(encoding.encode(to_wire(ops)))) == ops


def test_the_digest_layout_widens_only_when_an_amount_needs_it() -> None:
    pair = CorePair((100, 100))
    params = pair.channel(0).params
    narrow = State(channel_id=params.channel_id, version=Version(1),
                   allocation=Allocation(assets=(NATIVE,), balances=((MAX_U64, 0),)))
    wide = State(channel_id=params.channel_id, version=Version(1),
                 allocation=Allocation(assets=(NATIVE,), balances=((MAX_U64 + 1, 0),)))
    version_at = len(b"p2p-channels/devnet/state")
    assert int.from_bytes(state_layout(params, narrow)[version_at:version_at + 2], "big") == PROTOCOL_VERSION
    assert int.from_bytes(state_layout(params, wide)[version_at:version_at + 2], "big") == WIDE_VERSION
    assert len(state_layout(params, wide)) == len(state_layout(params, narrow)) + 2 * 24
    scheme = DevnetScheme()
    assert scheme.state_digest(params, narrow) != scheme.state_digest(params, wide)


def test_a_total_above_the_range_does_not_decode() -> None:
    alloc = Allocation(assets=(NATIVE,), balances=((MAX_AMOUNT, 1),))
    with pytest.raises(DecodeError):
        alloc.validate(2)


def test_wire_messages_with_wide_amounts_round_trip() -> None:
    pair = CorePair((BIG, BIG))
    pair.pay(0, BIG - 1)
    frames = list(pair.sides[1].inbox)
    assert frames, "the proposal is queued for the peer"
    for frame in frames:
        assert encode_message(decode_message(frame)) == frame
