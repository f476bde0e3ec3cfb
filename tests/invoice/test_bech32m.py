"""Our bech32m against BIP-350's published test vectors, and the 8/5-bit conversion's rules."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from channels.invoice import BadChecksum, BadEncoding, InvalidInvoice, InvoiceTooLong
from channels.invoice.bech32m import BIP_LIMIT, decode, encode, from_words, to_words

# BIP-350, "Test vectors for Bech32m".
VALID = [
    "A1LQFN3A",
    "a1lqfn3a",
    "an83characterlonghumanreadablepartthatcontainsthetheexcludedcharactersbioandnumber11sg7hg6",
    "abcdef1l7aum6echk45nj3s0wdvt2fg8x9yrzpqzd3ryx",
    "11llllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllludsr8",
    "split1checkupstagehandshakeupstreamerranterredcaperredlc445v",
    "?1v759aa",
]
INVALID = [
    ("\x201xj0phk", BadEncoding),  # HRP character out of range
    ("\x7f1g6xzxy", BadEncoding),
    ("\x801vctc34", BadEncoding),
    ("an84characterslonghumanreadablepartthatcontainsthetheexcludedcharactersbioandnumber11d6pts4",
     InvoiceTooLong),  # overall max length exceeded
    ("qyrz8wqd2c9m", BadEncoding),  # no separator character
    ("1qyrz8wqd2c9m", BadEncoding),  # empty HRP
    ("y1b0jsk6g", BadEncoding),  # invalid data character
    ("lt1igcx5c0", BadEncoding),
    ("in1muywd", BadEncoding),  # too short checksum
    ("mm1crxm3i", BadEncoding),  # invalid character in checksum
    ("au1s5cgom", BadEncoding),
    ("M1VUXWEZ", BadChecksum),  # checksum calculated with uppercase form of HRP
    ("16plkw9", BadEncoding),  # empty HRP
    ("1p2gdwpf", BadEncoding),
]
# BIP-350 segwit vectors that are Bech32 (not Bech32m) checksums: refused by a Bech32m reader.
BECH32_NOT_M = [
    "bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqh2y7hd",
    "tb1z0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqglt7rf",
    "BC1S0XLXVLHEMJA6C4DQV22UAPCTQUPFHLXM9H8Z3K2E72Q4K9HCZ7VQ54WELL",
]
# BIP-350 segwit vectors with valid Bech32m checksums whose 5-to-8 bit conversion is invalid
# (after the witness version word).
BAD_PADDING = [
    "bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7v07qwwzcrf",  # more than 4 bits of zero padding
    "tb1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vpggkg4j",  # non-zero padding
]


@pytest.mark.parametrize("text", VALID)
def test_bip350_valid_strings_decode_and_reencode(text: str) -> None:
    hrp, data = decode(text, limit=BIP_LIMIT)
    assert hrp == text[:text.rfind("1")].lower()
    assert encode(hrp, data, limit=BIP_LIMIT) == text.lower()


@pytest.mark.parametrize(("text", "error"), INVALID)
def test_bip350_invalid_strings_are_refused(text: str, error: type[InvalidInvoice]) -> None:
    with pytest.raises(error):
        decode(text, limit=BIP_LIMIT)


@pytest.mark.parametrize("text", BECH32_NOT_M)
def test_bech32_checksums_are_not_bech32m(text: str) -> None:
    with pytest.raises(BadChecksum):
        decode(text, limit=BIP_LIMIT)


@pytest.mark.parametrize("text", BAD_PADDING)
def test_bip350_bad_padding_is_refused(text: str) -> None:
    _, data = decode(text, limit=BIP_LIMIT)
    with pytest.raises(BadEncoding, match="padding"):
        from_words(data[1:])


def test_a_good_segwit_program_converts() -> None:
    """BIP-350: bc1p0xlx...k5jj0 is witness v1 with program 79be667e...f81798."""
    _, data = decode("bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqzk5jj0", limit=BIP_LIMIT)
    assert data[0] == 1
    assert from_words(data[1:]).hex() == "79be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798"


def test_the_limit_is_a_parameter() -> None:
    text = encode("chd", [0] * 200, limit=1000)
    assert decode(text, limit=len(text))[1] == [0] * 200
    with pytest.raises(InvoiceTooLong):
        decode(text, limit=len(text) - 1)
    with pytest.raises(InvoiceTooLong):
        encode("chd", [0] * 200, limit=len(text) - 1)


def test_encode_refuses_uppercase_prefixes_and_wide_values() -> None:
    with pytest.raises(BadEncoding):
        encode("CHD", [0], limit=BIP_LIMIT)
    with pytest.raises(BadEncoding):
        encode("chd", [32], limit=BIP_LIMIT)


def test_every_single_substitution_is_detected() -> None:
    """Bech32m's guarantee: any error in up to 4 characters is caught; here, every 1-character one."""
    text = encode("chd", list(range(32)) * 2, limit=BIP_LIMIT * 2)
    for i in range(len(text)):
        for c in "qpzry9x8gf2tvdw0s3jn54khce6mua7l":
            if c != text[i]:
                with pytest.raises(BadEncoding):
                    decode(text[:i] + c + text[i + 1:], limit=BIP_LIMIT * 2)


@given(st.binary(max_size=300))
def test_bytes_round_trip_through_words(data: bytes) -> None:
    words = to_words(data)
    assert len(words) == (len(data) * 8 + 4) // 5
    assert from_words(words) == data


@given(st.lists(st.integers(0, 31), max_size=300))
def test_words_decode_to_bytes_only_in_canonical_form(words: list[int]) -> None:
    try:
        data = from_words(words)
    except BadEncoding:
        return
    assert to_words(data) == words
