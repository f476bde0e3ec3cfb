"""Invoices: round trips, tampering, keys, unknown fields, bounds, expiry, fuzzing (proto/05-invoice.md)."""

from __future__ import annotations

import ast
import pathlib
import string

import attrs
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

import channels.invoice
from channels.core.ids import MAX_AMOUNT, MAX_U64, NATIVE
from channels.crypto import SigningKey, sha256
from channels.errors import ChannelsError, LocalProtocolError
from channels.invoice import (
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
    NonCanonical,
    UnknownNetwork,
    UnknownRequiredFeature,
    UnknownRequiredField,
    WrongChain,
    bech32m,
    decode_invoice,
    encode_invoice,
    make_invoice,
    peer_id_of,
    public_key_of,
)
from channels.invoice.fields import FORBIDDEN_TEXT, MAX_HINT_HOPS, MAX_ROUTE_HINTS, write_bigsize
from channels.invoice.invoice import DEVNET, assemble, signing_digest, unsigned_payload

ALICE = SigningKey.from_label("alice/libp2p")
BOB = SigningKey.from_label("bob/libp2p")
NOW = 1_767_225_600


def base(**changes: object) -> Invoice:
    invoice = Invoice(payee=peer_id_of(ALICE.public_key), l1_account=bytes(range(32)), payment_hash=sha256(b"p"),
                      payment_secret=sha256(b"s"), timestamp=NOW, chain_id=1337)
    return attrs.evolve(invoice, **changes)


def hop(label: str = "bob/libp2p", *, fee_base: int = 1, fee_ppm: int = 100, expiry_delta: int = 40) -> HintHop:
    return HintHop(peer_id=peer_id_of(SigningKey.from_label(label).public_key), channel_ref=sha256(label.encode()),
                   fee_base=fee_base, fee_ppm=fee_ppm, expiry_delta=expiry_delta)


def payload_of(text: str) -> bytes:
    _, words = bech32m.decode(text, limit=MAX_INVOICE_LENGTH)
    return bech32m.from_words(words)


def reencode(payload: bytes, prefix: str = DEVNET) -> str:
    return bech32m.encode(prefix, bech32m.to_words(payload), limit=MAX_INVOICE_LENGTH * 2)


# ------------------------------------------------------------------ creating and reading


def test_make_invoice_creates_one_that_decodes() -> None:
    preimage, secret = sha256(b"preimage"), sha256(b"secret")
    text, invoice = make_invoice(ALICE, chain_id=1337, l1_account=bytes(32), preimage=preimage, payment_secret=secret,
                                 timestamp=NOW, amount=1200, description="coffee", expiry=600,
                                 route_hints=((hop(),),), features=frozenset({1}))
    assert text.startswith("chd1") and len(text) <= MAX_INVOICE_LENGTH
    decoded = decode_invoice(text, now=NOW + 599, chain_id=1337)
    assert decoded == invoice
    assert decoded.payment_hash == sha256(preimage)
    assert decoded.payee == peer_id_of(ALICE.public_key) and decoded.payee_public_key == ALICE.public_key
    assert (decoded.amount, decoded.description, decoded.expires_at) == (1200, "coffee", NOW + 600)
    assert decoded.route_hints == ((hop(),),)


def test_make_invoice_refuses_a_short_preimage() -> None:
    with pytest.raises(InvalidField):
        make_invoice(ALICE, chain_id=1, l1_account=bytes(32), preimage=b"short", payment_secret=bytes(32),
                     timestamp=0)


def test_the_peer_id_is_libp2ps() -> None:
    from libp2p.identity_utils import create_identity_from_seed
    from libp2p.peer.id import ID

    for label in ("alice/libp2p", "bob/libp2p", "x"):
        key = SigningKey.from_label(label)
        expected = ID.from_pubkey(create_identity_from_seed(key.seed).public_key).to_base58()
        assert peer_id_of(key.public_key) == expected
        assert public_key_of(expected) == key.public_key


