"""The forwarding state machine (proto/09-forwarding.md): pure, no I/O, no clock.

The engine feeds it the core's notices about locks (added by a peer, settled by a peer, our
own operations done or failed, secrets learned on the L1) inside one step, through a
``HopTxn``. It answers with operations to propose on channels and records to persist; the
engine applies both in the same step and commits them in one transaction with the channel
states, so a forwarder killed at any point finds after a restart exactly the forwards whose
locks it holds. ``HopMachine.commit`` folds a committed transaction into the indexes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import TypeVar

import attrs

from ..core.channel import Channel, Phase
from ..core.ops import AddLock, FailLock, FulfillLock, Operation, hash_preimage
from ..errors import ChannelsError
from ..onion import (
    BadOnion,
    Failure,
    FailureDecodeError,
    FinalPayload,
    PayloadDecodeError,
    ReplayCache,
    create_failure,
    decode_failure,
    peel_packet,
    wrap_failure,
)
from ..onion.errors import BADONION, EXPIRY_TOO_FAR, EXPIRY_TOO_SOON, REPLAYED_ONION, TEMPORARY_NODE_FAILURE
from ..onion.failures import (
    AMOUNT_BELOW_MINIMUM,
    CHANNEL_DISABLED,
    FEE_INSUFFICIENT,
    FINAL_INCORRECT_AMOUNT,
    FINAL_INCORRECT_EXPIRY,
    INCORRECT_EXPIRY,
    INCORRECT_OR_UNKNOWN_PAYMENT_DETAILS,
    INVALID_ONION_PAYLOAD,
    MPP_TIMEOUT,
    PERMANENT_CHANNEL_FAILURE,
    TEMPORARY_CHANNEL_FAILURE,
    UNKNOWN_NEXT_PEER,
    code_name,
)
from ..onion.replay import MAX_REPLAY_ENTRIES
from .policy import FeePolicy, HopLimits
from .records import ChannelPolicy, Forward, InvoiceRecord, ReceivedPart, SentPart, _Record, lock_key

R = TypeVar("R", bound=_Record)
ChannelLookup = Callable[[bytes], Channel | None]


@attrs.frozen
class Propose:
    """Propose ``operation`` on ``channel_id`` in this step (the engine queues it in the core)."""

    channel_id: bytes
    operation: Operation


@attrs.frozen
class Resolved:
    """One of our payment parts ended: ``part`` carries its status, preimage or failure."""

    part: SentPart


def out_lock_id(in_channel: bytes, in_lock: bytes) -> bytes:
    """Our outgoing lock's id, derived from the incoming lock: handling the same incoming lock
    again (a step refused and re-applied) proposes the same lock, never a second one."""
    return hashlib.sha256(b"p2p-channels/forward/" + lock_key(in_channel, in_lock)).digest()[:16]


class HopMachine:
    """Indexes of what is in flight, rebuilt from the store at start (``load``)."""

    def __init__(self, *, node_secret: bytes, node_public: bytes, lock_margin: int,
                 limits: HopLimits | None = None, default_policy: FeePolicy | None = None) -> None:
        self.node_secret = node_secret
        self.node_public = node_public
        self.lock_margin = lock_margin
        self.limits = limits or HopLimits()
        self.default_policy = default_policy or FeePolicy()
        self.forwards: dict[bytes, Forward] = {}  # pending, by incoming lock key
        self.by_out: dict[bytes, bytes] = {}  # outgoing lock key -> incoming lock key (pending forwards)
        self.out_flight: dict[bytes, tuple[int, int]] = {}  # out channel -> pending forwards (count, value)
        self.held: dict[bytes, ReceivedPart] = {}  # parts of incomplete payments to us, by lock key
        self.invoices: dict[bytes, InvoiceRecord] = {}  # by payment hash
        self.parts: dict[bytes, SentPart] = {}  # our pending parts, by lock key
        self.policies: dict[bytes, FeePolicy] = {}  # by channel id; absent: ``default_policy``
        self.replay = ReplayCache(max_entries=MAX_REPLAY_ENTRIES // 10,
                                  max_horizon=self.limits.max_expiry_horizon + 1)

    def load(self, records: list[_Record], now: int) -> None:
        for record in records:
            self._index(record, now)

    def policy(self, channel_id: bytes) -> FeePolicy:
        return self.policies.get(channel_id, self.default_policy)

    def begin(self, now: int, unix_now: int) -> HopTxn:
        return HopTxn(self, now, unix_now)

    def commit(self, txn: HopTxn) -> None:
        for record in txn.puts.values():
            self._index(record, txn.now)

    def _index(self, record: _Record, now: int) -> None:
        if isinstance(record, Forward):
            key = record.key
            was = self.forwards.pop(key, None)
            if was is not None:
                self.by_out.pop(was.out_key, None)
                self._count_out(was, -1)
            if record.status == "pending":
                self.forwards[key] = record
                self.by_out[record.out_key] = key
                self._count_out(record, 1)
            self._remember_tag(record.replay_tag, record.in_expiry, max(now, record.created), record.in_channel)
        elif isinstance(record, ReceivedPart):
            if record.status == "held":
                self.held[record.key] = record
            else:
                self.held.pop(record.key, None)
            self._remember_tag(record.replay_tag, record.expiry, max(now, record.created), record.channel_id)
        elif isinstance(record, InvoiceRecord):
            self.invoices[record.key] = record
        elif isinstance(record, SentPart):
            if record.status == "pending":
                self.parts[record.key] = record
            else:
                self.parts.pop(record.key, None)
        elif isinstance(record, ChannelPolicy):
            self.policies[record.channel_id] = FeePolicy(
                base_fee=record.base_fee, fee_ppm=record.fee_ppm, expiry_delta=record.expiry_delta,
                htlc_minimum=record.htlc_minimum, htlc_maximum=record.htlc_maximum, enabled=record.enabled)

    def _count_out(self, record: Forward, sign: int) -> None:
        count, value = self.out_flight.get(record.out_channel, (0, 0))
        count, value = count + sign, value + sign * record.amount_out
        if count:
            self.out_flight[record.out_channel] = (count, value)
        else:
            self.out_flight.pop(record.out_channel, None)

    def _remember_tag(self, tag: bytes, expiry: int, now: int, source: bytes) -> None:
        if tag and tag not in self.replay and expiry > now:
            try:
                self.replay.check_and_add(tag, expiry=expiry, now=now, source=source[:32])
            except ChannelsError:
                pass  # a full cache only weakens replay refusal for this one tag


class HopTxn:
    """One engine step's view: staged records over the machine's indexes, and what to do."""

    def __init__(self, machine: HopMachine, now: int, unix_now: int) -> None:
        self.m = machine
        self.now = now
        self.unix_now = unix_now
        self.puts: dict[tuple[str, bytes], _Record] = {}
        self.proposals: list[Propose] = []
        self.resolved: list[Resolved] = []
        self.received: list[InvoiceRecord] = []  # invoices paid in this step
        self._tags: set[bytes] = set()

    # ------------------------------------------------------------------ staged reads and writes

    def put(self, record: _Record) -> None:
        self.puts[(record.KIND, record.key)] = record  # type: ignore[attr-defined]

    def _staged(self, kind: type[R], key: bytes) -> R | None:
        got = self.puts.get((kind.KIND, key))
        return got if isinstance(got, kind) else None

    def forward(self, key: bytes) -> Forward | None:
        staged = self._staged(Forward, key)
        return staged if staged is not None else self.m.forwards.get(key)

    def forward_by_out(self, out_key: bytes) -> Forward | None:
        for record in self.puts.values():
            if isinstance(record, Forward) and record.out_key == out_key:
                return record
        key = self.m.by_out.get(out_key)
        return None if key is None else self.forward(key)

    def part(self, key: bytes) -> SentPart | None:
        staged = self._staged(SentPart, key)
        return staged if staged is not None else self.m.parts.get(key)

    def invoice(self, payment_hash: bytes) -> InvoiceRecord | None:
        staged = self._staged(InvoiceRecord, payment_hash)
        return staged if staged is not None else self.m.invoices.get(payment_hash)

    def held_parts(self, hashlock: bytes) -> list[ReceivedPart]:
        parts = {k: p for k, p in self.m.held.items() if p.hashlock == hashlock}
        for record in self.puts.values():
            if isinstance(record, ReceivedPart) and record.hashlock == hashlock:
                parts[record.key] = record
        return [p for p in parts.values() if p.status == "held"]

    def policy(self, channel_id: bytes) -> FeePolicy:
        staged = self._staged(ChannelPolicy, channel_id)
        if staged is not None:
            return FeePolicy(base_fee=staged.base_fee, fee_ppm=staged.fee_ppm, expiry_delta=staged.expiry_delta,
                             htlc_minimum=staged.htlc_minimum, htlc_maximum=staged.htlc_maximum,
                             enabled=staged.enabled)
        return self.m.policy(channel_id)

    def _known(self, key: bytes) -> bool:
        # A lock handled and finished before has its onion's tag in the replay cache until it expires.
        return (self.forward(key) is not None or key in self.m.held
                or self._staged(ReceivedPart, key) is not None)

    def _out_count(self, channel_id: bytes) -> tuple[int, int]:
        """Forwards out of ``channel_id`` in flight: (count, value): the committed counters
        (kept per channel, so a lock costs no scan of every forward) plus this step's changes."""
        count, value = self.m.out_flight.get(channel_id, (0, 0))
        for (kind, key), record in self.puts.items():
            if kind != Forward.KIND or not isinstance(record, Forward):
                continue
            before = self.m.forwards.get(key)
            for fwd, sign in ((before, -1), (record if record.status == "pending" else None, 1)):
                if fwd is not None and fwd.out_channel == channel_id:
                    count, value = count + sign, value + sign * fwd.amount_out
        return count, value

    # ------------------------------------------------------------------ inputs

    def lock_added(self, channel_id: bytes, ch: Channel, op: AddLock,
                   peer_up: Callable[[bytes], bool], channels: ChannelLookup) -> None:
        """The peer's lock to us is in a state both signed: forward it, claim it, or fail it."""
        if not op.onion:
            return  # a direct lock (``add-lock``): its payee settles it by hand
        key = lock_key(channel_id, op.lock_id)
        if self._known(key):
            return  # handled before (a re-delivered notice after a refused batch)
        try:
            peeled = peel_packet(op.onion, node_secret=self.m.node_secret, associated_data=op.hashlock,
                                 node_public=self.m.node_public)
        except BadOnion as exc:
            # We cannot read it, so we cannot encrypt to the sender: the code goes back in
            # clear and the previous hop reports it under its own key (proto/04 section 6.4).
            self._fail_in(channel_id, op.lock_id, exc.failure_code, b"")
            return
        ss = peeled.shared_secret

        def fail(code: int, data: bytes = b"") -> None:
            self._fail_in(channel_id, op.lock_id, code, create_failure(ss, Failure(code=code, data=data)))

        if peeled.replay_tag in self.m.replay or peeled.replay_tag in self._tags:
            # Replay: the same onion again would make us forward (or claim) a second time
            # on the sender's behalf with a lock the sender never made.
            fail(REPLAYED_ONION)
            return
        try:
            payload = peeled.decode_payload()
        except PayloadDecodeError:
            fail(INVALID_ONION_PAYLOAD)
            return
        if op.expiry - self.now > self.m.limits.max_expiry_horizon:
            # Griefing: a lock expiring far ahead would hold our money that long.
            fail(EXPIRY_TOO_FAR)
            return
        self._tags.add(peeled.replay_tag)
        if isinstance(payload, FinalPayload):
            self._receive(channel_id, op, payload, ss, peeled.replay_tag, fail)
            return
        out_cid = payload.next_hop
        out = channels(out_cid) if len(out_cid) == 32 else None
        policy = self.policy(out_cid)
        update = encode_policy(policy)
        if out is None:
            fail(UNKNOWN_NEXT_PEER)
        elif out.phase is not Phase.OPEN or out.closing_requested or op.asset not in out.allocation.assets:
            fail(PERMANENT_CHANNEL_FAILURE)
        elif not policy.enabled:
            fail(CHANNEL_DISABLED, update)
        elif not peer_up(out_cid):
            fail(TEMPORARY_CHANNEL_FAILURE, update)
        elif payload.amount < policy.htlc_minimum:
            fail(AMOUNT_BELOW_MINIMUM, update)
        elif op.amount < payload.amount + policy.fee(payload.amount):
            # The fee rule: a forwarder keeps at least its advertised fee, else it works at a loss.
            fail(FEE_INSUFFICIENT, update)
        elif op.expiry < payload.expiry + policy.expiry_delta:
            # The safety rule (policy.py): less than our delta between the two expiries and a
            # downstream peer could reveal the preimage too late for us to claim upstream.
            fail(INCORRECT_EXPIRY, update)
        elif payload.expiry <= self.now + self.m.lock_margin:
            # The next hop would have no time to claim on the L1: it would refuse, or worse,
            # accept and lose the lock to expiry.
            fail(EXPIRY_TOO_SOON, update)
        elif (policy.htlc_maximum is not None and payload.amount > policy.htlc_maximum) \
                or not self._room(out_cid, payload.amount) or out.spendable(op.asset) < payload.amount:
            fail(TEMPORARY_CHANNEL_FAILURE, update)
        else:
            assert peeled.next_packet is not None
            out_lock = out_lock_id(channel_id, op.lock_id)
            self.put(Forward(in_channel=channel_id, in_lock=op.lock_id, out_channel=out_cid, out_lock=out_lock,
                             asset=op.asset, hashlock=op.hashlock, amount_in=op.amount, amount_out=payload.amount,
                             in_expiry=op.expiry, out_expiry=payload.expiry, shared_secret=ss, created=self.now,
                             replay_tag=peeled.replay_tag))
            self.proposals.append(Propose(out_cid, AddLock(
                lock_id=out_lock, asset=op.asset, amount=payload.amount, hashlock=op.hashlock,
                expiry=payload.expiry, onion=peeled.next_packet)))

    def _room(self, channel_id: bytes, amount: int) -> bool:
        """The limits on forwards in flight out of one channel (a flood of tiny locks would
        pin every slot; the value cap bounds what one failure can lock up)."""
        count, value = self._out_count(channel_id)
        limits = self.m.limits
        if count >= limits.max_locks_in_flight:
            return False
        return limits.max_value_in_flight is None or value + amount <= limits.max_value_in_flight

    def _receive(self, channel_id: bytes, op: AddLock, payload: FinalPayload, ss: bytes, tag: bytes,
                 fail: Callable[..., None]) -> None:
        """We are the payee: claim the lock once the whole payment is in, or refuse it."""
        if op.amount < payload.amount:
            fail(FINAL_INCORRECT_AMOUNT, amount_bytes(op.amount))
            return
        if op.expiry < payload.expiry:
            fail(FINAL_INCORRECT_EXPIRY, op.expiry.to_bytes(8, "big"))
            return
        part = ReceivedPart(channel_id=channel_id, lock_id=op.lock_id, hashlock=op.hashlock, amount=op.amount,
                            total_amount=payload.total_amount, expiry=op.expiry, shared_secret=ss,
                            created=self.now, replay_tag=tag)
        if payload.keysend_preimage is not None:
            if (hash_preimage(payload.keysend_preimage) != op.hashlock or payload.total_amount != payload.amount
                    or op.expiry < self.now + self.m.limits.min_final_expiry_delta):
                fail(INCORRECT_OR_UNKNOWN_PAYMENT_DETAILS)
                return
            known = self.invoice(op.hashlock)
            received = (known.received if known else 0) + op.amount
            self.put(InvoiceRecord(payment_hash=op.hashlock, preimage=payload.keysend_preimage, payment_secret=b"",
                                   amount=None, asset=op.asset, expires_at=0, min_final_expiry_delta=0, text="",
                                   description="keysend", status="paid", received=received,
                                   paid_at=self.unix_now))
            self.received.append(self.invoice(op.hashlock))  # type: ignore[arg-type]
            self._claim([part], payload.keysend_preimage)
            return
        invoice = self.invoice(op.hashlock)
        # Probing and theft of an invoice: only the payer holds the payment secret, and an
        # invoice is paid once (a second payment to a known preimage would be kept by every hop).
        if (invoice is None or invoice.status != "unpaid" or payload.payment_secret != invoice.payment_secret
                or invoice.asset != op.asset or invoice.expires_at < self.unix_now
                or op.expiry < self.now + invoice.min_final_expiry_delta
                or (invoice.amount is not None and payload.total_amount < invoice.amount)):
            fail(INCORRECT_OR_UNKNOWN_PAYMENT_DETAILS)
            return
        held = self.held_parts(op.hashlock)
        if any(p.total_amount != payload.total_amount for p in held):
            fail(INCORRECT_OR_UNKNOWN_PAYMENT_DETAILS)
            return
        if len(self.m.held) + len(held) >= self.m.limits.max_held_parts:
            fail(TEMPORARY_NODE_FAILURE)
            return
        held.append(part)
        if sum(p.amount for p in held) < payload.total_amount:
            self.put(part)  # wait for the other parts (or ``mpp_timeout``)
            return
        self.put(attrs.evolve(invoice, status="paid", received=sum(p.amount for p in held), paid_at=self.unix_now))
        self.received.append(self.invoice(op.hashlock))  # type: ignore[arg-type]
        self._claim(held, invoice.preimage)

    def _claim(self, parts: list[ReceivedPart], preimage: bytes) -> None:
        for p in parts:
            self.put(attrs.evolve(p, status="settled"))
            self.proposals.append(Propose(p.channel_id, FulfillLock(lock_id=p.lock_id, preimage=preimage)))

    def lock_settled(self, channel_id: bytes, ch: Channel, op: FulfillLock | FailLock, payer: int) -> None:
        """The peer settled a lock; ours (we are its payer) matter here."""
        if payer != ch.me:
            return
        out_key = lock_key(channel_id, op.lock_id)
        if isinstance(op, FulfillLock):
            self.out_succeeded(out_key, op.preimage)
        else:
            self.out_failed(out_key, op.reason, op.failure)

    def secret_learned(self, channel_id: bytes, ch: Channel, lock_id: bytes, payer: int, preimage: bytes) -> None:
        """The payee of our lock revealed the preimage on the L1: claim upstream with it."""
        if payer == ch.me:
            self.out_succeeded(lock_key(channel_id, lock_id), preimage)

    def op_done(self, channel_id: bytes, ch: Channel, op: Operation) -> None:
        """Our own operation is in a state both signed: a lock we failed after its expiry."""
        if isinstance(op, FailLock):
            self.out_failed(lock_key(channel_id, op.lock_id), TEMPORARY_CHANNEL_FAILURE, b"")

    def op_failed(self, channel_id: bytes, op: Operation, ch: Channel | None = None) -> None:
        """Our outgoing lock could not be added: refused before we signed it (balance gone
        meanwhile, channel closing; ``ch`` None), or dropped by the core from a proposal (a
        close, a dispute, a reject; ``ch`` is the channel after). A proposal we signed may be
        held countersigned by the peer, which can still make the L1 pay the lock: a forward
        then waits (``tick`` decides, ``_check_out``), so that we never fail upstream a lock
        we may still pay downstream. A part of our own payment waits only when the channel
        went to the L1 (after a reject it fails now: it has no expiry to wait for)."""
        if not isinstance(op, AddLock):
            return
        key = lock_key(channel_id, op.lock_id)
        if ch is not None and _may_hold(ch, op.lock_id) and (
                self.forward_by_out(key) is not None or ch.phase is not Phase.OPEN):
            return
        self.out_failed(key, TEMPORARY_CHANNEL_FAILURE, b"")

    def out_succeeded(self, out_key: bytes, preimage: bytes) -> None:
        fwd = self.forward_by_out(out_key)
        if fwd is not None and fwd.status == "pending":
            # Theft by delay: claim upstream at once; the core keeps the secret and goes to the
            # L1 with it if the upstream peer does not settle before the lock's margin.
            self.put(attrs.evolve(fwd, status="settled", resolved=self.now))
            self.proposals.append(Propose(fwd.in_channel, FulfillLock(lock_id=fwd.in_lock, preimage=preimage)))
        part = self.part(out_key)
        if part is not None and part.status == "pending":
            done = attrs.evolve(part, status="succeeded", preimage=preimage)
            self.put(done)
            self.resolved.append(Resolved(done))

    def out_failed(self, out_key: bytes, reason: int, failure: bytes) -> None:
        fwd = self.forward_by_out(out_key)
        if fwd is not None and fwd.status == "pending":
            code = reason if reason & BADONION else TEMPORARY_CHANNEL_FAILURE
            packet = b""
            if failure:
                try:
                    packet = wrap_failure(fwd.shared_secret, failure)
                except FailureDecodeError:
                    packet = b""
            if not packet:
                packet = create_failure(fwd.shared_secret, Failure(code=code))
            self.put(attrs.evolve(fwd, status="failed", resolved=self.now, failure=code_name(code)))
            self.proposals.append(Propose(fwd.in_channel, FailLock(lock_id=fwd.in_lock, reason=code & 0xFFFF,
                                                                  failure=packet)))
        part = self.part(out_key)
        if part is not None and part.status == "pending":
            hop, code, data = 0, reason or TEMPORARY_CHANNEL_FAILURE, b""
            if failure:
                try:
                    decoded = decode_failure(part.shared_secrets, failure)
                    hop, code, data = decoded.hop_index, decoded.failure.code, decoded.failure.data
                except FailureDecodeError:
                    hop, code = -1, TEMPORARY_CHANNEL_FAILURE
            who = part.route[hop] if 0 <= hop < len(part.route) else "an unknown hop"
            done = attrs.evolve(part, status="failed", failed_hop=hop, failure_code=code, failure_data=data,
                                failure=f"hop {hop} ({who}): {code_name(code)}")
            self.put(done)
            self.resolved.append(Resolved(done))

    def _fail_in(self, channel_id: bytes, lock_id: bytes, code: int, packet: bytes) -> None:
        self.proposals.append(Propose(channel_id, FailLock(lock_id=lock_id, reason=code & 0xFFFF, failure=packet)))

    def tick(self, channels: ChannelLookup) -> None:
        """Deadlines: incomplete payments to us time out; our expired outgoing locks are failed
        back (the payer may, after the expiry); forwards whose outgoing channel settled on the
        L1 without a preimage fail upstream."""
        limits = self.m.limits
        for hashlock in {part.hashlock for part in self.m.held.values()}:
            current = self.held_parts(hashlock)
            if current and (min(p.created for p in current) + limits.mpp_timeout <= self.now
                            or min(p.expiry for p in current) - self.m.lock_margin <= self.now):
                for p in current:
                    self.put(attrs.evolve(p, status="failed"))
                    self._fail_in(p.channel_id, p.lock_id, MPP_TIMEOUT,
                                  create_failure(p.shared_secret, Failure(code=MPP_TIMEOUT)))
        for fwd in list(self.m.forwards.values()):
            staged = self.forward(fwd.key)
            if staged is None or staged.status != "pending":
                continue
            incoming = channels(fwd.in_channel)
            preimage = dict(incoming.preimages).get(fwd.in_lock) if incoming is not None else None
            if preimage is not None:
                # The secret reached us on the L1 through the incoming lock, maybe before the
                # outgoing lock was in any state we held (a peer that registered an old state,
                # then the one with our lock): the outgoing lock may be paid, so claim upstream.
                self.out_succeeded(fwd.out_key, preimage)
                continue
            self._check_out(fwd.out_channel, fwd.out_lock, fwd.out_expiry, channels)
        for part in list(self.m.parts.values()):
            self._check_out(part.channel_id, part.lock_id, None, channels)

    def _check_out(self, channel_id: bytes, lock_id: bytes, expiry: int | None, channels: ChannelLookup) -> None:
        ch = channels(channel_id)
        key = lock_key(channel_id, lock_id)
        if ch is None:
            return
        lock = next((lk for lk in ch.latest.state.allocation.locks if lk.lock_id == lock_id), None)
        if ch.phase is Phase.SETTLED and not ch.locks_pending:
            self.out_failed(key, PERMANENT_CHANNEL_FAILURE, b"")  # no preimage came: refunded on the L1
        elif not _may_hold(ch, lock_id) or (
                expiry is not None and self.now >= expiry + self.m.lock_margin and lock is None
                and not any(getattr(op, "lock_id", None) == lock_id for op in ch.in_flight)):
            # Dropped before the peer could hold it, or it may be in a state we signed that the
            # peer holds but it expired without its secret on the L1 (which we would have seen
            # within a lock_margin, through the incoming lock): the L1 would pay it back to us.
            self.out_failed(key, TEMPORARY_CHANNEL_FAILURE, b"")
        elif (lock is not None and ch.phase is Phase.OPEN and not ch.closing_requested and lock.expiry <= self.now
              and not any(getattr(op, "lock_id", None) == lock_id for op in ch.in_flight)):
            self.proposals.append(Propose(channel_id, FailLock(lock_id=lock_id, reason=TEMPORARY_CHANNEL_FAILURE)))


def _may_hold(ch: Channel, lock_id: bytes) -> bool:
    """Whether our lock ``lock_id`` may still be paid to the peer on the L1: it is in the state
    both signed or in flight, or we signed a state newer than that one (the peer may hold it
    countersigned and register it, even after the core dropped it from our side)."""
    if any(lk.lock_id == lock_id for lk in ch.latest.state.allocation.locks):
        return True
    if any(getattr(op, "lock_id", None) == lock_id for op in ch.in_flight):
        return True
    return ch.phase is not Phase.SETTLED and ch.highest_signed > ch.version


def encode_policy(policy: FeePolicy) -> bytes:
    """A channel's terms in a failure's data, so the sender retries with what we ask."""
    from ..encoding import encode

    data = encode(policy.to_fields())
    return data if len(data) <= 200 else b""


def amount_bytes(amount: int) -> bytes:
    return amount.to_bytes((amount.bit_length() + 7) // 8 or 1, "big")
