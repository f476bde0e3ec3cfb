"""Generate ``proto/vectors/invoice.json``: invoices from fixed keys, valid and invalid.

Run from the repository root::

    .venv/bin/python -m tests.invoice.make_invoice_vectors

Deterministic (fixed labels, Ed25519 signs deterministically), and self-checking: every
valid invoice must decode to its fields and re-encode to its text, and every invalid one
must raise exactly the error class it names. ``tests/invoice/test_invoice_vectors.py``
fails when the committed file differs from what this writes.

Invalid invoices are built from raw field bytes and signed as they are (``assemble``), so
each breaks one rule with a signature that verifies: a reader refuses it for that rule.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs

from channels.crypto import SigningKey, sha256
from channels.invoice import (
    DEVNET,
    MAX_DESCRIPTION,
    MAX_INVOICE_LENGTH,
    BadChecksum,
    BadEncoding,
    BadSignature,
    Expired,
    HintHop,
    InvalidField,
    InvalidInvoice,
    Invoice,
    InvoiceTooLong,
    MissingField,
    NonCanonical,
    UnknownNetwork,
    UnknownRequiredFeature,
    UnknownRequiredField,
    UnsupportedVersion,
    WrongChain,
    bech32m,
    decode_invoice,
    encode_invoice,
    peer_id_of,
)
from channels.invoice.fields import write_bigsize, write_uint
from channels.invoice.invoice import SIGNATURE_DOMAIN, assemble, fields_of, signing_digest, unsigned_payload

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "proto" / "vectors" / "invoice.json"

LABELS = ("alice/libp2p", "bob/libp2p", "carol/libp2p")
KEYS = {label.split("/")[0]: SigningKey.from_label(label) for label in LABELS}
PEERS = {name: peer_id_of(key.public_key) for name, key in KEYS.items()}
ALICE = KEYS["alice"]
L1_ALICE = SigningKey.from_label("alice").public_key  # alice's devnet L1 address (keys.json)
PREIMAGE = sha256(b"p2p-channels/test-preimage/0")
SECRET = sha256(b"p2p-channels/test-payment-secret/0")
TIMESTAMP = 1_767_225_600  # 2026-01-01T00:00:00Z
CHAIN_ID = 1337

BASE = Invoice(payee=PEERS["alice"], l1_account=L1_ALICE, payment_hash=sha256(PREIMAGE), payment_secret=SECRET,
               timestamp=TIMESTAMP, chain_id=CHAIN_ID)
HOP_BOB = HintHop(peer_id=PEERS["bob"], channel_ref=sha256(b"p2p-channels/test-channel/bob-alice"), fee_base=1,
                  fee_ppm=100, expiry_delta=40)
HOP_CAROL = HintHop(peer_id=PEERS["carol"], channel_ref=sha256(b"p2p-channels/test-channel/carol-bob"), fee_base=0,
                    fee_ppm=2500, expiry_delta=144)

VALID: list[tuple[str, str, Invoice]] = [
    ("minimal", "required fields only: any amount, native asset, default expiry and delta", BASE),
    ("amount_description", "an amount and a description",
     attrs.evolve(BASE, amount=1200, description="coffee for two")),
    ("wide_token", "the largest amount, a token asset, expiry and delta other than their defaults",
     attrs.evolve(BASE, amount=2**256 - 1, asset="gold", expiry=86_400, min_final_expiry_delta=1_200)),
    ("route_hints_features", "two route hints (one and two hops), the optional multipart feature, UTF-8 text",
     attrs.evolve(BASE, amount=50_000, description="thé ☕ at Café Zoë", route_hints=((HOP_BOB,), (HOP_CAROL, HOP_BOB)),
             features=frozenset({1}))),
    ("unknown_odd_field", "an unknown odd field (tag 101): skipped by readers, covered by the signature",
     attrs.evolve(BASE, amount=7, extra_fields=((101, b"it's OK to be odd"),))),
    ("description_at_bound", f"a description of exactly {MAX_DESCRIPTION} bytes of UTF-8",
     attrs.evolve(BASE, description="é" * (MAX_DESCRIPTION // 2))),
]


def record(tag: int, value: bytes) -> bytes:
    return write_bigsize(tag) + write_bigsize(len(value)) + value


def raw_payload(records: list[tuple[int, bytes]], *, version: int = 0) -> bytes:
    """Fields as given: no ordering or canonical checks (to break them on purpose)."""
    return bytes([version]) + b"".join(record(t, v) for t, v in records)


def base_records(**changes: bytes | None) -> list[tuple[int, bytes]]:
    """BASE's fields with some replaced (by tag name, ``None`` removes), in tag order."""
    from channels.invoice.fields import TAG_NAMES

    by_name = {TAG_NAMES[t]: (t, v) for t, v in fields_of(BASE)}
    tags = {name: t for t, name in TAG_NAMES.items()}
    for name, value in changes.items():
        if value is None:
            by_name.pop(name)
        else:
            by_name[name] = (tags[name], value)
    return sorted(by_name.values())


