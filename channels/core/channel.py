"""One channel's lifecycle and update rules, as a pure transition function.

``transition(channel, input, now=..., env=...) -> (channel, effects)`` never
performs I/O: it returns ``Send``/``Submit*``/``Notify*``/``Reject`` effects for
the shell. Invalid peer input yields ``Reject`` and the unchanged channel; local
misuse raises ``LocalProtocolError`` at once (h11 style).

Updates: the proposer signs ``latest + operations`` (payments, hash-time locks, app
moves; ``channels.core.ops``) at a new version and sends the signature; the receiver
recomputes that state itself, checks the rules, and countersigns. Many local
operations queued while an update is in flight go into the next update together
(batching), which is how throughput goes beyond lock-step.

Concurrent proposals ("collisions") are settled without ever signing two states
at one version: both sides have signed *their own* state at version v, so neither
may sign the other's. The leader (lowest participant index) re-proposes its
payments at v + 1; the follower abandons its proposal, re-queues its payments and
waits until the leader's update completes. Versions therefore strictly increase
but may skip a number after a collision.
"""

from __future__ import annotations

import enum
import operator
from collections.abc import Callable, Sequence
from typing import Any

import attrs

from ..errors import InsufficientFunds, InvalidTransition, LocalProtocolError, QueueFull, RemoteProtocolError
from . import effects as fx
from . import inputs as ins
from .app import DEFAULT_APPS, AppRegistry, check_common
from .backend import Signer, StateScheme
from .ids import MAX_AMOUNT, AssetId, ChannelId, Version
from .messages import (
    ChannelAccept,
    ChannelProposal,
    CloseProposal,
    Countersign,
    Reestablish,
    UpdateProposal,
    UpdateReject,
)
from .ops import (
    MAX_BATCH_BYTES,
    AddLock,
    AppMove,
    FailLock,
    FulfillLock,
    MoveFn,
    Operation,
    Payment,
    apply_operation,
    hash_preimage,
    wire_weight,
)
from .state import MAX_PARTICIPANTS, Allocation, ChannelParams, Lock, SignedState, State

MAX_BATCH = 256  # operations per update: a payment is ~180 bytes, so a frame stays under the 64 KiB cap
MAX_PAYMENT_ID = 32  # bytes; the wire refuses longer ids
MAX_VERSION_GAP = 16  # a proposal may skip at most this many versions (version-exhaustion DoS)
RESUBMIT_AFTER = 10  # seconds of L1 time before an unconfirmed L1 transaction is sent again
# Record bounds (proto/02 section 11): every collection in a channel record is bounded, so a
# record always fits the reader's limits and a peer cannot make it grow with its answers.
MAX_QUEUE = 512  # local operations waiting for the next update (the record reader takes 512 per list)
MAX_ABANDONED = 64  # our signed proposals the peer left unanswered (each may still be registered)
MAX_RETRIES = 8  # retry-rejects in a row before we stop re-proposing (retry loop)


class Phase(enum.Enum):
    PROPOSED = "proposed"  # params sent or received; version 0 not yet signed by all
    FUNDING = "funding"  # version 0 signed by all; deposits not all seen on the L1
    OPEN = "open"  # funded: payments flow
    CLOSING = "closing"  # a final state is signed by all; waiting for conclude/withdraw
    DISPUTED = "disputed"  # a state is registered on the L1; waiting for the window to end
    SETTLED = "settled"  # funds are back in L1 accounts (or the proposal was declined)


class PendingKind(enum.Enum):
    UPDATE = "update"
    CLOSE = "close"


@attrs.frozen(kw_only=True)
class Env:
    """Capabilities the core is handed: how to sign and verify (both pure)."""

    scheme: StateScheme
    signer: Signer
    # Seconds of L1 time a channel may stay proposed or funding before it is dropped
    # (None: never). Stops zombie channels that a free identity opens and never funds.
    funding_timeout: int | None = None
    apps: AppRegistry = DEFAULT_APPS  # the rules of every app this node plays (the L1 holds the same)
    # Seconds of L1 time a lock's payee keeps in hand to claim it on chain: with the preimage
    # known and the lock still not settled this close to its expiry, it goes to the L1.
    lock_margin: int = 60


@attrs.frozen(kw_only=True)
class Pending:
    """Our proposal awaiting the peer's countersignature (signed by us only)."""

    kind: PendingKind
    signed: SignedState
    operations: tuple[Operation, ...]
    message: UpdateProposal | CloseProposal

    @property
    def version(self) -> Version:
        return self.signed.state.version


@attrs.frozen(kw_only=True)
class Cosign:
    """n-party channels: another participant's proposal that we signed, collecting the
    countersignatures of the others. It becomes ``latest`` only with all n signatures."""

    proposer: int
    kind: PendingKind
    signed: SignedState  # the proposed state with the signatures collected so far
    operations: tuple[Operation, ...]

    @property
    def version(self) -> Version:
        return self.signed.state.version


# n-party: countersignatures held for a state we have not received yet, one per (version, signer)
MAX_EARLY = MAX_VERSION_GAP * MAX_PARTICIPANTS


@attrs.frozen(kw_only=True, eq=False)
class Projection:
    """The state the first ``covered`` of our operations in flight lead to from ``base``,
    checked at time ``at`` with the rules of ``apps`` and ``params``: the fold
    ``_on_propose`` makes. The same fold again gives the same state, so an operation proposed
    next is checked from here instead of from ``base`` (every object here is immutable)."""

    base: State
    params: ChannelParams
    apps: AppRegistry
    at: int
    covered: int
    state: State

    def holds(self, ch: Channel, now: int, env: Env) -> bool:
        """Whether the fold would be made from the same inputs now (compared by identity: O(1))."""
        return self.base is ch.latest.state and self.params is ch.params and self.apps is env.apps and self.at == now


@attrs.frozen(kw_only=True, eq=False)
class InFlight:
    """Keys and per-asset amounts of our operations in flight, derived from the very
    ``pending`` and ``queue`` objects it names (compared by identity: both are immutable).

    Queueing an operation checks its key and the spendable balance against everything in
    flight; walking the batch for each one made a batch of n cost O(n^2). A channel carries
    this beside its queue, extended by ``plus`` as each operation is queued."""

    pending: Pending | None
    queue: tuple[Operation, ...]
    keys: frozenset[bytes]
    spent: tuple[tuple[AssetId, int], ...]  # (asset, what payments and added locks take), per asset
    projection: Projection | None = None  # covers a prefix of the operations in flight

    @classmethod
    def of(cls, pending: Pending | None, queue: tuple[Operation, ...]) -> InFlight:
        ops = (pending.operations if pending is not None else ()) + queue
        spent: dict[AssetId, int] = {}
        for op in ops:
            if isinstance(op, (Payment, AddLock)):
                spent[op.asset] = spent.get(op.asset, 0) + op.amount
        return cls(pending=pending, queue=queue, keys=frozenset(op.key for op in ops), spent=tuple(spent.items()))

    def spending(self, asset: AssetId) -> int:
        """What operations in flight take from our balance of ``asset``."""
        for have, amount in self.spent:
            if have == asset:
                return amount
        return 0

    def plus(self, queue: tuple[Operation, ...], op: Operation, projection: Projection | None) -> InFlight:
        """The same with ``op`` appended: ``queue`` is the old queue plus ``op``. Appending
        keeps the old projection true (it covers a prefix); ``projection`` replaces it."""
        spent = self.spent
        if isinstance(op, (Payment, AddLock)):
            total = self.spending(op.asset) + op.amount
            spent = (*(pair for pair in spent if pair[0] != op.asset), (op.asset, total))
        return InFlight(pending=self.pending, queue=queue, keys=self.keys | {op.key}, spent=spent,
                        projection=self.projection if projection is None else projection)


@attrs.frozen(kw_only=True)
class Channel:
    """Everything one node knows about one channel; persisted whole after each step."""

    params: ChannelParams
    channel_id: ChannelId
    me: int
    phase: Phase
    latest: SignedState  # newest state signed by all (version 0 half-signed while PROPOSED)
    latest_proposer: int
    pending: Pending | None = None
    queue: tuple[Operation, ...] = ()
    highest_signed: int = -1  # highest version this node ever signed (never sign it twice)
    highest_signed_digest: bytes = b""
    yielded: bool = False  # lost a collision: wait for the leader's update
    closing_requested: bool = False
    holdings: tuple[int, ...] = ()  # L1 escrow per asset of the allocation
    deposited: tuple[int, ...] = ()  # what the L1 shows we deposited, per asset
    deadline: int | None = None  # end of the challenge window while DISPUTED
    registered_version: int | None = None  # version the L1 holds in the dispute
    final_signed: bool = False  # we signed a final state: never sign a non-final one again
    # Our signed proposals that were dropped unanswered, above ``latest``: the peer may
    # still hold them countersigned and register one, which makes them done after all.
    abandoned: tuple[tuple[int, tuple[Operation, ...]], ...] = ()
    concluded: bool = False
    submitted_at: int | None = None  # L1 time of the last conclude/withdraw submission
    retries: int = 0  # retry-rejects in a row since the peer last countersigned anything
    funding_since: int | None = None  # L1 time we first saw this channel proposed or funding
    # (lock id, preimage) of locks paying us whose secret we know: kept until the lock leaves
    # the state signed by both, so we can still claim it on chain if the peer stops answering.
    preimages: tuple[tuple[bytes, bytes], ...] = ()
    # The state the L1 holds when a move was forced on chain after ``latest`` (signed by its
    # mover only); moves in the dispute follow it.
    forced: SignedState | None = None
    # Locks the L1 still holds in escrow after paying the balances (lock ids): the channel
    # settles once each is paid out.
    locks_pending: tuple[bytes, ...] = ()
    # n-party channels only (proto/02 section 13): a peer's proposal we signed, waiting for
    # the other countersignatures, and countersignatures (version, signer, signature) that
    # arrived before the proposal they sign.
    cosign: Cosign | None = None
    early: tuple[tuple[int, int, bytes], ...] = ()
    # n-party: our proposal that became ``latest`` and the version it was built on, resent to a
    # participant still at that version (one that a liar's reject made drop its co-signed state).
    proposed_latest: tuple[int, UpdateProposal | CloseProposal] | None = None
    # Derived from ``pending`` and ``queue``, never stored nor compared (see ``InFlight``):
    # ``channel_from_bytes`` leaves it out, and a stale one is ignored.
    _flight: InFlight | None = attrs.field(default=None, eq=False, repr=False)

    @property
    def peer(self) -> int:
        """The other participant (n-party channels: the first other one)."""
        return 1 - self.me if self.me < 2 else 0

    @property
    def multi(self) -> bool:
        """An n-party channel (three or more participants): proto/02 section 13."""
        return len(self.params.participants) > 2

    @property
    def version(self) -> Version:
        return self.latest.state.version

    @property
    def allocation(self) -> Allocation:
        return self.latest.state.allocation

    @property
    def in_flight(self) -> tuple[Operation, ...]:
        """Our operations not yet countersigned: the pending proposal's, then the queue."""
        return (self.pending.operations if self.pending else ()) + self.queue

    @property
    def flight(self) -> InFlight:
        """The keys and amounts of ``in_flight``: the carried one while it still names this
        channel's ``pending`` and ``queue`` (O(1)), else computed afresh."""
        cached = self._flight
        if cached is not None and cached.pending is self.pending and cached.queue is self.queue:
            return cached
        return InFlight.of(self.pending, self.queue)

    def spendable(self, asset: AssetId) -> int:
        """What a new payment may still take: balance minus everything in flight."""
        return self.allocation.balance(asset, self.me) - self.flight.spending(asset)


