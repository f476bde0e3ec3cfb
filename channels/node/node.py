"""``Node``: the imperative shell around the channel cores (ARCHITECTURE section 7).

``async with Node.open(config, ledger=...) as node:`` owns one nursery holding the
transport, one reader task per inbound stream, one link task per peer, the chain
watcher, the L1 submitter, the ticker, and exactly one engine task that applies
inputs in order (no locks around the core).
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

import attrs
import trio

from ..chain.base import Backend, ChainEvent, ChannelOnChain, Ledger, Signer
from ..core import effects as fx
from ..core import inputs as ins
from ..core.app import DEFAULT_APPS, AppRegistry
from ..core.channel import Channel, Env, Phase, propose_channel
from ..core.ids import NATIVE, Address, AssetId, ChannelId, PaymentId, Version
from ..core.messages import (
    ChannelProposal,
    Init,
)
from ..core.ops import AddLock, AppMove, FailLock, FulfillLock, Operation
from ..core.state import MAX_PARTICIPANTS, Allocation, ChannelParams, SignedState
from ..errors import ChannelsError, ConfigError, DecodeError, LedgerError, LocalProtocolError, UnknownChannel
from ..forwarding import FeePolicy, HopLimits, HopMachine
from ..forwarding.records import ChannelPolicy, Forward, InvoiceRecord, ReceivedPart, SentPart
from ..keyfile import LIBP2P_IDENTITY, load_or_create_key
from ..logs import Brief
from ..onion import onion_public_from_ed25519, onion_secret_from_ed25519_seed
from ..store import Store
from ..store.records import submission_from_bytes
from ..wire import PROTOCOL_CHANNEL, decode_message, encode_message
from .config import NodeConfig
from .dev import DevModeOff, DevTools
from .engine import (
    MAX_OUTBOX_FRAMES,
    ChainItem,
    CoreItem,
    Engine,
    Item,
    OpenItem,
    PeerDownItem,
    PeerUpItem,
    ProposalItem,
    TickItem,
    Waiter,
)
from .events import EventFeed, NodeEvent
from .gossip_link import NodeGossip
from .identity import init_digest, verify_init
from .links import BROKE, REFUSED, UNREACHABLE, PeerLink, Transport
from .payments import Payments
from .stats import submission_kind
from .towers import TowerClients

log = logging.getLogger("channels.node")

MAX_BATCH_ITEMS = 1024
MAX_QUEUED_INPUTS = 4096  # inputs waiting for the engine; senders wait beyond it
MAX_QUEUED_SUBMITS = 1024  # L1 transactions waiting to be sent; beyond it new ones are dropped (ticks resend)


# What the forwarding machine reads at start: what is in flight, invoices, fee policies, and every
# forward and part received whatever its status (their onions' replay tags, until they expire).
_LIVE_RECORDS = ((Forward, None), (ReceivedPart, None), (SentPart, "pending"), (InvoiceRecord, None),
                 (ChannelPolicy, None))


class PeerNotConnected(LocalProtocolError):
    """The peer is not connected (or has not introduced itself yet)."""


class NotAChannelPeer(PeerNotConnected):
    """The peer is connected but will not talk the channel protocol with us."""


class LedgerMismatch(ConfigError):
    """The store was written against another ledger (chain id or genesis) than the one given."""


LEDGER_CHAIN_KEY, LEDGER_GENESIS_KEY = "ledger_chain_id", "ledger_genesis"  # store meta: the L1 it belongs to


def check_ledger(store: Store, backend: Backend, where: object) -> None:
    """Refuse a ledger other than the one the store was written against; record it on first use.

    The stored chain cursor, channels and outbox belong to one ledger: against a reset or
    another devnet the cursor points past events that do not exist and deposits go to
    channels that ledger never saw. A store from before this check (no record) adopts the
    ledger it is first opened with; a ledger that cannot name its genesis (``genesis``
    None: an older devnet daemon) is checked by chain id only."""
    raw_chain, raw_genesis = store.get_meta(LEDGER_CHAIN_KEY), store.get_meta(LEDGER_GENESIS_KEY)
    chain, genesis = backend.chain_id, backend.genesis
    if raw_chain is not None:
        stored_chain, stored_genesis = int.from_bytes(raw_chain, "big"), raw_genesis or None
        if stored_chain != chain or (stored_genesis is not None and genesis is not None
                                     and stored_genesis != genesis):
            def name(c: int, g: bytes | None) -> str:
                return f"chain {c}, genesis {g.hex()[:16] if g else 'unknown'}"

            raise LedgerMismatch(
                f"the store in {where} was written against another ledger ({name(stored_chain, stored_genesis)}) "
                f"than the L1 given now ({name(chain, genesis)}): the devnet was reset or is another one; "
                "use a fresh data dir, or the original devnet")
        if stored_genesis is not None or genesis is None:
            return
    with store.transaction():
        store.set_meta(LEDGER_CHAIN_KEY, chain.to_bytes(8, "big"))
        if genesis is not None:
            store.set_meta(LEDGER_GENESIS_KEY, bytes(genesis))


@attrs.frozen(kw_only=True)
class ChannelInfo:
    channel_id: str
    peer_id: str
    state: str
    version: int
    asset: str
    balance: int
    peer_balance: int
    capacity: int

    def as_json(self) -> dict[str, Any]:
        return attrs.asdict(self)


@attrs.define
class PeerInfo:
    l1_address: bytes
    addresses: list[str]


def event_input(ev: ChainEvent, me: Address) -> ins.Input | None:
    """The core input for an L1 event about a channel (None: not one the core needs)."""
    d: Any = ev.data
    if ev.kind == "Deposited":
        return ins.ChainDeposited(asset=AssetId(str(d["asset"])), holdings=int(d["holdings"]),
                                  amount=int(d["amount"]), ours=d["depositor"] == me)
    if ev.kind in ("Registered", "Refuted"):
        return ins.ChainRegistered(signed=d["state"], deadline=int(d["deadline"]))
    if ev.kind == "Progressed":
        return ins.ChainProgressed(signed=d["state"], deadline=int(d["deadline"]), mover=int(d["mover"]))
    if ev.kind == "Checkpointed":
        return ins.ChainCheckpointed(signed=d["state"])
    if ev.kind == "SecretRegistered":
        return ins.ChainSecretRegistered(preimage=bytes(d["preimage"]), time=int(d["time"]))
    if ev.kind == "Concluded":
        return ins.ChainConcluded(version=Version(int(d["version"])))
    if ev.kind == "Withdrawn":
        return ins.ChainWithdrawn()
    if ev.kind == "LockResolved":
        return ins.ChainLockResolved(lock_id=bytes(d["lock_id"]), fulfilled=bool(d["fulfilled"]))
    return None


def view_inputs(view: ChannelOnChain) -> list[ins.Input]:
    """Core inputs that bring a channel up to the L1's current view of it (after lost events)."""
    out: list[ins.Input] = [ins.ChainDeposited(asset=asset, holdings=int(held), amount=0, ours=False)
                            for asset, held in view.holdings.items()]
    if view.registered is not None and not view.concluded:
        out.append(ins.ChainRegistered(signed=view.registered, deadline=int(view.deadline or 0)))
    if view.concluded and view.registered is not None:
        out.append(ins.ChainConcluded(version=view.registered.state.version))
    if view.withdrawn:
        out.append(ins.ChainWithdrawn())
    return out