def signed(records: list[tuple[int, bytes]], *, prefix: str = DEVNET, version: int = 0,
           key: SigningKey = ALICE) -> str:
    return assemble(prefix, raw_payload(records, version=version), key)


def with_words(change: Callable[[list[int]], list[int]], padding: tuple[int, ...]) -> str:
    """A correctly signed invoice, its 5-bit data changed and the checksum recomputed. The
    invoice is BASE with an odd field of 0..4 bytes, whichever leaves a number of padding
    bits in ``padding``."""
    for size in range(5):
        invoice = attrs.evolve(BASE, extra_fields=((101, bytes(size)),) if size else ())
        payload = unsigned_payload(invoice)
        payload += ALICE.sign(signing_digest(DEVNET, payload))
        if (-8 * len(payload)) % 5 in padding:
            return bech32m.encode(DEVNET, change(bech32m.to_words(payload)), limit=MAX_INVOICE_LENGTH)
    raise AssertionError("no length gives that padding")


def flip_char(text: str, index: int) -> str:
    c = text[index]
    return text[:index] + ("q" if c != "q" else "p") + text[index + 1:]


def forged_amount() -> str:
    """A signed invoice whose amount was raised afterwards (checksum recomputed)."""
    good = decode_bits(encode_invoice(attrs.evolve(BASE, amount=1200), ALICE))
    unsigned, signature = good[:-64], good[-64:]
    tampered = unsigned.replace(record(6, write_uint(1200)), record(6, write_uint(9200)))
    assert tampered != unsigned
    return bech32m.encode(DEVNET, bech32m.to_words(tampered + signature), limit=MAX_INVOICE_LENGTH)


def decode_bits(text: str) -> bytes:
    _, words = bech32m.decode(text, limit=MAX_INVOICE_LENGTH)
    return bech32m.from_words(words)


def other_prefix_signature() -> str:
    """Signed over the prefix ``chx``, presented as ``chd``."""
    unsigned = unsigned_payload(BASE)
    signature = ALICE.sign(signing_digest("chx", unsigned))
    return bech32m.encode(DEVNET, bech32m.to_words(unsigned + signature), limit=MAX_INVOICE_LENGTH)


def too_long() -> str:
    text = bech32m.encode(DEVNET, [0] * (MAX_INVOICE_LENGTH - len(DEVNET) - 1 - 6 + 1), limit=MAX_INVOICE_LENGTH + 1)
    assert len(text) == MAX_INVOICE_LENGTH + 1
    return text


HOP_BYTES = bytes.fromhex("002408011220") + KEYS["bob"].public_key + bytes(32) + bytes(16)
MINIMAL = encode_invoice(BASE, ALICE)

