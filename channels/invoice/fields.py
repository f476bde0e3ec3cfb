"""The invoice's tagged fields: tags, integer forms, route hints, features (proto/05-invoice.md).

Every reader here is strict so that an invoice has exactly one encoding: a decoder that
accepted two spellings of one field would let anyone alter an invoice's text while its
signature still verifies, and two implementations could read different values.
"""

from __future__ import annotations

from collections.abc import Iterator

import attrs

from ..core.ids import MAX_U64
from .errors import InvalidField, NonCanonical, UnknownRequiredFeature
from .peerid import PEER_ID_LEN, check_peer_id_bytes, peer_id_bytes
from .peerid import b58encode as _b58encode

# Tags: even ones a reader must understand, odd ones it may skip ("it's OK to be odd").
TAG_CHAIN_ID = 0
TAG_PAYMENT_HASH = 2
TAG_PAYMENT_SECRET = 4
TAG_AMOUNT = 6
TAG_ASSET = 8
TAG_TIMESTAMP = 10
TAG_EXPIRY = 12
TAG_MIN_FINAL_EXPIRY_DELTA = 14
TAG_DESCRIPTION = 16
TAG_PAYEE = 18
TAG_L1_ACCOUNT = 20
TAG_ROUTE_HINTS = 22
TAG_FEATURES = 24
TAG_NAMES = {
    TAG_CHAIN_ID: "chain_id", TAG_PAYMENT_HASH: "payment_hash", TAG_PAYMENT_SECRET: "payment_secret",
    TAG_AMOUNT: "amount", TAG_ASSET: "asset", TAG_TIMESTAMP: "timestamp", TAG_EXPIRY: "expiry",
    TAG_MIN_FINAL_EXPIRY_DELTA: "min_final_expiry_delta", TAG_DESCRIPTION: "description", TAG_PAYEE: "payee",
    TAG_L1_ACCOUNT: "l1_account", TAG_ROUTE_HINTS: "route_hints", TAG_FEATURES: "features",
}

HASH_LEN = 32
MAX_U32 = 2**32 - 1
MAX_ROUTE_HINTS = 4  # routes per invoice: each is a pathfinding start the payer must try
MAX_HINT_HOPS = 3  # hops per route hint
MAX_FEATURE_BYTES = 32  # feature bits 0..255
MAX_FEATURE_BIT = MAX_FEATURE_BYTES * 8 - 1
HOP_LEN = PEER_ID_LEN + HASH_LEN + 8 + 4 + 4

# Feature bits come in pairs: the even bit says "required", the odd one "supported".
FEATURE_MULTIPART_REQUIRED, FEATURE_MULTIPART = 0, 1  # the payee accepts a payment in several parts
FEATURE_NAMES = {FEATURE_MULTIPART_REQUIRED: "multipart (required)", FEATURE_MULTIPART: "multipart"}

# Characters a description may not hold, whatever the Unicode version: controls (terminal
# escapes), bidirectional and invisible format characters (text that reads other than it is),
# line and paragraph separators, the byte-order mark.
FORBIDDEN_TEXT = frozenset(
    [*map(chr, range(0x00, 0x20)), *map(chr, range(0x7F, 0xA0)), "\u061c", *map(chr, range(0x200B, 0x2010)),
     "\u2028", "\u2029", *map(chr, range(0x202A, 0x202F)), *map(chr, range(0x2066, 0x206A)), "\ufeff"])


# ------------------------------------------------------------------ integers


def write_bigsize(n: int) -> bytes:
    """BigSize (BOLT #1): 1, 3, 5 or 9 bytes, big-endian, always the shortest."""
    if not 0 <= n <= MAX_U64:
        raise InvalidField(f"{n} does not fit a BigSize")
    if n < 0xFD:
        return bytes([n])
    if n <= 0xFFFF:
        return b"\xfd" + n.to_bytes(2, "big")
    if n <= 0xFFFFFFFF:
        return b"\xfe" + n.to_bytes(4, "big")
    return b"\xff" + n.to_bytes(8, "big")


