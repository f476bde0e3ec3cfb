"""Sphinx-style onion packets over X25519: build at the sender, peel at each hop (proto/04-onion.md).

A packet is ``version || ephemeral key || routing info || mac``, always ``PACKET_LEN`` bytes.
Each hop derives a shared secret from the ephemeral key, checks the MAC, decrypts the routing
info with its keystream, takes its own slot (payload and the next hop's MAC) off the front,
pads the tail with keystream so the size never changes, and blinds the ephemeral key so the
next hop cannot link the two packets. A forwarder learns its own payload and nothing else.

The sender's work: hop k's shared secret needs X25519 with the product of the session key and
the k earlier blinding factors. X25519 clamps every scalar, so the product is never formed;
the sender applies the same clamped multiplications one by one to the hop's public key
(scalar multiplication commutes), which is O(n^2) X25519 for n hops (231 for 20 hops).
"""

from __future__ import annotations

import hmac as _hmac
import struct
from collections.abc import Sequence

import attrs

from ..errors import LocalProtocolError
from . import keys
from .errors import BadOnionKey, BadOnionMac, OnionSizeError, PayloadDecodeError, RouteTooLong, UnknownOnionVersion
from .payloads import FinalPayload, ForwardPayload, HopPayload, decode_payload

VERSION = 0
KEY_LEN = keys.KEY_LEN
MAC_LEN = 32
ROUTING_INFO_LEN = 1300
PACKET_LEN = 1 + KEY_LEN + ROUTING_INFO_LEN + MAC_LEN  # 1365
LENGTH_PREFIX_LEN = 2
MAX_HOPS = 20
MAX_ASSOCIATED_DATA = 64  # a payment hash is 32 bytes
_ZERO_MAC = bytes(MAC_LEN)
_BASE_POINT = (9).to_bytes(32, "little")  # the X25519 base point u = 9


@attrs.frozen
class Hop:
    """One hop of a route as the sender sees it: its X25519 onion key and its instructions."""

    public_key: bytes
    payload: HopPayload


@attrs.frozen
class HopKeys:
    """What the sender derives for one hop; ``shared_secret`` is kept to read returned failures."""

    ephemeral_key: bytes
    shared_secret: bytes
    blinding_factor: bytes


@attrs.frozen
class BuiltOnion:
    packet: bytes
    hops: tuple[HopKeys, ...]

    @property
    def shared_secrets(self) -> tuple[bytes, ...]:
        return tuple(h.shared_secret for h in self.hops)


@attrs.frozen
class PeeledPacket:
    """What one hop learns: its payload bytes, the packet for the next hop (``None`` at the final
    hop), the shared secret (kept with the lock to wrap a failure on the way back) and the
    replay tag (for the replay cache)."""

    payload_bytes: bytes
    next_packet: bytes | None
    shared_secret: bytes
    replay_tag: bytes

    @property
    def is_final(self) -> bool:
        return self.next_packet is None

    def decode_payload(self) -> HopPayload:
        """The payload, checked against the packet's shape: the final hop gets a final payload
        and a forwarder a forward one; else ``PayloadDecodeError``."""
        if not self.payload_bytes:
            raise PayloadDecodeError("the hop payload's length prefix is out of range")
        payload = decode_payload(self.payload_bytes)
        if self.is_final and not isinstance(payload, FinalPayload):
            raise PayloadDecodeError("the last hop's payload is not a final payload")
        if not self.is_final and not isinstance(payload, ForwardPayload):
            raise PayloadDecodeError("a forwarding hop's payload is not a forward payload")
        return payload


def slot_len(payload: bytes) -> int:
    """Bytes one hop takes from the routing info: length prefix, payload, next MAC."""
    return LENGTH_PREFIX_LEN + len(payload) + MAC_LEN


def route_fits(payloads: Sequence[bytes]) -> bool:
    """Whether these encoded payloads fit one packet (for pathfinding before building)."""
    return 1 <= len(payloads) <= MAX_HOPS and sum(slot_len(p) for p in payloads) <= ROUTING_INFO_LEN


