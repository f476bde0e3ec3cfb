"""Gossip messages: node and channel announcements, channel updates (proto/08-gossip.md).

Pure: no clock, no I/O. Each message is a canonical msgpack record ``[type_id, *fields]``
(``channels.encoding``) decoded strictly, so one message has exactly one byte form and the
signatures can be checked over a digest of the fields rather than of transport bytes. Each
signing digest is domain-separated per message kind and bound to the chain id, so a
signature made for one kind, or one ledger, verifies nowhere else.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any, TypeVar

import attrs

from .. import encoding
from ..core.state import (
    MAX_SIGNATURE_LEN,
    ChannelParams,
    amount_field,
    parse_address,
    parse_amount,
    parse_bytes,
    parse_list,
    parse_name,
    parse_u64,
)
from ..crypto import sha256
from ..errors import DecodeError
from .errors import GossipDecodeError

NODE_ANNOUNCEMENT = 64
CHANNEL_ANNOUNCEMENT = 66
CHANNEL_UPDATE = 68
SYNC_REQUEST = 70
SYNC_PAGE = 72
SIG_REQUEST = 74
SIG_REPLY = 76

NODE_DOMAIN = b"p2p-channels/gossip/node/v1"
CHANNEL_DOMAIN = b"p2p-channels/gossip/channel/v1"
UPDATE_DOMAIN = b"p2p-channels/gossip/update/v1"

KEY_LEN = 32  # an Ed25519 libp2p identity public key
NODE_SIG_LEN = 64  # Ed25519
MAX_ALIAS_BYTES = 32
MAX_NODE_ADDRESSES = 8
MAX_MULTIADDR_LEN = 256
MAX_FEE_PPM = 2**32 - 1
MAX_EXPIRY_DELTA = 2**32 - 1
MAX_GOSSIP_MESSAGE = 4096  # bytes of one encoded message; sync pages and gossip refuse larger
MAX_SYNC_ITEMS = 256  # messages in one sync page
CHANNEL_ID_LEN = 32


T = TypeVar("T")


def _chain(chain_id: int) -> bytes:
    return struct.pack(">Q", chain_id)


@attrs.frozen(kw_only=True)
class NodeAnnouncement:
    """Who a node is: its libp2p key, the L1 account that key is bound to, where to reach it."""

    node_key: bytes
    l1_address: bytes
    addresses: tuple[str, ...]
    alias: str
    timestamp: int
    node_signature: bytes = b""
    l1_signature: bytes = b""

    def digest(self, chain_id: int) -> bytes:
        """What both keys sign: the node key signs it (it speaks for the peer id) and the L1 key
        signs it (the account agrees to be named by this peer id)."""
        body = encoding.encode([self.node_key, self.l1_address, list(self.addresses), self.alias, self.timestamp])
        return sha256(NODE_DOMAIN + _chain(chain_id) + body)

    def to_fields(self) -> list[Any]:
        return [self.node_key, self.l1_address, list(self.addresses), self.alias, self.timestamp,
                self.node_signature, self.l1_signature]

    @classmethod
    def from_fields(cls, f: list[Any]) -> NodeAnnouncement:
        f = parse_list(f, "node announcement", size=7)
        addrs = parse_list(f[2], "addresses", max_size=MAX_NODE_ADDRESSES)
        return cls(node_key=parse_bytes(f[0], "node key", size=KEY_LEN),
                   l1_address=bytes(parse_address(f[1], "L1 address")),
                   addresses=tuple(_multiaddr(a) for a in addrs), alias=_alias(f[3]),
                   timestamp=parse_u64(f[4], "timestamp"),
                   node_signature=parse_bytes(f[5], "node signature", size=NODE_SIG_LEN),
                   l1_signature=_l1_sig(f[6]))

    def encode(self) -> bytes:
        return encoding.encode_record(NODE_ANNOUNCEMENT, self.to_fields())


@attrs.frozen(kw_only=True)
class ChannelAnnouncement:
    """A public channel: its parameters (whose hash is the channel id, so the participants are
    proven), the asset and capacity, and four signatures: both node keys and both L1 keys."""

    channel_id: bytes
    params: ChannelParams
    asset: str
    capacity: int
    node_keys: tuple[bytes, bytes]  # sorted: direction 0 is from node_keys[0]
    node_signatures: tuple[bytes, bytes] = (b"", b"")  # by node_keys[i]
    l1_signatures: tuple[bytes, bytes] = (b"", b"")  # by params.participants[i]

    @property
    def l1_addresses(self) -> tuple[bytes, ...]:
        return tuple(self.params.participants)

    def digest(self) -> bytes:
        """What all four keys sign; the chain id is the one inside the params."""
        body = encoding.encode([self.channel_id, self.params.to_fields(), self.asset, amount_field(self.capacity),
                                list(self.node_keys)])
        return sha256(CHANNEL_DOMAIN + _chain(self.params.chain_id) + body)

    def unsigned_fields(self) -> list[Any]:
        return [self.channel_id, self.params.to_fields(), self.asset, amount_field(self.capacity),
                list(self.node_keys)]

    def to_fields(self) -> list[Any]:
        return [*self.unsigned_fields(), list(self.node_signatures), list(self.l1_signatures)]

    @classmethod
    def unsigned_from_fields(cls, f: list[Any]) -> ChannelAnnouncement:
        f = parse_list(f, "channel announcement", size=5)
        params = ChannelParams.from_fields(f[1])
        if len(params.participants) != 2:
            raise DecodeError("a public channel has exactly two participants")
        keys = parse_list(f[4], "node keys", size=2)
        k0, k1 = (parse_bytes(k, "node key", size=KEY_LEN) for k in keys)
        if not k0 < k1:
            raise DecodeError("node keys must be two distinct keys in ascending order")
        capacity = parse_amount(f[3], "capacity")
        if capacity <= 0:
            raise DecodeError("capacity must be positive")
        return cls(channel_id=parse_bytes(f[0], "channel id", size=CHANNEL_ID_LEN), params=params,
                   asset=parse_name(f[2], "asset"), capacity=capacity, node_keys=(k0, k1))

    @classmethod
    def from_fields(cls, f: list[Any]) -> ChannelAnnouncement:
        f = parse_list(f, "channel announcement", size=7)
        body = cls.unsigned_from_fields(f[:5])
        node_sigs = parse_list(f[5], "node signatures", size=2)
        l1_sigs = parse_list(f[6], "L1 signatures", size=2)
        n0, n1 = (parse_bytes(s, "node signature", size=NODE_SIG_LEN) for s in node_sigs)
        a0, a1 = (_l1_sig(s) for s in l1_sigs)
        return attrs.evolve(body, node_signatures=(n0, n1), l1_signatures=(a0, a1))

    def encode(self) -> bytes:
        return encoding.encode_record(CHANNEL_ANNOUNCEMENT, self.to_fields())


@attrs.frozen(kw_only=True)
class ChannelUpdate:
    """One direction's forwarding terms, signed by the node it forwards from."""

    channel_id: bytes
    direction: int  # 0: from the channel's lower node key
    timestamp: int
    base_fee: int
    fee_ppm: int
    expiry_delta: int
    htlc_minimum: int
    htlc_maximum: int
    enabled: bool
    signature: bytes = b""

    def unsigned_fields(self) -> list[Any]:
        return [self.channel_id, self.direction, self.timestamp, amount_field(self.base_fee), self.fee_ppm,
                self.expiry_delta, amount_field(self.htlc_minimum), amount_field(self.htlc_maximum), self.enabled]

    def digest(self, chain_id: int) -> bytes:
        return sha256(UPDATE_DOMAIN + _chain(chain_id) + encoding.encode(self.unsigned_fields()))

    def to_fields(self) -> list[Any]:
        return [*self.unsigned_fields(), self.signature]

    @classmethod
    def from_fields(cls, f: list[Any]) -> ChannelUpdate:
        f = parse_list(f, "channel update", size=10)
        direction = f[1]
        if type(direction) is not int or direction not in (0, 1):
            raise DecodeError("direction must be 0 or 1")
        fee_ppm, expiry = parse_u64(f[4], "fee ppm"), parse_u64(f[5], "expiry delta")
        if fee_ppm > MAX_FEE_PPM or expiry > MAX_EXPIRY_DELTA:
            raise DecodeError("fee ppm and expiry delta must fit in 32 bits")
        low, high = parse_amount(f[6], "htlc minimum"), parse_amount(f[7], "htlc maximum")
        if high < low:
            raise DecodeError("htlc maximum is below the htlc minimum")
        if type(f[8]) is not bool:
            raise DecodeError("enabled must be a boolean")
        return cls(channel_id=parse_bytes(f[0], "channel id", size=CHANNEL_ID_LEN), direction=direction,
                   timestamp=parse_u64(f[2], "timestamp"), base_fee=parse_amount(f[3], "base fee"), fee_ppm=fee_ppm,
                   expiry_delta=expiry, htlc_minimum=low, htlc_maximum=high, enabled=f[8],
                   signature=parse_bytes(f[9], "signature", size=NODE_SIG_LEN))

    def encode(self) -> bytes:
        return encoding.encode_record(CHANNEL_UPDATE, self.to_fields())


