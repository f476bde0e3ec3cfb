"""``proto/vectors/invoice.json`` against the code, and the payload rebuilt from the text of
``proto/05-invoice.md`` independently of the code (tags, integer forms, layouts, digest)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import nacl.exceptions
import nacl.signing
import pytest

import channels.invoice.errors as errors
from channels.crypto import SigningKey
from channels.invoice import HintHop, Invoice, decode_invoice, encode_invoice

from . import make_invoice_vectors

VECTORS = Path(__file__).resolve().parents[2] / "proto" / "vectors" / "invoice.json"
DOC = json.loads(VECTORS.read_text(encoding="utf-8"))
KEYS = {k["label"]: k for k in DOC["keys"]}
PAYEE = SigningKey(bytes.fromhex(KEYS["alice/libp2p"]["seed"]))


def test_the_committed_vectors_are_what_the_generator_writes() -> None:
    assert VECTORS.read_text(encoding="utf-8") == make_invoice_vectors.render(), \
        "proto/vectors/invoice.json is stale: run python -m tests.invoice.make_invoice_vectors and review the diff"


def test_the_vectors_cover_every_error_class() -> None:
    named = {v["error"] for v in DOC["invalid"]}
    classes = {name for name, value in vars(errors).items() if isinstance(value, type)
               and issubclass(value, errors.InvalidInvoice) and value is not errors.InvalidInvoice}
    assert classes <= named, f"no invalid vector for {sorted(classes - named)}"


# ------------------------------------------------------------------ the spec, rebuilt by hand


def bigsize(n: int) -> bytes:
    if n < 0xFD:
        return bytes([n])
    if n < 2**16:
        return b"\xfd" + n.to_bytes(2, "big")
    if n < 2**32:
        return b"\xfe" + n.to_bytes(4, "big")
    return b"\xff" + n.to_bytes(8, "big")


def uint(n: int) -> bytes:
    return n.to_bytes((n.bit_length() + 7) // 8, "big")


def b58decode(text: str) -> bytes:
    alphabet = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
    n = 0
    for c in text:
        n = n * 58 + alphabet.index(c)
    return b"\0" * (len(text) - len(text.lstrip("1"))) + n.to_bytes((n.bit_length() + 7) // 8, "big")


def payload_from_spec(f: dict[str, Any]) -> bytes:
    """proto/05-invoice.md sections 3-4: version 0, then (tag, length, value) in tag order."""
    fields: dict[int, bytes] = {0: uint(f["chain_id"]), 2: bytes.fromhex(f["payment_hash"]),
                                4: bytes.fromhex(f["payment_secret"]), 10: uint(f["timestamp"]),
                                18: b58decode(f["payee"]), 20: bytes.fromhex(f["l1_account"])}
    if f["amount"] is not None:
        fields[6] = uint(f["amount"])
    if f["asset"] != "native":
        fields[8] = f["asset"].encode()
    if f["expiry"] != 3600:
        fields[12] = uint(f["expiry"])
    if f["min_final_expiry_delta"] != 600:
        fields[14] = uint(f["min_final_expiry_delta"])
    if f["description"]:
        fields[16] = f["description"].encode()
    if f["route_hints"]:
        hints = bytes([len(f["route_hints"])])
        for route in f["route_hints"]:
            hints += bytes([len(route)])
            for hop in route:
                hints += (b58decode(hop["peer_id"]) + bytes.fromhex(hop["channel_ref"])
                          + hop["fee_base"].to_bytes(8, "big") + hop["fee_ppm"].to_bytes(4, "big")
                          + hop["expiry_delta"].to_bytes(4, "big"))
        fields[22] = hints
    if f["features"]:
        fields[24] = uint(sum(1 << b for b in f["features"]))
    for extra in f["unknown_fields"]:
        fields[extra["tag"]] = bytes.fromhex(extra["value"])
    return b"\x00" + b"".join(bigsize(t) + bigsize(len(v)) + v for t, v in sorted(fields.items()))


def bech32m_words(text: str) -> tuple[str, bytes]:
    """Prefix and data bytes of a bech32m string (checksum checked with BIP-350's constant)."""
    charset = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
    text = text.lower()
    prefix, data = text[:text.rfind("1")], [charset.index(c) for c in text[text.rfind("1") + 1:]]
    chk = 1
    for v in [ord(c) >> 5 for c in prefix] + [0] + [ord(c) & 31 for c in prefix] + data:
        top, chk = chk >> 25, (chk & 0x1FFFFFF) << 5 ^ v
        for i, g in enumerate([0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3]):
            chk ^= g if (top >> i) & 1 else 0
    assert chk == 0x2BC830A3
    bits = "".join(f"{v:05b}" for v in data[:-6])
    assert len(bits) % 8 < 5 and set(bits[len(bits) - len(bits) % 8:]) <= {"0"}
    return prefix, bytes(int(bits[i:i + 8], 2) for i in range(0, len(bits) - len(bits) % 8, 8))


def invoice_from(f: dict[str, Any]) -> Invoice:
    return Invoice(
        network=f["network"], chain_id=f["chain_id"], payee=f["payee"], l1_account=bytes.fromhex(f["l1_account"]),
        payment_hash=bytes.fromhex(f["payment_hash"]), payment_secret=bytes.fromhex(f["payment_secret"]),
        timestamp=f["timestamp"], amount=f["amount"], asset=f["asset"], expiry=f["expiry"],
        min_final_expiry_delta=f["min_final_expiry_delta"], description=f["description"],
        route_hints=tuple(tuple(HintHop(peer_id=h["peer_id"], channel_ref=bytes.fromhex(h["channel_ref"]),
                                        fee_base=h["fee_base"], fee_ppm=h["fee_ppm"], expiry_delta=h["expiry_delta"])
                                for h in route) for route in f["route_hints"]),
        features=frozenset(f["features"]),
        extra_fields=tuple((e["tag"], bytes.fromhex(e["value"])) for e in f["unknown_fields"]))


@pytest.mark.parametrize("vector", DOC["valid"], ids=lambda v: v["name"])
def test_valid_vectors_follow_the_spec(vector: dict[str, Any]) -> None:
    fields = vector["fields"]
    unsigned = bytes.fromhex(vector["unsigned_payload"])
    assert payload_from_spec(fields) == unsigned
    prefix = fields["network"]
    digest = hashlib.sha256(DOC["signature_domain"].encode() + bytes([len(prefix)]) + prefix.encode()
                            + unsigned).digest()
    assert digest.hex() == vector["signing_digest"]
    key = b58decode(fields["payee"])
    assert key[:6] == bytes.fromhex("002408011220")
    nacl.signing.VerifyKey(key[6:]).verify(digest, bytes.fromhex(vector["signature"]))
    assert bech32m_words(vector["invoice"]) == (prefix, unsigned + bytes.fromhex(vector["signature"]))
    assert fields["expires_at"] == fields["timestamp"] + fields["expiry"]


@pytest.mark.parametrize("vector", DOC["valid"], ids=lambda v: v["name"])
def test_valid_vectors_decode_and_encode(vector: dict[str, Any]) -> None:
    invoice = decode_invoice(vector["invoice"])
    assert invoice.to_json() == vector["fields"]
    assert invoice == invoice_from(vector["fields"])
    assert encode_invoice(invoice, PAYEE) == vector["invoice"]


def test_the_uppercase_form_is_the_same_invoice() -> None:
    same = next(v for v in DOC["valid"] if v["name"] == DOC["uppercase"]["same_as"])
    assert decode_invoice(DOC["uppercase"]["invoice"]).to_json() == same["fields"]


@pytest.mark.parametrize("vector", DOC["invalid"], ids=lambda v: v["name"])
def test_invalid_vectors_raise_the_named_error(vector: dict[str, Any]) -> None:
    options = {k: vector[k] for k in ("now", "chain_id") if k in vector}
    with pytest.raises(errors.InvalidInvoice) as info:
        decode_invoice(vector["invoice"], **options)
    assert type(info.value).__name__ == vector["error"], str(info.value)


def test_a_wrong_key_vector_has_a_signature_that_verifies_under_the_other_key() -> None:
    """The forgery vector is a real signature by bob: only the payee's key makes it invalid."""
    vector = next(v for v in DOC["invalid"] if v["name"] == "wrong_key")
    prefix, payload = bech32m_words(vector["invoice"])
    digest = hashlib.sha256(DOC["signature_domain"].encode() + bytes([len(prefix)]) + prefix.encode()
                            + payload[:-64]).digest()
    nacl.signing.VerifyKey(bytes.fromhex(KEYS["bob/libp2p"]["public_key"])).verify(digest, payload[-64:])
    with pytest.raises(nacl.exceptions.BadSignatureError):
        nacl.signing.VerifyKey(bytes.fromhex(KEYS["alice/libp2p"]["public_key"])).verify(digest, payload[-64:])
