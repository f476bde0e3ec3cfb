"""Generate ``proto/vectors/onion.json`` (proto/04-onion.md) from fixed keys.

Run from the repository root::

    .venv/bin/python -m tests.onion.make_onion_vectors

Every key derives from a fixed label, so the output is byte-for-byte deterministic and
``tests/onion/test_onion_vectors.py`` fails when the committed file is out of date. The
generator checks itself: the route peels hop by hop to the payloads it was built from, the
failure decodes to hop 2, and every invalid input raises the error class it names.
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from channels.onion import errors as onion_errors
from channels.onion import failures, keys, packet, payloads
from channels.onion.packet import Hop, build_onion, peel_packet
from channels.onion.payloads import FinalPayload, ForwardPayload, decode_payload
from tests.wire.make_vectors import render

ROOT = Path(__file__).resolve().parents[2]
TARGET = ROOT / "proto" / "vectors" / "onion.json"

LABELS = ("bob", "carol", "dave", "erin", "frank")  # alice is the sender
FAILING_HOP = 2


def h(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def node_secret(label: str) -> bytes:
    return h(b"p2p-channels/onion-test-key/" + label.encode())


SESSION_KEY = h(b"p2p-channels/onion-test-session/0")
PREIMAGE = h(b"p2p-channels/onion-test-preimage/0")
PAYMENT_HASH = h(PREIMAGE)
PAYMENT_SECRET = h(b"p2p-channels/onion-test-payment-secret/0")
BASE_EXPIRY = 1_700_086_400
EXPIRY_DELTA = 3_600


def channel_ref(a: str, b: str) -> bytes:
    """An 8-byte next-hop reference (what it names is the forwarding document's business)."""
    return h(f"p2p-channels/onion-test-channel/{a}-{b}".encode())[:8]


def route() -> list[Hop]:
    out: list[Hop] = []
    n = len(LABELS)
    for i, label in enumerate(LABELS):
        pub = keys.public_key(node_secret(label))
        expiry = BASE_EXPIRY - EXPIRY_DELTA * i
        if i < n - 1:
            amount = 10_000 + 10 * (n - 1 - i)  # each forwarder keeps a fee of 10
            out.append(Hop(pub, ForwardPayload(next_hop=channel_ref(label, LABELS[i + 1]), amount=amount,
                                               expiry=expiry - EXPIRY_DELTA)))
        else:
            out.append(Hop(pub, FinalPayload(amount=10_000, expiry=expiry, total_amount=10_000,
                                             payment_secret=PAYMENT_SECRET)))
    return out


def payload_json(p: payloads.HopPayload) -> dict[str, Any]:
    if isinstance(p, ForwardPayload):
        return {"type": "forward", "next_hop": p.next_hop.hex(), "amount": p.amount, "expiry": p.expiry}
    return {"type": "final", "amount": p.amount, "expiry": p.expiry, "total_amount": p.total_amount,
            "payment_secret": None if p.payment_secret is None else p.payment_secret.hex(),
            "keysend_preimage": None if p.keysend_preimage is None else p.keysend_preimage.hex()}


def constants() -> dict[str, Any]:
    return {"version": packet.VERSION, "packet_len": packet.PACKET_LEN, "routing_info_len": packet.ROUTING_INFO_LEN,
            "mac_len": packet.MAC_LEN, "length_prefix_len": packet.LENGTH_PREFIX_LEN, "max_hops": packet.MAX_HOPS,
            "max_associated_data": packet.MAX_ASSOCIATED_DATA, "max_next_hop_len": payloads.MAX_NEXT_HOP_LEN,
            "failure_body_len": failures.FAILURE_BODY_LEN, "failure_packet_len": failures.FAILURE_PACKET_LEN,
            "max_failure_data": failures.MAX_FAILURE_DATA,
            "labels": {name: keys.label(name).decode() for name in
                       ("shared", "blind", "rho", "mu", "um", "ammag", "pad", "replay")}}


def keystreams() -> list[dict[str, Any]]:
    out = []
    for i, n in enumerate((64, 100)):
        key = h(b"p2p-channels/onion-test-stream/%d" % i)
        out.append({"key": key.hex(), "length": n, "stream": keys.stream(key, n).hex()})
    return out


def route_vector() -> dict[str, Any]:
    hops = route()
    built = build_onion(hops, session_key=SESSION_KEY, associated_data=PAYMENT_HASH)
    lens = [packet.slot_len(hp.payload.to_bytes()) for hp in hops]
    out_hops = []
    current: bytes | None = built.packet
    for i, (label, hop, hk) in enumerate(zip(LABELS, hops, built.hops, strict=True)):
        assert current is not None
        ss = hk.shared_secret
        peeled = peel_packet(current, node_secret=node_secret(label), associated_data=PAYMENT_HASH)
        assert peeled.shared_secret == ss and peeled.decode_payload() == hop.payload
        assert current[1:33] == hk.ephemeral_key
        out_hops.append({
            "label": label, "node_secret": node_secret(label).hex(), "node_public": hop.public_key.hex(),
            "payload": payload_json(hop.payload), "payload_bytes": hop.payload.to_bytes().hex(),
            "slot_len": lens[i],
            "packet": current.hex(),
            "ephemeral_key": hk.ephemeral_key.hex(),
            "dh": keys.x25519(node_secret(label), hk.ephemeral_key).hex(),
            "shared_secret": ss.hex(), "blinding_factor": hk.blinding_factor.hex(),
            "rho": keys.derive(keys.LABEL_RHO, ss).hex(), "mu": keys.derive(keys.LABEL_MU, ss).hex(),
            "um": keys.derive(keys.LABEL_UM, ss).hex(), "ammag": keys.derive(keys.LABEL_AMMAG, ss).hex(),
            "replay_tag": peeled.replay_tag.hex(), "is_final": peeled.is_final,
        })
        current = peeled.next_packet
    assert current is None
    return {"session_key": SESSION_KEY.hex(), "associated_data": PAYMENT_HASH.hex(),
            "pad_key": keys.derive(keys.LABEL_PAD, SESSION_KEY).hex(),
            "filler": packet.filler(built.shared_secrets, lens).hex(), "hops": out_hops}


def failure_vector() -> dict[str, Any]:
    built = build_onion(route(), session_key=SESSION_KEY, associated_data=PAYMENT_HASH)
    secrets = built.shared_secrets
    failure = failures.Failure(code=failures.FEE_INSUFFICIENT, data=bytes.fromhex("00000000000003e8"))
    pkt = failures.create_failure(secrets[FAILING_HOP], failure)
    steps = [{"hop_index": FAILING_HOP, "action": "create", "packet": pkt.hex()}]
    for i in range(FAILING_HOP - 1, -1, -1):
        pkt = failures.wrap_failure(secrets[i], pkt)
        steps.append({"hop_index": i, "action": "wrap", "packet": pkt.hex()})
    decoded = failures.decode_failure(secrets, pkt)
    assert decoded == failures.DecodedFailure(hop_index=FAILING_HOP, failure=failure)
    body = failures._body(failure)
    return {"failing_hop": FAILING_HOP, "code": failure.code, "name": failure.name, "data": failure.data.hex(),
            "message": failure.to_bytes().hex(), "body": body.hex(),
            "mac": keys.mac(keys.derive(keys.LABEL_UM, secrets[FAILING_HOP]), body).hex(),
            "steps": steps, "decoded": {"hop_index": decoded.hop_index, "code": decoded.failure.code}}


def payload_samples() -> list[dict[str, Any]]:
    samples: list[payloads.HopPayload] = [
        ForwardPayload(next_hop=b"\x01", amount=1, expiry=0),
        ForwardPayload(next_hop=bytes(range(40)), amount=2**64 - 1, expiry=2**64 - 1),
        ForwardPayload(next_hop=bytes(8), amount=2**64, expiry=1),  # above 2^64: big-endian bytes
        FinalPayload(amount=5, expiry=7, total_amount=5),
        FinalPayload(amount=5, expiry=7, total_amount=2**256 - 1, payment_secret=bytes(32),
                     keysend_preimage=bytes([0xAB]) * 32),
    ]
    out = []
    for p in samples:
        data = p.to_bytes()
        assert decode_payload(data) == p
        out.append({"value": payload_json(p), "hex": data.hex()})
    return out


def _expect(error: type[Exception], fn: Callable[[], object]) -> None:
    try:
        fn()
    except error:
        return
    raise RuntimeError(f"expected {error.__name__}")


def invalid_payloads() -> list[dict[str, Any]]:
    cases = [
        ("empty", b""),
        ("not msgpack", b"\xc1"),
        ("unknown type 3", bytes.fromhex("9303c40101") + b"\x01"),
        ("forward with 2 fields", bytes.fromhex("9301c4010101")),
        ("next_hop empty", bytes.fromhex("9401c4000101")),
        ("amount zero", bytes.fromhex("9401c401010001")),
        ("amount as non-minimal int", bytes.fromhex("9401c40101cc0101")),
        ("expiry negative", bytes.fromhex("9401c4010101ff")),
        ("amount as bytes below 2^64", bytes.fromhex("9401c40101c408") + bytes(7) + b"\x01" + b"\x01"),
        ("final total below amount", bytes.fromhex("960205070400c0c0")),
        ("final payment_secret of 31 bytes", bytes.fromhex("9602050705c41f") + bytes(31) + b"\xc0"),
        ("type id is a string", bytes.fromhex("93a131c4010101")),
        ("trailing byte", ForwardPayload(next_hop=b"\x01", amount=1, expiry=1).to_bytes() + b"\x00"),
    ]
    out = []
    for why, data in cases:
        _expect(onion_errors.PayloadDecodeError, lambda data=data: decode_payload(data))  # type: ignore[misc]
        out.append({"why": why, "hex": data.hex(), "error": "PayloadDecodeError"})
    return out


def invalid_packets() -> list[dict[str, Any]]:
    built = build_onion(route(), session_key=SESSION_KEY, associated_data=PAYMENT_HASH)
    good = built.packet
    flip = bytearray(good)
    flip[1 + 32 + 700] ^= 0x01
    bad_mac = bytearray(good)
    bad_mac[-1] ^= 0x80
    non_canonical = good[:1] + (2**255 - 19).to_bytes(32, "little") + good[33:]
    top_bit = good[:1] + good[1:32] + bytes([good[32] | 0x80]) + good[33:]
    small_order = good[:1] + bytes(32) + good[33:]
    cases: list[tuple[str, bytes, bytes, type[Exception]]] = [
        ("one byte short", good[:-1], PAYMENT_HASH, onion_errors.OnionSizeError),
        ("one byte long", good + b"\x00", PAYMENT_HASH, onion_errors.OnionSizeError),
        ("version 1", b"\x01" + good[1:], PAYMENT_HASH, onion_errors.UnknownOnionVersion),
        ("a routing-info bit flipped", bytes(flip), PAYMENT_HASH, onion_errors.BadOnionMac),
        ("a MAC bit flipped", bytes(bad_mac), PAYMENT_HASH, onion_errors.BadOnionMac),
        ("other associated data", good, h(b"another payment"), onion_errors.BadOnionMac),
        ("ephemeral key u = p (non-canonical)", non_canonical, PAYMENT_HASH, onion_errors.BadOnionKey),
        ("ephemeral key with the top bit set", top_bit, PAYMENT_HASH, onion_errors.BadOnionKey),
        ("ephemeral key u = 0 (small order)", small_order, PAYMENT_HASH, onion_errors.BadOnionKey),
    ]
    out = []
    for why, pkt, ad, error in cases:
        _expect(error, lambda pkt=pkt, ad=ad: peel_packet(pkt, node_secret=node_secret(LABELS[0]),  # type: ignore[misc]
                                                           associated_data=ad))
        out.append({"why": why, "hop_index": 0, "associated_data": ad.hex(), "packet": pkt.hex(),
                    "error": error.__name__, "failure_code": error.failure_code})  # type: ignore[attr-defined]
    return out


def ed25519_conversion() -> dict[str, Any]:
    from channels.crypto import SigningKey
    key = SigningKey.from_label("bob")
    return {"ed25519_seed": key.seed.hex(), "ed25519_public": key.public_key.hex(),
            "onion_secret": keys.onion_secret_from_ed25519_seed(key.seed).hex(),
            "onion_public": keys.onion_public_from_ed25519(key.public_key).hex()}


def build() -> dict[str, Any]:
    return {
        "description": "proto/04-onion.md vectors: a 5-hop route from alice, a failure from hop 2, payload "
                       "encodings, packets a hop must refuse. Hex is lowercase; hop_index 0 is the first hop.",
        "constants": constants(),
        "keystream": keystreams(),
        "route": route_vector(),
        "failure": failure_vector(),
        "payloads": payload_samples(),
        "invalid_payloads": invalid_payloads(),
        "invalid_packets": invalid_packets(),
        "ed25519_conversion": ed25519_conversion(),
    }


def main() -> None:
    TARGET.parent.mkdir(parents=True, exist_ok=True)
    TARGET.write_text(render(build()), encoding="utf-8")
    print(f"wrote {TARGET.relative_to(ROOT)}", file=sys.stderr)


if __name__ == "__main__":
    main()
