"""The gossip layer's I/O shell: gossipsub, sync on connect, co-signing announcements.

``GossipState`` decides; this class only moves bytes and keeps time (proto/08-gossip.md):

* one gossipsub topic, ``GOSSIP_TOPIC``; a received message is checked by the state before
  gossipsub forwards it, so an invalid one stops at the first honest node;
* ``PROTOCOL_SYNC``: on a new connection (at most once per ``resync_interval``) we page through
  the peer's graph, so a new node has the graph from the first peer it meets;
* ``PROTOCOL_SIGS``: the two sides of a channel co-sign its announcement; we sign only for a
  peer we really have that channel with (``has_channel``);
* a maintenance task prunes the graph and re-signs our own updates and node announcement
  before the rest of the network would prune them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

import attrs
import trio

from ..chain.base import Ledger, UnknownChannelOnChain
from ..core.backend import Signer
from ..core.ids import Address, ChannelId
from ..core.state import ChannelParams
from ..crypto import SigningKey, verify
from ..errors import ChannelsError, DecodeError, LocalProtocolError, RemoteProtocolError
from ..invoice.errors import InvalidField
from ..invoice.peerid import public_key_of
from ..net.errors import NetError
from ..net.host import Host
from ..net.pubsub import Topic, open_topic
from ..net.request_response import open_rpc_client, serve_rpc
from ..routing.graph import Graph
from .errors import AnnouncementRefused, GossipError, GossipRateLimited
from .messages import (
    MAX_MULTIADDR_LEN,
    MAX_NODE_ADDRESSES,
    ChannelAnnouncement,
    ChannelUpdate,
    NodeAnnouncement,
    SigReply,
    SigRequest,
    SyncRequest,
    decode_sig_reply,
    decode_sig_request,
    decode_sync_page,
    decode_sync_request,
)
from .validate import DUPLICATE, RATE_LIMITED, Escrow, EscrowCheck, GossipState, Outcome

GOSSIP_TOPIC = "/channels/gossip/1"
PROTOCOL_SYNC = "/channels/gossip-sync/1.0.0"
PROTOCOL_SIGS = "/channels/gossip-sigs/1.0.0"

MAX_SYNC_PAGES = 2048  # pages read from one peer in one sync (256 messages each)
MAX_CONNECT_QUEUE = 64  # new connections waiting for a sync decision; more are skipped
SYNC_TIMEOUT = 120.0  # seconds one whole sync may take
CALL_TIMEOUT = 10.0  # seconds one sync page or signature request may take

logger = logging.getLogger(__name__)

HasChannel = Callable[[str, bytes, str, int], bool]
"""``has_channel(peer_id, channel_id, asset, capacity)``: do we have this channel open with that
peer (so we may co-sign its announcement)?"""


def ledger_escrow_check(ledger: Ledger) -> EscrowCheck:
    """The ``escrow_check`` of a ``Ledger``: its holdings; a channel in dispute, concluded or
    withdrawn is not open (it is closing, routes through it would fail). The ledger does not
    expose participants: the announcement proves them through the channel id."""

    async def check(channel_id: bytes) -> Escrow | None:
        try:
            on_chain = await ledger.channel(ChannelId(channel_id))
        except UnknownChannelOnChain:
            return None
        if not any(on_chain.holdings.values()) and on_chain.registered is None and not on_chain.concluded:
            return None  # the devnet shows a channel it never saw as an empty escrow
        closing = on_chain.concluded or on_chain.withdrawn or on_chain.registered is not None
        return Escrow(holdings={str(a): n for a, n in on_chain.holdings.items()}, open=not closing)

    return check


@attrs.frozen(kw_only=True)
class SyncResult:
    pages: int
    received: int
    accepted: int


class GossipService:
    """Run it with ``await nursery.start(service.run)`` right after the host opens."""

    def __init__(self, host: Host, state: GossipState, *, node_key: SigningKey, l1_signer: Signer,
                 has_channel: HasChannel, alias: str = "", addresses: Sequence[str] | None = None,
                 clock: Callable[[], float] = time.time, sync_on_connect: bool = True,
                 resync_interval: float = 3600.0, refresh_interval: float = 86400.0,
                 maintenance_interval: float = 600.0, heartbeat_interval: int = 1) -> None:
        if public_key_of(host.peer_id) != node_key.public_key:
            raise LocalProtocolError("node_key must be the host's libp2p identity key")
        if len(alias.encode()) > 32 or not alias.isprintable():
            raise LocalProtocolError("the alias must be printable text of at most 32 UTF-8 bytes")
        self.host = host
        self.state = state
        self.node_key = node_key
        self.l1_signer = l1_signer
        self.has_channel = has_channel
        self.alias = alias
        self._addresses = None if addresses is None else tuple(addresses)
        self.clock = clock
        self.sync_on_connect = sync_on_connect
        self.resync_interval = resync_interval
        self.refresh_interval = refresh_interval
        self.maintenance_interval = maintenance_interval
        self.heartbeat_interval = heartbeat_interval
        self.public_key = node_key.public_key
        self._topic: Topic | None = None
        self._last_sync: float | None = None
        self.last_sync_result: SyncResult | None = None
        self._syncing = trio.Lock()
        self._connects_in, self._connects_out = trio.open_memory_channel[str](MAX_CONNECT_QUEUE)
        self._changed = trio.Event()
        self.counters: dict[str, int] = {"synced_from": 0, "sync_failures": 0, "published": 0,
                                         "signatures_given": 0, "signatures_refused": 0}

    def now(self) -> int:
        return int(self.clock())

    # ------------------------------------------------------------------ running

    async def run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        serve_rpc(self.host, PROTOCOL_SYNC, self._serve_sync, max_in_flight=2)
        serve_rpc(self.host, PROTOCOL_SIGS, self._serve_sigs, max_in_flight=4)
        try:
            async with open_topic(self.host, GOSSIP_TOPIC, self._validate, on_connect=self._on_connect,
                                  heartbeat_interval=self.heartbeat_interval) as topic:
                self._topic = topic
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._sync_new_peers)
                    nursery.start_soon(self._maintain)
                    task_status.started()
                    await trio.sleep_forever()
        finally:
            self._topic = None
            for protocol in (PROTOCOL_SYNC, PROTOCOL_SIGS):
                self.host.remove_handler(protocol)

    async def _accept(self, message: bytes | ChannelAnnouncement | ChannelUpdate | NodeAnnouncement) -> Outcome:
        outcome = await self.state.accept(message, now=self.now())
        self._notify()
        return outcome

    def _notify(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    async def wait_until(self, predicate: Callable[[], bool]) -> None:
        """Return once ``predicate()`` holds; it is re-checked after each message checked and
        each finished sync (the caller bounds the wait)."""
        while not predicate():
            await self._changed.wait()

    async def wait_for_peer(self, peer_id: str, *, timeout: float = CALL_TIMEOUT) -> bool:
        """Wait until ``peer_id`` has joined our gossip topic; False if not within ``timeout``."""
        return self._topic is not None and await self._topic.wait_for_peer(peer_id, timeout=timeout)

    async def _validate(self, peer_id: str, data: bytes) -> bool:
        outcome = await self._accept(data)
        for upd in outcome.released:  # held until its announcement came: passed on now
            await self._publish(upd.encode())
        return outcome.accepted

    async def _publish(self, data: bytes) -> None:
        if self._topic is None:
            raise GossipError("the gossip service is not running")
        await self._topic.publish(data)
        self.counters["published"] += 1

    def _on_connect(self, peer_id: str) -> None:
        if self.sync_on_connect:
            try:
                self._connects_in.send_nowait(peer_id)
            except (trio.WouldBlock, trio.ClosedResourceError):
                pass  # a burst of connections: the ones queued already will do

    async def _sync_new_peers(self) -> None:
        async for peer in self._connects_out:
            fresh = self._last_sync is not None and trio.current_time() - self._last_sync < self.resync_interval
            if fresh or self._syncing.locked():
                continue
            if self._topic is not None:
                await self._topic.wait_for_peer(peer, timeout=CALL_TIMEOUT)  # the connection is usable
            try:
                await self.sync_from(peer)
            except ChannelsError as exc:
                logger.info("graph sync from %s failed: %s", peer, exc)

    async def _maintain(self) -> None:
        while True:
            await trio.sleep(self.maintenance_interval)
            await self.maintain_once()

    async def maintain_once(self) -> None:
        """Prune, then re-sign our own updates and node announcement that are getting old."""
        now = self.now()
        self.state.prune(now)
        for ann in list(self.state.channels()):
            if self.public_key not in ann.node_keys:
                continue
            d = ann.node_keys.index(self.public_key)
            last = self.state.update(ann.channel_id, d)
            if last is not None and now - last.timestamp >= self.refresh_interval:
                try:
                    await self._update(attrs.evolve(last, timestamp=max(now, last.timestamp + 1), signature=b""))
                except ChannelsError as exc:
                    logger.info("re-signing our update of channel %s failed: %s", ann.channel_id.hex()[:16], exc)
        node = self.state.node(self.public_key)
        if node is not None and now - node.timestamp >= self.refresh_interval:
            await self.announce_node()

    # ------------------------------------------------------------------ our own messages

    async def announce_channel(self, peer_id: str, params: ChannelParams, asset: str,
                               capacity: int) -> ChannelAnnouncement:
        """Announce our channel with ``peer_id``: get its two signatures, check the whole
        announcement as any node would (the L1 included), publish it and our node announcement."""
        try:
            their_key = public_key_of(peer_id)
        except InvalidField as exc:
            raise LocalProtocolError(str(exc)) from None
        me = self.l1_signer.address
        if me not in params.participants or len(params.participants) != 2:
            raise LocalProtocolError("a public channel has two participants, and we must be one of them")
        channel_id = self.state.scheme.channel_id(params)
        keys = tuple(sorted((self.public_key, their_key)))
        ann = ChannelAnnouncement(channel_id=channel_id, params=params, asset=asset, capacity=capacity,
                                  node_keys=(keys[0], keys[1]))
        digest = ann.digest()
        ours = SigRequest(announcement=ann, node_signature=self.node_key.sign(digest),
                          l1_signature=self.l1_signer.sign_digest(digest))
        failure: ChannelsError | None = None
        try:
            async with open_rpc_client(self.host, peer_id, PROTOCOL_SIGS, timeout=CALL_TIMEOUT) as client:
                try:  # caught inside the client's nursery, so it reaches us as itself
                    reply = decode_sig_reply(await client.call(ours.encode()))
                except (NetError, DecodeError) as exc:
                    failure = exc
        except NetError as exc:
            failure = exc
        if failure is not None:
            raise AnnouncementRefused(f"{peer_id} did not co-sign channel {channel_id.hex()[:16]}: {failure}")
        mine, theirs = keys.index(self.public_key), keys.index(their_key)
        node_sigs = [b"", b""]
        node_sigs[mine], node_sigs[theirs] = ours.node_signature, reply.node_signature
        l1_sigs = [b"", b""]
        l1_sigs[params.participants.index(me)] = ours.l1_signature
        l1_sigs[1 - params.participants.index(me)] = reply.l1_signature
        ann = attrs.evolve(ann, node_signatures=(node_sigs[0], node_sigs[1]), l1_signatures=(l1_sigs[0], l1_sigs[1]))
        outcome = await self._accept(ann)
        if not outcome.accepted and outcome.reason != DUPLICATE:
            raise AnnouncementRefused(f"the announcement of channel {channel_id.hex()[:16]} does not pass our own "
                                      f"checks: {outcome.reason}")
        await self._publish(ann.encode())
        for upd in outcome.released:
            await self._publish(upd.encode())
        await self.announce_node()
        return ann

    async def announce_node(self) -> Outcome:
        """Sign and publish our node announcement (accepted only once we have a public channel)."""
        addresses = self._addresses if self._addresses is not None else tuple(self.host.addresses)
        addresses = tuple(a for a in addresses if len(a) <= MAX_MULTIADDR_LEN)[:MAX_NODE_ADDRESSES]
        old = self.state.node(self.public_key)
        now = self.now()
        ann = NodeAnnouncement(node_key=self.public_key, l1_address=bytes(self.l1_signer.address),
                               addresses=addresses, alias=self.alias,
                               timestamp=now if old is None else max(now, old.timestamp + 1))
        digest = ann.digest(self.state.config.chain_id)
        ann = attrs.evolve(ann, node_signature=self.node_key.sign(digest),
                           l1_signature=self.l1_signer.sign_digest(digest))
        outcome = await self._accept(ann)
        if outcome.accepted:
            await self._publish(ann.encode())
        return outcome

    async def update_channel(self, channel_id: bytes, *, base_fee: int, fee_ppm: int, expiry_delta: int,
                             htlc_minimum: int, htlc_maximum: int, enabled: bool = True) -> ChannelUpdate:
        """Sign and publish new terms for our direction of an announced channel."""
        ann = self.state.channel(channel_id)
        if ann is None:
            raise LocalProtocolError(f"channel {channel_id.hex()[:16]} is not announced; announce it first")
        if self.public_key not in ann.node_keys:
            raise LocalProtocolError(f"channel {channel_id.hex()[:16]} is not ours")
        d = ann.node_keys.index(self.public_key)
        last = self.state.update(channel_id, d)
        now = self.now()
        upd = ChannelUpdate(channel_id=channel_id, direction=d,
                            timestamp=now if last is None else max(now, last.timestamp + 1), base_fee=base_fee,
                            fee_ppm=fee_ppm, expiry_delta=expiry_delta, htlc_minimum=htlc_minimum,
                            htlc_maximum=htlc_maximum, enabled=enabled)
        return await self._update(upd)

    async def _update(self, upd: ChannelUpdate) -> ChannelUpdate:
        upd = attrs.evolve(upd, signature=self.node_key.sign(upd.digest(self.state.config.chain_id)))
        outcome = await self._accept(upd)
        if outcome.reason == RATE_LIMITED:
            raise GossipRateLimited(f"channel {upd.channel_id.hex()[:16]} was updated too often; the network "
                                    f"takes one update per {self.state.config.rate_interval:g}s (retry later)")
        if not outcome.accepted:
            raise LocalProtocolError(f"our update of channel {upd.channel_id.hex()[:16]} was refused: "
                                     f"{outcome.reason}")
        await self._publish(upd.encode())
        return upd

    # ------------------------------------------------------------------ sync

    async def sync_from(self, peer_id: str) -> SyncResult:
        """Page through ``peer_id``'s graph and check every message into ours."""
        async with self._syncing:
            pages = received = accepted = 0
            cursor = b""
            failure: ChannelsError | None = None
            try:
                with trio.fail_after(SYNC_TIMEOUT):
                    async with open_rpc_client(self.host, peer_id, PROTOCOL_SYNC, timeout=CALL_TIMEOUT) as client:
                        try:  # caught inside the client's nursery, so it reaches us as itself
                            while pages < MAX_SYNC_PAGES:
                                page = decode_sync_page(await client.call(SyncRequest(cursor=cursor).encode()))
                                pages += 1
                                for data in page.messages:
                                    received += 1
                                    outcome = await self._accept(data)
                                    accepted += outcome.accepted + len(outcome.released)
                                if page.next_cursor is None:
                                    break
                                if page.next_cursor <= cursor:
                                    raise RemoteProtocolError(f"{peer_id}'s sync cursor went backwards")
                                cursor = page.next_cursor
                        except ChannelsError as exc:
                            failure = exc
            except trio.TooSlowError:
                failure = NetError(f"the graph sync from {peer_id} took longer than {SYNC_TIMEOUT:g}s")
            except NetError as exc:
                failure = exc
            if failure is not None:
                self.counters["sync_failures"] += 1
                raise failure
            self._last_sync = trio.current_time()
            self.last_sync_result = SyncResult(pages=pages, received=received, accepted=accepted)
            self.counters["synced_from"] += 1
            self._notify()
            logger.debug("synced %d messages (%d new) from %s in %d pages", received, accepted, peer_id, pages)
            return self.last_sync_result

    async def _serve_sync(self, request: bytes, peer_id: str) -> bytes:
        return self.state.sync_page(decode_sync_request(request).cursor).encode()

    async def _serve_sigs(self, request: bytes, peer_id: str) -> bytes:
        try:
            return self._cosign(decode_sig_request(request), peer_id).encode()
        except AnnouncementRefused:
            self.counters["signatures_refused"] += 1
            raise

    def _cosign(self, req: SigRequest, peer_id: str) -> SigReply:
        ann = req.announcement
        cid = ann.channel_id.hex()[:16]
        try:
            their_key = public_key_of(peer_id)
        except InvalidField:
            raise AnnouncementRefused("only Ed25519 peer ids can announce channels") from None
        if set(ann.node_keys) != {self.public_key, their_key}:
            raise AnnouncementRefused(f"the announcement of {cid} does not name us and the asker")
        me = Address(self.l1_signer.address)
        if me not in ann.params.participants:
            raise AnnouncementRefused(f"our L1 account is not a participant of {cid}")
        config = self.state.config
        if (ann.params.chain_id, ann.params.adjudicator) != (config.chain_id, config.adjudicator) \
                or self.state.scheme.channel_id(ann.params) != ann.channel_id:
            raise AnnouncementRefused(f"the parameters do not give channel {cid} on our L1")
        if not self.has_channel(peer_id, ann.channel_id, ann.asset, ann.capacity):
            raise AnnouncementRefused(f"we have no channel {cid} of {ann.capacity} {ann.asset} with you")
        digest = ann.digest()
        other = ann.params.participants[1 - ann.params.participants.index(me)]
        if not verify(their_key, digest, req.node_signature) \
                or not self.state.scheme.verify_digest(other, digest, req.l1_signature):
            raise AnnouncementRefused(f"your signatures of the announcement of {cid} do not verify")
        self.counters["signatures_given"] += 1
        return SigReply(node_signature=self.node_key.sign(digest), l1_signature=self.l1_signer.sign_digest(digest))

    # ------------------------------------------------------------------ reading

    def graph(self, asset: str | None = None) -> Graph:
        return self.state.to_routing_graph(asset)

    def stats(self) -> dict[str, object]:
        stats = self.state.stats()
        stats.update(self.counters)
        stats["gossip_peers"] = len(self._topic.peers()) if self._topic is not None else 0
        return stats

