"""Update operations: what one update does to the latest state, applied in order.

An update proposal carries a list of these; the receiver applies them to its own
latest state (it never takes a state from the peer) and asks the channel's App
whether the result is allowed. Payments, hash-time locks and app moves share this
one path (proto/02 section 5.5).

Every operation names the participant it acts for: the update's proposer. The
rules below say which operations a proposer may make, each with the theft it stops.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import attrs

from ..errors import InvalidTransition
from .ids import MAX_AMOUNT, AssetId, PaymentId
from .state import HASH_LEN, Allocation, Lock, State

MAX_LOCK_ID = 32  # bytes
MAX_PREIMAGE = 32  # bytes: SHA-256 preimages of HTLCs are 32 bytes
MAX_MOVE = 4 * 1024  # bytes of app-defined payload per move
MAX_ONION = 1365  # bytes: one onion packet (proto/04-onion.md), carried beside a lock, not in the state
MAX_FAILURE = 288  # bytes: one encrypted failure packet travelling back (proto/04-onion.md section 6)
MAX_BATCH_BYTES = 48 * 1024  # of operations per update, so a frame stays under the 64 KiB cap
OP_OVERHEAD = 180  # bytes a payment or lock operation takes on the wire, at most, without its blobs


@attrs.frozen(kw_only=True)
class Payment:
    """Pay ``amount`` of ``asset`` from the proposer to the other participant."""

    payment_id: PaymentId
    asset: AssetId
    amount: int

    @property
    def key(self) -> bytes:
        return self.payment_id


@attrs.frozen(kw_only=True)
class AddLock:
    """Move ``amount`` from the proposer's balance into a hash-time lock for the peer."""

    lock_id: bytes
    asset: AssetId
    amount: int
    hashlock: bytes
    expiry: int  # L1 time
    # The routing onion for the payee (proto/04-onion.md): travels with the operation, is not
    # part of the signed state; empty for a direct lock.
    onion: bytes = b""

    @property
    def key(self) -> bytes:
        return b"add/" + self.lock_id


@attrs.frozen(kw_only=True)
class FulfillLock:
    """Settle a lock to its payee by revealing the preimage of its hashlock."""

    lock_id: bytes
    preimage: bytes

    @property
    def key(self) -> bytes:
        return b"fulfill/" + self.lock_id


@attrs.frozen(kw_only=True)
class FailLock:
    """Return a lock to its payer. ``reason`` is a code for the payer's routing (0: none)."""

    lock_id: bytes
    reason: int = 0
    failure: bytes = b""  # the encrypted failure packet for the sender (proto/04-onion.md section 6)

    @property
    def key(self) -> bytes:
        return b"fail/" + self.lock_id


@attrs.frozen(kw_only=True)
class AppMove:
    """An app-defined move; the channel's App turns it into the next state."""

    move_id: bytes
    payload: bytes

    @property
    def key(self) -> bytes:
        return b"move/" + self.move_id


Operation = Payment | AddLock | FulfillLock | FailLock | AppMove


def wire_weight(op: Operation) -> int:
    """An upper bound of the bytes ``op`` takes in an update frame: batches stop at
    ``MAX_BATCH_BYTES`` so that locks carrying onions never make a frame the peer refuses."""
    if isinstance(op, AddLock):
        return OP_OVERHEAD + len(op.onion)
    if isinstance(op, FailLock):
        return OP_OVERHEAD + len(op.failure)
    if isinstance(op, AppMove):
        return OP_OVERHEAD + len(op.payload)
    return OP_OVERHEAD
MoveFn = Callable[[State, bytes, int], State]  # (state, payload, mover) -> next state: the App's rule


def lock_by_id(state: State, lock_id: bytes) -> Lock:
    for lock in state.allocation.locks:
        if lock.lock_id == lock_id:
            return lock
    raise InvalidTransition(f"no lock {lock_id.hex()} in this channel")


def hash_preimage(preimage: bytes) -> bytes:
    return hashlib.sha256(preimage).digest()