@pytest.mark.parametrize("bad", ["", "notapeerid", "QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N",
                                 "12D3KooWExuYEG4pXyagDVrEWzGCAG3L7mX53eJF3eBgwGjDM9D", "1" + "x" * 80])
def test_payees_must_be_ed25519_peer_ids(bad: str) -> None:
    with pytest.raises(InvalidField):
        base(payee=bad)


def test_encode_refuses_a_signer_that_is_not_the_payee() -> None:
    with pytest.raises(LocalProtocolError, match="not the payee"):
        encode_invoice(base(), BOB)


def test_uppercase_is_the_same_invoice_and_mixed_case_is_refused() -> None:
    text = encode_invoice(base(amount=5), ALICE)
    assert decode_invoice(text.upper()) == decode_invoice(text)
    with pytest.raises(BadEncoding, match="mixed"):
        decode_invoice(text[:20] + text[20:].upper())


def test_defaults_are_left_out_so_one_invoice_has_one_encoding() -> None:
    plain = encode_invoice(base(), ALICE)
    assert encode_invoice(base(asset=NATIVE, expiry=3600, min_final_expiry_delta=600, description=""), ALICE) == plain
    assert len(encode_invoice(base(asset="gold"), ALICE)) > len(plain)


# ------------------------------------------------------------------ round trips


PRINTABLE_TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="".join(FORBIDDEN_TEXT)),
                         max_size=200).filter(lambda t: len(t.encode()) <= MAX_DESCRIPTION)
ASSETS = st.text(string.ascii_letters + string.digits + "-_. ", min_size=1, max_size=32).filter(lambda a: a != NATIVE)
HOPS = st.builds(HintHop, peer_id=st.sampled_from([peer_id_of(SigningKey.from_label(f"k{i}").public_key)
                                                   for i in range(4)]),
                 channel_ref=st.binary(min_size=32, max_size=32), fee_base=st.integers(0, MAX_U64),
                 fee_ppm=st.integers(0, 2**32 - 1), expiry_delta=st.integers(0, 2**32 - 1))
SEEDS = st.binary(min_size=32, max_size=32)