Step = tuple[Channel, list[fx.Effect]]


# ---------------------------------------------------------------- helpers


def apply_operations(state: State, ops: Sequence[Operation], *, params: ChannelParams, proposer: int,
                     version: int, now: int, env: Env) -> State:
    """The state after ``proposer`` applies every operation in order, at ``version``.

    Raises ``InvalidTransition`` naming the rule broken. The app turns moves into
    states and bounds its data; the core's own rules cover payments and locks."""
    if not ops:
        raise InvalidTransition("an update carries at least one operation")
    if len(ops) > MAX_BATCH:
        raise InvalidTransition(f"more than {MAX_BATCH} operations in one update")
    if len({op.key for op in ops}) != len(ops):
        raise InvalidTransition("an operation is listed twice in one update")
    if len(params.participants) > 2 and not all(isinstance(op, AppMove) for op in ops):
        # A payment or lock names no payee among n participants ("the other one" of two):
        # applied as in a two-party channel it would pay the wrong participant.
        raise InvalidTransition("an n-party channel carries app moves only")
    app = env.apps.get(params.app_id)
    move = _mover(params, env)
    nxt = state
    for op in ops:
        nxt = apply_operation(nxt, op, proposer=proposer, now=now, move=move)
    nxt = attrs.evolve(nxt, version=Version(version))
    # Money printing: whatever the operations did, totals per asset are conserved.
    check_common(params, state, attrs.evolve(nxt, version=Version(state.version + 1)))
    if len(nxt.app_data) > app.max_app_data and nxt.app_data != state.app_data:
        raise InvalidTransition(f"app data above the {app.max_app_data} bytes of {params.app_id!r}")
    return nxt


def _mover(params: ChannelParams, env: Env) -> MoveFn:
    """The channel app's move rule, in the shape ``apply_operation`` takes."""
    app = env.apps.get(params.app_id)
    return lambda state, payload, mover: app.apply_move(params, state, payload, mover)


def _done(op: Operation, version: int) -> fx.Effect:
    """Our operation is in a state signed by both."""
    if isinstance(op, Payment):
        return fx.NotifyPaymentSent(payment_id=op.payment_id, asset=op.asset, amount=op.amount,
                                    version=Version(version))
    return fx.NotifyOpDone(key=op.key, operation=op, version=Version(version))


def _failed(op: Operation, reason: str) -> fx.Effect:
    if isinstance(op, Payment):
        return fx.NotifyPaymentFailed(payment_id=op.payment_id, reason=reason, asset=op.asset, amount=op.amount)
    return fx.NotifyOpFailed(key=op.key, operation=op, reason=reason)


def _received(op: Operation, locks: dict[bytes, Lock], version: int, mover: int) -> fx.Effect:
    """The peer's operation, now in a state we countersigned (``locks``: every lock it may name)."""
    v = Version(version)
    if isinstance(op, Payment):
        return fx.NotifyPaymentReceived(payment_id=op.payment_id, asset=op.asset, amount=op.amount, version=v)
    if isinstance(op, AddLock):
        return fx.NotifyLockAdded(operation=op, version=v)
    if isinstance(op, (FulfillLock, FailLock)):
        return fx.NotifyLockSettled(operation=op, lock=locks[op.lock_id], version=v)
    return fx.NotifyMoved(operation=op, mover=mover, version=v)


def _sign(ch: Channel, state: State, env: Env) -> tuple[Channel, bytes]:
    """Sign ``state``, refusing a second, different state at a version already signed.

    This is the equivocation guard: two states signed at one version would let the
    peer register whichever suits it."""
    digest = env.scheme.state_digest(ch.params, state)
    if state.version < ch.highest_signed or (state.version == ch.highest_signed
                                             and digest != ch.highest_signed_digest):
        raise LocalProtocolError(f"refusing to sign a second state at version {state.version}")
    if ch.final_signed and not state.is_final:
        # Final-state replay: the peer could keep our signed final state, get us to sign
        # newer payments to it, then conclude with the final one (conclude has no window).
        raise LocalProtocolError("refusing to sign an update after signing a final state")
    sig = env.signer.sign_digest(digest)
    return attrs.evolve(ch, highest_signed=state.version, highest_signed_digest=digest,
                        final_signed=ch.final_signed or state.is_final), sig


def _can_sign(ch: Channel, state: State, env: Env) -> bool:
    if state.version > ch.highest_signed:
        return True
    return state.version == ch.highest_signed and env.scheme.state_digest(ch.params, state) == ch.highest_signed_digest


def _verify(ch: Channel, state: State, who: int, signature: bytes, env: Env) -> bool:
    return env.scheme.verify(ch.params, state, ch.params.participants[who], signature)


def verify_signed(params: ChannelParams, signed: SignedState, scheme: StateScheme) -> bool:
    """True when every participant's signature on ``signed.state`` is valid."""
    return (len(signed.signatures) == len(params.participants) and signed.state.channel_id == scheme.channel_id(params)
            and all(scheme.verify(params, signed.state, addr, sig)
                    for addr, sig in zip(params.participants, signed.signatures, strict=True)))


def _next_version(ch: Channel) -> int:
    return max(ch.version, ch.highest_signed) + 1


def _abandon_pending(ch: Channel) -> Channel:
    """Drop our unanswered proposal; its operations go back to the front of the queue."""
    if ch.pending is None:
        return ch
    abandoned = ch.abandoned
    if ch.pending.operations:
        abandoned = (*abandoned, (ch.pending.version, ch.pending.operations))
    return attrs.evolve(ch, pending=None, queue=ch.pending.operations + ch.queue, abandoned=abandoned)


def _prune_abandoned(ch: Channel) -> Channel:
    """Once a newer state is signed by both, an older abandoned proposal can only lose a dispute,
    and a secret for a lock no longer in it is no longer needed."""
    kept = tuple(a for a in ch.abandoned if a[0] > ch.version)
    secrets = ch.preimages
    if secrets:  # most channels hold none: skip the walk over the locks and the queue
        live = {lk.lock_id for lk in ch.allocation.locks}
        secrets = tuple(p for p in secrets if p[0] in live)
    if kept == ch.abandoned and secrets == ch.preimages:
        return ch
    return attrs.evolve(ch, abandoned=kept, preimages=secrets)


def _fail_in_flight(ch: Channel, reason: str) -> Step:
    out = [_failed(op, reason) for op in ch.in_flight]
    return attrs.evolve(ch, pending=None, queue=()), out


def _to_the_l1(ch: Channel, above: int, reason: str) -> Step:
    """The channel goes to the L1, where a state above version ``above`` may still be
    registered (a refute). Our payments and locks in a state we signed above it (the pending
    proposal, abandoned ones) wait in ``abandoned`` until the L1 concludes; the rest fail now.

    Double payment: the peer may hold such a proposal countersigned. Failing its lock at once
    would make the payer pay again by another route while the peer registers an older state,
    then refutes with the one holding the lock and claims it with the secret."""
    entries = list(ch.abandoned)
    if ch.pending is not None and ch.pending.operations:
        entries.append((ch.pending.version, ch.pending.operations))
    # An app move fails at once, as before: the game takes it to the L1 itself (a progress).
    kept = tuple((v, money) for v, ops in entries if v > above
                 for money in [tuple(op for op in ops if not isinstance(op, AppMove))] if money)
    waiting = {op.key for _, ops in kept for op in ops}
    failed = [_failed(op, reason) for op in ch.in_flight if op.key not in waiting]
    return attrs.evolve(ch, pending=None, queue=(), abandoned=kept), failed


def _locks_we_may_pay(ch: Channel) -> list[Lock]:
    """Our locks in the latest state, then those in states only we signed (the peer may hold
    them countersigned and register one): a secret on the L1 for any of them may cost us."""
    locks = [lk for lk in ch.allocation.locks if lk.payer == ch.me]
    known = {lk.lock_id for lk in locks}
    signed = [*ch.abandoned, *([(ch.pending.version, ch.pending.operations)] if ch.pending else [])]
    for _, ops in signed:
        for op in ops:
            if isinstance(op, AddLock) and op.lock_id not in known:
                known.add(op.lock_id)
                locks.append(Lock(asset=op.asset, amount=op.amount, hashlock=op.hashlock, expiry=op.expiry,
                                  payer=ch.me, payee=ch.peer, lock_id=op.lock_id))
    return locks


def concerns_secret(ch: Channel, hashlock: bytes) -> bool:
    """Whether a preimage of ``hashlock`` registered on the L1 matters to this channel."""
    return any(lk.hashlock == hashlock for lk in ch.allocation.locks) or any(
        lk.hashlock == hashlock for lk in _locks_we_may_pay(ch))


def _check_funded(ch: Channel) -> Step:
    if ch.phase is not Phase.FUNDING:
        return ch, []
    if all(h >= t for h, t in zip(ch.holdings, ch.allocation.totals(), strict=True)):
        return attrs.evolve(ch, phase=Phase.OPEN), [fx.NotifyOpened(channel_id=ch.channel_id)]
    return ch, []


def _deposits(ch: Channel) -> list[fx.Effect]:
    """Our share of every asset not yet seen deposited on the L1."""
    alloc = ch.allocation
    seen = ch.deposited or (0,) * len(alloc.assets)
    return [fx.SubmitDeposit(channel_id=ch.channel_id, asset=asset, amount=row[ch.me] - done)
            for asset, row, done in zip(alloc.assets, alloc.balances, seen, strict=True) if row[ch.me] > done]