def apply_operation(state: State, op: Operation, *, proposer: int, now: int, move: MoveFn) -> State:
    """The state after ``proposer`` applies ``op``; raises ``InvalidTransition``."""
    alloc = state.allocation
    other = 1 - proposer
    if isinstance(op, Payment):
        if op.asset not in alloc.assets:
            raise InvalidTransition(f"asset {op.asset!r} is not in this channel")
        if not 0 < op.amount <= MAX_AMOUNT:
            raise InvalidTransition("payment amounts are positive")
        if alloc.balance(op.asset, proposer) < op.amount:
            # Overdraft: a payer may not spend more than it holds in the channel.
            raise InvalidTransition("payment exceeds the payer's balance")
        return attrs.evolve(state, allocation=alloc.with_transfer(op.asset, op.amount, proposer, other))
    if isinstance(op, AddLock):
        if op.asset not in alloc.assets:
            raise InvalidTransition(f"asset {op.asset!r} is not in this channel")
        if not 0 < len(op.lock_id) <= MAX_LOCK_ID or any(lk.lock_id == op.lock_id for lk in alloc.locks):
            raise InvalidTransition("a lock id is 1..32 bytes and unique in the channel")
        if len(op.hashlock) != HASH_LEN:
            raise InvalidTransition("a hashlock is a 32-byte SHA-256 digest")
        if not 0 < op.amount <= MAX_AMOUNT or alloc.balance(op.asset, proposer) < op.amount:
            # Overdraft: only the proposer's own balance can be locked, and only what it holds.
            raise InvalidTransition("lock amount exceeds the payer's balance")
        if op.expiry <= now:
            # An expired lock could be failed back at once: it would lock nothing.
            raise InvalidTransition("lock already expired")
        lock = Lock(lock_id=op.lock_id, asset=op.asset, amount=op.amount, hashlock=op.hashlock, expiry=op.expiry,
                    payer=proposer, payee=other)
        return attrs.evolve(state, allocation=attrs.evolve(_debit(alloc, op.asset, proposer, op.amount),
                                                           locks=(*alloc.locks, lock)))
    if isinstance(op, FulfillLock):
        lock = lock_by_id(state, op.lock_id)
        if len(op.preimage) > MAX_PREIMAGE or hash_preimage(op.preimage) != lock.hashlock:
            # Theft: a lock pays its payee only against the preimage the payer committed to.
            raise InvalidTransition("the preimage does not match the lock's hashlock")
        if now >= lock.expiry:
            # Forwarder loss: at its expiry the L1 returns the lock to the payer unless the secret
            # was registered before. A forwarder whose own incoming lock has expired (refunded
            # upstream) must not pay downstream a lock it no longer owes.
            raise InvalidTransition("the lock has expired; it can only be failed back to its payer")
        return attrs.evolve(state, allocation=_release(alloc, lock, lock.payee))
    if isinstance(op, FailLock):
        lock = lock_by_id(state, op.lock_id)
        if proposer == lock.payer and now < lock.expiry:
            # Theft: a payer taking its lock back before expiry would cheat a payee who
            # holds the preimage (and may already have paid it forward).
            raise InvalidTransition("the payer can fail a lock only after its expiry")
        if not 0 <= op.reason <= 0xFFFF:
            raise InvalidTransition("a fail reason is a 16-bit code")
        return attrs.evolve(state, allocation=_release(alloc, lock, lock.payer))
    if isinstance(op, AppMove):
        if len(op.payload) > MAX_MOVE:
            raise InvalidTransition(f"a move is at most {MAX_MOVE} bytes")
        return move(state, op.payload, proposer)
    raise InvalidTransition(f"unknown operation {type(op).__name__}")


def _debit(alloc: Allocation, asset: AssetId, who: int, amount: int) -> Allocation:
    a = alloc.asset_index(asset)
    rows = [list(r) for r in alloc.balances]
    rows[a][who] -= amount
    return attrs.evolve(alloc, balances=tuple(tuple(r) for r in rows))


def _release(alloc: Allocation, lock: Lock, to: int) -> Allocation:
    a = alloc.asset_index(lock.asset)
    rows = [list(r) for r in alloc.balances]
    rows[a][to] += lock.amount
    return attrs.evolve(alloc, balances=tuple(tuple(r) for r in rows),
                        locks=tuple(lk for lk in alloc.locks if lk.lock_id != lock.lock_id))
