"""One gossipsub topic over our ``Host``: py-libp2p's ``libp2p.pubsub`` behind a small API.

It lives here because ``channels/net`` is the only package that drives libp2p (ARCHITECTURE
section 2); ``channels/gossip`` uses it without importing libp2p.

Configuration (and why):

* Gossipsub (meshsub 1.1 and 1.0), mesh degree 6 (4..12), heartbeat every second: the libp2p
  spec's defaults, except py-libp2p 0.8.1's 120 s heartbeat, which leaves a new mesh empty for
  two minutes.
* Message ids are content addressed (a hash of the data), so the same announcement published
  by two nodes, or republished by one, is one message to the mesh.
* Every message is signed by its publisher's libp2p key (strict signing, the default).
* The application's ``validator`` runs before a message is delivered or forwarded: a message it
  refuses goes no further than us, and our own publications skip it (we checked them before
  publishing).
* py-libp2p 0.8.1's seen-message cache runs a sweeper thread that ``Pubsub`` never stops; we
  stop it when the topic closes, so no thread outlives the block.
* ``on_connect(peer_id)`` is called for each new connection, inbound or outbound, so the caller
  can start a sync with a peer it just met.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import trio
from libp2p.abc import INetConn, INetwork
from libp2p.peer.id import ID
from libp2p.pubsub.gossipsub import PROTOCOL_ID, PROTOCOL_ID_V11, GossipSub
from libp2p.pubsub.pb import rpc_pb2
from libp2p.pubsub.pubsub import Pubsub, ValidationCache, ValidationResult, get_content_addressed_msg_id
from libp2p.tools.anyio_service import background_trio_service

from .host import Host, QuietNotifee

__all__ = ["MAX_PUBSUB_RPC", "Topic", "Validator", "open_topic"]

logger = logging.getLogger(__name__)

Validator = Callable[[str, bytes], Awaitable[bool]]
"""``await validator(forwarder_peer_id, data)``: True to deliver and forward the message."""

MAX_PUBSUB_RPC = 256 * 1024  # bytes of one inbound pubsub RPC (several messages and control entries)
VALIDATION_TIMEOUT = 15.0  # seconds a validator may take (it may ask the L1); then the message is dropped


class _ConnectWatcher(QuietNotifee):
    def __init__(self, callback: Callable[[str], None]) -> None:
        self.callback: Callable[[str], None] | None = callback

    async def connected(self, network: INetwork, conn: INetConn) -> None:
        if self.callback is not None:
            self.callback(conn.muxed_conn.peer_id.to_base58())


class _ValidOnlyCache(ValidationCache):
    """py-libp2p remembers a refused message's id for its cache TTL and drops it unseen when it
    comes again. Our validator may refuse a message now and accept it later (a channel update
    that arrives before its announcement is checked): only acceptances are remembered, so the
    update republished once its announcement is accepted is not lost."""

    def put(self, msg_id: bytes, result: ValidationResult) -> None:
        if result.is_valid:
            super().put(msg_id, result)


class Topic:
    """A subscribed gossipsub topic; obtain one with ``open_topic``."""

    def __init__(self, pubsub: Pubsub, topic: str) -> None:
        self._pubsub = pubsub
        self.topic = topic

    async def publish(self, data: bytes) -> None:
        """Send ``data`` to the mesh (it skips our validator: check it before)."""
        await self._pubsub.publish(self.topic, data)

    def peers(self) -> list[str]:
        """Peers that told us they subscribe to this topic."""
        return sorted(p.to_base58() for p in self._pubsub.peer_topics.get(self.topic, set()))

    async def wait_for_peer(self, peer_id: str, *, timeout: float = 10.0) -> bool:
        """Wait until ``peer_id`` subscribes to the topic; False if it did not within ``timeout``."""
        try:
            await self._pubsub.wait_for_subscription(ID.from_base58(peer_id), self.topic, timeout=timeout)
        except trio.TooSlowError:
            return False
        return True


@asynccontextmanager
async def open_topic(host: Host, topic: str, validator: Validator, *,
                     on_connect: Callable[[str], None] | None = None,
                     heartbeat_interval: int = 1) -> AsyncIterator[Topic]:
    """Join ``topic`` for the duration of the block; start it before connecting to peers (the
    peers already connected are joined too, but a little later)."""
    lp = host._lp
    me = lp.get_id()
    router = GossipSub(protocols=[PROTOCOL_ID_V11, PROTOCOL_ID], degree=6, degree_low=4, degree_high=12,
                       heartbeat_interval=heartbeat_interval)
    pubsub = Pubsub(lp, router, msg_id_constructor=get_content_addressed_msg_id,
                    validation_timeout=VALIDATION_TIMEOUT, max_inbound_rpc_size=MAX_PUBSUB_RPC,
                    allowed_topics={topic})
    pubsub.validation_cache = _ValidOnlyCache(pubsub.validation_cache.ttl, pubsub.validation_cache.max_size)

    async def validate(forwarder: ID, msg: rpc_pb2.Message) -> bool:
        if forwarder == me:
            return True
        try:
            return await validator(forwarder.to_base58(), bytes(msg.data))
        except Exception:
            logger.exception("the %s validator failed; message dropped", topic)
            return False

    watcher = _ConnectWatcher(on_connect) if on_connect is not None else None
    if watcher is not None:
        lp.get_network().register_notifee(watcher)
    try:
        async with background_trio_service(pubsub), background_trio_service(router):
            await pubsub.wait_until_ready()
            pubsub.set_topic_validator(topic, validate, is_async_validator=True)
            subscription = await pubsub.subscribe(topic)
            async with trio.open_nursery() as nursery:

                async def drain() -> None:  # delivery already happened in the validator
                    async for _ in subscription:
                        pass

                async def join_connected() -> None:
                    for peer in list(lp.get_network().connections):
                        if peer not in pubsub.peers:
                            await pubsub.ensure_peer_stream(peer, timeout=10.0)

                nursery.start_soon(drain)
                nursery.start_soon(join_connected)
                try:
                    yield Topic(pubsub, topic)
                finally:
                    nursery.cancel_scope.cancel()
    finally:
        # py-libp2p 0.8.1 starts a sweeper thread for the seen-message cache and never stops it.
        pubsub.seen_messages.stop()
        if watcher is not None:
            watcher.callback = None  # a notifee cannot be unregistered; it goes quiet instead
        for protocol in router.get_protocols():
            lp.remove_stream_handler(protocol)