def _maybe_propose(ch: Channel, env: Env, now: int) -> Step:
    """Start the next update if nothing is in flight: queued payments first, then a close."""
    if ch.phase is not Phase.OPEN or ch.pending is not None or ch.yielded or ch.cosign is not None:
        # n-party: while a peer's state we signed waits for its other countersignatures, a
        # proposal of ours would be built on a state that is about to be replaced.
        return ch, []
    version = _next_version(ch)
    if ch.queue and len(ch.abandoned) >= MAX_ABANDONED:
        # Every abandoned proposal is kept until a newer state is signed by both (it may
        # still be registered); a peer that never countersigns must not make that list grow.
        return _fail_in_flight(ch, "the peer left too many of our signed updates unanswered; close the channel")
    dropped: list[fx.Effect] = []
    if ch.queue:
        state, batch, rest, dropped = _build_batch(ch, version, now, env)
        if not batch:
            return attrs.evolve(ch, queue=rest), dropped
        ch, sig = _sign(ch, state, env)
        msg: UpdateProposal | CloseProposal = UpdateProposal(
            channel_id=ch.channel_id, version=Version(version), operations=batch, signature=sig)
        kind = PendingKind.UPDATE
    elif ch.closing_requested:
        state = attrs.evolve(ch.latest.state, version=Version(version), is_final=True)
        ch, sig = _sign(ch, state, env)
        batch, rest = (), ()
        msg = CloseProposal(channel_id=ch.channel_id, version=Version(version), signature=sig)
        kind = PendingKind.CLOSE
    else:
        return ch, []
    signed = SignedState(state=state, signatures=_one_signature(ch, sig))
    pending = Pending(kind=kind, signed=signed, operations=batch, message=msg)
    ch = attrs.evolve(ch, pending=pending, queue=rest)
    out: list[fx.Effect] = [*dropped, fx.Send(message=msg)]
    if ch.multi and ch.early:
        ch, more = _nx_absorb_early(ch, now, env)
        out += more
    return ch, out


def _build_batch(ch: Channel, version: int, now: int,
                 env: Env) -> tuple[State, tuple[Operation, ...], tuple[Operation, ...], list[fx.Effect]]:
    """The next update from the queue: ``(state, batch, rest, failures)``.

    Operations are checked one by one against the state so far: one that no longer
    applies (the peer settled that lock meanwhile, the lock expired) fails alone
    instead of jamming the queue."""
    move = _mover(ch.params, env)
    state = ch.latest.state
    batch: list[Operation] = []
    failures: list[fx.Effect] = []
    taken = weight = 0
    for op in ch.queue:
        weight += wire_weight(op)
        if len(batch) == MAX_BATCH or (batch and weight > MAX_BATCH_BYTES):
            break
        taken += 1
        try:
            state = apply_operation(state, op, proposer=ch.me, now=now, move=move)
        except InvalidTransition as exc:
            failures.append(_failed(op, str(exc)))
            continue
        batch.append(op)
    return attrs.evolve(state, version=Version(version)), tuple(batch), ch.queue[taken:], failures


def _one_signature(ch: Channel, sig: bytes) -> tuple[bytes, ...]:
    sigs = [b""] * len(ch.params.participants)
    sigs[ch.me] = sig
    return tuple(sigs)


# ---------------------------------------------------------------- opening


def propose_channel(params: ChannelParams, allocation: Allocation, *, env: Env) -> Step:
    """Create a channel we propose: sign version 0 and send the proposal."""
    try:
        params.validate()
        allocation.validate(len(params.participants))
    except RemoteProtocolError as exc:
        raise LocalProtocolError(f"invalid channel proposal: {exc}") from None
    if allocation.locks:
        raise LocalProtocolError("a channel opens without locks")
    if env.signer.address not in params.participants:
        raise LocalProtocolError("our L1 address is not a participant")
    me = params.index_of(env.signer.address)
    try:
        app_data = env.apps.get(params.app_id).initial_data(params)
    except InvalidTransition as exc:
        raise LocalProtocolError(str(exc)) from None
    cid = env.scheme.channel_id(params)  # the backend's id: an EVM adjudicator computes its own
    state = State(channel_id=cid, version=Version(0), allocation=allocation, app_data=app_data)
    ch = Channel(params=params, channel_id=cid, me=me, phase=Phase.PROPOSED,
                 latest=SignedState(state=state, signatures=(b"",) * len(params.participants)),
                 latest_proposer=me, holdings=(0,) * len(allocation.assets))
    ch, sig = _sign(ch, state, env)
    ch = attrs.evolve(ch, latest=ch.latest.with_signature(me, sig))
    return ch, [fx.Send(message=ChannelProposal(params=params, allocation=allocation, signature=sig))]


def accept_channel(proposal: ChannelProposal, *, env: Env, proposer: int | None = None) -> Step:
    """Join a proposed channel: check it, countersign version 0, and fund our share.

    Whether to accept at all (amounts, peer, app) is the shell's policy; this only
    refuses proposals that are malformed or not signed by the other participant."""
    params, allocation = proposal.params, proposal.allocation
    try:
        params.validate()
        allocation.validate(len(params.participants))
    except RemoteProtocolError as exc:
        raise RemoteProtocolError(f"invalid channel proposal: {exc}") from None
    if allocation.locks:
        raise RemoteProtocolError("only channels without locks can be opened")
    if env.signer.address not in params.participants:
        raise RemoteProtocolError("our L1 address is not a participant of this proposal")
    me = params.index_of(env.signer.address)
    if params.app_id not in env.apps:
        raise RemoteProtocolError(f"we do not play app {params.app_id!r}")
    app_data = env.apps.get(params.app_id).initial_data(params)
    cid = env.scheme.channel_id(params)
    state = State(channel_id=cid, version=Version(0), allocation=allocation, app_data=app_data)
    if len(params.participants) > 2:
        return _nx_accept_channel(params, cid, state, me, proposal, proposer, env)
    ch = Channel(params=params, channel_id=cid, me=me, phase=Phase.FUNDING,
                 latest=SignedState(state=state, signatures=(b"",) * 2), latest_proposer=1 - me,
                 holdings=(0,) * len(allocation.assets))
    if not _verify(ch, state, ch.peer, proposal.signature, env):
        raise RemoteProtocolError("the proposer's signature on version 0 is invalid")
    ch, sig = _sign(ch, state, env)
    ch = attrs.evolve(ch, latest=ch.latest.with_signature(me, sig).with_signature(ch.peer, proposal.signature))
    return ch, [fx.Send(message=ChannelAccept(channel_id=ch.channel_id, signature=sig)), *_deposits(ch)]


# ---------------------------------------------------------------- the transition


def transition(ch: Channel, inp: ins.Input, *, now: int, env: Env) -> Step:
    """Apply one input. Pure: the same arguments always give the same result."""
    handler = _HANDLERS.get(type(inp))
    if handler is None:
        raise LocalProtocolError(f"no handler for {type(inp).__name__}")
    result: Step = handler(ch, inp, now, env)
    return result


def _on_pay(ch: Channel, inp: ins.ActionPay, now: int, env: Env) -> Step:
    if inp.asset not in ch.allocation.assets:
        raise LocalProtocolError(f"asset {inp.asset!r} is not in this channel")
    if ch.multi:
        raise LocalProtocolError("an n-party channel carries app moves only, not payments")
    if type(inp.amount) is not int or not 0 < inp.amount <= MAX_AMOUNT:
        raise LocalProtocolError("the amount must be a positive integer of at most 2^256-1")
    if type(inp.payment_id) is not bytes or not 0 < len(inp.payment_id) <= MAX_PAYMENT_ID:
        # An id the peer cannot decode would jam the channel: every resend is refused.
        raise LocalProtocolError(f"a payment id is 1..{MAX_PAYMENT_ID} bytes")
    flight = ch.flight  # O(1) while queueing: no walk over what is in flight
    spendable = ch.allocation.balance(inp.asset, ch.me) - flight.spending(inp.asset)
    if inp.amount > spendable:
        raise InsufficientFunds(f"amount {inp.amount} exceeds the spendable balance {spendable}")
    return _queue(ch, Payment(payment_id=inp.payment_id, asset=inp.asset, amount=inp.amount), now, env, flight)


def _on_propose(ch: Channel, inp: ins.ActionPropose, now: int, env: Env) -> Step:
    """Queue a lock, lock settlement or app move, after checking it applies to the state
    our queue leads to (an operation that cannot apply is refused now, not signed later).
    In a dispute an app move goes to the L1 instead (``progress``)."""
    if isinstance(inp.operation, Payment):
        raise LocalProtocolError("payments go through ActionPay")
    if ch.multi and not isinstance(inp.operation, AppMove):
        raise LocalProtocolError("an n-party channel carries app moves only, not locks")
    if ch.phase is Phase.DISPUTED and isinstance(inp.operation, AppMove):
        return _progress(ch, inp.operation, now, env)
    if isinstance(inp.operation, FulfillLock) and (ch.phase is not Phase.OPEN or ch.closing_requested):
        kept = _keep_secret(ch, inp.operation)
        on_chain = kept.phase in (Phase.DISPUTED, Phase.CLOSING) or bool(kept.locks_pending)
        return kept, [fx.SubmitSecret(preimage=inp.operation.preimage)] if on_chain and kept != ch else []
    # The fold over everything in flight starts where the last one stopped, when it would be
    # made from the same state, rules and time: one operation applied per proposal, not n.
    state, move, flight, done = ch.latest.state, _mover(ch.params, env), ch.flight, 0
    if flight.projection is not None and flight.projection.holds(ch, now, env):
        state, done = flight.projection.state, flight.projection.covered
    signing = ch.pending.operations if ch.pending is not None else ()
    rest = ch.queue[done - len(signing):] if done >= len(signing) else signing[done:] + ch.queue
    try:
        for op in (*rest, inp.operation):
            state = apply_operation(state, op, proposer=ch.me, now=now, move=move)
    except InvalidTransition as exc:
        raise InvalidTransition(f"{type(inp.operation).__name__} refused: {exc}") from None
    covered = len(signing) + len(ch.queue) + 1
    op = inp.operation
    if isinstance(op, FulfillLock) and all(lid != op.lock_id for lid, _ in ch.preimages):
        # Persist the secret with the request: if the peer never countersigns, we still
        # claim the lock on chain with it before the expiry.
        ch = attrs.evolve(ch, preimages=(*ch.preimages, (op.lock_id, op.preimage)))
    projection = Projection(base=ch.latest.state, params=ch.params, apps=env.apps, at=now,
                            covered=covered, state=state)
    return _queue(ch, op, now, env, flight, projection)


def _keep_secret(ch: Channel, op: FulfillLock) -> Channel:
    """The channel is on its way to the L1, so the lock cannot be settled off-chain: keep the
    secret, and the node registers it on the L1 before the lock expires (a forwarder that
    learned the preimage downstream after its upstream peer closed still claims upstream)."""
    lock = next((lk for lk in ch.allocation.locks if lk.lock_id == op.lock_id), None)
    if lock is None or lock.payee != ch.me:
        raise InvalidTransition(f"FulfillLock refused: no lock {op.lock_id.hex()} pays us in this channel")
    if hash_preimage(op.preimage) != lock.hashlock:
        raise InvalidTransition("FulfillLock refused: the preimage does not match the lock's hashlock")
    if any(lid == op.lock_id for lid, _ in ch.preimages):
        return ch
    return attrs.evolve(ch, preimages=(*ch.preimages, (op.lock_id, op.preimage)))