INVALID: list[tuple[str, str, Callable[[], str], type[InvalidInvoice], dict[str, Any]]] = [
    ("bad_checksum", "one data character changed", lambda: flip_char(MINIMAL, 40), BadChecksum, {}),
    ("mixed_case", "one character upper case", lambda: MINIMAL[:10] + MINIMAL[10].upper() + MINIMAL[11:],
     BadEncoding, {}),
    ("space", "a trailing space", lambda: MINIMAL + " ", BadEncoding, {}),
    ("too_long", f"{MAX_INVOICE_LENGTH + 1} characters (refused before the checksum)", too_long, InvoiceTooLong, {}),
    ("unknown_network", "prefix chx, signed over chx", lambda: signed(base_records(), prefix="chx"),
     UnknownNetwork, {}),
    ("version_1", "version byte 1", lambda: signed(base_records(), version=1), UnsupportedVersion, {}),
    ("nonzero_padding", "a padding bit set", lambda: with_words(lambda w: [*w[:-1], w[-1] | 1], (1, 2, 3, 4)),
     BadEncoding, {}),
    ("long_padding", "an extra 5-bit word of zero padding", lambda: with_words(lambda w: [*w, 0], (0, 1, 2)),
     BadEncoding, {}),
    ("too_short", "a payload shorter than a version and a signature",
     lambda: bech32m.encode(DEVNET, bech32m.to_words(bytes(64)), limit=MAX_INVOICE_LENGTH), BadEncoding, {}),
    ("out_of_order", "payment secret (4) before payment hash (2)",
     lambda: signed(sorted(base_records(), key=lambda r: {2: 4, 4: 2}.get(r[0], r[0]))), NonCanonical, {}),
    ("duplicate", "the payment hash twice",
     lambda: signed(sorted([*base_records(), (2, sha256(b"other"))])), NonCanonical, {}),
    ("long_bigsize", "a field length of 32 written as fd 00 20",
     lambda: assemble(DEVNET, raw_payload(base_records()).replace(b"\x02\x20", b"\x02\xfd\x00\x20", 1), ALICE),
     NonCanonical, {}),
    ("leading_zero", "amount 1200 as 00 04 b0", lambda: signed(base_records(amount=b"\x00\x04\xb0")),
     NonCanonical, {}),
    ("zero_amount", "amount 0 (an empty value)", lambda: signed(base_records(amount=b"")), NonCanonical, {}),
    ("default_expiry", "expiry 3600 (the default) spelt out", lambda: signed(base_records(expiry=write_uint(3600))),
     NonCanonical, {}),
    ("default_asset", "asset 'native' spelt out", lambda: signed(base_records(asset=b"native")), NonCanonical, {}),
    ("empty_features", "a feature vector of no bytes", lambda: signed(base_records(features=b"")), NonCanonical, {}),
    ("missing_hash", "no payment hash", lambda: signed(base_records(payment_hash=None)), MissingField, {}),
    ("missing_secret", "no payment secret", lambda: signed(base_records(payment_secret=None)), MissingField, {}),
    ("short_hash", "a 31-byte payment hash", lambda: signed(base_records(payment_hash=bytes(31))), InvalidField, {}),
    ("hashed_peer_id", "the payee as a sha2-256 peer id (its key is not inside)",
     lambda: signed(base_records(payee=b"\x12\x20" + bytes(32))), InvalidField, {}),
    ("short_account", "a 20-byte L1 account on the devnet", lambda: signed(base_records(l1_account=bytes(20))),
     InvalidField, {}),
    ("long_amount", "a 33-byte amount", lambda: signed(base_records(amount=b"\x01" + bytes(32))), InvalidField, {}),
    ("long_description", f"a description of {MAX_DESCRIPTION + 1} bytes",
     lambda: signed(base_records(description=b"d" * (MAX_DESCRIPTION + 1))), InvalidField, {}),
    ("escape_description", "a terminal escape sequence in the description",
     lambda: signed(base_records(description=b"pay \x1b[2J now")), InvalidField, {}),
    ("bidi_description", "a right-to-left override (U+202E) in the description",
     lambda: signed(base_records(description="refund \u202egnp.exe".encode())), InvalidField, {}),
    ("bad_utf8", "a description that is not UTF-8", lambda: signed(base_records(description=b"caf\xe9")),
     InvalidField, {}),
    ("too_many_routes", "five route hints", lambda: signed(base_records(route_hints=bytes([5]) + (b"\x01" + HOP_BYTES)
                                                                        * 5)), InvalidField, {}),
    ("too_many_hops", "a route hint of four hops",
     lambda: signed(base_records(route_hints=b"\x01\x04" + HOP_BYTES * 4)), InvalidField, {}),
    ("truncated_hint", "a route hint one byte short", lambda: signed(base_records(route_hints=b"\x01\x01"
                                                                                  + HOP_BYTES[:-1])),
     InvalidField, {}),
    ("field_past_end", "a field announcing more bytes than remain",
     lambda: assemble(DEVNET, raw_payload(base_records()) + b"\x65\x10abc", ALICE), InvalidField, {}),
    ("too_many_unknown_fields", "17 fields of unknown odd tags",
     lambda: signed([*base_records(), *((101 + 2 * i, b"") for i in range(17))]), InvalidField, {}),
    ("unknown_even_field", "an unknown even field (tag 100)",
     lambda: signed(sorted([*base_records(), (100, b"must understand")])), UnknownRequiredField, {}),
    ("unknown_even_feature", "unknown feature bit 2 (required) set",
     lambda: signed(base_records(features=b"\x04")), UnknownRequiredFeature, {}),
    ("wrong_key", "alice's invoice signed by bob's identity key", lambda: signed(base_records(), key=KEYS["bob"]),
     BadSignature, {}),
    ("raised_amount", "amount changed from 1200 to 9200 after signing, checksum recomputed", forged_amount,
     BadSignature, {}),
    ("other_prefix", "signed over prefix chx, presented as chd", other_prefix_signature, BadSignature, {}),
    ("expired", "valid, read one second after it expired", lambda: MINIMAL, Expired,
     {"now": TIMESTAMP + 3600}),
    ("wrong_chain", "valid, read by a payer on chain 1", lambda: MINIMAL, WrongChain, {"chain_id": 1}),
]