def hop_keys(session_key: bytes, public_keys: Sequence[bytes]) -> list[HopKeys]:
    """Ephemeral keys, shared secrets and blinding factors of every hop, as the sender derives them."""
    out: list[HopKeys] = []
    ephemeral = keys.x25519(session_key, _BASE_POINT)
    for k, node_public in enumerate(public_keys):
        dh = keys.x25519(session_key, node_public)
        for earlier in out[:k]:
            dh = keys.x25519(earlier.blinding_factor, dh)
        ss = keys.shared_secret(dh, ephemeral, node_public)
        blind = keys.blinding_factor(ephemeral, ss)
        out.append(HopKeys(ephemeral_key=ephemeral, shared_secret=ss, blinding_factor=blind))
        ephemeral = keys.x25519(blind, ephemeral)
    return out


def filler(shared_secrets: Sequence[bytes], slot_lens: Sequence[int]) -> bytes:
    """The tail the last hop will see: the keystream every earlier hop shifts in (BOLT #4 filler)."""
    f = b""
    for ss, n in zip(shared_secrets[:-1], slot_lens[:-1], strict=True):
        rho = keys.stream(keys.derive(keys.LABEL_RHO, ss), 2 * ROUTING_INFO_LEN)
        f = keys.xor(f + bytes(n), rho[ROUTING_INFO_LEN - len(f):ROUTING_INFO_LEN + n])
    return f


def build_packet(public_keys: Sequence[bytes], payloads: Sequence[bytes], *, session_key: bytes,
                 associated_data: bytes) -> BuiltOnion:
    """Build the packet for already-encoded payloads (``build_onion`` encodes typed ones)."""
    if len(public_keys) != len(payloads):
        raise LocalProtocolError("one payload per hop")
    if not 1 <= len(payloads) <= MAX_HOPS:
        raise RouteTooLong(f"a route has 1..{MAX_HOPS} hops, not {len(payloads)}")
    for pk in public_keys:
        if type(pk) is not bytes or not keys.is_canonical_public_key(pk):
            raise LocalProtocolError("a hop's onion key is a canonical 32-byte X25519 public key")
    for p in payloads:
        if type(p) is not bytes or not p:
            raise LocalProtocolError("a hop payload is non-empty bytes")
    if type(session_key) is not bytes or len(session_key) != KEY_LEN:
        raise LocalProtocolError("the session key is exactly 32 bytes")
    if type(associated_data) is not bytes or len(associated_data) > MAX_ASSOCIATED_DATA:
        raise LocalProtocolError(f"associated data is bytes, at most {MAX_ASSOCIATED_DATA}")
    lens = [slot_len(p) for p in payloads]
    if sum(lens) > ROUTING_INFO_LEN:
        raise RouteTooLong(f"the hop payloads need {sum(lens)} bytes; the routing area has {ROUTING_INFO_LEN}")
    try:
        hops = hop_keys(session_key, public_keys)
    except BadOnionKey:
        raise LocalProtocolError("a hop's onion key is a small-order point") from None
    secrets = [h.shared_secret for h in hops]
    tail = filler(secrets, lens)
    info = keys.stream(keys.derive(keys.LABEL_PAD, session_key), ROUTING_INFO_LEN)
    next_mac = _ZERO_MAC
    for i in range(len(hops) - 1, -1, -1):
        ss = secrets[i]
        slot = struct.pack(">H", len(payloads[i])) + payloads[i] + next_mac
        info = slot + info[:ROUTING_INFO_LEN - len(slot)]
        info = keys.xor(info, keys.stream(keys.derive(keys.LABEL_RHO, ss), ROUTING_INFO_LEN))
        if i == len(hops) - 1 and tail:
            info = info[:ROUTING_INFO_LEN - len(tail)] + tail
        next_mac = keys.mac(keys.derive(keys.LABEL_MU, ss), info + associated_data)
    packet = bytes([VERSION]) + hops[0].ephemeral_key + info + next_mac
    return BuiltOnion(packet=packet, hops=tuple(hops))