def read_bigsize(buf: bytes, pos: int, what: str) -> tuple[int, int]:
    if pos >= len(buf):
        raise InvalidField(f"the fields end inside a {what}")
    first = buf[pos]
    if first < 0xFD:
        return first, pos + 1
    size, smallest = {0xFD: (2, 0xFD), 0xFE: (4, 0x10000), 0xFF: (8, 0x100000000)}[first]
    if pos + 1 + size > len(buf):
        raise InvalidField(f"the fields end inside a {what}")
    n = int.from_bytes(buf[pos + 1:pos + 1 + size], "big")
    if n < smallest:
        raise NonCanonical(f"a {what} is not in its shortest form")
    return n, pos + 1 + size


def write_uint(n: int) -> bytes:
    """An unsigned integer in its shortest big-endian form: no leading zero byte, 0 is empty."""
    return n.to_bytes((n.bit_length() + 7) // 8, "big")


def read_uint(value: bytes, what: str, max_len: int) -> int:
    if len(value) > max_len:
        raise InvalidField(f"{what} is longer than {max_len} bytes")
    if value[:1] == b"\0":
        raise NonCanonical(f"{what} has a leading zero byte")
    return int.from_bytes(value, "big")


# ------------------------------------------------------------------ the field stream


def write_stream(records: list[tuple[int, bytes]]) -> bytes:
    """``tag || length || value`` per field (BigSize tag and length), tags strictly increasing."""
    out = bytearray()
    last = -1
    for tag, value in records:
        if tag <= last:
            raise NonCanonical("fields must be in increasing tag order, each at most once")
        last = tag
        out += write_bigsize(tag) + write_bigsize(len(value)) + value
    return bytes(out)


def read_stream(buf: bytes) -> Iterator[tuple[int, bytes]]:
    """The fields one by one, so a reader checks each before the next is parsed."""
    pos, last = 0, -1
    while pos < len(buf):
        tag, pos = read_bigsize(buf, pos, "field tag")
        if tag <= last:
            raise NonCanonical(f"field {tag} is out of order or repeated: tags must strictly increase")
        last = tag
        length, pos = read_bigsize(buf, pos, "field length")
        if length > len(buf) - pos:
            raise InvalidField(f"field {tag} announces {length} bytes; fewer remain")
        yield tag, buf[pos:pos + length]
        pos += length


# ------------------------------------------------------------------ text


def check_text(value: object, what: str, max_bytes: int) -> str:
    if not isinstance(value, str):
        raise InvalidField(f"{what} must be text")
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError:
        raise InvalidField(f"{what} is not valid Unicode text") from None
    if size > max_bytes:
        raise InvalidField(f"{what} is {size} bytes of UTF-8, above the limit of {max_bytes}")
    bad = next((c for c in value if c in FORBIDDEN_TEXT), None)
    if bad is not None:
        raise InvalidField(f"{what} holds a control or invisible formatting character (U+{ord(bad):04X})")
    return value


def read_text(value: bytes, what: str) -> str:
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidField(f"{what} is not valid UTF-8") from None


# ------------------------------------------------------------------ route hints


def check_int(value: object, what: str, low: int, high: int) -> int:
    if type(value) is not int or not low <= value <= high:
        raise InvalidField(f"{what} must be an integer in {low}..{high}")
    return value


@attrs.frozen
class HintHop:
    """One hop of a route hint: ``peer_id`` forwards over channel ``channel_ref`` towards the
    next hop (the payee after the last), charging ``fee_base + amount * fee_ppm / 10^6`` and
    needing ``expiry_delta`` seconds between its incoming and outgoing locks."""

    peer_id: str
    channel_ref: bytes
    fee_base: int
    fee_ppm: int
    expiry_delta: int

    def __attrs_post_init__(self) -> None:
        peer_id_bytes(self.peer_id, "a route hint's peer id")
        if not isinstance(self.channel_ref, bytes) or len(self.channel_ref) != HASH_LEN:
            raise InvalidField(f"a route hint's channel reference is {HASH_LEN} bytes (a channel id)")
        check_int(self.fee_base, "a route hint's base fee", 0, MAX_U64)
        check_int(self.fee_ppm, "a route hint's proportional fee", 0, MAX_U32)
        check_int(self.expiry_delta, "a route hint's expiry delta", 0, MAX_U32)

    def to_json(self) -> dict[str, object]:
        return {"peer_id": self.peer_id, "channel_ref": self.channel_ref.hex(), "fee_base": self.fee_base,
                "fee_ppm": self.fee_ppm, "expiry_delta": self.expiry_delta}


RouteHint = tuple[HintHop, ...]


def check_route_hints(routes: object) -> tuple[RouteHint, ...]:
    if not isinstance(routes, tuple) or len(routes) > MAX_ROUTE_HINTS:
        raise InvalidField(f"route hints are a tuple of at most {MAX_ROUTE_HINTS} routes")
    for route in routes:
        if not isinstance(route, tuple) or not 1 <= len(route) <= MAX_HINT_HOPS:
            raise InvalidField(f"a route hint has 1..{MAX_HINT_HOPS} hops")
        if not all(isinstance(hop, HintHop) for hop in route):
            raise InvalidField("a route hint's hops are HintHop values")
    return routes


def write_route_hints(routes: tuple[RouteHint, ...]) -> bytes:
    out = bytearray([len(routes)])
    for route in routes:
        out.append(len(route))
        for hop in route:
            out += (peer_id_bytes(hop.peer_id) + hop.channel_ref + hop.fee_base.to_bytes(8, "big")
                    + hop.fee_ppm.to_bytes(4, "big") + hop.expiry_delta.to_bytes(4, "big"))
    return bytes(out)


def read_route_hints(value: bytes) -> tuple[RouteHint, ...]:
    if not value or not 1 <= value[0] <= MAX_ROUTE_HINTS:
        raise InvalidField(f"route hints hold 1..{MAX_ROUTE_HINTS} routes")
    pos, routes = 1, []
    for _ in range(value[0]):
        if pos >= len(value) or not 1 <= value[pos] <= MAX_HINT_HOPS:
            raise InvalidField(f"a route hint has 1..{MAX_HINT_HOPS} hops")
        count, pos = value[pos], pos + 1
        if len(value) - pos < count * HOP_LEN:
            raise InvalidField("a route hint is truncated")
        hops = []
        for _ in range(count):
            raw = value[pos:pos + HOP_LEN]
            pos += HOP_LEN
            peer = check_peer_id_bytes(raw[:PEER_ID_LEN], "a route hint's peer id")
            rest = raw[PEER_ID_LEN:]
            hops.append(HintHop(peer_id=_b58encode(peer), channel_ref=rest[:HASH_LEN],
                                fee_base=int.from_bytes(rest[HASH_LEN:HASH_LEN + 8], "big"),
                                fee_ppm=int.from_bytes(rest[HASH_LEN + 8:HASH_LEN + 12], "big"),
                                expiry_delta=int.from_bytes(rest[HASH_LEN + 12:], "big")))
        routes.append(tuple(hops))
    if pos != len(value):
        raise InvalidField("route hints have bytes after their last route")
    return tuple(routes)


# ------------------------------------------------------------------ features


def check_features(bits: object) -> frozenset[int]:
    """The bits, if each is in range and every even (required) one is known."""
    if not isinstance(bits, frozenset) or any(type(b) is not int or not 0 <= b <= MAX_FEATURE_BIT for b in bits):
        raise InvalidField(f"features are a frozenset of bit numbers 0..{MAX_FEATURE_BIT}")
    unknown = sorted(b for b in bits if b % 2 == 0 and b not in FEATURE_NAMES)
    if unknown:
        raise UnknownRequiredFeature(f"the payee requires unknown feature bit {unknown[0]}: this payer cannot pay it")
    return bits


def write_features(bits: frozenset[int]) -> bytes:
    """Big-endian bit vector: bit 0 is the lowest bit of the last byte; no leading zero byte."""
    return write_uint(sum(1 << b for b in bits))


def read_features(value: bytes) -> frozenset[int]:
    n = read_uint(value, "the feature vector", MAX_FEATURE_BYTES)
    if n == 0:
        raise NonCanonical("an empty feature vector: leave the field out")
    return frozenset(b for b in range(n.bit_length()) if n >> b & 1)


def feature_name(bit: int) -> str:
    return FEATURE_NAMES.get(bit, f"unknown feature {bit}" + (" (required)" if bit % 2 == 0 else ""))