def _queue(ch: Channel, op: Operation, now: int, env: Env, flight: InFlight,
           projection: Projection | None = None) -> Step:
    """Append ``op`` to the queue (``flight``: ``ch.flight``; ``projection``: the fold that
    checked ``op``, covering it)."""
    if ch.phase is not Phase.OPEN or ch.closing_requested or ch.final_signed:
        raise LocalProtocolError(_not_open(ch))
    if op.key in flight.keys:
        raise LocalProtocolError("an operation with this id is already in flight")
    if len(ch.queue) >= MAX_QUEUE:
        # Unbounded record: operations queued while the peer is offline are stored in the
        # channel record; past the bound it would no longer be readable at start-up.
        raise QueueFull(f"{MAX_QUEUE} operations are already queued on this channel; wait for the peer")
    if len(ch.abandoned) >= MAX_ABANDONED:
        raise LocalProtocolError(f"the peer left {MAX_ABANDONED} of our signed updates unanswered; "
                                 "close the channel (close --force)")
    queue = (*ch.queue, op)
    return _maybe_propose(_queued(ch, queue, flight.plus(queue, op, projection)), env, now)


_CHANNEL_FIELDS = tuple(a.alias or a.name for a in attrs.fields(Channel))
_channel_values = operator.attrgetter(*(a.name for a in attrs.fields(Channel)))


def _queued(ch: Channel, queue: tuple[Operation, ...], flight: InFlight) -> Channel:
    """``attrs.evolve(ch, queue=queue, flight=flight)`` without evolve's walk over the field
    definitions: it runs once per queued operation."""
    args = dict(zip(_CHANNEL_FIELDS, _channel_values(ch), strict=True))
    args["queue"], args["flight"] = queue, flight
    return Channel(**args)


def _not_open(ch: Channel) -> str:
    """Why a channel takes no update, naming its real phase (a settled one is not "closing")."""
    name = f"channel {ch.channel_id.hex()[:12]}"
    if ch.phase is Phase.SETTLED:
        return f"{name} is settled; open a new channel"
    if ch.phase in (Phase.PROPOSED, Phase.FUNDING):
        return f"{name} is {ch.phase.value}, not open yet; wait until both deposits are on the L1"
    if ch.phase is Phase.DISPUTED:
        return f"{name} is disputed on the L1; it pays out when the challenge window ends"
    return f"{name} is closing; open a new channel"


def _progress(ch: Channel, move: AppMove, now: int, env: Env) -> Step:
    """Force our move on chain: the dispute's current state plus the move, signed by us alone."""
    if ch.deadline is not None and now >= ch.deadline:
        raise LocalProtocolError("the challenge window has ended; no move can be forced any more")
    held = ch.forced or ch.latest
    if ch.registered_version is None or held.state.version < ch.registered_version:
        raise LocalProtocolError("the L1 holds a newer state than ours; wait for the dispute to settle")
    app = env.apps.get(ch.params.app_id)
    try:
        moved = app.apply_move(ch.params, held.state, move.payload, ch.me)
    except InvalidTransition as exc:
        raise InvalidTransition(f"move refused: {exc}") from None
    nxt = attrs.evolve(moved, version=Version(held.state.version + 1))
    ch, sig = _sign(ch, nxt, env)
    forced = SignedState(state=nxt, signatures=_one_signature(ch, sig))
    return attrs.evolve(ch, forced=forced, submitted_at=now), [
        fx.SubmitProgress(signed_prev=held, next_state=nxt, mover=ch.me, signature=sig),
        fx.NotifyOpDone(key=move.key, operation=move, version=nxt.version)]  # signed and sent to the L1


def _on_checkpoint(ch: Channel, inp: ins.ActionCheckpoint, now: int, env: Env) -> Step:
    if ch.phase is not Phase.OPEN:
        raise LocalProtocolError(f"channel is {ch.phase.value}; only an open channel is checkpointed")
    return ch, [fx.SubmitCheckpoint(signed=ch.latest)]


def _on_progressed(ch: Channel, inp: ins.ChainProgressed, now: int, env: Env) -> Step:
    """A move forced on chain (by the peer, or ours confirmed). It carries the mover's
    signature only; we accept it when that signature and the app's rules hold, and then
    whoever's turn it is must answer on chain before the new deadline."""
    if ch.phase is Phase.SETTLED:
        return ch, []
    signed, mover = inp.signed, inp.mover
    prev = ch.forced if ch.forced is not None and ch.forced.state.version < signed.state.version else ch.latest
    ok = (0 <= mover < len(ch.params.participants) and signed.state.channel_id == ch.channel_id
          and _verify(ch, signed.state, mover, signed.signatures[mover], env))
    if ok:
        try:
            env.apps.get(ch.params.app_id).validate_transition(ch.params, prev.state, signed.state, mover)
        except InvalidTransition:
            ok = mover == ch.me  # our own move, already checked when we made it
    if not ok:
        # The L1 checked the move; disagreeing means another rule set or a bad event source.
        return ch, [fx.Reject(reason="forced move does not verify", action=fx.RejectAction.WARN)]
    ch, failed = _fail_in_flight(attrs.evolve(ch, cosign=None, early=()), "the channel is in dispute")
    ch = attrs.evolve(ch, phase=Phase.DISPUTED, forced=signed, deadline=inp.deadline,
                      registered_version=signed.state.version, submitted_at=now)
    turn = env.apps.get(ch.params.app_id).turn(ch.params, signed.state)
    return ch, [*failed, fx.NotifyProgressed(state=signed.state, mover=mover, deadline=inp.deadline, turn=turn)]


def _on_checkpointed(ch: Channel, inp: ins.ChainCheckpointed, now: int, env: Env) -> Step:
    return ch, []  # a floor on the L1: nothing changes off-chain


def _on_secret_registered(ch: Channel, inp: ins.ChainSecretRegistered, now: int, env: Env) -> Step:
    """The secret of a lock we pay became public on the L1: report it (a forwarder claims
    upstream with it); as payee, keep it to claim ours."""
    hashed = hash_preimage(inp.preimage)
    out: list[fx.Effect] = []
    for lk in _locks_we_may_pay(ch):
        if lk.hashlock == hashed:
            out.append(fx.NotifySecretLearned(lock=lk, preimage=inp.preimage, time=inp.time))
    for lk in ch.allocation.locks:
        if lk.hashlock != hashed or lk.payer == ch.me:
            continue
        if all(lock_id != lk.lock_id for lock_id, _ in ch.preimages):
            ch = attrs.evolve(ch, preimages=(*ch.preimages, (lk.lock_id, inp.preimage)))
    return ch, out


def _on_cancel(ch: Channel, inp: ins.ActionCancelPay, now: int, env: Env) -> Step:
    """Withdraw a queued payment the caller gave up on; a signed one can no longer be stopped."""
    kept = tuple(op for op in ch.queue if op.key != inp.payment_id)
    if kept == ch.queue:
        return ch, []
    cancelled = [_failed(op, "cancelled before it was signed") for op in ch.queue if op.key == inp.payment_id]
    return attrs.evolve(ch, queue=kept), cancelled


def _on_close(ch: Channel, inp: ins.ActionClose, now: int, env: Env) -> Step:
    if ch.phase is not Phase.OPEN:
        raise LocalProtocolError(f"channel is {ch.phase.value}; a cooperative close needs an open channel")
    if ch.allocation.locks:
        raise LocalProtocolError("the channel has pending locks; wait for them or force-close")
    return _maybe_propose(attrs.evolve(ch, closing_requested=True), env, now)


def _on_force_close(ch: Channel, inp: ins.ActionForceClose, now: int, env: Env) -> Step:
    if ch.phase in (Phase.PROPOSED, Phase.SETTLED):
        raise LocalProtocolError(f"channel is {ch.phase.value}: nothing to force-close")
    if ch.phase is Phase.DISPUTED:
        return ch, []
    ch, out = _to_the_l1(attrs.evolve(ch, cosign=None, early=()), ch.version, "channel is being force-closed")
    out += _secrets(ch)
    if ch.latest.state.is_final:
        submit: fx.Effect = fx.SubmitConclude(signed=ch.latest)
        phase = Phase.CLOSING
    else:
        submit = fx.SubmitRegister(signed=ch.latest)
        phase = Phase.DISPUTED
    return attrs.evolve(ch, phase=phase, submitted_at=now), [*out, submit]


def _on_reconnect(ch: Channel, inp: ins.ActionReconnect, now: int, env: Env) -> Step:
    if ch.multi:
        return _nx_reconnect(ch, inp, now, env)
    if ch.phase is Phase.PROPOSED:  # the proposal or its accept may have been lost
        return ch, [fx.Send(message=_proposal_message(ch))]
    if ch.phase is Phase.SETTLED:
        return ch, []
    if ch.phase is Phase.FUNDING and ch.version == 0 and ch.latest_proposer == ch.peer:
        accept = ChannelAccept(channel_id=ch.channel_id, signature=ch.latest.signatures[ch.me])
        return ch, [fx.Send(message=accept)]
    return ch, [fx.Send(message=Reestablish(channel_id=ch.channel_id, latest_version=ch.version))]


def _proposal_message(ch: Channel) -> ChannelProposal:
    """Our proposal again, byte-identical (Ed25519 signatures are deterministic)."""
    return ChannelProposal(params=ch.params, allocation=ch.latest.state.allocation,
                           signature=ch.latest.signatures[ch.me])


def _on_resync(ch: Channel, inp: ins.ActionResync, now: int, env: Env) -> Step:
    if ch.multi:
        return _nx_resync(ch, inp, now, env)
    if ch.phase is Phase.PROPOSED:
        return ch, [fx.Send(message=_proposal_message(ch))]
    if ch.phase is not Phase.OPEN:
        return ch, []
    out: list[fx.Effect] = [fx.Send(message=Reestablish(channel_id=ch.channel_id, latest_version=ch.version))]
    if ch.pending is not None:
        out.append(fx.Send(message=ch.pending.message))
    if ch.yielded:  # the leader never came back: stop waiting for it (a collision repeats at worst)
        ch, more = _maybe_propose(attrs.evolve(ch, yielded=False), env, now)
        out += more
    return ch, out


def _on_accept(ch: Channel, inp: ins.ReceiveAccept, now: int, env: Env) -> Step:
    if ch.multi:
        return _nx_accept(ch, inp, now, env)
    if ch.phase is not Phase.PROPOSED or ch.latest_proposer != ch.me:
        return ch, [fx.Reject(reason="accept for a channel that is not awaiting one", action=fx.RejectAction.IGNORE)]
    if not _verify(ch, ch.latest.state, ch.peer, inp.message.signature, env):
        return ch, [fx.Reject(reason="invalid signature on version 0", action=fx.RejectAction.DISCONNECT)]
    ch = attrs.evolve(ch, phase=Phase.FUNDING, latest=ch.latest.with_signature(ch.peer, inp.message.signature))
    ch, opened = _check_funded(ch)
    return ch, [*_deposits(ch), *opened]


def _on_decline(ch: Channel, inp: ins.ReceiveDecline, now: int, env: Env) -> Step:
    if ch.phase is not Phase.PROPOSED:
        return ch, [fx.Reject(reason="decline for a channel past its proposal", action=fx.RejectAction.IGNORE)]
    return attrs.evolve(ch, phase=Phase.SETTLED), [fx.NotifyClosed(
        channel_id=ch.channel_id, version=ch.version, reason=f"the peer declined: {inp.message.reason}")]