class Node:
    """A channel peer. Create with ``Node.open``; every method is safe to call concurrently."""

    def __init__(self, config: NodeConfig, backend: Backend, transport: Transport, store: Store,
                 nursery: trio.Nursery, *, apps: AppRegistry = DEFAULT_APPS) -> None:
        self.config = config
        self.backend = backend
        self.ledger: Ledger = backend.ledger
        self.transport = transport
        self.l1_key: Signer = backend.signer
        self.store = store
        self.chain_id = backend.chain_id
        self.adjudicator = backend.adjudicator
        # The libp2p identity also signs invoices and holds the onion key (a route names nodes by it).
        self.identity = load_or_create_key(config.identity_path, use=LIBP2P_IDENTITY)
        hops = HopMachine(node_secret=onion_secret_from_ed25519_seed(self.identity.seed),
                          node_public=onion_public_from_ed25519(self.identity.public_key),
                          lock_margin=config.lock_margin,
                          limits=HopLimits(max_locks_in_flight=config.max_forwards_in_flight,
                                           min_final_expiry_delta=config.min_final_expiry_delta,
                                           mpp_timeout=config.mpp_timeout),
                          default_policy=FeePolicy(base_fee=config.fee_base, fee_ppm=config.fee_ppm,
                                                   expiry_delta=config.expiry_delta))
        self.engine = Engine(store, Env(scheme=backend.scheme, signer=backend.signer, apps=apps,
                                        funding_timeout=config.funding_timeout, lock_margin=config.lock_margin),
                             max_events=config.max_events, hops=hops)
        self.payments = Payments(self, hops)  # invoices, multi-hop payments, fees (channels.node.payments)
        self.stats = self.engine.stats  # counters for monitoring (channels.node.stats)
        self.block_time = backend.block_time  # seconds per L1 block
        self._nursery = nursery
        # Bounded: peers' readers wait when the engine falls behind (back-pressure), instead
        # of a flood of frames piling up in memory.
        self._inputs, self._input_recv = trio.open_memory_channel[Item](MAX_QUEUED_INPUTS)
        self._submits, self._submit_recv = trio.open_memory_channel[tuple[Channel, fx.Effect, int]](
            MAX_QUEUED_SUBMITS)
        self._links: dict[str, PeerLink] = {}
        self._peers: dict[str, PeerInfo] = {
            p: PeerInfo(addr, addrs) for p, (addr, addrs) in store.peers().items()}
        self._peer_seen = trio.Event()
        self._inbound: dict[str, int] = {}
        # Local pay() calls in progress by payment id: (channel, asset, amount) and how many
        # callers wait on it (concurrent retries share one outcome).
        self._paying: dict[bytes, tuple[tuple[ChannelId, AssetId, int], int]] = {}
        self._l1_down: tuple[float, str] | None = None  # since (monotonic), last error
        self._peer_watch: set[str] = set()  # peers whose connection is watched for a peer_disconnected event
        self.dev: DevTools | None = DevTools() if config.dev else None  # ``--dev``: this node may cheat
        self.towers = TowerClients(self)  # watchtowers that get every co-signed state (channels.node.towers)
        # Called with the ids of the channels each committed step changed (after the commit):
        # services built on the node (the game referee) react without polling.
        self.on_commit: list[Callable[[list[ChannelId]], None]] = []
        self.gossip: NodeGossip | None = None  # the channel graph over gossipsub (channels.node.gossip_link)
        self._l1_logged = -math.inf
        self.stopped = trio.Event()

    # ------------------------------------------------------------------ lifecycle

    @classmethod
    @asynccontextmanager
    async def open(cls, config: NodeConfig, *, ledger: Ledger | None = None, backend: Backend | None = None,
                   transport: Transport | None = None, apps: AppRegistry = DEFAULT_APPS) -> AsyncIterator["Node"]:
        """Run a node until the block exits. Give the L1 as a ``backend`` (scheme, key,
        ledger), or as a ``ledger`` that builds one with the key in the data dir. Without
        ``transport`` a libp2p host is started on ``config.listen`` with the identity
        stored in the data dir. ``apps`` are the channel apps (games) this node plays;
        the L1 must know the same rules."""
        config.data_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(config.data_dir, 0o700)
        if backend is None:
            if ledger is None:
                raise ConfigError("Node.open needs a backend or a ledger")
            backend = await ledger.backend(config.l1_key_path)  # type: ignore[attr-defined]
        store = Store(config.db_path)
        try:
            check_ledger(store, backend, config.data_dir)  # before anything is read or written
            store.prune_peers()
            async with _open_transport(config, transport) as net, trio.open_nursery() as nursery:
                node = cls(config, backend, net, store, nursery, apps=apps)
                for cid, peer, reason in store.quarantined():
                    log.error("channel %s (peer %s) has an unreadable record, set aside in the quarantine table: "
                              "%s", cid.hex()[:12], peer, reason)
                net.set_handler(PROTOCOL_CHANNEL, node._serve_stream)
                await nursery.start(node._run_engine)
                nursery.start_soon(node._run_submitter)
                for seq, cid, blob in store.l1_pending():  # decided before a crash, maybe never sent
                    ch = node.engine.channels.get(ChannelId(cid))
                    if ch is not None:
                        node._queue_submit(ch, submission_from_bytes(blob), seq)
                nursery.start_soon(node._watch_chain)
                nursery.start_soon(node._tick)
                node.towers.start(nursery)
                if transport is None and config.gossip:  # our own libp2p host: gossip runs on it
                    node.gossip = await NodeGossip.start(node, nursery, net)
                for peer in node.engine.all_peers():
                    if node._worth_redialling(peer):
                        node._link(peer)
                try:
                    yield node
                finally:
                    node.engine.event_log.close()  # followers end rather than wait on a closed store
                    nursery.cancel_scope.cancel()
        finally:
            store.close()

    @property
    def peer_id(self) -> str:
        return self.transport.peer_id

    @property
    def addresses(self) -> list[str]:
        return list(self.transport.addresses)

    @property
    def l1_address(self) -> Address:
        return self.l1_key.address

    # ------------------------------------------------------------------ public API

    async def connect(self, address: str, *, timeout: float = 10.0) -> str:
        """Connect to a peer by full multiaddr and wait until it has introduced itself.

        A failure says why in one line as soon as it is known: the dial failed, the peer
        does not serve the channel protocol, it closed our stream without introducing
        itself (it refused our ``Init``), or it sent no ``Init`` within ``timeout`` s."""
        peer = await self.transport.connect(address)
        link = self._link(peer)
        seen = link.outcomes
        link.kick()
        with trio.move_on_after(timeout):
            while not self._introduced(peer):
                if link.outcomes > seen:
                    seen = link.outcomes
                    if link.stage == REFUSED:
                        log.debug("peer %s refused a channel stream: %s", peer, link.error)
                        raise NotAChannelPeer(f"peer {peer} does not serve the channel protocol {PROTOCOL_CHANNEL}")
                    if link.stage == BROKE and self.transport.is_connected(peer):
                        raise PeerNotConnected(f"peer {peer} closed our channel stream without introducing itself "
                                               "(it refused our Init: another chain, or too many peers)")
                    if link.stage in (UNREACHABLE, BROKE):
                        if not self.transport.is_connected(peer):
                            raise PeerNotConnected(f"the connection to {peer} closed before it introduced itself")
                        link.kick()  # an attempt from before our connection: try again on it
                await _first_of(self._peer_seen.wait, link.wait_changed, partial(trio.sleep, 0.2))
            return peer
        if not self.transport.is_connected(peer):
            raise PeerNotConnected(f"the connection to {peer} closed before it introduced itself")
        raise PeerNotConnected(f"peer {peer} sent no Init within {timeout:g} s (is it a channel node of chain "
                               f"{self.chain_id}?)")

    def _introduced(self, peer: str) -> bool:
        return peer in self._peers and self.transport.is_connected(peer)

    async def open_channel(self, peer_id: str | Sequence[str], amount: int, *, asset: AssetId = NATIVE,
                           peer_amount: int = 0, challenge_duration: int | None = None,
                           app_id: str = "payment", timeout: float = 60.0) -> ChannelId:
        """Propose a channel funded with ``amount`` (and ``peer_amount`` by the peer);
        return its id once both deposits are seen on the L1.

        ``peer_id`` may be a list of two or more peers: an n-party channel (proto/02 section
        13) where each of them deposits ``peer_amount``. Its participants must be connected to
        each other as well (each declines the proposal otherwise)."""
        if not isinstance(peer_id, str):
            peers = list(peer_id)
            if len(peers) == 1:
                peer_id = peers[0]
            else:
                return await self._open_multi(peers, amount, asset=asset, peer_amount=peer_amount,
                                              challenge_duration=challenge_duration, app_id=app_id, timeout=timeout)
        check_peer_id = getattr(self.transport, "check_peer_id", None)
        if check_peer_id is not None:
            check_peer_id(peer_id)  # a malformed id is refused at once, not after a wait
        if amount < 0 or peer_amount < 0 or amount + peer_amount <= 0:
            raise LocalProtocolError("a channel needs a positive total deposit")
        if not self.transport.is_connected(peer_id) and peer_id not in self._links:
            # Nothing would bring it here (no connection, no link redialling it): say so now.
            raise PeerNotConnected(f"not connected to {peer_id}; run connect first")
        duration = await self._check_funds_and_window(amount, asset, challenge_duration)
        await self._wait_peer(peer_id, 10.0)
        peer = self._peers[peer_id]
        params = ChannelParams(chain_id=self.chain_id, adjudicator=self.adjudicator,
                               participants=(self.l1_address, Address(peer.l1_address)),
                               challenge_duration=duration,
                               nonce=os.urandom(32), app_id=app_id)
        allocation = Allocation(assets=(asset,), balances=((amount, peer_amount),))
        channel, effects = propose_channel(params, allocation, env=self.engine.env)
        waiter = Waiter()
        await self._inputs.send(OpenItem(peer_id=peer_id, channel=channel, effects=effects, waiter=waiter,
                                         peer_row=(peer.l1_address, peer.addresses)))
        with trio.fail_after(timeout):
            return ChannelId(await waiter.wait())

    async def pay(self, channel_id: ChannelId, amount: int, *, asset: AssetId | None = None,
                  payment_id: bytes | None = None) -> Version:
        """Pay the channel's peer; return the version that carries the payment.

        Raises ``PaymentFailed`` if the payment did not go through. If the caller is
        cancelled (a timeout), a payment still only queued is withdrawn; one already
        signed may still complete: ``payment_status(payment_id)`` tells."""
        ch = self._channel(channel_id)
        payment_id = PaymentId(payment_id or os.urandom(16))
        asset = asset or ch.allocation.assets[0]
        same = (channel_id, asset, amount)
        # An id names one payment: a retry with other terms would be reported as paid while
        # only the first amount moved (or pay twice), so it is refused.
        known = self.store.payment_of(payment_id)
        if known is not None and known[0] == "sent" and (known[1], known[2]) != (channel_id, amount):
            raise LocalProtocolError(f"payment id {payment_id.hex()} was already used for {known[2]} on channel "
                                     f"{known[1].hex()[:12]}; use another id")
        if self._paying.get(payment_id, (same, 0))[0] != same:
            raise LocalProtocolError(f"payment id {payment_id.hex()} is in flight with other terms; use another id")
        done = self.store.payment(payment_id)
        if done is not None and done[0] == "sent":  # a retry of a payment that went through
            return Version(int(done[1]))
        waiter = self.engine.payment_waiters.get(payment_id)
        first = waiter is None
        if waiter is None:
            waiter = self.engine.payment_waiters[payment_id] = Waiter()
        callers = self._paying.get(payment_id, (same, 0))[1] + 1
        self._paying[payment_id] = (same, callers)
        started = trio.current_time()
        try:
            if first and not any(op.key == payment_id for op in ch.in_flight):  # a retry waits for the original
                action = ins.ActionPay(payment_id=payment_id, asset=asset, amount=amount)
                await self._inputs.send(CoreItem(channel_id=channel_id, input=action, waiter=waiter))
            version = Version(await waiter.wait())
            if first:  # one latency per payment, not per concurrent retry
                self.stats.payment_done("sent", trio.current_time() - started)
            return version
        except ChannelsError:
            if first:
                self.stats.payment_done("failed", trio.current_time() - started)
            raise
        except trio.Cancelled:
            if self._paying[payment_id][1] == 1:  # the last caller gives up: withdraw it if still queued
                cancel = CoreItem(channel_id=channel_id, input=ins.ActionCancelPay(payment_id=payment_id))
                try:
                    self._inputs.send_nowait(cancel)
                except trio.WouldBlock:
                    self._nursery.start_soon(self._inputs.send, cancel)
            raise
        finally:
            terms, left = self._paying[payment_id]
            if left > 1:
                self._paying[payment_id] = (terms, left - 1)
            else:
                del self._paying[payment_id]
                self.engine.payment_waiters.pop(payment_id, None)

    async def add_lock(self, channel_id: ChannelId, amount: int, hashlock: bytes, expiry: int, *,
                       lock_id: bytes | None = None, asset: AssetId | None = None) -> bytes:
        """Lock ``amount`` for the peer until ``expiry`` (L1 time) against ``hashlock``; return
        the lock id once the state holding the lock is signed by both."""
        ch = self._channel(channel_id)
        op = AddLock(lock_id=lock_id or os.urandom(16), asset=asset or ch.allocation.assets[0], amount=amount,
                     hashlock=hashlock, expiry=expiry)
        await self._propose(channel_id, op)
        return op.lock_id

    async def fulfill_lock(self, channel_id: ChannelId, lock_id: bytes, preimage: bytes) -> Version:
        """Claim a lock paying us with its preimage. The secret is stored first: if the peer
        does not settle in time, the node claims the lock on the L1 before its expiry."""
        return await self._propose(channel_id, FulfillLock(lock_id=lock_id, preimage=preimage))

    async def fail_lock(self, channel_id: ChannelId, lock_id: bytes, *, reason: int = 0) -> Version:
        """Give a lock back to its payer (as payee at any time; as payer once it expired)."""
        return await self._propose(channel_id, FailLock(lock_id=lock_id, reason=reason))

    async def move(self, channel_id: ChannelId, payload: bytes, *, move_id: bytes | None = None) -> Version:
        """Play an app move; return the version of the state that carries it."""
        return await self._propose(channel_id, AppMove(move_id=move_id or os.urandom(16), payload=payload))

    async def dev_register_stale(self, channel_id: ChannelId, version: int) -> SignedState:
        """``--dev`` only: register an older co-signed state on the L1 as a cheater would, and
        stop defending the channel. Returns the state registered."""
        if self.dev is None:
            raise DevModeOff("dev commands need a node started with --dev")
        ch = self._channel(channel_id)
        stale = self.dev.stale_state(ch, version)
        self.dev.stop_defending(channel_id)
        log.warning("dev mode: registering stale version %d of %s", version, channel_id.hex()[:12])
        await self.ledger.register(self.l1_key, ch.params, stale)
        return stale

    async def checkpoint(self, channel_id: ChannelId) -> None:
        """Anchor the latest state on the L1: a registration can never go below it."""
        waiter = Waiter()
        await self._inputs.send(CoreItem(channel_id=channel_id, input=ins.ActionCheckpoint(), waiter=waiter))
        await waiter.wait()

    async def _propose(self, channel_id: ChannelId, op: Operation) -> Version:
        self._channel(channel_id)
        waiter = Waiter()
        self.engine.payment_waiters[op.key] = waiter
        try:
            await self._inputs.send(CoreItem(channel_id=channel_id, input=ins.ActionPropose(operation=op),
                                             waiter=waiter))
            return Version(await waiter.wait())
        finally:
            self.engine.payment_waiters.pop(op.key, None)

    def payment_status(self, payment_id: bytes) -> str:
        """``sent``, ``failed``, or ``unknown`` (never seen, or still in flight)."""
        row = self.store.payment(payment_id)
        return row[0] if row else "unknown"

    async def close(self, channel_id: ChannelId, *, force: bool = False, wait: bool = True,
                    timeout: float = 120.0) -> Channel:
        """Close cooperatively (or ``force``: register on the L1); with ``wait``,
        return once the funds are back in the L1 accounts."""
        self._channel(channel_id)
        action: ins.Input = ins.ActionForceClose() if force else ins.ActionClose()
        waiter = Waiter()
        await self._inputs.send(CoreItem(channel_id=channel_id, input=action, waiter=waiter))
        await waiter.wait()
        if wait:
            with trio.fail_after(timeout):
                return await self.wait_phase(channel_id, Phase.SETTLED)
        return self._channel(channel_id)

    async def wait_phase(self, channel_id: ChannelId, phase: Phase) -> Channel:
        while True:
            ch = self._channel(channel_id)
            if ch.phase is phase:
                return ch
            await self.engine.changed.wait()

    async def wait_version(self, channel_id: ChannelId, version: int) -> Channel:
        while True:
            ch = self._channel(channel_id)
            if ch.version >= version:
                return ch
            await self.engine.changed.wait()

    def channel(self, channel_id: ChannelId) -> Channel:
        return self._channel(channel_id)

    def list_channels(self) -> list[ChannelInfo]:
        out = []
        for cid, ch in sorted(self.engine.channels.items()):
            alloc = ch.allocation
            out.append(ChannelInfo(channel_id=cid.hex(), peer_id=self.engine.peer_of[cid], state=ch.phase.value,
                                   version=ch.version, asset=alloc.assets[0], balance=alloc.balances[0][ch.me],
                                   peer_balance=alloc.balances[0][ch.peer], capacity=alloc.total(0)))
        return out

    def find_channel(self, prefix: str) -> ChannelId:
        """A channel id from its hex form (a unique prefix is enough)."""
        matches = [cid for cid in self.engine.channels if cid.hex().startswith(prefix.lower())]
        if len(matches) != 1:
            raise UnknownChannel(f"no channel matches {prefix!r}" if not matches
                                 else f"{prefix!r} matches {len(matches)} channels; give more digits")
        return matches[0]

    def connected_peers(self) -> list[str]:
        """Peers that introduced themselves and are connected now."""
        return sorted(p for p in self._peers if self.transport.is_connected(p))

    # -- events (``channels.node.events``: kinds, cursors, the bound and what happens at it)

    def events(self, since: int | None = None) -> EventFeed:
        """Every event after cursor ``since`` (None: from now on), then each new one as it
        happens: ``async for event in node.events(since=last_handled): ...``. A consumer that
        restarts passes the last cursor it handled and loses nothing. Raises ``EventsLost``
        (at once, or while following if it falls ``max_events`` behind) when some were
        dropped to keep the log bounded, and ``UnknownCursor`` for a cursor never given.
        The iteration ends when the node stops."""
        log_ = self.engine.event_log
        return log_.follow(log_.start(since))

    def read_events(self, since: int | None = None, *, limit: int = 1000) -> list[NodeEvent]:
        """Up to ``limit`` events after ``since`` without waiting (None: the oldest still kept)."""
        log_ = self.engine.event_log
        return log_.read(log_.start(log_.oldest_since() if since is None else since), limit)

    @property
    def last_event_cursor(self) -> int:
        """The newest cursor given so far (0: none yet)."""
        return self.engine.event_log.last

    def connection_stats(self) -> dict[str, Any]:
        """Live connection counts and limits from the transport (empty if it keeps none)."""
        stats = getattr(self.transport, "connection_stats", None)
        return dict(stats()) if stats is not None else {}

    # -- operator views (``list-peers``, ``disconnect``, ``list-funds``)

    def list_peers(self) -> list[dict[str, Any]]:
        """Peers connected now, peers we share a channel with, and peers that introduced
        themselves since start (bounded by ``max_peers_without_channel``). A connection that
        has not sent its ``Init`` yet has no known L1 account (``l1_account`` None)."""
        live = getattr(self.transport, "connected_peers", None)
        ids = set(self._peers) | set(self.engine.peer_of.values()) | set(live() if live is not None else ())
        out = []
        for peer in sorted(ids):
            info = self._peers.get(peer)
            out.append({"peer_id": peer, "connected": self.transport.is_connected(peer),
                        "addresses": list(info.addresses) if info else [],
                        "l1_account": info.l1_address.hex() if info else None,
                        "num_channels": len(self.engine.channels_of(peer))})
        return out

    async def disconnect(self, peer_id: str) -> bool:
        """Close every connection to ``peer_id`` now. Returns whether it comes back: a peer
        whose channels need it (``_worth_redialling``) is redialled by its link, by either
        side, so this resets such a connection rather than ending it."""
        if not self.transport.is_connected(peer_id):
            raise PeerNotConnected(f"peer {peer_id} is not connected; see list-peers")
        await self.transport.disconnect(peer_id)
        return self._worth_redialling(peer_id)

    def funds_by_phase(self) -> dict[str, dict[str, dict[str, int]]]:
        """Channel funds summed per phase and asset: ``{phase: {asset: {ours, theirs, locked}}}``
        (``locked``: held in hash-time locks, either way). Settled channels hold nothing."""
        out: dict[str, dict[str, dict[str, int]]] = {}
        for ch in self.engine.channels.values():
            if ch.phase is Phase.SETTLED:
                continue
            alloc = ch.allocation
            for i, asset in enumerate(alloc.assets):
                row = out.setdefault(ch.phase.value, {}).setdefault(str(asset), {"ours": 0, "theirs": 0, "locked": 0})
                row["ours"] += alloc.balances[i][ch.me]
                row["theirs"] += alloc.balances[i][ch.peer]
                row["locked"] += sum(lk.amount for lk in alloc.locks if lk.asset == asset)
        return out

    def alarms(self) -> dict[str, str]:
        """Conditions an operator must act on (name -> one line); empty when healthy."""
        out: dict[str, str] = {}
        if self._l1_down is not None:
            since, error = self._l1_down
            out["l1_unreachable"] = (f"cannot reach the L1 for {trio.current_time() - since:.0f} s: {error}; "
                                     "disputes cannot be answered until it is back")
        bad = self.store.quarantined()
        if bad:
            out["quarantined_records"] = (f"{len(bad)} channel record(s) could not be read and were set aside "
                                          f"(first: {bad[0][0].hex()[:12]}: {bad[0][2]})")
        return out

    async def _check_funds_and_window(self, amount: int, asset: AssetId, challenge_duration: int | None) -> int:
        """Before a channel is proposed: our deposit is on our L1 account and the challenge
        window (ours, or the configured one, which is returned) is one we accept."""
        balance = await self.ledger.balance(self.l1_address, asset)
        if amount > balance:
            raise LocalProtocolError(
                f"L1 balance {balance} {asset} is below the deposit {amount}; fund the account first")
        duration = challenge_duration or self.config.challenge_duration
        too_short = self._window_too_short(duration)
        if too_short is not None:
            raise LocalProtocolError(too_short)
        return duration

    def _window_too_short(self, duration: int) -> str | None:
        """Why a challenge window of ``duration`` seconds is unsafe for us, or None.

        Short-window theft: a window that ends at the next block lets a stale
        registration win the race against our refute. The window must cover both a
        minimum time and a minimum number of L1 blocks (proto/02 section 12)."""
        blocks = self.config.min_challenge_blocks * self.block_time
        if duration < self.config.min_challenge_duration or duration < blocks:
            return (f"challenge window of {duration} s is below our minimum of "
                    f"{max(self.config.min_challenge_duration, math.ceil(blocks))} s "
                    f"({self.config.min_challenge_duration} s and {self.config.min_challenge_blocks} L1 blocks)")
        return None

    # ------------------------------------------------------------------ internals

    def _channel(self, channel_id: ChannelId) -> Channel:
        ch = self.engine.channels.get(channel_id)
        if ch is None:
            raise UnknownChannel(f"unknown channel {channel_id.hex()}; see list-channels")
        return ch

    async def _wait_peer(self, peer_id: str, timeout: float) -> None:
        with trio.move_on_after(timeout):
            while peer_id not in self._peers or not self.transport.is_connected(peer_id):
                with trio.move_on_after(0.2):  # connectivity can also change without an Init
                    await self._peer_seen.wait()
            return
        raise PeerNotConnected(f"peer {peer_id} is not connected; run connect first")

    async def _open_multi(self, peer_ids: list[str], amount: int, *, asset: AssetId, peer_amount: int,
                          challenge_duration: int | None, app_id: str, timeout: float) -> ChannelId:
        """Propose an n-party channel: we are participant 0, the peers follow in the order given."""
        if len(set(peer_ids)) != len(peer_ids) or self.peer_id in peer_ids:
            raise LocalProtocolError("the peers of a channel are distinct and other than this node")
        if len(peer_ids) + 1 > MAX_PARTICIPANTS:
            raise LocalProtocolError(f"a channel has at most {MAX_PARTICIPANTS} participants")
        check_peer_id = getattr(self.transport, "check_peer_id", None)
        for p in peer_ids:
            if check_peer_id is not None:
                check_peer_id(p)
            if not self.transport.is_connected(p) and p not in self._links:
                raise PeerNotConnected(f"not connected to {p}; run connect first")
        if amount <= 0 or peer_amount < 0:
            raise LocalProtocolError("the opener of an n-party channel deposits a positive amount")
        duration = await self._check_funds_and_window(amount, asset, challenge_duration)
        for p in peer_ids:
            await self._wait_peer(p, 10.0)
        infos = [self._peers[p] for p in peer_ids]
        addresses = [self.l1_address, *(Address(info.l1_address) for info in infos)]
        if len(set(addresses)) != len(addresses):
            raise LocalProtocolError("two of these peers prove the same L1 account")
        params = ChannelParams(chain_id=self.chain_id, adjudicator=self.adjudicator, participants=tuple(addresses),
                               challenge_duration=duration, nonce=os.urandom(32), app_id=app_id)
        allocation = Allocation(assets=(asset,), balances=((amount, *(peer_amount,) * len(peer_ids)),))
        channel, effects = propose_channel(params, allocation, env=self.engine.env)
        waiter = Waiter()
        rows = tuple((p, (info.l1_address, info.addresses)) for p, info in zip(peer_ids, infos, strict=True))
        await self._inputs.send(OpenItem(peer_id=peer_ids[0], channel=channel, effects=effects, waiter=waiter,
                                         peers=("", *peer_ids), rows=rows))
        with trio.fail_after(timeout):
            return ChannelId(await waiter.wait())

    def _init_frame(self) -> bytes:
        sig = self.l1_key.sign_digest(init_digest(self.peer_id, self.chain_id))
        return encode_message(Init(l1_address=self.l1_address, chain_id=self.chain_id,
                                   addresses=tuple(self.addresses[:8]), signature=sig))

    def _link(self, peer_id: str) -> PeerLink:
        link = self._links.get(peer_id)
        if link is None:
            link = PeerLink(peer_id, self.transport, self._init_frame, self._on_link_up,
                            self.config.reconnect_interval, addresses=lambda: self._peer_addresses(peer_id),
                            persistent=lambda: self._worth_redialling(peer_id),
                            backlog=lambda: self.store.outbox_frames(peer_id, limit=MAX_OUTBOX_FRAMES),
                            on_sent=lambda seq: self._frame_sent(peer_id, seq))
            self._links[peer_id] = link
            self._nursery.start_soon(self._run_link, link)
        return link

    def _frame_sent(self, peer_id: str, seq: int) -> None:
        """A frame from the outbox reached the peer's stream: the next step deletes its row."""
        sent = self.engine.sent_upto
        sent[peer_id] = max(seq, sent.get(peer_id, 0))

    async def _run_link(self, link: PeerLink) -> None:
        try:
            await link.run()
        finally:
            if self._links.get(link.peer_id) is link:
                del self._links[link.peer_id]

    def _worth_redialling(self, peer_id: str) -> bool:
        """A link is kept up (redialled) only for channels that need the peer: funded ones,
        and proposals of ours still waiting for their accept."""
        for cid in self.engine.channels_of(peer_id):
            ch = self.engine.channels[cid]
            if ch.phase in (Phase.OPEN, Phase.CLOSING, Phase.DISPUTED):
                return True
            if ch.phase in (Phase.PROPOSED, Phase.FUNDING) and ch.latest_proposer == ch.me:
                return True
        return False

    def _peer_addresses(self, peer_id: str) -> list[str]:
        info = self._peers.get(peer_id)
        return [a if "/p2p/" in a else f"{a}/p2p/{peer_id}" for a in (info.addresses if info else [])]

    async def _on_link_up(self, peer_id: str) -> None:
        await self._inputs.send(PeerUpItem(peer_id=peer_id))
        if peer_id not in self._peer_watch:  # one watcher per connection, for its peer_disconnected event
            self._peer_watch.add(peer_id)
            self._nursery.start_soon(self._watch_peer_down, peer_id)

    async def _watch_peer_down(self, peer_id: str) -> None:
        try:
            await self.transport.wait_disconnected(peer_id)
        finally:
            self._peer_watch.discard(peer_id)
        await self._inputs.send(PeerDownItem(peer_id=peer_id))

    async def _serve_stream(self, stream: Any) -> None:
        """One inbound stream from a peer: ``Init`` first, then channel messages."""
        peer = stream.remote_peer_id
        if self._inbound.get(peer, 0) >= self.config.max_streams_per_peer:
            # Stream flooding: a peer may hold only a few inbound streams at once.
            log.warning("peer %s opened too many streams; resetting", peer)
            await stream.reset()
            return
        self._inbound[peer] = self._inbound.get(peer, 0) + 1
        try:
            init = None
            with trio.move_on_after(self.config.init_timeout):
                # Held streams: a stream that never introduces itself would be kept forever.
                init = decode_message(await stream.receive())
            if init is None:
                log.info("peer %s sent no Init within %s s; closing", peer, self.config.init_timeout)
                await stream.reset()
                return
            # The wire takes any backend's address length; ours is the one that counts (an
            # address of another length could never sign a state our L1 accepts).
            if not isinstance(init, Init) or init.chain_id != self.chain_id \
                    or len(init.l1_address) != self.backend.address_length or not verify_init(
                    self.backend.scheme, peer, init.chain_id, init.l1_address, init.signature):
                log.warning("peer %s sent no valid Init (wrong chain or bad signature); closing", peer)
                await stream.reset()
                return
            if not self._admit_peer(peer):
                log.warning("peer %s refused: %d peers without a channel already", peer,
                            self.config.max_peers_without_channel)
                await stream.reset()
                return
            self._peers[peer] = PeerInfo(init.l1_address, list(init.addresses))
            if self.engine.channels_of(peer):  # channel-less peers are not stored (free identities)
                self.store.save_peer(peer, init.l1_address, list(init.addresses))
            self._peer_seen.set()  # wake every waiter, then arm a fresh event
            self._peer_seen = trio.Event()
            link = self._link(peer)
            link.kick()
            if link.up:
                await self._inputs.send(PeerUpItem(peer_id=peer))
            while True:
                frame = await stream.receive()
                try:
                    message = decode_message(frame)
                except DecodeError as exc:
                    log.warning("peer %s sent an invalid frame: %s", peer, exc)
                    if getattr(exc, "must_close", True):
                        await stream.reset()
                        return
                    continue
                if message is None:
                    continue  # unknown odd type: optional, ignored
                await self._route_message(peer, message)
        except ChannelsError as exc:
            log.debug("inbound stream from %s ended: %s", peer, exc)
        finally:
            self._inbound[peer] -= 1
            if not self._inbound[peer]:
                del self._inbound[peer]  # keyed by peer ids, which are free: never keep zeros

    def _peer_row(self, peer: str) -> tuple[bytes, list[str]] | None:
        info = self._peers.get(peer)
        return None if info is None else (info.l1_address, list(info.addresses))

    def _admit_peer(self, peer: str) -> bool:
        """Whether a peer introducing itself may be kept in memory.

        Free identities: anyone can make new peer ids, so peers without a channel are
        capped; the cap first evicts a disconnected one, else refuses the newcomer."""
        if peer in self._peers or self.engine.channels_of(peer):
            return True
        idle = [p for p in self._peers if not self.engine.channels_of(p)]
        if len(idle) < self.config.max_peers_without_channel:
            return True
        for p in idle:
            if not self.transport.is_connected(p):
                del self._peers[p]
                return True
        return False

    async def _route_message(self, peer: str, message: Any) -> None:
        if isinstance(message, ChannelProposal):
            peers, rows = self._participant_peers(message)
            await self._inputs.send(ProposalItem(peer_id=peer, proposal=message, accept=self._accept_policy,
                                                 max_in_flight=self.config.max_proposals_per_peer,
                                                 max_unfinished=self.config.max_unfinished_channels,
                                                 peer_row=self._peer_row(peer), peers=peers, rows=rows))
            return
        inp = ins.receive(message)
        if inp is None:
            log.warning("peer %s sent an unexpected %s", peer, type(message).__name__)
            return
        cid = message.channel_id
        if cid not in self.engine.channels:
            log.info("peer %s sent %s for an unknown channel", peer, type(message).__name__)
            return
        await self._inputs.send(CoreItem(channel_id=cid, input=inp, peer_id=peer))

    def _participant_peers(self, proposal: ChannelProposal) -> tuple[tuple[str, ...] | None, tuple[Any, ...]]:
        """n-party proposals: each participant's peer id, found among the connected peers by
        the L1 account its Init proved ("" for us; None if one is not connected), and their rows."""
        participants = proposal.params.participants
        if len(participants) <= 2:
            return None, ()
        # Account substitution: only a peer whose Init signature proved an L1 address is taken
        # for that participant, so nobody can sit in a channel under someone else's account.
        by_account = {bytes(info.l1_address): p for p, info in self._peers.items() if self.transport.is_connected(p)}
        peers = tuple("" if bytes(a) == bytes(self.l1_address) else by_account.get(bytes(a), "?")
                      for a in participants)
        if "?" in peers or peers.count("") != 1:
            return None, ()
        rows = tuple((p, (self._peers[p].l1_address, list(self._peers[p].addresses))) for p in peers if p)
        return peers, rows

    def _accept_policy(self, peer: str, proposal: ChannelProposal) -> str | None:
        params, alloc = proposal.params, proposal.allocation
        try:
            params.validate()
            alloc.validate(len(params.participants))
        except ChannelsError as exc:
            return f"invalid proposal: {exc}"
        info = self._peers.get(peer)
        if info is None or self.l1_address not in params.participants:
            return "we are not a participant"
        me = params.participants.index(self.l1_address)
        # The proposer: the other one of two, participant 0 of an n-party channel.
        proposer = 1 - me if len(params.participants) == 2 else 0
        if params.participants[proposer] != info.l1_address:
            # Account substitution: the proposer must be the L1 account its Init proved.
            return "the proposer's L1 address is not the one it announced"
        if params.chain_id != self.chain_id or params.adjudicator != self.adjudicator:
            return "wrong chain or adjudicator"
        if len(params.participants) > 2 and params.app_id == "payment":
            # Zombie channels: an n-party channel carries no payments (proto/02 section 13), so
            # one without a game would only lock our deposit for nothing.
            return "an n-party channel carries a game, not payments"
        too_short = self._window_too_short(params.challenge_duration)
        if too_short is not None:
            return too_short
        if params.challenge_duration > self.config.max_challenge_duration:
            return f"challenge window of {params.challenge_duration} s is above our maximum"
        if not any(row[proposer] for row in alloc.balances):
            # Zombie channels: a proposer that deposits nothing risks nothing; a free
            # identity could pin our records and ticks at no cost.
            return "the proposer deposits nothing"
        ours = sum(row[me] for row in alloc.balances)
        if ours > self.config.auto_accept_funding:
            return f"we do not auto-fund {ours}"
        return None

    async def _run_engine(self, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        self.engine.now = await self.ledger.now()
        if self.engine.hops is not None:  # one read of the records, with the L1 time for the replay tags
            self.engine.hops.load([kind.from_bytes(body) for kind, status in _LIVE_RECORDS
                                   for _, _, _, body in self.store.hop_records(kind.KIND, status=status)],
                                  self.engine.now)
        task_status.started()
        while True:
            items = [await self._input_recv.receive()]
            while len(items) < MAX_BATCH_ITEMS:
                try:
                    items.append(self._input_recv.receive_nowait())
                except trio.WouldBlock:
                    break
            out = self.engine.step(items)
            for (peer, frame), seq in zip(out.sends, out.send_seqs, strict=True):
                self._link(peer).send(frame, seq)
            for (ch, effect), seq in zip(out.submits, out.submit_seqs, strict=True):
                self._queue_submit(ch, effect, seq)
            for waiter, value, error in out.wakeups:
                waiter.set(value, error)
            if out.resolved:
                self.payments.resolved(out.resolved)
            for peer, reject in out.rejects:
                self.stats.reject(reject.reason, reject.action.value)
                log.log(logging.WARNING if reject.action is not fx.RejectAction.IGNORE else logging.DEBUG,
                        "peer %s: %s (%s)", peer, reject.reason, reject.action.value)
                if reject.action is fx.RejectAction.DISCONNECT:
                    self._nursery.start_soon(self.transport.disconnect, peer)
            if out.changed:
                self.towers.changed()
                for hook in self.on_commit:
                    hook(out.changed)
            if self.dev is not None:
                for cid in out.changed:
                    self.dev.remember(self.engine.channels[cid])
            for cid, notice in out.notices:  # payments are in the store; lifecycle events are logged
                level = logging.DEBUG if isinstance(notice, fx.NotifyPaymentReceived) else logging.INFO
                log.log(level, "channel %s: %s", cid.hex()[:12], Brief(notice))  # ids as hex

    def _queue_submit(self, ch: Channel, effect: fx.Effect, seq: int) -> None:
        try:
            self._submits.send_nowait((ch, effect, seq))
        except trio.WouldBlock:
            # The L1 is slow or away: the outbox row stays and is sent after a restart, and
            # the core's ticks resend every submission until the L1 shows it.
            log.debug("L1 submission queue full; %s left in the outbox", type(effect).__name__)

    async def _run_submitter(self) -> None:
        """Send L1 transactions from the outbox, once each; failures are logged, and the
        core's ticks resend until the L1 shows the result."""
        async for ch, effect, seq in self._submit_recv:
            try:
                self.stats.l1_submitted(submission_kind(effect))
                await self._submit(ch, effect)
            except LedgerError as exc:
                # "already ..." and "window_open" are the answers to a resend or an early retry.
                code = getattr(exc, "code", "")
                level = logging.DEBUG if "already" in code or code == "window_open" else logging.WARNING
                log.log(level, "L1 %s for %s refused: %s", type(effect).__name__, ch.channel_id.hex()[:12], exc)
                self.stats.l1_failed(submission_kind(effect), code)
            except ChannelsError as exc:
                log.warning("L1 %s failed: %s", type(effect).__name__, exc)
                self.stats.l1_failed(submission_kind(effect), type(exc).__name__)
            self.engine.l1_done.append(seq)

    async def _submit(self, ch: Channel, effect: fx.Effect) -> None:
        key, ledger, params = self.l1_key, self.ledger, ch.params
        if self.dev is not None and not self.dev.defends(ch.channel_id) and isinstance(
                effect, (fx.SubmitRefute, fx.SubmitRegister, fx.SubmitConclude)):
            log.warning("dev mode: not defending %s (%s dropped)", ch.channel_id.hex()[:12], type(effect).__name__)
            return
        if isinstance(effect, fx.SubmitDeposit):
            await ledger.deposit(key, effect.channel_id, effect.asset, effect.amount)
        elif isinstance(effect, fx.SubmitConclude):
            await ledger.conclude(key, params, effect.signed)
        elif isinstance(effect, fx.SubmitRegister):
            await ledger.register(key, params, effect.signed)
        elif isinstance(effect, fx.SubmitRefute):
            await ledger.refute(key, params, effect.signed)
        elif isinstance(effect, fx.SubmitWithdraw):
            await ledger.withdraw(key, params)
        elif isinstance(effect, fx.SubmitSecret):
            await ledger.register_secret(key, effect.preimage)
        elif isinstance(effect, fx.SubmitProgress):
            await ledger.progress(key, params, effect.signed_prev, effect.next_state, effect.mover, effect.signature)
        elif isinstance(effect, fx.SubmitCheckpoint):
            await ledger.checkpoint(key, params, effect.signed)

    async def _watch_chain(self) -> None:
        after = self.engine.cursor
        while True:
            try:
                async for ev in self.ledger.events(after=after):
                    self.stats.chain_event(ev.cursor)
                    inp = event_input(ev, self.l1_address)
                    await self._inputs.send(ChainItem(cursor=ev.cursor, channel_id=ev.channel_id, input=inp))
                    after = ev.cursor
                return
            except LedgerError as exc:
                if getattr(exc, "code", "") != "cursor_pruned":
                    raise
                # The L1 dropped events we never saw (we were offline or far behind): read
                # each active channel's state from the L1 instead, then go on from there.
                pruned_through = int(getattr(exc, "pruned_through", after))
                log.error("L1 events after %d were pruned before we read them; re-reading %d channels",
                          after, len(self.engine.active))
                for cid in sorted(self.engine.active):
                    for inp in view_inputs(await self.ledger.channel(cid)):
                        await self._inputs.send(ChainItem(cursor=after, channel_id=cid, input=inp))
                await self._inputs.send(ChainItem(cursor=pruned_through, channel_id=None, input=None))
                after = max(after, pruned_through)

    async def _tick(self) -> None:
        while True:
            await trio.sleep(self.config.tick_interval)
            try:
                now = await self.ledger.now()
            except ChannelsError as exc:
                self._l1_unreachable(str(exc))
                continue
            if self._l1_down is not None:
                log.warning("the L1 is reachable again after %.0f s", trio.current_time() - self._l1_down[0])
                self._l1_down = None
            await self._inputs.send(TickItem(now=now, wall=trio.current_time()))

    def _l1_unreachable(self, error: str) -> None:
        """Raise the ``l1_unreachable`` alarm: while it lasts, a stale registration could win."""
        wall = trio.current_time()
        if self._l1_down is None:
            self._l1_down = (wall, error)
        else:
            self._l1_down = (self._l1_down[0], error)
        if wall - self._l1_logged >= 60:  # an error line at once, then one a minute
            self._l1_logged = wall
            log.error("cannot reach the L1 (%s); channels are unguarded until it is back", error)


async def _first_of(*waits: Callable[[], Awaitable[object]]) -> None:
    """Return as soon as one of ``waits`` returns."""
    async with trio.open_nursery() as nursery:
        for wait in waits:
            async def one(wait: Callable[[], Awaitable[object]] = wait) -> None:
                await wait()
                nursery.cancel_scope.cancel()

            nursery.start_soon(one)


@asynccontextmanager
async def _open_transport(config: NodeConfig, transport: Transport | None) -> AsyncIterator[Transport]:
    if transport is not None:
        yield transport
        return
    from ..net.host import open_host
    from ..net.limits import ConnectionLimits

    identity = load_or_create_key(config.identity_path, use=LIBP2P_IDENTITY)
    limits = ConnectionLimits(max_inbound_total=config.max_inbound_total,
                              max_inbound_per_ip=config.max_inbound_per_ip,
                              max_inbound_per_peer=config.max_inbound_per_peer)
    async with open_host(identity_seed=identity.seed, listen=list(config.listen), limits=limits) as host:
        yield host

