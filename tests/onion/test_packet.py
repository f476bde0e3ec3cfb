"""Onion packets: each hop peels only its own layer, the size never changes, tampering is caught
at the next hop, routes have bounds (proto/04-onion.md sections 3 and 4)."""

from __future__ import annotations

import hashlib
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from channels.crypto import SigningKey
from channels.errors import ChannelsError, LocalProtocolError
from channels.onion import (
    MAX_HOPS,
    PACKET_LEN,
    ROUTING_INFO_LEN,
    BadOnion,
    BadOnionKey,
    BadOnionMac,
    FinalPayload,
    ForwardPayload,
    Hop,
    OnionSizeError,
    PayloadDecodeError,
    PeeledPacket,
    RouteTooLong,
    UnknownOnionVersion,
    build_onion,
    build_packet,
    onion_public_from_ed25519,
    onion_secret_from_ed25519_seed,
    peel_packet,
    public_key,
    route_fits,
)
from channels.onion import keys as k
from channels.onion.packet import slot_len

from .helpers import PAYMENT_HASH, SESSION, route, secret


def walk(packet: bytes, secrets: list[bytes], ad: bytes = PAYMENT_HASH) -> list[PeeledPacket]:
    """Every hop peels in turn; returns what each one learnt."""
    out = []
    current: bytes | None = packet
    for s in secrets:
        assert current is not None, "the route ended early"
        peeled = peel_packet(current, node_secret=s, associated_data=ad)
        out.append(peeled)
        current = peeled.next_packet
    assert current is None, "the last hop was told to forward"
    return out


def plaintext(packet: bytes, ss: bytes) -> bytes:
    """Everything a hop can decrypt: its routing info xor its keystream (section 4.3 step 5)."""
    info = packet[33:33 + ROUTING_INFO_LEN]
    return k.xor(info + bytes(ROUTING_INFO_LEN), k.stream(k.derive(k.LABEL_RHO, ss), 2 * ROUTING_INFO_LEN))


def test_five_hops_each_learns_only_its_own_payload_and_next_hop() -> None:
    hops, secrets = route(5)
    built = build_onion(hops, session_key=SESSION, associated_data=PAYMENT_HASH)
    packets = [built.packet]
    peeled = walk(built.packet, secrets)
    packets += [p.next_packet for p in peeled if p.next_packet is not None]
    encoded = [h.payload.to_bytes() for h in hops]
    for i, p in enumerate(peeled):
        assert p.decode_payload() == hops[i].payload
        assert p.shared_secret == built.shared_secrets[i]
        view = plaintext(packets[i], p.shared_secret) + b"".join(packets)
        for j, other in enumerate(encoded):
            if j != i:
                assert other not in view, f"hop {i} can read hop {j}'s payload"
        refs = [h.payload.next_hop for h in hops if isinstance(h.payload, ForwardPayload)]
        assert [r for r in refs if r in view] == refs[i:i + 1], f"hop {i} learns another next hop than its own"
    assert [p.is_final for p in peeled] == [False] * 4 + [True]


def test_packet_size_is_constant_and_ephemeral_keys_unlinkable() -> None:
    hops, secrets = route(5)
    built = build_onion(hops, session_key=SESSION, associated_data=PAYMENT_HASH)
    peeled = walk(built.packet, secrets)
    packets = [built.packet] + [p.next_packet for p in peeled[:-1]]
    assert {len(p) for p in packets if p is not None} == {PACKET_LEN} == {1365}
    ephemerals = {p[1:33] for p in packets if p is not None}
    assert len(ephemerals) == 5, "each hop sees a different ephemeral key"
    assert [p[1:33] for p in packets if p is not None] == [h.ephemeral_key for h in built.hops]


@pytest.mark.parametrize("n", [1, 2, 5])
def test_last_hop_sees_no_zero_padding(n: int) -> None:
    """The tail after the final slot is keystream, not zeros: the payee cannot count hops."""
    hops, secrets = route(n)
    built = build_onion(hops, session_key=SESSION, associated_data=PAYMENT_HASH)
    peeled = walk(built.packet, secrets)
    packets = [built.packet] + [p.next_packet for p in peeled[:-1]]
    last = packets[-1]
    assert last is not None
    tail = plaintext(last, peeled[-1].shared_secret)[slot_len(hops[-1].payload.to_bytes()):ROUTING_INFO_LEN]
    assert bytes(16) not in tail


