"""Bech32m (BIP-350): the text encoding of invoices, with a length limit we choose.

BIP-173/350 cap strings at 90 characters (what the checksum's guarantees were measured
for); an invoice needs more, so the limit is a parameter. The checksum still detects any
error of up to 4 substituted characters, and others with probability about 2^-30.
"""

from __future__ import annotations

from collections.abc import Sequence

from .errors import BadChecksum, BadEncoding, InvoiceTooLong

CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
BECH32M_CONST = 0x2BC830A3
BIP_LIMIT = 90  # BIP-173/350's own limit, for their test vectors
MAX_HRP = 83  # BIP-173: the human-readable part is 1..83 characters
CHECKSUM_LEN = 6
_GENERATOR = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)
_VALUE = {c: i for i, c in enumerate(CHARSET)}


def polymod(values: Sequence[int]) -> int:
    chk = 1
    for value in values:
        top = chk >> 25
        chk = (chk & 0x1FFFFFF) << 5 ^ value
        for i, gen in enumerate(_GENERATOR):
            if (top >> i) & 1:
                chk ^= gen
    return chk


def hrp_expand(hrp: str) -> list[int]:
    return [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp]


def _check_hrp(hrp: str) -> None:
    if not 1 <= len(hrp) <= MAX_HRP or any(not 33 <= ord(c) <= 126 for c in hrp):
        raise BadEncoding(f"the prefix must be 1..{MAX_HRP} printable ASCII characters")


def encode(hrp: str, data: Sequence[int], *, limit: int) -> str:
    """``hrp`` + ``1`` + ``data`` (5-bit values) + checksum; the prefix must be lowercase."""
    _check_hrp(hrp)
    if hrp != hrp.lower():
        raise BadEncoding("the prefix must be lowercase")
    if any(not 0 <= v < 32 for v in data):
        raise BadEncoding("data values are 5-bit")
    mod = polymod([*hrp_expand(hrp), *data, *[0] * CHECKSUM_LEN]) ^ BECH32M_CONST
    checksum = [(mod >> 5 * (5 - i)) & 31 for i in range(CHECKSUM_LEN)]
    text = hrp + "1" + "".join(CHARSET[v] for v in [*data, *checksum])
    if len(text) > limit:
        raise InvoiceTooLong(f"the encoding is {len(text)} characters, above the limit of {limit}")
    return text


def decode(text: str, *, limit: int) -> tuple[str, list[int]]:
    """(lowercase prefix, 5-bit data without the checksum). An all-uppercase string is read
    as its lowercase form; mixed case is refused."""
    if len(text) > limit:
        raise InvoiceTooLong(f"the text is {len(text)} characters, above the limit of {limit}")
    if any(not 33 <= ord(c) <= 126 for c in text):
        raise BadEncoding("a character is outside printable ASCII (spaces and line breaks included)")
    lower = text.lower()
    if text != lower and text != text.upper():
        raise BadEncoding("mixed upper and lower case")
    pos = lower.rfind("1")
    if pos < 1:
        raise BadEncoding("no separator '1' after a non-empty prefix")
    if pos + 1 + CHECKSUM_LEN > len(lower):
        raise BadEncoding("the checksum is too short")
    hrp = lower[:pos]
    _check_hrp(hrp)
    try:
        data = [_VALUE[c] for c in lower[pos + 1:]]
    except KeyError as exc:
        raise BadEncoding(f"invalid data character {exc.args[0]!r}") from None
    if polymod([*hrp_expand(hrp), *data]) != BECH32M_CONST:
        raise BadChecksum("the bech32m checksum does not match: the text was mistyped or altered")
    return hrp, data[:-CHECKSUM_LEN]


def to_words(data: bytes) -> list[int]:
    """Bytes as 5-bit values, the last padded with zero bits."""
    acc, bits, out = 0, 0, []
    for byte in data:
        acc = (acc << 8) | byte
        bits += 8
        while bits >= 5:
            bits -= 5
            out.append((acc >> bits) & 31)
    if bits:
        out.append((acc << (5 - bits)) & 31)
    return out


def from_words(words: Sequence[int]) -> bytes:
    """5-bit values back to bytes. Canonical only: at most 4 padding bits, all zero (else
    two texts would carry the same bytes)."""
    acc, bits, out = 0, 0, bytearray()
    for word in words:
        acc = ((acc << 5) | word) & 0xFFF
        bits += 5
        if bits >= 8:
            bits -= 8
            out.append((acc >> bits) & 0xFF)
    if bits >= 5:
        raise BadEncoding("more than 4 bits of padding")
    if acc & ((1 << bits) - 1):
        raise BadEncoding("non-zero padding bits")
    return bytes(out)