GossipMessage = NodeAnnouncement | ChannelAnnouncement | ChannelUpdate
_DECODERS: dict[int, Callable[[list[Any]], GossipMessage]] = {NODE_ANNOUNCEMENT: NodeAnnouncement.from_fields,
                             CHANNEL_ANNOUNCEMENT: ChannelAnnouncement.from_fields,
                             CHANNEL_UPDATE: ChannelUpdate.from_fields}


def decode_gossip(data: bytes) -> GossipMessage:
    """One gossip message from bytes; anything else raises ``GossipDecodeError``."""
    value = _record(data, MAX_GOSSIP_MESSAGE)
    decoder = _DECODERS.get(value[0])
    if decoder is None:
        raise GossipDecodeError(f"unknown gossip message type {value[0]}")
    return _strict(lambda: decoder(value[1]))


# ------------------------------------------------------------------ the two request-response protocols


@attrs.frozen(kw_only=True)
class SyncRequest:
    """Ask for the graph after ``cursor`` (b"" for the start); the cursor is opaque to the asker."""

    cursor: bytes = b""

    def encode(self) -> bytes:
        return encoding.encode_record(SYNC_REQUEST, [self.cursor])


@attrs.frozen(kw_only=True)
class SyncPage:
    """Up to ``MAX_SYNC_ITEMS`` encoded messages in send order; ``next_cursor`` None at the end."""

    messages: tuple[bytes, ...]
    next_cursor: bytes | None

    def encode(self) -> bytes:
        return encoding.encode_record(SYNC_PAGE, [list(self.messages), self.next_cursor])