@settings(max_examples=60)
@given(hop=st.integers(0, 4), index=st.integers(0, PACKET_LEN - 1), mask=st.integers(1, 255))
def test_tampering_anywhere_fails_at_the_next_hop(hop: int, index: int, mask: int) -> None:
    hops, secrets = route(5)
    built = build_onion(hops, session_key=SESSION, associated_data=PAYMENT_HASH)
    packets = [built.packet] + [p.next_packet for p in walk(built.packet, secrets)[:-1]]
    bad = bytearray(packets[hop])  # type: ignore[arg-type]
    bad[index] ^= mask
    with pytest.raises(BadOnion) as info:
        peel_packet(bytes(bad), node_secret=secrets[hop], associated_data=PAYMENT_HASH)
    if index == 0:
        assert isinstance(info.value, UnknownOnionVersion)
    elif index >= 33:
        assert isinstance(info.value, BadOnionMac)
    else:
        assert isinstance(info.value, (BadOnionMac, BadOnionKey))


def test_wrong_key_or_associated_data_fails_the_mac() -> None:
    hops, secrets = route(3)
    built = build_onion(hops, session_key=SESSION, associated_data=PAYMENT_HASH)
    with pytest.raises(BadOnionMac):
        peel_packet(built.packet, node_secret=secrets[1], associated_data=PAYMENT_HASH)
    with pytest.raises(BadOnionMac):
        peel_packet(built.packet, node_secret=secrets[0], associated_data=bytes(32))
    with pytest.raises(BadOnionMac):  # the shared secret covers the node's public key
        peel_packet(built.packet, node_secret=secrets[0], associated_data=PAYMENT_HASH,
                    node_public=public_key(secrets[1]))
    good = peel_packet(built.packet, node_secret=secrets[0], associated_data=PAYMENT_HASH,
                       node_public=public_key(secrets[0]))
    assert good.decode_payload() == hops[0].payload


@pytest.mark.parametrize("data", [b"", bytes(PACKET_LEN - 1), bytes(PACKET_LEN + 1), "text", None, 7])
def test_wrong_sizes_and_types_are_typed_errors(data: object) -> None:
    with pytest.raises(OnionSizeError):
        peel_packet(data, node_secret=secret(0), associated_data=PAYMENT_HASH)  # type: ignore[arg-type]


def test_twenty_hops_fit_and_twenty_one_are_refused() -> None:
    hops, secrets = route(MAX_HOPS)
    built = build_onion(hops, session_key=SESSION, associated_data=PAYMENT_HASH)
    peeled = walk(built.packet, secrets)
    assert [p.decode_payload() for p in peeled] == [h.payload for h in hops]
    hops21, _ = route(MAX_HOPS + 1)
    with pytest.raises(RouteTooLong):
        build_onion(hops21, session_key=SESSION, associated_data=PAYMENT_HASH)
    assert not route_fits([h.payload.to_bytes() for h in hops21])
    assert route_fits([h.payload.to_bytes() for h in hops])


def test_thirty_two_byte_references_fit_sixteen_hops() -> None:
    """The figure proto/04-onion.md section 4.1 gives."""
    hops, secrets = route(16, ref_len=32)
    walk(build_onion(hops, session_key=SESSION, associated_data=PAYMENT_HASH).packet, secrets)
    hops17, _ = route(17, ref_len=32)
    with pytest.raises(RouteTooLong, match="routing area"):
        build_onion(hops17, session_key=SESSION, associated_data=PAYMENT_HASH)


