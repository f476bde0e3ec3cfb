"""``proto/vectors/onion.json`` against the code, and against the text of proto/04-onion.md.

The second half re-implements the document (ChaCha20 from RFC 8439 in pure Python, the key
derivations, the construction of section 4.2, the processing of 4.3, the failure of section 6)
without importing ``channels.onion``, so a drift between the document, the vectors and the
code fails here.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import struct
from pathlib import Path
from typing import Any

import msgpack
import nacl.bindings
import pytest

from channels.onion import errors as onion_errors
from channels.onion import failures, keys, packet, payloads
from channels.onion.packet import peel_packet
from channels.onion.payloads import FinalPayload, ForwardPayload, decode_payload
from tests.wire.make_vectors import render

from . import make_onion_vectors

VECTORS = Path(__file__).resolve().parents[2] / "proto" / "vectors"
DOC = json.loads((VECTORS / "onion.json").read_text(encoding="utf-8"))
ROUTE = DOC["route"]
HOPS = ROUTE["hops"]
AD = bytes.fromhex(ROUTE["associated_data"])


def x(s: str) -> bytes:
    return bytes.fromhex(s)


def test_vectors_are_up_to_date() -> None:
    on_disk = (VECTORS / "onion.json").read_text(encoding="utf-8")
    assert on_disk == render(make_onion_vectors.build()), (
        "proto/vectors/onion.json is stale: run `python -m tests.onion.make_onion_vectors` and review the diff")


# ------------------------------------------------------------------ the code against the vectors


def payload_from(j: dict[str, Any]) -> payloads.HopPayload:
    if j["type"] == "forward":
        return ForwardPayload(next_hop=x(j["next_hop"]), amount=j["amount"], expiry=j["expiry"])
    return FinalPayload(amount=j["amount"], expiry=j["expiry"], total_amount=j["total_amount"],
                        payment_secret=None if j["payment_secret"] is None else x(j["payment_secret"]),
                        keysend_preimage=None if j["keysend_preimage"] is None else x(j["keysend_preimage"]))


def test_constants_are_the_codes() -> None:
    c = DOC["constants"]
    assert (c["packet_len"], c["routing_info_len"], c["max_hops"]) == (packet.PACKET_LEN, 1300, packet.MAX_HOPS)
    assert c["failure_packet_len"] == failures.FAILURE_PACKET_LEN == 288
    assert payloads.MAX_PAYLOAD_LEN == c["routing_info_len"] - c["length_prefix_len"] - c["mac_len"]
    for name, text in c["labels"].items():
        assert keys.label(name) == text.encode()


@pytest.mark.parametrize("index", range(len(HOPS)))
def test_each_hop_peels_its_vector(index: int) -> None:
    hop = HOPS[index]
    peeled = peel_packet(x(hop["packet"]), node_secret=x(hop["node_secret"]), associated_data=AD)
    assert peeled.shared_secret.hex() == hop["shared_secret"]
    assert peeled.replay_tag.hex() == hop["replay_tag"]
    assert peeled.payload_bytes.hex() == hop["payload_bytes"]
    assert peeled.decode_payload() == payload_from(hop["payload"])
    assert peeled.is_final == hop["is_final"] == (index == len(HOPS) - 1)
    if not peeled.is_final:
        assert peeled.next_packet is not None and peeled.next_packet.hex() == HOPS[index + 1]["packet"]


def test_payload_vectors() -> None:
    for v in DOC["payloads"]:
        p = payload_from(v["value"])
        assert p.to_bytes().hex() == v["hex"]
        assert decode_payload(x(v["hex"])) == p


@pytest.mark.parametrize("vector", DOC["invalid_payloads"], ids=lambda v: v["why"])
def test_invalid_payloads(vector: dict[str, Any]) -> None:
    with pytest.raises(getattr(onion_errors, vector["error"])):
        decode_payload(x(vector["hex"]))


@pytest.mark.parametrize("vector", DOC["invalid_packets"], ids=lambda v: v["why"])
def test_invalid_packets(vector: dict[str, Any]) -> None:
    error = getattr(onion_errors, vector["error"])
    with pytest.raises(error) as info:
        peel_packet(x(vector["packet"]), node_secret=x(HOPS[vector["hop_index"]]["node_secret"]),
                    associated_data=x(vector["associated_data"]))
    assert info.value.failure_code == vector["failure_code"]


def test_failure_steps_and_decoding() -> None:
    f = DOC["failure"]
    secrets = [x(h["shared_secret"]) for h in HOPS]
    failure = failures.Failure(code=f["code"], data=x(f["data"]))
    created = failures.create_failure(secrets[f["failing_hop"]], failure)
    assert created.hex() == f["steps"][0]["packet"]
    pkt = created
    for step in f["steps"][1:]:
        pkt = failures.wrap_failure(secrets[step["hop_index"]], pkt)
        assert pkt.hex() == step["packet"]
    decoded = failures.decode_failure(secrets, pkt)
    assert (decoded.hop_index, decoded.failure) == (f["decoded"]["hop_index"], failure)


def test_ed25519_conversion() -> None:
    v = DOC["ed25519_conversion"]
    secret = keys.onion_secret_from_ed25519_seed(x(v["ed25519_seed"]))
    assert secret.hex() == v["onion_secret"]
    assert keys.onion_public_from_ed25519(x(v["ed25519_public"])).hex() == v["onion_public"]
    assert keys.public_key(secret).hex() == v["onion_public"]


# ------------------------------------------------------------------ the document, re-implemented


def _rotl(v: int, c: int) -> int:
    return ((v << c) & 0xFFFFFFFF) | (v >> (32 - c))


def _quarter(s: list[int], a: int, b: int, c: int, d: int) -> None:
    s[a] = (s[a] + s[b]) & 0xFFFFFFFF
    s[d] = _rotl(s[d] ^ s[a], 16)
    s[c] = (s[c] + s[d]) & 0xFFFFFFFF
    s[b] = _rotl(s[b] ^ s[c], 12)
    s[a] = (s[a] + s[b]) & 0xFFFFFFFF
    s[d] = _rotl(s[d] ^ s[a], 8)
    s[c] = (s[c] + s[d]) & 0xFFFFFFFF
    s[b] = _rotl(s[b] ^ s[c], 7)


def chacha20_block(key: bytes, counter: int, nonce: bytes) -> bytes:
    """RFC 8439 section 2.3."""
    state = [0x61707865, 0x3320646E, 0x79622D32, 0x6B206574, *struct.unpack("<8L", key), counter,
             *struct.unpack("<3L", nonce)]
    s = list(state)
    for _ in range(10):
        _quarter(s, 0, 4, 8, 12)
        _quarter(s, 1, 5, 9, 13)
        _quarter(s, 2, 6, 10, 14)
        _quarter(s, 3, 7, 11, 15)
        _quarter(s, 0, 5, 10, 15)
        _quarter(s, 1, 6, 11, 12)
        _quarter(s, 2, 7, 8, 13)
        _quarter(s, 3, 4, 9, 14)
    return struct.pack("<16L", *((a + b) & 0xFFFFFFFF for a, b in zip(s, state, strict=True)))


def spec_stream(key: bytes, n: int) -> bytes:
    """Section 2: zero nonce, initial block counter 1."""
    out = b"".join(chacha20_block(key, 1 + i, bytes(12)) for i in range((n + 63) // 64))
    return out[:n]


def test_rfc8439_block_function() -> None:
    """RFC 8439 section 2.3.2's test vector, so the reference ChaCha20 here is itself right."""
    key = bytes(range(32))
    nonce = bytes.fromhex("000000090000004a00000000")
    assert chacha20_block(key, 1, nonce).hex().startswith("10f1e7e4d13b5915500fdd1fa32071c4c7d1f4c733c06803")