def valid_vector(name: str, about: str, invoice: Invoice) -> dict[str, Any]:
    text = encode_invoice(invoice, ALICE)
    unsigned = unsigned_payload(invoice)
    digest = signing_digest(invoice.network, unsigned)
    assert decode_invoice(text) == invoice
    assert decode_invoice(text.upper()) == invoice
    return {"name": name, "description": about, "invoice": text, "fields": invoice.to_json(),
            "unsigned_payload": unsigned.hex(), "signing_digest": digest.hex(),
            "signature": ALICE.sign(digest).hex()}


def invalid_vector(name: str, about: str, make: Callable[[], str], error: type[InvalidInvoice],
                   options: dict[str, Any]) -> dict[str, Any]:
    text = make()
    try:
        decode_invoice(text, **options)
    except InvalidInvoice as exc:
        assert type(exc) is error, f"{name}: raised {type(exc).__name__}: {exc}, not {error.__name__}"
    else:
        raise AssertionError(f"{name}: decoded")
    return {"name": name, "description": about, "invoice": text, "error": error.__name__, **options}


def document() -> dict[str, Any]:
    return {
        "description": "Invoices (proto/05-invoice.md) signed with the libp2p identity keys of keys.json: seed = "
                       "SHA-256(\"p2p-channels/test-key/\" || label). The payee is alice/libp2p; the L1 account "
                       "is the L1 key alice's address. `fields` are the decoded values (bytes as hex, amounts as "
                       "exact integers); `signing_digest` = SHA-256(signature domain || u8 len(prefix) || prefix "
                       "|| unsigned_payload). Every `invalid` invoice MUST be refused; `error` is the reference "
                       "implementation's class; `now` / `chain_id`, when present, are what the reader was asked "
                       "to check against.",
        "signature_domain": SIGNATURE_DOMAIN.decode(),
        "keys": [{"label": label, "seed": key.seed.hex(), "public_key": key.public_key.hex(),
                  "peer_id": peer_id_of(key.public_key)} for label, key in zip(LABELS, KEYS.values(), strict=True)],
        "preimage": PREIMAGE.hex(),
        "valid": [valid_vector(*v) for v in VALID],
        "uppercase": {"invoice": MINIMAL.upper(), "same_as": "minimal"},
        "invalid": [invalid_vector(*v) for v in INVALID],
    }


def render() -> str:
    return json.dumps(document(), indent=2, ensure_ascii=False) + "\n"


def main() -> None:
    OUT.write_text(render(), encoding="utf-8")
    print(f"wrote {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