def test_any_ten_hop_route_fits() -> None:
    """Worst-case payloads: 40-byte references, amounts of 2^256-1, u64 expiries, both secrets."""
    worst_forward = ForwardPayload(next_hop=bytes(range(40)), amount=2**256 - 1, expiry=2**64 - 1)
    worst_final = FinalPayload(amount=2**256 - 1, expiry=2**64 - 1, total_amount=2**256 - 1,
                               payment_secret=bytes(32), keysend_preimage=bytes(32))
    secrets = [secret(i) for i in range(11)]
    hops = [Hop(public_key(s), worst_forward) for s in secrets[:9]] + [Hop(public_key(secrets[9]), worst_final)]
    peeled = walk(build_onion(hops, session_key=SESSION, associated_data=PAYMENT_HASH).packet, secrets[:10])
    assert peeled[-1].decode_payload() == worst_final
    hops11 = [Hop(public_key(s), worst_forward) for s in secrets[:10]] + [Hop(public_key(secrets[10]), worst_final)]
    with pytest.raises(RouteTooLong):
        build_onion(hops11, session_key=SESSION, associated_data=PAYMENT_HASH)


@settings(max_examples=25)
@given(st.lists(st.tuples(st.integers(1, 40), st.integers(1, 2**70), st.integers(0, 2**64 - 1)),
                min_size=0, max_size=MAX_HOPS - 1),
       st.integers(1, 2**70), st.binary(min_size=32, max_size=32))
def test_random_routes_round_trip(forwards: list[tuple[int, int, int]], final_amount: int, session: bytes) -> None:
    n = len(forwards) + 1
    secrets = [secret(i) for i in range(n)]
    hops = [Hop(public_key(secrets[i]), ForwardPayload(next_hop=bytes([i]) * ln, amount=a, expiry=e))
            for i, (ln, a, e) in enumerate(forwards)]
    hops.append(Hop(public_key(secrets[-1]), FinalPayload(amount=final_amount, expiry=5, total_amount=final_amount)))
    if not route_fits([h.payload.to_bytes() for h in hops]):
        with pytest.raises(RouteTooLong):
            build_onion(hops, session_key=session, associated_data=PAYMENT_HASH)
        return
    built = build_onion(hops, session_key=session, associated_data=PAYMENT_HASH)
    assert [p.decode_payload() for p in walk(built.packet, secrets)] == [h.payload for h in hops]


def test_same_inputs_same_packet_other_session_other_packet() -> None:
    hops, _ = route(3)
    a = build_onion(hops, session_key=SESSION, associated_data=PAYMENT_HASH).packet
    assert build_onion(hops, session_key=SESSION, associated_data=PAYMENT_HASH).packet == a
    b = build_onion(hops, session_key=hashlib.sha256(b"other").digest(), associated_data=PAYMENT_HASH).packet
    assert a[1:33] != b[1:33] and a[33:1333] != b[33:1333]
    assert sum(x == y for x, y in zip(a[33:1333], b[33:1333], strict=True)) < 40  # about 1300/256 by chance


def test_build_refuses_bad_routes_with_typed_errors() -> None:
    hops, _ = route(3)
    fin = hops[-1].payload
    with pytest.raises(RouteTooLong):
        build_onion([], session_key=SESSION, associated_data=PAYMENT_HASH)
    with pytest.raises(LocalProtocolError, match="FinalPayload"):
        build_onion([hops[0], hops[1]], session_key=SESSION, associated_data=PAYMENT_HASH)
    with pytest.raises(LocalProtocolError, match="ForwardPayload"):
        build_onion([Hop(hops[0].public_key, fin), hops[2]], session_key=SESSION, associated_data=PAYMENT_HASH)
    bad_keys = [b"short", (2**255 - 19).to_bytes(32, "little"), bytes(32)]  # short, non-canonical, small order
    for key in bad_keys:
        with pytest.raises(LocalProtocolError):
            build_onion([Hop(key, fin)], session_key=SESSION, associated_data=PAYMENT_HASH)
    with pytest.raises(LocalProtocolError):
        build_onion([hops[2]], session_key=b"short", associated_data=PAYMENT_HASH)
    with pytest.raises(LocalProtocolError):
        build_onion([hops[2]], session_key=SESSION, associated_data=bytes(65))
    with pytest.raises(LocalProtocolError):
        build_packet([hops[0].public_key], [b""], session_key=SESSION, associated_data=b"")
    with pytest.raises(RouteTooLong):
        build_packet([hops[0].public_key], [bytes(ROUTING_INFO_LEN - 33)], session_key=SESSION, associated_data=b"")
    build_packet([hops[0].public_key], [bytes(ROUTING_INFO_LEN - 34)], session_key=SESSION, associated_data=b"")