def sxor(a: bytes, b: bytes) -> bytes:
    return bytes(i ^ j for i, j in zip(a, b, strict=True))


def L(name: str) -> bytes:
    return b"p2p-channels/onion/v0/" + name.encode()


def derive(name: str, secret: bytes) -> bytes:
    return hmac.new(L(name), secret, hashlib.sha256).digest()


def test_keystream_vectors() -> None:
    for v in DOC["keystream"]:
        assert spec_stream(x(v["key"]), v["length"]).hex() == v["stream"]


def test_hop_keys_from_the_text() -> None:
    session = x(ROUTE["session_key"])
    e = nacl.bindings.crypto_scalarmult_base(session)
    blinds: list[bytes] = []
    for hop in HOPS:
        n_pub = x(hop["node_public"])
        assert nacl.bindings.crypto_scalarmult_base(x(hop["node_secret"])) == n_pub
        assert e.hex() == hop["ephemeral_key"] == hop["packet"][2:66]
        dh_hop = nacl.bindings.crypto_scalarmult(x(hop["node_secret"]), e)
        dh_sender = nacl.bindings.crypto_scalarmult(session, n_pub)  # section 3.3
        for b in blinds:
            dh_sender = nacl.bindings.crypto_scalarmult(b, dh_sender)
        assert dh_hop == dh_sender and dh_hop.hex() == hop["dh"]
        ss = hashlib.sha256(L("shared") + dh_hop + e + n_pub).digest()
        assert ss.hex() == hop["shared_secret"]
        b = hashlib.sha256(L("blind") + e + ss).digest()
        assert b.hex() == hop["blinding_factor"]
        for name in ("rho", "mu", "um", "ammag"):
            assert derive(name, ss).hex() == hop[name]
        assert derive("replay", ss).hex() == hop["replay_tag"]
        blinds.append(b)
        e = nacl.bindings.crypto_scalarmult(b, e)
    assert derive("pad", session).hex() == ROUTE["pad_key"]


