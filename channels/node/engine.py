"""The engine: the one task that applies inputs to channel cores, in order.

Each batch of inputs is applied to copies of the channels, everything it decided is
committed in one store transaction, and only then are messages sent, L1
transactions submitted and callers woken (persist, then send). A failed commit
discards the whole batch: nothing is half-applied.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import attrs
import trio

from ..core import effects as fx
from ..core import inputs as ins
from ..core.channel import Channel, Env, Phase, accept_channel, concerns_secret, transition
from ..core.ids import ChannelId
from ..core.messages import ChannelDecline, ChannelProposal
from ..core.ops import hash_preimage
from ..errors import ChannelsError, InvalidTransition, LocalProtocolError, RemoteProtocolError, StorageError
from ..forwarding import HopMachine, HopTxn, Propose
from ..forwarding.records import SentPart, _Record, record_status
from ..store import Store
from ..store.records import submission_to_bytes
from ..wire import encode_message
from .events import EventData, EventLog, PeerConnected, PeerDisconnected, channel_events
from .stats import NodeStats

log = logging.getLogger("channels.node.engine")

RESYNC_AFTER = 1.0  # seconds an update may wait for an answer before we re-send it
MAX_OUTBOX_FRAMES = 4096  # frames kept per peer in the outbox while it is away (the oldest go first)


class Waiter:
    """A one-shot result a caller awaits (set after the batch that decides it commits)."""

    def __init__(self) -> None:
        self._event = trio.Event()
        self._value: Any = None
        self._error: BaseException | None = None

    def set(self, value: Any = None, error: BaseException | None = None) -> None:
        if not self._event.is_set():
            self._value, self._error = value, error
            self._event.set()

    @property
    def done(self) -> bool:
        return self._event.is_set()

    async def wait(self) -> Any:
        await self._event.wait()
        if self._error is not None:
            raise self._error
        return self._value


@attrs.frozen
class CoreItem:
    channel_id: ChannelId
    input: ins.Input
    waiter: Waiter | None = None
    peer_id: str | None = None  # set for peer messages: only the channel's peer may send them


PeerRow = tuple[bytes, list[str]]  # the peer's L1 address and announced addresses, stored with its first channel


@attrs.frozen
class OpenItem:
    peer_id: str
    channel: Channel
    effects: list[fx.Effect]
    waiter: Waiter
    peer_row: PeerRow | None = None
    # n-party channels: every participant's peer id by index ("" for us), and their rows
    peers: tuple[str, ...] | None = None
    rows: tuple[tuple[str, PeerRow], ...] = ()


@attrs.frozen
class ProposalItem:
    peer_id: str
    proposal: ChannelProposal
    accept: Callable[[str, ChannelProposal], str | None]  # policy: None = accept, else the reason to decline
    max_in_flight: int = 4  # channels in proposed/funding per peer (resource exhaustion)
    max_unfinished: int = 64  # channels in proposed/funding with all peers together (free identities)
    peer_row: PeerRow | None = None
    # n-party proposals: the participants' peer ids by index ("" for us), resolved by the node
    # from the L1 addresses its connected peers proved in their Init (None: not all known)
    peers: tuple[str, ...] | None = None
    rows: tuple[tuple[str, PeerRow], ...] = ()


@attrs.frozen
class ChainItem:
    cursor: int
    channel_id: ChannelId | None
    input: ins.Input | None


@attrs.frozen
class TickItem:
    now: int  # L1 time
    wall: float = 0.0  # local monotonic time, for stall detection


@attrs.frozen
class PeerUpItem:
    peer_id: str


@attrs.frozen
class PeerDownItem:
    """The connection to a peer dropped (only recorded as an event: links redial by themselves)."""

    peer_id: str


@attrs.frozen
class HopItem:
    """Multi-hop records to store (an invoice, a payment, a fee policy) and operations to
    propose with them (a payment part's first lock), in one step (channels.forwarding)."""

    records: tuple[_Record, ...]
    proposals: tuple[tuple[ChannelId, Any], ...] = ()
    waiter: Waiter | None = None


Item = CoreItem | OpenItem | ProposalItem | ChainItem | TickItem | PeerUpItem | PeerDownItem | HopItem


@attrs.define
class Outgoing:
    sends: list[tuple[str, bytes]] = attrs.Factory(list)
    submits: list[tuple[Channel, fx.Effect]] = attrs.Factory(list)
    wakeups: list[tuple[Waiter, Any, BaseException | None]] = attrs.Factory(list)
    rejects: list[tuple[str, fx.Reject]] = attrs.Factory(list)
    notices: list[tuple[ChannelId, fx.Effect]] = attrs.Factory(list)
    opened: list[ChannelId] = attrs.Factory(list)
    changed: list[ChannelId] = attrs.Factory(list)  # channels whose new state this step committed
    send_seqs: list[int] = attrs.Factory(list)  # outbox sequence number of each of ``sends``
    submit_seqs: list[int] = attrs.Factory(list)  # outbox sequence number of each of ``submits``
    resolved: list[SentPart] = attrs.Factory(list)  # our payment parts that ended in this step


class OperationFailed(ChannelsError):
    """The update operation (a lock, its settlement, a move) did not go through."""


class PaymentFailed(OperationFailed):
    """The payment did not go through; the channel balance is unchanged by it."""


class ChannelNotOpened(ChannelsError):
    """The channel ended before it opened: the peer declined it, or it was never funded."""


class Engine:
    def __init__(self, store: Store, env: Env, *, max_events: int = 100_000,
                 hops: HopMachine | None = None) -> None:
        self.store = store
        self.hops = hops  # the forwarding state machine (None: a node that neither routes nor pays by onion)
        # Written in each step's transaction with the changes that cause them (``events``).
        self.event_log = EventLog(store, max_events)
        self.peers_up: set[str] = set()  # peers announced by a peer_connected event
        self.env = env
        self.channels: dict[ChannelId, Channel] = {}
        self.peer_of: dict[ChannelId, str] = {}
        # n-party channels (proto/02 section 13): each participant's peer id, by index ("" for us)
        self.peers_of: dict[ChannelId, tuple[str, ...]] = {
            ChannelId(cid): peers for cid, peers in store.channel_peers().items()}
        for ch, peer in store.load_channels():
            self.channels[ch.channel_id] = ch
            self.peer_of[ch.channel_id] = peer
        self.cursor = store.chain_cursor()
        self.stats = NodeStats(chain_cursor=self.cursor)  # read by monitoring (channels.node.stats)
        self.now = 0
        self.payment_waiters: dict[bytes, Waiter] = {}
        self.open_waiters: dict[ChannelId, list[Waiter]] = {}
        self.changed = trio.Event()  # set (and replaced) after every committed batch
        self.active: set[ChannelId] = {cid for cid, ch in self.channels.items() if ch.phase is not Phase.SETTLED}
        # The durable outbox (proto/02 section 6.3): what links and the submitter report as
        # sent is deleted by the next step's transaction.
        self.sent_upto: dict[str, int] = {}
        self.l1_done: list[int] = []
        self._outbox_count: dict[str, int] = {p: len(store.outbox_frames(p, limit=MAX_OUTBOX_FRAMES + 1))
                                              for p in store.outbox_peers()}
        self._by_peer: dict[str, set[ChannelId]] = {}
        for cid, peer in self.peer_of.items():
            self._by_peer.setdefault(peer, set()).add(cid)
        for cid, peers in self.peers_of.items():
            for p in peers:
                if p:
                    self._by_peer.setdefault(p, set()).add(cid)
        self._progress: dict[ChannelId, tuple[Any, float]] = {}

    def _stalled(self, ch: Channel, wall: float) -> bool:
        """True when an update has made no progress for ``RESYNC_AFTER`` seconds."""
        waiting = ch.phase is Phase.PROPOSED or (ch.phase is Phase.OPEN and (
            ch.pending is not None or bool(ch.queue) or ch.yielded or ch.cosign is not None))
        marker = (ch.version, ch.pending.version if ch.pending else None, ch.highest_signed)
        last = self._progress.get(ch.channel_id)
        if not waiting or last is None or last[0] != marker:
            self._progress[ch.channel_id] = (marker, wall)
            return False
        if wall - last[1] >= RESYNC_AFTER:
            self._progress[ch.channel_id] = (marker, wall)
            return True
        return False

    def channels_of(self, peer_id: str) -> list[ChannelId]:
        return sorted(self._by_peer.get(peer_id, ()))

    def all_peers(self) -> list[str]:
        """Every peer we share a channel with (each participant of an n-party one)."""
        return sorted(self._by_peer)

    def peers_of_channel(self, cid: ChannelId) -> list[str]:
        """The peers of a channel: the one peer, or every other participant's, by index."""
        peers = self.peers_of.get(cid)
        return [p for p in peers if p] if peers is not None else [self.peer_of[cid]]

    def step(self, items: list[Item]) -> Outgoing:
        """Apply a batch; commit; return what to do now that it is durable.

        If the batch cannot be committed for any reason but a storage failure (a value
        the store refuses, a record over its bounds), every item is applied again on its
        own and the ones that fail are refused: no input from a peer, whatever its
        values, may stop the engine (it would leave every other channel unwatched)."""
        try:
            return self._step(items)
        except StorageError:
            raise
        except Exception:
            if len(items) == 1:
                return self._refuse(items[0])
            log.warning("a batch of %d inputs could not be committed; applying them one by one", len(items))
            out = Outgoing()
            for item in items:
                one = self.step([item])
                for name in ("sends", "submits", "wakeups", "rejects", "notices", "opened", "send_seqs",
                             "submit_seqs", "resolved"):
                    getattr(out, name).extend(getattr(one, name))
            return out

    def _refuse(self, item: Item) -> Outgoing:
        """``item`` broke the commit; nothing of it was stored. Refuse it, never crash."""
        log.exception("input %s could not be committed; refused", type(item).__name__)
        out = Outgoing()
        waiter = getattr(item, "waiter", None)
        if waiter is not None:
            out.wakeups.append((waiter, None, LocalProtocolError("the request could not be stored; refused")))
        peer = getattr(item, "peer_id", None)
        if peer is not None and isinstance(item, (CoreItem, ProposalItem)):
            out.rejects.append((peer, fx.Reject(reason="input refused: it could not be stored",
                                                action=fx.RejectAction.DISCONNECT)))
        return out

    def _step(self, items: list[Item]) -> Outgoing:
        staged: dict[ChannelId, Channel] = {}
        staged_peer: dict[ChannelId, str] = {}
        staged_peers: dict[ChannelId, tuple[str, ...]] = {}  # n-party channels new in this step
        staged_open: dict[ChannelId, list[Waiter]] = {}
        peer_rows: dict[str, PeerRow] = {}
        payments: list[tuple[bytes, bytes, str, str, int, str, str]] = []
        events: list[EventData] = []
        peers_up = set(self.peers_up)
        out = Outgoing()
        cursor = self.cursor
        now = self.now

        def current(cid: ChannelId) -> Channel | None:
            return staged.get(cid) or self.channels.get(cid)

        def owner(cid: ChannelId) -> str:
            return staged_peer.get(cid) or self.peer_of[cid]

        def participants(cid: ChannelId) -> tuple[str, ...] | None:
            return staged_peers.get(cid) or self.peers_of.get(cid)

        hop = self.hops.begin(now, int(time.time())) if self.hops is not None else None

        def peer_up(cid: bytes) -> bool:
            return owner(ChannelId(cid)) in peers_up

        def lookup(cid: bytes) -> Channel | None:
            return current(ChannelId(cid))

        def run(cid: ChannelId, peer: str, ch: Channel, effects: list[fx.Effect], src: str | None = None) -> None:
            events.extend(channel_events(current(cid), ch, peer, effects))
            staged[cid] = ch
            staged_peer[cid] = peer
            for e in effects:
                self._route(cid, peer, ch, e, out, payments, staged_open, participants(cid), src)
            if hop is not None:
                self._hop_notices(hop, cid, ch, effects, peer_up, lookup)
                propose(hop)

        def propose(txn: HopTxn) -> None:
            """Apply what the forwarding machine decided, in this same step."""
            while txn.proposals:
                p = txn.proposals.pop(0)
                cid = ChannelId(p.channel_id)
                ch = current(cid)
                try:
                    if ch is None:
                        raise LocalProtocolError(f"unknown channel {cid.hex()}")
                    new, effects = transition(ch, ins.ActionPropose(operation=p.operation), now=now, env=self.env)
                except (InvalidTransition, LocalProtocolError) as exc:
                    log.warning("forwarding: %s on channel %s refused: %s", type(p.operation).__name__,
                                cid.hex()[:12], exc)
                    txn.op_failed(cid, p.operation)
                    continue
                run(cid, owner(cid), new, effects)

        for item in items:
            try:
                if isinstance(item, CoreItem):
                    ch = current(item.channel_id)
                    if ch is None:
                        raise LocalProtocolError(f"unknown channel {item.channel_id.hex()}")
                    peer = owner(item.channel_id)
                    group = participants(item.channel_id)
                    inp = item.input
                    if group is not None and item.peer_id is not None and item.peer_id in group:
                        # n-party: the core checks each signature against the key of the
                        # participant this authenticated peer is (proto/02 section 13), so a
                        # participant cannot pass off a message as another participant's.
                        inp = attrs.evolve(inp, sender=group.index(item.peer_id))  # type: ignore[arg-type]
                    elif item.peer_id is not None and item.peer_id != peer:
                        # Cross-channel injection: a peer may only speak for its own channels.
                        out.rejects.append((item.peer_id, fx.Reject(
                            reason="message for a channel that is not ours with this peer",
                            action=fx.RejectAction.DISCONNECT)))
                        continue
                    new, effects = transition(ch, inp, now=now, env=self.env)
                    run(item.channel_id, peer, new, effects, item.peer_id)
                    if item.waiter is not None and not isinstance(item.input, (ins.ActionPay, ins.ActionPropose)):
                        out.wakeups.append((item.waiter, None, None))
                elif isinstance(item, OpenItem):
                    staged_open.setdefault(item.channel.channel_id, []).append(item.waiter)
                    if item.peers is not None:
                        staged_peers[item.channel.channel_id] = item.peers
                    run(item.channel.channel_id, item.peer_id, item.channel, item.effects)
                    if item.peer_row is not None:
                        peer_rows[item.peer_id] = item.peer_row
                    peer_rows.update(item.rows)
                elif isinstance(item, ProposalItem):
                    if self._on_proposal(item, current, run, out, staged_peer, staged_peers):
                        if item.peer_row is not None:
                            peer_rows[item.peer_id] = item.peer_row
                        peer_rows.update(item.rows)
                elif isinstance(item, ChainItem):
                    cursor = max(cursor, item.cursor)
                    if item.channel_id is not None and item.input is not None:
                        ch = current(item.channel_id)
                        if ch is not None:
                            peer = owner(item.channel_id)
                            new, effects = transition(ch, item.input, now=now, env=self.env)
                            run(item.channel_id, peer, new, effects)
                    elif isinstance(item.input, ins.ChainSecretRegistered):
                        # A secret concerns every unsettled channel holding a lock on its hash.
                        hashed = hash_preimage(item.input.preimage)
                        for cid in sorted(self.active):
                            ch = current(cid)
                            if ch is not None and concerns_secret(ch, hashed):
                                new, effects = transition(ch, item.input, now=now, env=self.env)
                                run(cid, owner(cid), new, effects)
                elif isinstance(item, TickItem):
                    now = self.now = max(self.now, item.now)
                    # Only unsettled channels: idle cost follows active work, not history.
                    for cid in sorted(self.active | {c for c, x in staged.items() if x.phase is not Phase.SETTLED}):
                        ch = current(cid)
                        assert ch is not None
                        inputs: list[ins.Input] = []
                        if ch.phase in (Phase.PROPOSED, Phase.FUNDING, Phase.CLOSING, Phase.DISPUTED) or (
                                ch.phase is Phase.OPEN and ch.allocation.locks):  # lock deadlines
                            inputs.append(ins.Tick())
                        if ch.phase in (Phase.PROPOSED, Phase.OPEN) and self._stalled(ch, item.wall):
                            inputs.append(ins.ActionResync())
                        for inp in inputs:
                            new, effects = transition(ch, inp, now=now, env=self.env)
                            if new != ch or effects:
                                run(cid, owner(cid), new, effects)
                                ch = new
                    if hop is not None:
                        hop.now = now
                        hop.tick(lookup)
                        propose(hop)
                elif isinstance(item, PeerUpItem):
                    if item.peer_id not in peers_up:
                        peers_up.add(item.peer_id)
                        events.append(PeerConnected(peer_id=item.peer_id))
                    for cid in self.channels_of(item.peer_id):
                        ch = current(cid)
                        assert ch is not None
                        group = participants(cid)
                        reconnect = ins.ActionReconnect(peer=None if group is None else group.index(item.peer_id))
                        new, effects = transition(ch, reconnect, now=now, env=self.env)
                        run(cid, owner(cid), new, effects, item.peer_id)
                elif isinstance(item, PeerDownItem):
                    if item.peer_id in peers_up:
                        peers_up.discard(item.peer_id)
                        events.append(PeerDisconnected(peer_id=item.peer_id))
                elif isinstance(item, HopItem):
                    if hop is None:
                        raise LocalProtocolError("this node does not route payments")
                    for record in item.records:
                        hop.put(record)
                    for cid, op in item.proposals:
                        hop.proposals.append(Propose(cid, op))
                    propose(hop)
                    if item.waiter is not None:
                        out.wakeups.append((item.waiter, None, None))
            except Exception as exc:
                # Whatever an input raised, nothing of it was staged: transitions are pure.
                waiter = getattr(item, "waiter", None)
                if waiter is not None:
                    out.wakeups.append((waiter, None, exc))
                elif isinstance(exc, ChannelsError):
                    log.warning("input %s refused: %s", type(item).__name__, exc)
                else:
                    log.exception("input %s failed; ignored", type(item).__name__)
        # Signed something new? Then the commit must survive power loss (never sign twice).
        durable = any(cid not in self.channels or ch.highest_signed > self.channels[cid].highest_signed
                      for cid, ch in staged.items())
        sent, self.sent_upto = self.sent_upto, {}
        done, self.l1_done = self.l1_done, []
        try:
            with self.store.transaction(durable=durable):
                for cid, ch in staged.items():
                    self.store.save_channel(ch, staged_peer[cid])
                for cid, peers in staged_peers.items():
                    self.store.save_channel_peers(cid, peers)
                out.changed = list(staged)
                for row in payments:
                    self.store.record_payment(*row)
                for peer_id, (l1_address, addresses) in peer_rows.items():
                    self.store.save_peer(peer_id, l1_address, addresses)
                # Persist, then send: the frames and L1 submissions this step decided are
                # stored with the states they follow from, and sent from there.
                out.send_seqs = [self.store.outbox_add(peer, frame) for peer, frame in out.sends]
                out.submit_seqs = [self.store.l1_add(ch.channel_id, submission_to_bytes(e)) for ch, e in out.submits]
                for peer, upto in sent.items():
                    self.store.outbox_sent(peer, upto)
                self.store.l1_done(done)
                for peer, _ in out.sends:
                    self._outbox_count[peer] = self._outbox_count.get(peer, 0) + 1
                    if self._outbox_count[peer] > 2 * MAX_OUTBOX_FRAMES:
                        # A peer that never comes back: its oldest frames go (reestablish
                        # rebuilds what matters from the channel states).
                        self.store.outbox_trim(peer, MAX_OUTBOX_FRAMES)
                        self._outbox_count[peer] = MAX_OUTBOX_FRAMES
                if cursor != self.cursor:
                    self.store.set_chain_cursor(cursor)
                if events:
                    logged = self.event_log.write(events, int(time.time()))
                if hop is not None:
                    for record in hop.puts.values():
                        self.store.put_hop_record(record.KIND, record.key,  # type: ignore[attr-defined]
                                                  record_status(record), record.to_bytes(), int(time.time()))
        except BaseException as exc:
            # Rolled back: what was reported sent is deleted by a later step instead.
            for peer, upto in sent.items():
                self.sent_upto[peer] = max(upto, self.sent_upto.get(peer, 0))
            self.l1_done.extend(done)
            if not isinstance(exc, StorageError):
                raise
            # Fatal: the chain events of this batch are already consumed from the feed, so
            # carrying on would miss them. The node stops; a restart resumes from the stored
            # cursor and the stored channels, which this batch never touched.
            log.error("store commit failed; stopping (restart the node to recover): %s", exc)
            for item in items:
                waiter = getattr(item, "waiter", None)
                if waiter is not None:
                    waiter.set(None, exc)
            for waiter, _, _ in out.wakeups:
                waiter.set(None, exc)
            raise
        self.stats.committed(self.channels, staged, payments, cursor)
        self.channels.update(staged)
        self.peer_of.update(staged_peer)
        self.peers_of.update(staged_peers)
        for cid, peer in staged_peer.items():
            self._by_peer.setdefault(peer, set()).add(cid)
        for cid, peers in staged_peers.items():
            for p in peers:
                if p:
                    self._by_peer.setdefault(p, set()).add(cid)
        for cid, ch in staged.items():
            if ch.phase is Phase.SETTLED:
                self.active.discard(cid)
                self._progress.pop(cid, None)
            else:
                self.active.add(cid)
        for cid in out.opened:
            self.open_waiters.pop(cid, None)
        for cid, waiters in staged_open.items():
            self.open_waiters.setdefault(cid, []).extend(waiters)
        self.cursor = cursor
        self.peers_up = peers_up
        if hop is not None:
            self.hops.commit(hop)  # type: ignore[union-attr]
            out.resolved.extend(r.part for r in hop.resolved)
        if events:
            self.event_log.committed(*logged)
        self.changed.set()
        self.changed = trio.Event()
        return out

    def _on_proposal(self, item: ProposalItem, current: Callable[[ChannelId], Channel | None],
                     run: Callable[..., None], out: Outgoing, staged_peer: dict[ChannelId, str],
                     staged_peers: dict[ChannelId, tuple[str, ...]]) -> bool:
        """Accept or decline a peer's channel proposal; True when a new channel was accepted."""
        proposal = item.proposal
        cid = self.env.scheme.channel_id(proposal.params)
        existing = current(cid)
        group = staged_peers.get(cid) or self.peers_of.get(cid)
        if existing is not None and group is not None and item.peer_id in group:
            # n-party: the proposal again (our accept, or another's, was lost): answer it.
            new, effects = transition(existing, ins.ActionReconnect(peer=group.index(item.peer_id)), now=self.now,
                                      env=self.env)
            run(cid, staged_peer.get(cid) or self.peer_of[cid], new, effects, item.peer_id)
            return False
        if existing is not None and self.peer_of.get(cid) == item.peer_id and existing.phase is Phase.FUNDING:
            # A retransmitted proposal: our accept was lost; send it again.
            new, effects = transition(existing, ins.ActionReconnect(), now=self.now, env=self.env)
            run(cid, item.peer_id, new, effects)
            return False
        unfinished = per_peer = 0
        for c in self.active | set(staged_peer):
            known = current(c)
            if known is not None and known.phase in (Phase.PROPOSED, Phase.FUNDING):
                unfinished += 1
                per_peer += (staged_peer.get(c) or self.peer_of.get(c)) == item.peer_id
        if existing is not None:
            out.rejects.append((item.peer_id, fx.Reject(reason="channel id already in use",
                                                        action=fx.RejectAction.WARN)))
            return False
        reason: str | None
        if per_peer >= item.max_in_flight or unfinished >= item.max_unfinished:
            # Proposal flooding: every accepted proposal may lock our deposit and costs a
            # record and ticks; free identities get round the per-peer cap, hence the total.
            reason = "too many unfinished channels; try again later"
        else:
            reason = item.accept(item.peer_id, proposal)
        multi = len(proposal.params.participants) > 2
        if reason is None and multi and (item.peers is None or item.peers[0] != item.peer_id):
            reason = "not connected to every participant; connect to each of them first"
        if reason is None:
            try:
                if multi:
                    assert item.peers is not None
                    ch, effects = accept_channel(proposal, env=self.env, proposer=0)
                    staged_peers[cid] = item.peers
                else:
                    ch, effects = accept_channel(proposal, env=self.env)
            except RemoteProtocolError as exc:
                staged_peers.pop(cid, None)
                reason = str(exc)
            else:
                run(cid, item.peer_id, ch, effects, item.peer_id)
                return True
        out.rejects.append((item.peer_id, fx.Reject(reason=f"declined proposal: {reason}",
                                                    action=fx.RejectAction.IGNORE)))
        out.sends.append((item.peer_id, encode_message(ChannelDecline(channel_id=cid, reason=reason[:256]))))
        return False

    @staticmethod
    def _hop_notices(txn: HopTxn, cid: ChannelId, ch: Channel, effects: list[fx.Effect],
                     peer_up: Callable[[bytes], bool], lookup: Callable[[bytes], Channel | None]) -> None:
        """Feed the forwarding machine what it reacts to among one transition's effects."""
        for e in effects:
            if isinstance(e, fx.NotifyLockAdded):
                txn.lock_added(cid, ch, e.operation, peer_up, lookup)
            elif isinstance(e, fx.NotifyLockSettled):
                txn.lock_settled(cid, ch, e.operation, e.lock.payer)
            elif isinstance(e, fx.NotifySecretLearned):
                txn.secret_learned(cid, ch, e.lock.lock_id, e.lock.payer, e.preimage)
            elif isinstance(e, fx.NotifyOpDone):
                txn.op_done(cid, ch, e.operation)
            elif isinstance(e, fx.NotifyOpFailed):
                txn.op_failed(cid, e.operation, ch)

    def _route(self, cid: ChannelId, peer: str, ch: Channel, e: fx.Effect, out: Outgoing,
               payments: list[tuple[bytes, bytes, str, str, int, str, str]],
               staged_open: dict[ChannelId, list[Waiter]], group: tuple[str, ...] | None = None,
               src: str | None = None) -> None:
        """Turn one effect into work for after the commit. Engine state is not touched
        here (waiters are looked up, not removed): the batch may still be refused."""
        if isinstance(e, fx.Send) and group is not None:
            # n-party: to one participant, or to every other one (proto/02 section 13)
            frame = encode_message(e.message)
            for p in ([group[e.to]] if e.to is not None else [p for p in group if p]):
                if p:
                    out.sends.append((p, frame))
        elif isinstance(e, fx.Send):
            out.sends.append((peer, encode_message(e.message)))
        elif isinstance(e, (fx.SubmitDeposit, fx.SubmitConclude, fx.SubmitRegister, fx.SubmitRefute,
                            fx.SubmitWithdraw, fx.SubmitSecret, fx.SubmitProgress, fx.SubmitCheckpoint)):
            out.submits.append((ch, e))
        elif isinstance(e, fx.NotifyPaymentSent):
            waiter = self.payment_waiters.get(e.payment_id)
            payments.append((e.payment_id, cid, "out", e.asset, e.amount, "sent", str(e.version)))
            if waiter is not None:
                out.wakeups.append((waiter, e.version, None))
        elif isinstance(e, fx.NotifyPaymentReceived):
            # Keyed by version too: the id is the peer's choice and may repeat across updates.
            key = e.payment_id + b"/in/" + e.version.to_bytes(8, "big")
            payments.append((key, cid, "in", e.asset, e.amount, "received", str(e.version)))
            out.notices.append((cid, e))
        elif isinstance(e, fx.NotifyPaymentFailed):
            waiter = self.payment_waiters.get(e.payment_id)
            payments.append((e.payment_id, cid, "out", e.asset, e.amount, "failed", e.reason))
            if waiter is not None:
                out.wakeups.append((waiter, None, PaymentFailed(e.reason)))
        elif isinstance(e, fx.NotifyOpDone):
            waiter = self.payment_waiters.get(e.key)
            if waiter is not None:
                out.wakeups.append((waiter, e.version, None))
            out.notices.append((cid, e))
        elif isinstance(e, fx.NotifyOpFailed):
            waiter = self.payment_waiters.get(e.key)
            if waiter is not None:
                out.wakeups.append((waiter, None, OperationFailed(e.reason)))
            out.notices.append((cid, e))
        elif isinstance(e, fx.NotifyOpened):
            for waiter in self.open_waiters.get(cid, []) + staged_open.pop(cid, []):
                out.wakeups.append((waiter, cid, None))
            out.opened.append(cid)
            out.notices.append((cid, e))
        elif isinstance(e, fx.NotifyClosed) and e.reason:
            for waiter in self.open_waiters.get(cid, []) + staged_open.pop(cid, []):
                out.wakeups.append((waiter, None, ChannelNotOpened(e.reason)))
            out.opened.append(cid)  # no longer waiting
            out.notices.append((cid, e))
        elif isinstance(e, fx.Reject):
            out.rejects.append((src or peer, e))
        else:
            out.notices.append((cid, e))