def _countersign(ch: Channel, state: State, proposer_sig: bytes, env: Env) -> tuple[Channel, Countersign]:
    ch, sig = _sign(ch, state, env)
    sigs = [b""] * len(ch.params.participants)
    sigs[ch.me], sigs[ch.peer] = sig, proposer_sig
    ch = attrs.evolve(ch, latest=SignedState(state=state, signatures=tuple(sigs)), latest_proposer=ch.peer,
                      yielded=False, retries=0)
    return _prune_abandoned(ch), Countersign(channel_id=ch.channel_id, version=state.version, signature=sig)


def _resend_countersign_if_duplicate(ch: Channel, version: int, signature: bytes) -> Step:
    """A retransmitted proposal we already countersigned: answer with identical bytes.

    Ed25519 is deterministic, so a true retransmission carries the very signature we
    stored; anything else at this version is stale or forged."""
    if (version == ch.version and ch.latest_proposer == ch.peer and ch.latest.is_fully_signed
            and signature == ch.latest.signatures[ch.peer]):
        msg = Countersign(channel_id=ch.channel_id, version=ch.version, signature=ch.latest.signatures[ch.me])
        return ch, [fx.Send(message=msg)]
    return ch, [fx.Reject(reason=f"stale proposal for version {version}", action=fx.RejectAction.IGNORE)]


def _collision(ch: Channel, env: Env, now: int, other: int | None = None) -> Step:
    """Both sides proposed at once; settle it without signing two states at one version.
    (n-party: ``other`` is the proposer we collided with; the lower index leads.)"""
    if ch.me < (ch.peer if other is None else other):  # leader: our payments go first, at a fresh version
        ch, out = _maybe_propose(_abandon_pending(ch), env, now)
        return ch, [fx.Reject(reason="concurrent proposal; re-proposing as leader", action=fx.RejectAction.IGNORE),
                    *out]
    ch = attrs.evolve(_abandon_pending(ch), yielded=True)
    return ch, [fx.Reject(reason="concurrent proposal; yielding to the leader", action=fx.RejectAction.IGNORE)]


def _cannot_sign(ch: Channel, version: Version, env: Env, now: int) -> Step:
    """A valid proposal at a version we already signed differently: never sign it."""
    if ch.pending is not None and ch.pending.version == version:
        return _collision(ch, env, now)
    # We abandoned our own proposal at this version earlier; ask the peer to retry
    # higher, or both sides would wait for each other forever.
    retry = UpdateReject(channel_id=ch.channel_id, version=version, retry=True, reason="version already signed")
    return ch, [fx.Reject(reason=f"already signed another state at version {version}", action=fx.RejectAction.IGNORE),
                fx.Send(message=retry)]


def _precheck_proposal(ch: Channel, msg: UpdateProposal | CloseProposal) -> Step | None:
    """What every proposal meets first: duplicates, a closed channel, a version leap."""
    if msg.version <= ch.version:
        return _resend_countersign_if_duplicate(ch, msg.version, msg.signature)
    if ch.phase is not Phase.OPEN:
        return ch, [fx.Reject(reason=f"channel is {ch.phase.value}, not open", action=fx.RejectAction.IGNORE)]
    if msg.version > ch.version + MAX_VERSION_GAP:
        return ch, [fx.Reject(reason=f"version {msg.version} jumps too far ahead of {ch.version}",
                              action=fx.RejectAction.WARN)]
    return None


def _on_update(ch: Channel, inp: ins.ReceiveUpdate, now: int, env: Env) -> Step:
    if ch.multi:
        return _nx_update(ch, inp, now, env)
    msg, before = inp.message, ch.latest.state
    early = _precheck_proposal(ch, msg)
    if early is not None:
        return early
    try:
        state = apply_operations(ch.latest.state, msg.operations, params=ch.params, proposer=ch.peer,
                                 version=msg.version, now=now, env=env)
    except InvalidTransition as exc:
        # No UpdateReject here: the signature cannot be checked on a state that cannot
        # be built, so answering would let a forged frame cancel an honest proposal.
        return ch, [fx.Reject(reason=f"update breaks the rules: {exc}", action=fx.RejectAction.WARN)]
    if not _verify(ch, state, ch.peer, msg.signature, env):
        return ch, [fx.Reject(reason="invalid signature on update", action=fx.RejectAction.WARN)]
    if ch.final_signed:
        if ch.pending is not None and ch.pending.version == msg.version:
            return _collision(ch, env, now)
        # After a final state nothing else is signed; the peer fails these payments and
        # our close goes out (again).
        reject = UpdateReject(channel_id=ch.channel_id, version=msg.version, retry=False,
                              reason="the channel is closing")
        ch, more = _maybe_propose(attrs.evolve(ch, yielded=False), env, now)
        return ch, [fx.Reject(reason="update after we signed a final state", action=fx.RejectAction.IGNORE),
                    fx.Send(message=reject), *more]
    if not _can_sign(ch, state, env):
        return _cannot_sign(ch, msg.version, env, now)
    ch, countersign = _countersign(_abandon_pending(ch), state, msg.signature, env)
    out: list[fx.Effect] = [fx.Send(message=countersign)]
    locks = {lk.lock_id: lk for lk in before.allocation.locks}
    for op in msg.operations:
        if isinstance(op, AddLock):
            locks[op.lock_id] = Lock(lock_id=op.lock_id, asset=op.asset, amount=op.amount, hashlock=op.hashlock,
                                     expiry=op.expiry, payer=ch.peer, payee=ch.me)
        out.append(_received(op, locks, state.version, ch.peer))
    ch, more = _maybe_propose(ch, env, now)
    return ch, out + more


def _on_close_proposal(ch: Channel, inp: ins.ReceiveClose, now: int, env: Env) -> Step:
    if ch.multi:
        return _nx_close_proposal(ch, inp, now, env)
    msg = inp.message
    early = _precheck_proposal(ch, msg)
    if early is not None:
        return early
    state = attrs.evolve(ch.latest.state, version=msg.version, is_final=True)
    if not _verify(ch, state, ch.peer, msg.signature, env):
        return ch, [fx.Reject(reason="invalid signature on close", action=fx.RejectAction.WARN)]
    if ch.allocation.locks:
        return ch, [fx.Reject(reason="cannot close with pending locks", action=fx.RejectAction.WARN),
                    fx.Send(message=UpdateReject(channel_id=ch.channel_id, version=msg.version, retry=False,
                                                 reason="pending locks"))]
    if not _can_sign(ch, state, env):
        return _cannot_sign(ch, msg.version, env, now)
    ch, failed = _fail_in_flight(ch, "the peer closed the channel")
    ch, countersign = _countersign(ch, state, msg.signature, env)
    ch = attrs.evolve(ch, phase=Phase.CLOSING, closing_requested=True, submitted_at=now)
    return ch, [*failed, fx.Send(message=countersign)]


def _on_countersign(ch: Channel, inp: ins.ReceiveCountersign, now: int, env: Env) -> Step:
    if ch.multi:
        return _nx_countersign(ch, inp, now, env)
    msg, pending = inp.message, ch.pending
    if pending is None or msg.version != pending.version:
        late = _late_countersign(ch, msg, now, env)
        if late is not None:
            return late
        return ch, [fx.Reject(reason=f"countersignature for version {msg.version} we are not waiting for",
                              action=fx.RejectAction.IGNORE)]
    if not _verify(ch, pending.signed.state, ch.peer, msg.signature, env):
        return ch, [fx.Reject(reason="invalid countersignature", action=fx.RejectAction.WARN)]
    ch = _prune_abandoned(attrs.evolve(ch, latest=pending.signed.with_signature(ch.peer, msg.signature),
                                       latest_proposer=ch.me, pending=None, yielded=False, retries=0))
    return _our_state_complete(ch, pending, now, env)


def _our_state_complete(ch: Channel, pending: Pending, now: int, env: Env) -> Step:
    """Our proposal became ``latest`` with every signature: a close goes to the L1, an update's
    operations are done and the next update may start."""
    if pending.kind is PendingKind.CLOSE:
        ch, failed = _fail_in_flight(ch, "the channel closed")
        ch = attrs.evolve(ch, phase=Phase.CLOSING, submitted_at=now)
        return ch, [*failed, fx.SubmitConclude(signed=ch.latest)]
    out: list[fx.Effect] = [_done(op, ch.version) for op in pending.operations]
    ch, more = _maybe_propose(ch, env, now)
    return ch, out + more


def _late_countersign(ch: Channel, msg: Countersign, now: int, env: Env) -> Step | None:
    """The peer countersigned a proposal of ours that we had abandoned (a collision, or a
    lock that expired in flight while its countersignature was on the way). It is a state
    signed by both: adopt it, or the two sides would hold different latest states.

    No state signed by either side lies between ``latest`` and an abandoned version (we sign
    only above what we signed, and the peer's proposals at or below it we never signed), so
    the abandoned state is exactly ``latest`` plus its operations; our signature on it is
    the deterministic one we made when proposing it."""
    entry = next((ops for version, ops in ch.abandoned if version == msg.version), None)
    if entry is None or msg.version <= ch.version:
        return None
    try:
        state = apply_operations(ch.latest.state, entry, params=ch.params, proposer=ch.me, version=msg.version,
                                 now=-1, env=env)  # time checks passed when we proposed it
    except InvalidTransition:
        return None
    if not _verify(ch, state, ch.peer, msg.signature, env):
        return ch, [fx.Reject(reason="invalid countersignature", action=fx.RejectAction.WARN)]
    ours = env.signer.sign_digest(env.scheme.state_digest(ch.params, state))
    sigs = [b""] * len(ch.params.participants)
    sigs[ch.me], sigs[ch.peer] = ours, msg.signature
    done = {op.key for op in entry}
    ch = _abandon_pending(ch) if ch.pending is not None else ch  # built on the old latest: rebuild it
    ch = attrs.evolve(ch, latest=SignedState(state=state, signatures=tuple(sigs)), latest_proposer=ch.me,
                      queue=tuple(op for op in ch.queue if op.key not in done), yielded=False, retries=0)
    ch = _prune_abandoned(ch)
    ch, more = _maybe_propose(ch, env, now)
    return ch, [*(_done(op, msg.version) for op in entry), *more]