@st.composite
def invoices(draw: st.DrawFn) -> tuple[Invoice, SigningKey]:
    key = SigningKey(draw(SEEDS))
    timestamp = draw(st.integers(0, MAX_U64 - 2**32))
    extra = draw(st.dictionaries(st.integers(0, MAX_U64 // 2).map(lambda n: 2 * n + 1),
                                 st.binary(max_size=20), max_size=3))
    invoice = Invoice(
        payee=peer_id_of(key.public_key), l1_account=draw(st.binary(min_size=32, max_size=32)),
        payment_hash=draw(st.binary(min_size=32, max_size=32)),
        payment_secret=draw(st.binary(min_size=32, max_size=32)),
        timestamp=timestamp, chain_id=draw(st.integers(0, MAX_U64)),
        amount=draw(st.none() | st.integers(1, MAX_AMOUNT)), asset=draw(st.just(NATIVE) | ASSETS),
        expiry=draw(st.integers(1, 2**32 - 1)), min_final_expiry_delta=draw(st.integers(1, 2**32 - 1)),
        description=draw(PRINTABLE_TEXT),
        route_hints=draw(st.lists(st.lists(HOPS, min_size=1, max_size=MAX_HINT_HOPS).map(tuple),
                                  max_size=2).map(tuple)),
        features=draw(st.frozensets(st.sampled_from([0, 1, 3, 5, 77, 255]))),
        extra_fields=tuple(sorted(extra.items())),
    )
    return invoice, key


@given(invoices())
def test_every_invoice_round_trips(case: tuple[Invoice, SigningKey]) -> None:
    invoice, key = case
    try:
        text = encode_invoice(invoice, key)
    except InvoiceTooLong:
        assume(False)
        return
    assert len(text) <= MAX_INVOICE_LENGTH
    decoded = decode_invoice(text)
    assert decoded == invoice
    assert encode_invoice(decoded, key) == text


def test_a_hypothesis_sized_invoice_fits() -> None:
    """The round trip above is not vacuous: the largest shapes it draws mostly fit the limit."""
    invoice = base(amount=MAX_AMOUNT, asset="x" * 32, description="d" * 200, route_hints=((hop(),) * 3,) * 2,
                   extra_fields=tuple((2 * i + 101, bytes(20)) for i in range(3)), features=frozenset({255}))
    assert len(encode_invoice(invoice, ALICE)) <= MAX_INVOICE_LENGTH


# ------------------------------------------------------------------ tampering and keys


def test_changing_any_character_fails() -> None:
    text = encode_invoice(base(amount=1200, description="tea", route_hints=((hop(),),)), ALICE)
    for i, c in enumerate(text):
        for other in {"q" if c != "q" else "p", c.upper() if c.islower() else "x"}:
            with pytest.raises(InvalidInvoice):
                decode_invoice(text[:i] + other + text[i + 1:])


def test_changing_any_data_word_with_a_fresh_checksum_fails() -> None:
    """Past the checksum, every word is covered by the signature (or the strict parser)."""
    text = encode_invoice(base(amount=1200, description="tea", route_hints=((hop(),),)), ALICE)
    _, words = bech32m.decode(text, limit=MAX_INVOICE_LENGTH)
    for i in range(len(words)):
        changed = [*words[:i], words[i] ^ 1, *words[i + 1:]]
        with pytest.raises(InvalidInvoice):
            decode_invoice(bech32m.encode(DEVNET, changed, limit=MAX_INVOICE_LENGTH))


def test_a_signature_by_the_wrong_key_fails() -> None:
    invoice = base()
    with pytest.raises(BadSignature):
        decode_invoice(assemble(DEVNET, unsigned_payload(invoice), BOB))
    # Nor the other way round: an invoice naming bob, signed by alice (the key is the payee's peer id).
    with pytest.raises(BadSignature):
        decode_invoice(assemble(DEVNET, unsigned_payload(base(payee=peer_id_of(BOB.public_key))), ALICE))
    assert decode_invoice(assemble(DEVNET, unsigned_payload(invoice), ALICE)) == invoice


def test_the_signature_covers_the_prefix() -> None:
    payload = unsigned_payload(base())
    signature = ALICE.sign(signing_digest("chx", payload))
    with pytest.raises(BadSignature):
        decode_invoice(reencode(payload + signature))


def test_unknown_prefixes_are_refused() -> None:
    with pytest.raises(UnknownNetwork):
        decode_invoice(assemble("lnbc", unsigned_payload(base()), ALICE))
    with pytest.raises(UnknownNetwork):
        base(network="chx")


# ------------------------------------------------------------------ unknown fields and features


def with_fields(invoice: Invoice, *records: tuple[int, bytes]) -> str:
    """``invoice``'s payload plus raw fields (placed in tag order), signed by alice."""
    payload = unsigned_payload(attrs.evolve(invoice, extra_fields=()))
    from channels.invoice.fields import read_stream, write_stream

    merged = sorted([*read_stream(payload[1:]), *records])
    return assemble(DEVNET, payload[:1] + write_stream(merged), ALICE)


@pytest.mark.parametrize("tag", [1, 25, 101, 253, 2**40 + 1, MAX_U64])
def test_unknown_odd_fields_are_skipped_and_kept(tag: int) -> None:
    text = with_fields(base(amount=3), (tag, b"future"))
    decoded = decode_invoice(text)
    assert decoded.extra_fields == ((tag, b"future"),)
    assert attrs.evolve(decoded, extra_fields=()) == base(amount=3)
    assert encode_invoice(decoded, ALICE) == text


@pytest.mark.parametrize("tag", [26, 100, 252, 2**40, MAX_U64 - 1])
def test_unknown_even_fields_are_refused(tag: int) -> None:
    with pytest.raises(UnknownRequiredField, match=str(tag)):
        decode_invoice(with_fields(base(), (tag, b"must understand")))


def test_even_extra_fields_cannot_be_built() -> None:
    with pytest.raises(InvalidField):
        base(extra_fields=((100, b"x"),))


def test_unknown_even_feature_bits_are_refused_and_odd_ones_kept() -> None:
    decoded = decode_invoice(encode_invoice(base(features=frozenset({1, 3, 201})), ALICE))
    assert decoded.features == {1, 3, 201}
    with pytest.raises(UnknownRequiredFeature):
        base(features=frozenset({2}))
    text = with_fields(base(), (24, (1 << 200).to_bytes(26, "big")))
    with pytest.raises(UnknownRequiredFeature):
        decode_invoice(text)


def test_repeated_and_unordered_fields_are_not_canonical() -> None:
    payload = unsigned_payload(base())
    from channels.invoice.fields import read_stream

    records = list(read_stream(payload[1:]))
    swapped = [records[1], records[0], *records[2:]]
    raw = b"".join(write_bigsize(t) + write_bigsize(len(v)) + v for t, v in swapped)
    with pytest.raises(NonCanonical):
        decode_invoice(assemble(DEVNET, payload[:1] + raw, ALICE))
    doubled = [records[0], records[0], *records[1:]]
    raw = b"".join(write_bigsize(t) + write_bigsize(len(v)) + v for t, v in doubled)
    with pytest.raises(NonCanonical):
        decode_invoice(assemble(DEVNET, payload[:1] + raw, ALICE))


# ------------------------------------------------------------------ bounds


def test_description_bound() -> None:
    at = "é" * (MAX_DESCRIPTION // 2)
    assert decode_invoice(encode_invoice(base(description=at), ALICE)).description == at
    with pytest.raises(InvalidField, match="640"):
        base(description=at + "x")
    with pytest.raises(InvalidField):
        base(description="a\nb")
    with pytest.raises(InvalidField):
        base(description="\u202eevil")


def test_route_hint_bounds() -> None:
    most = tuple((hop(),) * MAX_HINT_HOPS for _ in range(MAX_ROUTE_HINTS))
    text = encode_invoice(base(route_hints=most), ALICE)
    assert len(text) <= MAX_INVOICE_LENGTH
    assert decode_invoice(text).route_hints == most
    with pytest.raises(InvalidField):
        base(route_hints=(*most, (hop(),)))
    with pytest.raises(InvalidField):
        base(route_hints=((hop(),) * (MAX_HINT_HOPS + 1),))
    with pytest.raises(InvalidField):
        base(route_hints=((),))


def test_total_length_bound() -> None:
    most = tuple((hop(),) * MAX_HINT_HOPS for _ in range(MAX_ROUTE_HINTS))
    with pytest.raises(InvoiceTooLong):
        encode_invoice(base(route_hints=most, description="d" * MAX_DESCRIPTION), ALICE)
    with pytest.raises(InvoiceTooLong):
        decode_invoice("chd1" + "q" * (MAX_INVOICE_LENGTH - 3))


@pytest.mark.parametrize(("field", "value"), [
    ("amount", 0), ("amount", MAX_AMOUNT + 1), ("amount", True), ("expiry", 0), ("expiry", 2**32),
    ("min_final_expiry_delta", 0), ("timestamp", -1), ("timestamp", MAX_U64), ("chain_id", 2**64),
    ("asset", ""), ("asset", "x" * 33), ("asset", "a\tb"), ("l1_account", bytes(20)), ("payment_hash", bytes(31)),
    ("payment_secret", "00" * 32), ("features", frozenset({256})), ("route_hints", [(hop(),)]),
])
def test_out_of_range_fields_cannot_be_built(field: str, value: object) -> None:
    with pytest.raises(InvalidInvoice):
        base(**{field: value})


def test_hint_hop_bounds() -> None:
    with pytest.raises(InvalidField):
        hop(fee_ppm=2**32)
    with pytest.raises(InvalidField):
        hop(fee_base=-1)
    with pytest.raises(InvalidField):
        HintHop(peer_id=peer_id_of(BOB.public_key), channel_ref=bytes(31), fee_base=0, fee_ppm=0, expiry_delta=0)


# ------------------------------------------------------------------ expiry and chain


def test_expiry_is_checked_only_against_a_given_now() -> None:
    text = encode_invoice(base(expiry=60), ALICE)
    assert decode_invoice(text).expires_at == NOW + 60
    assert decode_invoice(text, now=NOW + 59.9).expiry == 60
    with pytest.raises(Expired):
        decode_invoice(text, now=NOW + 60)
    with pytest.raises(Expired):
        decode_invoice(text, now=NOW + 10**9)


def test_the_chain_is_checked_when_asked() -> None:
    text = encode_invoice(base(), ALICE)
    assert decode_invoice(text, chain_id=1337).chain_id == 1337
    with pytest.raises(WrongChain):
        decode_invoice(text, chain_id=1)


def test_expiry_and_chain_are_checked_after_the_signature() -> None:
    """A forged invoice is reported as forged, not as merely expired."""
    forged = assemble(DEVNET, unsigned_payload(base()), BOB)
    with pytest.raises(BadSignature):
        decode_invoice(forged, now=NOW + 10**9, chain_id=1)


# ------------------------------------------------------------------ fuzzing: only typed errors


@given(st.text(max_size=400))
def test_random_text_raises_only_typed_errors(text: str) -> None:
    with pytest.raises(InvalidInvoice):
        decode_invoice(text)


@given(st.text("qpzry9x8gf2tvdw0s3jn54khce6mua7l", min_size=7, max_size=600))
def test_random_data_with_a_good_prefix_raises_only_typed_errors(data: str) -> None:
    with pytest.raises(InvalidInvoice):
        decode_invoice("chd1" + data)


@given(st.binary(max_size=600))
def test_random_payloads_with_good_checksums_raise_only_typed_errors(payload: bytes) -> None:
    with pytest.raises(InvalidInvoice):
        decode_invoice(reencode(payload))


@given(st.data())
def test_mutated_valid_payloads_raise_only_typed_errors(data: st.DataObject) -> None:
    original = payload_of(encode_invoice(base(amount=9, description="x", route_hints=((hop(),),),
                                              features=frozenset({1})), ALICE))
    payload = bytearray(original)
    for _ in range(data.draw(st.integers(1, 4))):
        where = data.draw(st.integers(0, len(payload) - 1))
        action = data.draw(st.sampled_from(["flip", "insert", "delete"]))
        if action == "flip":
            payload[where] ^= 1 << data.draw(st.integers(0, 7))
        elif action == "insert":
            payload.insert(where, data.draw(st.integers(0, 255)))
        else:
            del payload[where]
    assume(bytes(payload) != original)  # two flips of one bit undo each other
    with pytest.raises(InvalidInvoice):
        decode_invoice(reencode(bytes(payload)))


def test_errors_are_channels_errors_with_one_line() -> None:
    for bad in ["", "chd1", "x" * 5000, "chd1qqqqqqqqqq", encode_invoice(base(), ALICE)[:-1] + "q"]:
        with pytest.raises(InvalidInvoice) as info:
            decode_invoice(bad)
        assert isinstance(info.value, ChannelsError)
        assert str(info.value) and "\n" not in str(info.value)
    with pytest.raises(BadChecksum):
        decode_invoice(encode_invoice(base(), ALICE)[:-1] + "q")


def test_not_text_is_refused() -> None:
    with pytest.raises(BadEncoding):
        decode_invoice(b"chd1...")  # type: ignore[arg-type]


# ------------------------------------------------------------------ purity


def test_the_invoice_package_does_no_io() -> None:
    forbidden = {"trio", "libp2p", "sqlite3", "time", "random", "os", "socket", "asyncio", "subprocess",
                 "threading", "secrets", "pathlib", "datetime"}
    root = pathlib.Path(channels.invoice.__file__).parent
    for path in sorted(root.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module] if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module
                     else [])
            bad = {n.split(".")[0] for n in names} & forbidden
            assert not bad, f"{path.name} imports {sorted(bad)}"