def build_onion(route: Sequence[Hop], *, session_key: bytes, associated_data: bytes) -> BuiltOnion:
    """The packet for a route: every hop but the last forwards, the last is final.

    ``associated_data`` (the payment hash) is covered by every hop's MAC, so the onion cannot
    ride on a lock for another payment. ``session_key`` must be fresh for every packet
    (``keys.random_session_key``); tests pass fixed ones."""
    if not route:
        raise RouteTooLong(f"a route has 1..{MAX_HOPS} hops, not 0")
    for i, hop in enumerate(route):
        want = FinalPayload if i == len(route) - 1 else ForwardPayload
        if not isinstance(hop.payload, want):
            raise LocalProtocolError(f"hop {i} needs a {want.__name__}")
    return build_packet([h.public_key for h in route], [h.payload.to_bytes() for h in route],
                        session_key=session_key, associated_data=associated_data)


def peel_packet(packet: bytes, *, node_secret: bytes, associated_data: bytes,
                node_public: bytes | None = None) -> PeeledPacket:
    """One hop's processing (proto/04-onion.md section 4.3). Raises a ``BadOnion`` subclass when
    the packet cannot be peeled here; does not consult the replay cache (the caller does, with
    the payload's expiry)."""
    if type(node_secret) is not bytes or len(node_secret) != KEY_LEN:
        raise LocalProtocolError("the node's onion secret is exactly 32 bytes")
    if node_public is not None and (type(node_public) is not bytes or len(node_public) != KEY_LEN):
        raise LocalProtocolError("the node's onion public key is exactly 32 bytes")
    if type(associated_data) is not bytes or len(associated_data) > MAX_ASSOCIATED_DATA:
        raise LocalProtocolError(f"associated data is bytes, at most {MAX_ASSOCIATED_DATA}")
    if not isinstance(packet, (bytes, bytearray, memoryview)) or len(packet) != PACKET_LEN:
        size = len(packet) if isinstance(packet, (bytes, bytearray, memoryview)) else "?"
        raise OnionSizeError(f"an onion packet is {PACKET_LEN} bytes, not {size}")
    packet = bytes(packet)
    if packet[0] != VERSION:
        raise UnknownOnionVersion(f"onion version {packet[0]} is not supported (only {VERSION})")
    ephemeral = packet[1:1 + KEY_LEN]
    info = packet[1 + KEY_LEN:1 + KEY_LEN + ROUTING_INFO_LEN]
    their_mac = packet[1 + KEY_LEN + ROUTING_INFO_LEN:]
    if not keys.is_canonical_public_key(ephemeral):
        raise BadOnionKey("the ephemeral key is not a canonical X25519 public key")
    if node_public is None:
        node_public = keys.public_key(node_secret)
    dh = keys.x25519(node_secret, ephemeral)
    ss = keys.shared_secret(dh, ephemeral, node_public)
    expected = keys.mac(keys.derive(keys.LABEL_MU, ss), info + associated_data)
    if not _hmac.compare_digest(expected, their_mac):
        raise BadOnionMac("the onion's MAC does not verify")
    plain = keys.xor(info + bytes(ROUTING_INFO_LEN), keys.stream(keys.derive(keys.LABEL_RHO, ss),
                                                                  2 * ROUTING_INFO_LEN))
    (length,) = struct.unpack(">H", plain[:LENGTH_PREFIX_LEN])
    replay_tag = keys.derive(keys.LABEL_REPLAY, ss)
    # The MAC verified, so the sender wrote this length; a bad one is the sender's fault and is
    # reported with the shared secret in hand: empty payload bytes, refused by decode_payload.
    if not 1 <= length <= ROUTING_INFO_LEN - LENGTH_PREFIX_LEN - MAC_LEN:
        return PeeledPacket(payload_bytes=b"", next_packet=None, shared_secret=ss, replay_tag=replay_tag)
    payload = plain[LENGTH_PREFIX_LEN:LENGTH_PREFIX_LEN + length]
    end = LENGTH_PREFIX_LEN + length
    next_mac = plain[end:end + MAC_LEN]
    if next_mac == _ZERO_MAC:
        return PeeledPacket(payload_bytes=payload, next_packet=None, shared_secret=ss, replay_tag=replay_tag)
    next_info = plain[end + MAC_LEN:end + MAC_LEN + ROUTING_INFO_LEN]
    next_ephemeral = keys.x25519(keys.blinding_factor(ephemeral, ss), ephemeral)
    next_packet = bytes([VERSION]) + next_ephemeral + next_info + next_mac
    return PeeledPacket(payload_bytes=payload, next_packet=next_packet, shared_secret=ss, replay_tag=replay_tag)