def _on_reject(ch: Channel, inp: ins.ReceiveReject, now: int, env: Env) -> Step:
    if ch.multi and (ch.pending is None or inp.message.version != ch.pending.version):
        return _nx_reject(ch, inp, now, env)
    msg, pending = inp.message, ch.pending
    if pending is None or msg.version != pending.version:
        return ch, [fx.Reject(reason="reject for a version we did not propose", action=fx.RejectAction.IGNORE)]
    if msg.retry:  # the peer signed another state at this version: propose again, higher.
        if ch.retries >= MAX_RETRIES:
            # Retry loop: a peer answering every proposal with a retry-reject would make us
            # sign a new version (and rewrite the record) forever. An honest peer needs one
            # or two retries after a collision; this many in a row is misbehaviour.
            ch, failed = _fail_in_flight(_abandon_pending(ch), "the peer keeps refusing our updates")
            return attrs.evolve(ch, retries=0, yielded=False), [
                *failed, fx.Reject(reason=f"{MAX_RETRIES} retry-rejects in a row (retry loop)",
                                   action=fx.RejectAction.DISCONNECT)]
        # No yield here: the peer has nothing pending at that version, so waiting for it
        # could wait forever; a new collision, if any, is settled by the leader rule.
        return _maybe_propose(attrs.evolve(_abandon_pending(ch), yielded=False, retries=ch.retries + 1), env, now)
    reason = f"peer rejected the update: {msg.reason}"[:200]
    out: list[fx.Effect] = [_failed(op, reason) for op in pending.operations]
    ch = attrs.evolve(ch, pending=None, closing_requested=ch.closing_requested and pending.kind is PendingKind.UPDATE)
    ch, more = _maybe_propose(ch, env, now)
    return ch, out + more


def _on_reestablish(ch: Channel, inp: ins.ReceiveReestablish, now: int, env: Env) -> Step:
    """BOLT 2's rule: retransmit exactly what the peer has not acknowledged."""
    if ch.multi:
        return _nx_reestablish(ch, inp, now, env)
    theirs = inp.message.latest_version
    out: list[fx.Effect] = []
    if theirs < ch.version and ch.latest_proposer == ch.peer and ch.latest.is_fully_signed:
        out.append(fx.Send(message=Countersign(channel_id=ch.channel_id, version=ch.version,
                                               signature=ch.latest.signatures[ch.me])))
    if ch.pending is not None and ch.pending.version > theirs:
        # The peer does not hold our proposal signed: safe to rebuild it if time broke it.
        ch, rebuilt = _revalidate_pending(ch, now, env)
        out += rebuilt or ([fx.Send(message=ch.pending.message)] if ch.pending is not None else [])
    return ch, out


def _revalidate_pending(ch: Channel, now: int, env: Env) -> Step:
    """Before retransmitting our proposal: if time made one of its operations invalid (a lock
    that expired in flight), the peer will never countersign it. Abandon it and propose
    again without that operation, which fails alone; else we would resend it forever."""
    if ch.pending is None or ch.pending.kind is not PendingKind.UPDATE:
        return ch, []
    try:
        apply_operations(ch.latest.state, ch.pending.operations, params=ch.params, proposer=ch.me,
                         version=ch.pending.version, now=now, env=env)
    except InvalidTransition:
        return _maybe_propose(_abandon_pending(ch), env, now)
    return ch, []


def _on_deposited(ch: Channel, inp: ins.ChainDeposited, now: int, env: Env) -> Step:
    if inp.asset not in ch.allocation.assets:
        return ch, []
    index = ch.allocation.asset_index(inp.asset)
    holdings = list(ch.holdings)
    holdings[index] = inp.holdings
    deposited = list(ch.deposited or (0,) * len(holdings))
    if inp.ours:
        deposited[index] += inp.amount
    return _check_funded(attrs.evolve(ch, holdings=tuple(holdings), deposited=tuple(deposited)))


def _on_registered(ch: Channel, inp: ins.ChainRegistered, now: int, env: Env) -> Step:
    if ch.phase is Phase.SETTLED:
        return ch, []
    registered = inp.signed
    if registered.state.channel_id != ch.channel_id or not verify_signed(ch.params, registered, env.scheme):
        # The L1 only accepts fully signed states; a bad one means a bad event source.
        return ch, [fx.Reject(reason="registered state does not verify", action=fx.RejectAction.WARN)]
    version = registered.state.version
    out: list[fx.Effect] = []
    if version > ch.version or (ch.phase is Phase.PROPOSED and version == ch.version):
        # Our own proposal, countersigned by the peer (or version 0 of a channel we proposed,
        # registered before its accept reached us): adopt it. Payments it carries are paid.
        carried: tuple[Operation, ...] = ()
        if ch.pending is not None and ch.pending.version == version:
            carried = ch.pending.operations
        for abandoned_version, ops in ch.abandoned:
            if abandoned_version == version:
                carried = ops
        done = {op.key for op in carried}
        out += [_done(op, version) for op in carried]
        if ch.cosign is not None and ch.cosign.version == version:  # n-party: a peer's state we co-signed
            out += [_received(op, {}, version, ch.cosign.proposer) for op in ch.cosign.operations]
        pending = ch.pending if ch.pending is not None and not done & {op.key for op in ch.pending.operations} \
            else None
        later = tuple((v, kept) for v, ops in ch.abandoned if v > version
                      for kept in [tuple(op for op in ops if op.key not in done)] if kept)
        ch = attrs.evolve(ch, latest=registered, latest_proposer=ch.me, pending=pending, abandoned=later,
                          queue=tuple(op for op in ch.queue if op.key not in done))
    ch, failed = _to_the_l1(attrs.evolve(ch, cosign=None, early=()), version, "the channel is in dispute")
    out += failed
    if ch.phase is not Phase.DISPUTED:
        out += _secrets(ch)  # the locks of our latest state pay us only if the secret is on chain
    ours = version == ch.version
    ch = attrs.evolve(ch, phase=Phase.DISPUTED if not ch.concluded else ch.phase, deadline=inp.deadline,
                      registered_version=version, submitted_at=now)
    out.append(fx.NotifyDisputed(version=version, deadline=inp.deadline, ours=ours))
    if version < ch.version:
        # Stale-state attack: the peer registered an old state that pays it more.
        # Answer with our newer state before the window ends.
        if ch.latest.state.is_final:
            out.append(fx.SubmitConclude(signed=ch.latest))
        else:
            out.append(fx.SubmitRefute(signed=ch.latest))
    return ch, out


def _on_concluded(ch: Channel, inp: ins.ChainConcluded, now: int, env: Env) -> Step:
    if ch.concluded or ch.phase is Phase.SETTLED:
        return ch, []
    # The L1 decided which state counts: what waited in a state only we signed (``_to_the_l1``)
    # and is not in it has failed.
    out: list[fx.Effect] = []
    seen: set[bytes] = set()
    for _, ops in ch.abandoned:
        for op in ops:
            if op.key not in seen:
                seen.add(op.key)
                out.append(_failed(op, "the L1 settled a state without it"))
    ch = attrs.evolve(ch, concluded=True, phase=Phase.CLOSING, submitted_at=now, abandoned=())
    return ch, [*out, fx.SubmitWithdraw(channel_id=ch.channel_id)]


def _on_withdrawn(ch: Channel, inp: ins.ChainWithdrawn, now: int, env: Env) -> Step:
    if ch.phase is Phase.SETTLED or ch.locks_pending:
        return ch, []
    ch, out = _fail_in_flight(ch, "the channel settled")
    paid = (ch.forced or ch.latest).state
    if paid.allocation.locks:
        # Balances are paid; each lock waits in escrow until it is decided (proto/03).
        return attrs.evolve(ch, locks_pending=tuple(lk.lock_id for lk in paid.allocation.locks),
                            submitted_at=now), out
    ch = attrs.evolve(ch, phase=Phase.SETTLED)
    return ch, [*out, fx.NotifyClosed(channel_id=ch.channel_id, version=ch.version)]


def _on_lock_resolved(ch: Channel, inp: ins.ChainLockResolved, now: int, env: Env) -> Step:
    if inp.lock_id not in ch.locks_pending:
        return ch, []
    left = tuple(lock_id for lock_id in ch.locks_pending if lock_id != inp.lock_id)
    if left:
        return attrs.evolve(ch, locks_pending=left), []
    ch = attrs.evolve(ch, locks_pending=(), phase=Phase.SETTLED)
    return ch, [fx.NotifyClosed(channel_id=ch.channel_id, version=ch.version)]


def _escrow_tick(ch: Channel, now: int) -> list[fx.Effect]:
    """While locks wait in escrow: register our secrets before their expiry, and withdraw
    again once a lock can be decided (the L1 refuses harmlessly while none can)."""
    locks = [lk for lk in (ch.forced or ch.latest).state.allocation.locks if lk.lock_id in ch.locks_pending]
    secrets = dict(ch.preimages)
    out: list[fx.Effect] = [fx.SubmitSecret(preimage=secrets[lk.lock_id]) for lk in locks
                            if lk.payee == ch.me and lk.lock_id in secrets and now < lk.expiry]
    if out or any(now >= lk.expiry for lk in locks):
        out.append(fx.SubmitWithdraw(channel_id=ch.channel_id))
    return out