def test_a_payload_of_the_wrong_kind_is_refused_after_the_mac() -> None:
    """The sender's MAC verifies, so the hop has the shared secret to send the failure back."""
    hops, secrets = route(2)
    forward, final = hops[0].payload.to_bytes(), hops[1].payload.to_bytes()
    keys_ = [h.public_key for h in hops]
    cases = [([forward, forward], [1]), ([final, final], [0]), ([b"\xc1", final], [0]),
             ([forward, b"\x93\x09\x01\x01"], [1]), ([forward, final], [])]
    for payloads_, refusing in cases:
        built = build_packet(keys_, payloads_, session_key=SESSION, associated_data=PAYMENT_HASH)
        peeled = walk(built.packet, secrets)
        assert [i for i, p in enumerate(peeled) if _refuses(p)] == refusing, payloads_
        assert [p.shared_secret for p in peeled] == list(built.shared_secrets)


def _refuses(p: PeeledPacket) -> bool:
    try:
        p.decode_payload()
    except PayloadDecodeError:
        return True
    return False


@pytest.mark.parametrize("length", [0, ROUTING_INFO_LEN - 33, 0xFFFF])
def test_an_out_of_range_length_prefix_is_a_payload_error(length: int) -> None:
    """Hand-built single-hop packet whose MAC verifies but whose length prefix is impossible."""
    node = secret(0)
    e = k.x25519(SESSION, (9).to_bytes(32, "little"))
    pub = public_key(node)
    ss = k.shared_secret(k.x25519(SESSION, pub), e, pub)
    plain = struct.pack(">H", length) + bytes(ROUTING_INFO_LEN - 2)
    info = k.xor(plain, k.stream(k.derive(k.LABEL_RHO, ss), ROUTING_INFO_LEN))
    packet = b"\x00" + e + info + k.mac(k.derive(k.LABEL_MU, ss), info + PAYMENT_HASH)
    peeled = peel_packet(packet, node_secret=node, associated_data=PAYMENT_HASH)
    assert peeled.shared_secret == ss
    with pytest.raises(PayloadDecodeError):
        peeled.decode_payload()


def test_onion_keys_from_ed25519_identities() -> None:
    """A sender that knows only the hops' Ed25519 public keys reaches them."""
    signing = [SigningKey.from_label(f"onion-hop-{i}") for i in range(3)]
    hops, _ = route(3)
    routed = [Hop(onion_public_from_ed25519(s.public_key), h.payload) for s, h in zip(signing, hops, strict=True)]
    built = build_onion(routed, session_key=SESSION, associated_data=PAYMENT_HASH)
    peeled = walk(built.packet, [onion_secret_from_ed25519_seed(s.seed) for s in signing])
    assert peeled[-1].decode_payload() == hops[-1].payload
    with pytest.raises(LocalProtocolError):
        onion_public_from_ed25519(bytes(31))
    with pytest.raises(LocalProtocolError):
        onion_secret_from_ed25519_seed(b"x")


def test_every_refusal_is_a_channels_error() -> None:
    for cls in (BadOnion, BadOnionKey, BadOnionMac, OnionSizeError, UnknownOnionVersion, PayloadDecodeError,
                RouteTooLong):
        assert issubclass(cls, ChannelsError)


def test_local_misuse_of_peel_is_a_local_error() -> None:
    hops, secrets = route(1)
    packet = build_onion(hops, session_key=SESSION, associated_data=PAYMENT_HASH).packet
    for kwargs in ({"node_secret": b"short"}, {"node_public": b"short"}, {"associated_data": bytes(65)},
                   {"associated_data": "text"}):
        args = {"node_secret": secrets[0], "associated_data": PAYMENT_HASH, **kwargs}
        with pytest.raises(LocalProtocolError):
            peel_packet(packet, **args)  # type: ignore[arg-type]