def test_construction_from_the_text() -> None:
    """Section 4.2, step by step, gives the first hop's packet byte for byte."""
    secrets = [x(h["shared_secret"]) for h in HOPS]
    pls = [x(h["payload_bytes"]) for h in HOPS]
    lens = [2 + len(p) + 32 for p in pls]
    f = b""
    for ss, n in zip(secrets[:-1], lens[:-1], strict=True):
        f = sxor(f + bytes(n), spec_stream(derive("rho", ss), 2600)[1300 - len(f):1300 + n])
    assert f.hex() == ROUTE["filler"]
    r = spec_stream(x(ROUTE["pad_key"]), 1300)
    next_mac = bytes(32)
    for i in range(len(HOPS) - 1, -1, -1):
        slot = struct.pack(">H", len(pls[i])) + pls[i] + next_mac
        r = (slot + r)[:1300]
        r = sxor(r, spec_stream(derive("rho", secrets[i]), 1300))
        if i == len(HOPS) - 1:
            r = r[:1300 - len(f)] + f
        next_mac = hmac.new(derive("mu", secrets[i]), r + AD, hashlib.sha256).digest()
    assert (b"\x00" + x(HOPS[0]["ephemeral_key"]) + r + next_mac).hex() == HOPS[0]["packet"]


def test_processing_from_the_text() -> None:
    """Section 4.3 at every hop: the MAC, the slot, the next packet."""
    for i, hop in enumerate(HOPS):
        pkt = x(hop["packet"])
        assert len(pkt) == 1365 and pkt[0] == 0
        e, info, mac = pkt[1:33], pkt[33:1333], pkt[1333:]
        ss = x(hop["shared_secret"])
        assert hmac.compare_digest(hmac.new(derive("mu", ss), info + AD, hashlib.sha256).digest(), mac)
        p = sxor(info + bytes(1300), spec_stream(derive("rho", ss), 2600))
        (length,) = struct.unpack(">H", p[:2])
        assert p[2:2 + length].hex() == hop["payload_bytes"]
        next_mac = p[2 + length:34 + length]
        assert (next_mac == bytes(32)) == hop["is_final"]
        value = msgpack.unpackb(p[2:2 + length])
        assert value[0] == (2 if hop["is_final"] else 1)
        if not hop["is_final"]:
            next_e = nacl.bindings.crypto_scalarmult(x(hop["blinding_factor"]), e)
            assert (b"\x00" + next_e + p[34 + length:1334 + length] + next_mac).hex() == HOPS[i + 1]["packet"]


def test_failure_from_the_text() -> None:
    f = DOC["failure"]
    message = msgpack.packb([f["code"], x(f["data"])], use_bin_type=True)
    assert message.hex() == f["message"]
    body = struct.pack(">H", len(message)) + message + bytes(254 - len(message))
    assert body.hex() == f["body"]
    ss = x(HOPS[f["failing_hop"]]["shared_secret"])
    tag = hmac.new(derive("um", ss), body, hashlib.sha256).digest()
    assert tag.hex() == f["mac"]
    pkt = sxor(tag + body, spec_stream(derive("ammag", ss), 288))
    assert pkt.hex() == f["steps"][0]["packet"]
    for step in f["steps"][1:]:
        pkt = sxor(pkt, spec_stream(derive("ammag", x(HOPS[step["hop_index"]]["shared_secret"])), 288))
        assert pkt.hex() == step["packet"]
    # Section 6.3: the sender peels in route order until a MAC verifies.
    for i, hop in enumerate(HOPS):
        ss = x(hop["shared_secret"])
        pkt = sxor(pkt, spec_stream(derive("ammag", ss), 288))
        if hmac.compare_digest(hmac.new(derive("um", ss), pkt[32:], hashlib.sha256).digest(), pkt[:32]):
            assert i == f["decoded"]["hop_index"]
            break
    else:
        pytest.fail("no hop authenticates the failure")