def _on_tick(ch: Channel, inp: ins.Tick, now: int, env: Env) -> Step:
    """Drive L1 deadlines: withdraw after the window, resubmit what was not confirmed."""
    # Retry well inside the challenge window, however short it is.
    every = max(1, min(RESUBMIT_AFTER, ch.params.challenge_duration // 4))
    due = ch.submitted_at is None or now >= ch.submitted_at + every
    if ch.phase in (Phase.PROPOSED, Phase.FUNDING):
        if ch.funding_since is None:
            ch = attrs.evolve(ch, funding_since=now)
        elif env.funding_timeout is not None and now >= ch.funding_since + env.funding_timeout:
            return _expire_funding(ch, now)
        if ch.phase is Phase.PROPOSED:
            return ch, []
    if ch.phase is Phase.FUNDING and due:
        # A deposit lost in a crash or refused by the L1 is sent again; an over-deposit
        # is refunded at withdraw, so a duplicate costs nothing.
        if ch.submitted_at is None:
            return attrs.evolve(ch, submitted_at=now), []
        return attrs.evolve(ch, submitted_at=now), _deposits(ch)
    if ch.locks_pending:
        return (attrs.evolve(ch, submitted_at=now), _escrow_tick(ch, now)) if due else (ch, [])
    if ch.phase is Phase.DISPUTED and due:
        # A lost secret registration is sent again while its lock can still pay us.
        secrets = _secrets(ch, before=now)
        # A lost register or refute must be sent again: if the refute never lands,
        # the stale state wins when the window closes.
        if ch.registered_version is None:
            return attrs.evolve(ch, submitted_at=now), [*secrets, fx.SubmitRegister(signed=ch.latest)]
        if ch.registered_version < ch.version and (ch.deadline is None or now < ch.deadline):
            submit: fx.Effect = (fx.SubmitConclude(signed=ch.latest) if ch.latest.state.is_final
                                 else fx.SubmitRefute(signed=ch.latest))
            return attrs.evolve(ch, submitted_at=now), [*secrets, submit]
        if ch.deadline is not None and now >= ch.deadline:
            return attrs.evolve(ch, submitted_at=now), [*secrets, fx.SubmitWithdraw(channel_id=ch.channel_id)]
        if secrets:
            return attrs.evolve(ch, submitted_at=now), list(secrets)
    if ch.phase is Phase.CLOSING and due:
        submit = (fx.SubmitWithdraw(channel_id=ch.channel_id) if ch.concluded
                             else fx.SubmitConclude(signed=ch.latest))
        return attrs.evolve(ch, submitted_at=now), [submit]
    if ch.phase is Phase.OPEN and ch.allocation.locks:
        reason = _lock_deadline(ch, now, env)
        if reason is not None:
            ch, out = _on_force_close(ch, ins.ActionForceClose(), now, env)
            return ch, [fx.Reject(reason=reason, action=fx.RejectAction.CLOSE_ON_CHAIN), *out]
    return ch, []


def _lock_deadline(ch: Channel, now: int, env: Env) -> str | None:
    """Why a lock forces us on chain now, or None.

    As payee with the secret: the peer has not settled by ``expiry - lock_margin``, and
    after the expiry the L1 would return the lock to the payer. As payer: the lock expired
    ``lock_margin`` ago and the peer has not failed it back, so only the L1 can."""
    secrets = dict(ch.preimages)
    for lk in ch.allocation.locks:
        if lk.payee == ch.me and lk.lock_id in secrets and now >= lk.expiry - env.lock_margin:
            return f"lock {lk.lock_id.hex()} expires at {lk.expiry} and the peer has not settled it"
        if lk.payer == ch.me and now >= lk.expiry + env.lock_margin:
            return f"lock {lk.lock_id.hex()} expired at {lk.expiry} and the peer has not failed it"
    return None


def _secrets(ch: Channel, *, before: int | None = None) -> list[fx.Effect]:
    """Register every secret we hold for a lock of ours in our latest state (only for locks
    not yet expired at ``before``: a secret registered after the expiry counts for nothing)."""
    secrets = dict(ch.preimages)
    return [fx.SubmitSecret(preimage=secrets[lk.lock_id]) for lk in ch.allocation.locks
            if lk.payee == ch.me and lk.lock_id in secrets and (before is None or before < lk.expiry)]


def _expire_funding(ch: Channel, now: int) -> Step:
    """Drop a channel that was never funded (zombie channels from free identities).

    With nothing of ours in escrow the channel is simply settled; the peer keeps version 0
    signed by both and can recover its own deposit on the L1. If we did deposit, the
    funds come back through a forced close of version 0."""
    ch, failed = _fail_in_flight(ch, "the channel was never funded")
    ours = any(row[ch.me] for row in ch.allocation.balances)
    if ch.phase is Phase.FUNDING and (ours or any(ch.deposited)):
        return attrs.evolve(ch, phase=Phase.DISPUTED, submitted_at=now), [
            *failed, fx.SubmitRegister(signed=ch.latest)]
    return attrs.evolve(ch, phase=Phase.SETTLED), [*failed, fx.NotifyClosed(
        channel_id=ch.channel_id, version=ch.version, reason="the channel was never funded")]


# ---------------------------------------------------------------- n-party channels (proto/02 section 13)
#
# With three or more participants, a proposal goes to every other participant, each of them
# countersigns to every other participant, and a state counts (becomes ``latest``) only once
# this node holds all n signatures. Messages are the two-party ones, unchanged on the wire:
# the shell tells the core which participant sent each one (``sender``), from the
# authenticated transport, and every signature is checked against that participant's key.


def _nx_sender(ch: Channel, sender: int | None) -> int | None:
    """The sender's index if it is another participant of this channel."""
    if sender is None or not 0 <= sender < len(ch.params.participants) or sender == ch.me:
        return None
    return sender


def _nx_accept_channel(params: ChannelParams, cid: ChannelId, state: State, me: int, proposal: ChannelProposal,
                       proposer: int | None, env: Env) -> Step:
    """Sign version 0 of an n-party channel and send the signature to every participant."""
    n = len(params.participants)
    if proposer is None or not 0 <= proposer < n or proposer == me:
        raise RemoteProtocolError("an n-party channel is proposed by another participant")
    ch = Channel(params=params, channel_id=cid, me=me, phase=Phase.PROPOSED,
                 latest=SignedState(state=state, signatures=(b"",) * n), latest_proposer=proposer,
                 holdings=(0,) * len(state.allocation.assets))
    if not _verify(ch, state, proposer, proposal.signature, env):
        raise RemoteProtocolError("the proposer's signature on version 0 is invalid")
    ch, sig = _sign(ch, state, env)
    ch = attrs.evolve(ch, latest=ch.latest.with_signature(me, sig).with_signature(proposer, proposal.signature))
    # No deposit yet: with one signature on version 0 missing, no state of this channel could
    # ever be concluded or registered, so a deposit could never be withdrawn (a participant
    # who never accepts would lock ours). We deposit once all n have signed (``_nx_accept``).
    return ch, [fx.Send(message=ChannelAccept(channel_id=cid, signature=sig))]


def _nx_accept(ch: Channel, inp: ins.ReceiveAccept, now: int, env: Env) -> Step:
    """Another participant's signature on version 0; with all n, fund our share."""
    who = _nx_sender(ch, inp.sender)
    if who is None:
        return ch, [fx.Reject(reason="accept from no other participant", action=fx.RejectAction.IGNORE)]
    if ch.phase is not Phase.PROPOSED or ch.latest.signatures[who]:
        return ch, []  # a retransmission: we hold its signature already
    if not _verify(ch, ch.latest.state, who, inp.message.signature, env):
        return ch, [fx.Reject(reason="invalid signature on version 0", action=fx.RejectAction.WARN)]
    ch = attrs.evolve(ch, latest=ch.latest.with_signature(who, inp.message.signature))
    if not ch.latest.is_fully_signed:
        return ch, []
    ch, opened = _check_funded(attrs.evolve(ch, phase=Phase.FUNDING))
    return ch, [*_deposits(ch), *opened]


def _nx_version0(ch: Channel, to: int | None) -> list[fx.Effect]:
    """Our signature on version 0 again: the proposal if we opened the channel, else our accept."""
    if ch.latest_proposer == ch.me and ch.phase is Phase.PROPOSED:
        return [fx.Send(message=_proposal_message(ch), to=to)]
    return [fx.Send(message=ChannelAccept(channel_id=ch.channel_id, signature=ch.latest.signatures[ch.me]), to=to)]


def _nx_reconnect(ch: Channel, inp: ins.ActionReconnect, now: int, env: Env) -> Step:
    if ch.phase is Phase.SETTLED:
        return ch, []
    if ch.phase is Phase.PROPOSED:
        out = _nx_version0(ch, inp.peer)
        if ch.latest_proposer != ch.me:  # ask for the accepts we lack (answered in ``_nx_reestablish``)
            out.append(fx.Send(message=Reestablish(channel_id=ch.channel_id, latest_version=Version(0)), to=inp.peer))
        return ch, out
    if ch.phase is Phase.FUNDING:
        return ch, _nx_version0(ch, inp.peer)
    return ch, [fx.Send(message=Reestablish(channel_id=ch.channel_id, latest_version=ch.version), to=inp.peer)]


def _nx_resync(ch: Channel, inp: ins.ActionResync, now: int, env: Env) -> Step:
    """Stalled: send every peer what it may lack, and ask each for what we lack."""
    if ch.phase is Phase.PROPOSED:
        return _nx_reconnect(ch, ins.ActionReconnect(), now, env)
    if ch.phase is not Phase.OPEN:
        return ch, []
    out: list[fx.Effect] = [fx.Send(message=Reestablish(channel_id=ch.channel_id, latest_version=ch.version))]
    if ch.pending is not None:
        out.append(fx.Send(message=ch.pending.message))
    if ch.cosign is not None:
        out.append(fx.Send(message=_nx_countersign_message(ch, ch.cosign.signed)))
    if ch.yielded:
        ch, more = _maybe_propose(attrs.evolve(ch, yielded=False), env, now)
        out += more
    return ch, out


def _nx_countersign_message(ch: Channel, signed: SignedState) -> Countersign:
    return Countersign(channel_id=ch.channel_id, version=signed.state.version, signature=signed.signatures[ch.me])


def _nx_reestablish(ch: Channel, inp: ins.ReceiveReestablish, now: int, env: Env) -> Step:
    """Resend the sender what it lacks: our signature on version 0 while it is still being
    opened, on ``latest`` when it is behind, on the state we co-sign, and our proposal."""
    who = _nx_sender(ch, inp.sender)
    if who is None or ch.phase in (Phase.PROPOSED, Phase.SETTLED):
        return ch, []
    theirs = inp.message.latest_version
    out: list[fx.Effect] = []
    if ch.version == 0 and theirs == 0 and ch.latest.is_fully_signed:
        out += _nx_version0(ch, who)
    if theirs < ch.version and ch.latest.is_fully_signed:
        base = ch.proposed_latest
        if base is not None and base[0] == theirs and base[1].version == ch.version and ch.latest_proposer == ch.me:
            # A participant that dropped the state it co-signed (a liar told it we gave up)
            # completes it again from our proposal: it signed that very state, so signing it
            # again is no second state at that version; without it only the L1 could move on.
            out.append(fx.Send(message=base[1], to=who))
        out.append(fx.Send(message=_nx_countersign_message(ch, ch.latest), to=who))
    if ch.cosign is not None and ch.cosign.version > theirs:
        out.append(fx.Send(message=_nx_countersign_message(ch, ch.cosign.signed), to=who))
    if ch.pending is not None and ch.pending.version > theirs:
        out.append(fx.Send(message=ch.pending.message, to=who))
    return ch, out


def _nx_update(ch: Channel, inp: ins.ReceiveUpdate, now: int, env: Env) -> Step:
    return _nx_proposal(ch, inp.sender, inp.message, now, env)


def _nx_close_proposal(ch: Channel, inp: ins.ReceiveClose, now: int, env: Env) -> Step:
    return _nx_proposal(ch, inp.sender, inp.message, now, env)


def _nx_proposal(ch: Channel, sender: int | None, msg: UpdateProposal | CloseProposal, now: int, env: Env) -> Step:
    """A participant's proposal: check it exactly as a two-party one, sign it, and send our
    countersignature to every other participant."""
    who = _nx_sender(ch, sender)
    if who is None:
        return ch, [fx.Reject(reason="proposal from no other participant", action=fx.RejectAction.IGNORE)]
    cs = ch.cosign
    if msg.version <= ch.version:
        if msg.version == ch.version and ch.latest_proposer == who and msg.signature == ch.latest.signatures[who]:
            return ch, [fx.Send(message=_nx_countersign_message(ch, ch.latest), to=who)]  # a retransmission
        return ch, [fx.Reject(reason=f"stale proposal for version {msg.version}", action=fx.RejectAction.IGNORE)]
    if cs is not None and cs.version == msg.version and cs.proposer == who \
            and msg.signature == cs.signed.signatures[who]:
        return ch, [fx.Send(message=_nx_countersign_message(ch, cs.signed), to=who)]  # a retransmission
    if ch.phase is not Phase.OPEN:
        return ch, [fx.Reject(reason=f"channel is {ch.phase.value}, not open", action=fx.RejectAction.IGNORE)]
    if msg.version > ch.version + MAX_VERSION_GAP:
        return ch, [fx.Reject(reason=f"version {msg.version} jumps too far ahead of {ch.version}",
                              action=fx.RejectAction.WARN)]
    closing = isinstance(msg, CloseProposal)
    ops: tuple[Operation, ...] = () if isinstance(msg, CloseProposal) else msg.operations
    try:
        state = (attrs.evolve(ch.latest.state, version=msg.version, is_final=True) if closing else
                 apply_operations(ch.latest.state, ops, params=ch.params, proposer=who, version=msg.version,
                                  now=now, env=env))
    except InvalidTransition as exc:
        return ch, [fx.Reject(reason=f"update breaks the rules: {exc}", action=fx.RejectAction.WARN)]
    if not _verify(ch, state, who, msg.signature, env):
        if cs is not None and cs.version < msg.version:
            # Built on the state we co-signed, which the proposer already holds with all n
            # signatures while one has not reached us: ask every peer for what we lack (the
            # proposer sends its proposal again when it stalls).
            return ch, [fx.Reject(reason="proposal on a state not fully signed here yet",
                                  action=fx.RejectAction.IGNORE),
                        fx.Send(message=Reestablish(channel_id=ch.channel_id, latest_version=ch.version))]
        return ch, [fx.Reject(reason="invalid signature on update", action=fx.RejectAction.WARN)]
    if ch.final_signed and not closing:
        if ch.pending is not None and ch.pending.version == msg.version:
            return _collision(ch, env, now, who)
        # After a final state nothing else is signed: the proposer fails its moves, and our
        # close goes out again (it may have been lost in a collision).
        reject = UpdateReject(channel_id=ch.channel_id, version=msg.version, retry=False,
                              reason="the channel is closing")
        ch, more = _maybe_propose(attrs.evolve(ch, yielded=False), env, now)
        return ch, [fx.Reject(reason="update after we signed a final state", action=fx.RejectAction.IGNORE),
                    fx.Send(message=reject, to=who), *more]
    if not _can_sign(ch, state, env):
        if ch.pending is not None and ch.pending.version == msg.version:
            return _collision(ch, env, now, who)  # two proposers at one version: the lower index leads
        # We signed another participant's state at this version (or abandoned ours there):
        # the proposer must propose again higher. Never sign two states at one version.
        retry = UpdateReject(channel_id=ch.channel_id, version=msg.version, retry=True,
                             reason="version already signed")
        return ch, [fx.Reject(reason=f"already signed another state at version {msg.version}",
                              action=fx.RejectAction.IGNORE), fx.Send(message=retry, to=who)]
    # A state we co-signed below this version is dropped: its proposer built this one without
    # it, so that proposer signed above it and will never sign it; it cannot get all n
    # signatures. Our own unanswered proposal goes back to the queue the same way.
    ch = _abandon_pending(ch)
    ch, sig = _sign(ch, state, env)
    sigs = [b""] * len(ch.params.participants)
    sigs[ch.me], sigs[who] = sig, msg.signature
    kind = PendingKind.CLOSE if closing else PendingKind.UPDATE
    signed = SignedState(state=state, signatures=tuple(sigs))
    ch = attrs.evolve(ch, cosign=Cosign(proposer=who, kind=kind, signed=signed, operations=ops))
    out: list[fx.Effect] = []
    if closing:
        ch, out = _fail_in_flight(ch, "a participant closed the channel")
        ch = attrs.evolve(ch, closing_requested=True)
    # To every other participant, the proposer included: each needs all n signatures.
    out.append(fx.Send(message=Countersign(channel_id=ch.channel_id, version=msg.version, signature=sig)))
    ch, more = _nx_absorb_early(ch, now, env)
    return ch, out + more


def _nx_reject(ch: Channel, inp: ins.ReceiveReject, now: int, env: Env) -> Step:
    """A participant will never sign the state we co-sign at that version (it signed another
    one there): that state can never hold all n signatures, so stop waiting for it."""
    msg, cs = inp.message, ch.cosign
    if _nx_sender(ch, inp.sender) is None or cs is None or cs.version != msg.version or not msg.retry:
        return ch, [fx.Reject(reason="reject for a version we did not propose", action=fx.RejectAction.IGNORE)]
    ch, out = _maybe_propose(attrs.evolve(ch, cosign=None, yielded=False), env, now)
    return ch, [fx.Reject(reason=f"the state at version {msg.version} cannot be completed",
                          action=fx.RejectAction.IGNORE), *out]


def _nx_countersign(ch: Channel, inp: ins.ReceiveCountersign, now: int, env: Env) -> Step:
    """A participant's signature on our proposal or on the state we co-sign; held aside if
    it overtook the proposal it signs (they come from different peers)."""
    msg = inp.message
    who = _nx_sender(ch, inp.sender)
    if who is None:
        return ch, [fx.Reject(reason="countersignature from no other participant", action=fx.RejectAction.IGNORE)]
    held = ch.pending.signed if ch.pending is not None else None
    if ch.cosign is not None and msg.version == ch.cosign.version:
        held = ch.cosign.signed
    if held is not None and msg.version == held.state.version:
        if held.signatures[who] == msg.signature:
            return ch, []  # a retransmission
        if not _verify(ch, held.state, who, msg.signature, env):
            # A forged or misdirected countersignature changes nothing: the state still
            # lacks that participant's signature.
            return ch, [fx.Reject(reason="invalid countersignature", action=fx.RejectAction.WARN)]
        return _nx_add_signature(ch, msg.version, who, msg.signature, now, env)
    if ch.phase is Phase.OPEN and ch.version < msg.version <= ch.version + MAX_VERSION_GAP:
        early = tuple(e for e in ch.early if e[0] > ch.version and (e[0], e[1]) != (msg.version, who))
        # Record growth: a participant flooding countersignatures for future versions keeps at
        # most one per (version, signer) within the version window, so the record stays bounded.
        if len(early) < MAX_EARLY:
            return attrs.evolve(ch, early=(*early, (msg.version, who, msg.signature))), []
    if msg.version == ch.version:
        return ch, []  # a signature on our latest state, resent: we hold all n already
    return ch, [fx.Reject(reason=f"countersignature for version {msg.version} we are not waiting for",
                          action=fx.RejectAction.IGNORE)]


def _nx_add_signature(ch: Channel, version: int, who: int, sig: bytes, now: int, env: Env) -> Step:
    """Add a checked signature to our proposal or the co-signed state; complete it with all n."""
    if ch.cosign is not None and ch.cosign.version == version:
        cs = attrs.evolve(ch.cosign, signed=ch.cosign.signed.with_signature(who, sig))
        ch = attrs.evolve(ch, cosign=cs)
        return _nx_complete_cosign(ch, now, env) if cs.signed.is_fully_signed else (ch, [])
    assert ch.pending is not None and ch.pending.version == version
    pending = attrs.evolve(ch.pending, signed=ch.pending.signed.with_signature(who, sig))
    ch = attrs.evolve(ch, pending=pending)
    return _nx_complete_ours(ch, now, env) if pending.signed.is_fully_signed else (ch, [])


def _nx_absorb_early(ch: Channel, now: int, env: Env) -> Step:
    """Apply the countersignatures that arrived before the state they sign."""
    targets = [x.signed for x in (ch.pending, ch.cosign) if x is not None]
    keep: list[tuple[int, int, bytes]] = []
    use: list[tuple[int, int, bytes]] = []
    for entry in ch.early:
        version, who, sig = entry
        match = next((t for t in targets if t.state.version == version), None)
        if match is None:
            if version > ch.version:
                keep.append(entry)
        elif not match.signatures[who] and _verify(ch, match.state, who, sig, env):
            use.append(entry)  # a bad one is dropped: it can never count
    ch = attrs.evolve(ch, early=tuple(keep))
    out: list[fx.Effect] = []
    for version, who, sig in use:
        held = ch.cosign if ch.cosign is not None and ch.cosign.version == version else ch.pending
        if held is None or held.version != version:
            continue  # completed by an earlier entry
        ch, more = _nx_add_signature(ch, version, who, sig, now, env)
        out += more
    return ch, out


def _nx_prune_early(ch: Channel) -> Channel:
    early = tuple(e for e in ch.early if e[0] > ch.version)
    return ch if early == ch.early else attrs.evolve(ch, early=early)


def _nx_complete_ours(ch: Channel, now: int, env: Env) -> Step:
    """Our proposal now holds all n signatures: it is the new ``latest``."""
    pending = ch.pending
    assert pending is not None
    ch = _prune_abandoned(attrs.evolve(ch, latest=pending.signed, latest_proposer=ch.me, pending=None,
                                       yielded=False, retries=0, proposed_latest=(ch.version, pending.message)))
    return _our_state_complete(_nx_prune_early(ch), pending, now, env)


def _nx_complete_cosign(ch: Channel, now: int, env: Env) -> Step:
    """A participant's proposal now holds all n signatures here: it is the new ``latest``.
    Only now do its moves count (a participant who countersigns to some peers only cannot
    make a state count for them: each holds it only with every signature)."""
    cs = ch.cosign
    assert cs is not None
    ch = _prune_abandoned(attrs.evolve(ch, latest=cs.signed, latest_proposer=cs.proposer, cosign=None,
                                       yielded=False, retries=0, proposed_latest=None))
    ch = _nx_prune_early(ch)
    if cs.kind is PendingKind.CLOSE:
        # The proposer concludes; we submit it too if it has not landed after a while (tick).
        return attrs.evolve(ch, phase=Phase.CLOSING, closing_requested=True, submitted_at=now), []
    out: list[fx.Effect] = [_received(op, {}, ch.version, cs.proposer) for op in cs.operations]
    ch, more = _maybe_propose(ch, env, now)
    return ch, out + more


_HANDLERS: dict[type, Callable[[Channel, Any, int, Env], Step]] = {
    ins.ActionPay: _on_pay, ins.ActionPropose: _on_propose, ins.ActionCheckpoint: _on_checkpoint,
    ins.ChainProgressed: _on_progressed, ins.ChainCheckpointed: _on_checkpointed,
    ins.ChainSecretRegistered: _on_secret_registered, ins.ChainLockResolved: _on_lock_resolved,
    ins.ActionCancelPay: _on_cancel, ins.ActionClose: _on_close,
    ins.ActionForceClose: _on_force_close,
    ins.ActionReconnect: _on_reconnect, ins.ActionResync: _on_resync, ins.ReceiveAccept: _on_accept,
    ins.ReceiveDecline: _on_decline,
    ins.ReceiveUpdate: _on_update, ins.ReceiveClose: _on_close_proposal, ins.ReceiveCountersign: _on_countersign,
    ins.ReceiveReject: _on_reject, ins.ReceiveReestablish: _on_reestablish, ins.ChainDeposited: _on_deposited,
    ins.ChainRegistered: _on_registered, ins.ChainConcluded: _on_concluded, ins.ChainWithdrawn: _on_withdrawn,
    ins.Tick: _on_tick,
}