@attrs.frozen(kw_only=True)
class SigRequest:
    """Please co-sign this announcement of our shared channel; here are the asker's two signatures."""

    announcement: ChannelAnnouncement  # its signature slots are ignored
    node_signature: bytes
    l1_signature: bytes

    def encode(self) -> bytes:
        return encoding.encode_record(SIG_REQUEST, [self.announcement.unsigned_fields(), self.node_signature,
                                                    self.l1_signature])


@attrs.frozen(kw_only=True)
class SigReply:
    node_signature: bytes
    l1_signature: bytes

    def encode(self) -> bytes:
        return encoding.encode_record(SIG_REPLY, [self.node_signature, self.l1_signature])


MAX_CURSOR = 64


def decode_sync_request(data: bytes) -> SyncRequest:
    value = _record(data, 256, SYNC_REQUEST, 1)
    return _strict(lambda: SyncRequest(cursor=parse_bytes(value[1][0], "cursor", max_size=MAX_CURSOR)))


def decode_sync_page(data: bytes) -> SyncPage:
    value = _record(data, encoding.MAX_FRAME, SYNC_PAGE, 2)

    def build() -> SyncPage:
        items = parse_list(value[1][0], "messages", max_size=MAX_SYNC_ITEMS)
        cursor = value[1][1]
        return SyncPage(messages=tuple(parse_bytes(m, "message", max_size=MAX_GOSSIP_MESSAGE) for m in items),
                        next_cursor=None if cursor is None else parse_bytes(cursor, "cursor", max_size=MAX_CURSOR))

    return _strict(build)


def decode_sig_request(data: bytes) -> SigRequest:
    value = _record(data, MAX_GOSSIP_MESSAGE, SIG_REQUEST, 3)
    return _strict(lambda: SigRequest(announcement=ChannelAnnouncement.unsigned_from_fields(value[1][0]),
                                      node_signature=parse_bytes(value[1][1], "node signature", size=NODE_SIG_LEN),
                                      l1_signature=_l1_sig(value[1][2])))


def decode_sig_reply(data: bytes) -> SigReply:
    value = _record(data, 512, SIG_REPLY, 2)
    return _strict(lambda: SigReply(node_signature=parse_bytes(value[1][0], "node signature", size=NODE_SIG_LEN),
                                    l1_signature=_l1_sig(value[1][1])))


# ------------------------------------------------------------------ field helpers


def _record(data: bytes, max_size: int, type_id: int | None = None, count: int | None = None) -> tuple[int, list[Any]]:
    try:
        tid, fields = encoding.decode_record(data, max_size=max_size)
    except DecodeError as exc:
        raise GossipDecodeError(f"malformed gossip record: {exc}") from None
    if type_id is not None and tid != type_id:
        raise GossipDecodeError(f"expected gossip record type {type_id}, got {tid}")
    if count is not None and len(fields) != count:
        raise GossipDecodeError(f"gossip record type {tid} has {count} fields, got {len(fields)}")
    return tid, fields


def _strict(build: Callable[[], T]) -> T:
    try:
        return build()
    except GossipDecodeError:
        raise
    except DecodeError as exc:
        raise GossipDecodeError(f"invalid gossip message: {exc}") from None


def _alias(value: Any) -> str:
    if type(value) is not str or len(value.encode()) > MAX_ALIAS_BYTES or not value.isprintable():
        raise DecodeError(f"alias must be printable text of at most {MAX_ALIAS_BYTES} UTF-8 bytes")
    return value


def _multiaddr(value: Any) -> str:
    if type(value) is not str or not 0 < len(value) <= MAX_MULTIADDR_LEN or not value.isascii() \
            or not value.isprintable() or not value.startswith("/"):
        raise DecodeError(f"a node address is a multiaddr string of 1..{MAX_MULTIADDR_LEN} ASCII characters")
    return value


def _l1_sig(value: Any) -> bytes:
    sig = parse_bytes(value, "L1 signature", max_size=MAX_SIGNATURE_LEN)
    if not sig:
        raise DecodeError("L1 signature is empty")
    return sig
