"""What a channel carries about its operations in flight (``InFlight``, ``Projection``).

Queueing an operation must not walk everything already in flight: a batch of n then costs
O(n^2) (bench/bench_core.py). These tests catch that without a clock, by counting the
operations the core visits, and check that the carried totals always equal a recomputation
over random sequences of queue, deliver, reject, cancel, reconnect and time passing."""

from __future__ import annotations

from collections.abc import Iterator

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import channels.core.channel as channel_module
from channels.core import inputs as ins
from channels.core.channel import Channel, InFlight, Projection, _mover
from channels.core.ids import NATIVE, PaymentId
from channels.core.messages import UpdateReject
from channels.core.ops import AddLock, FailLock, FulfillLock, Payment, apply_operation, hash_preimage
from channels.errors import ChannelsError, InvalidTransition
from channels.store.records import channel_from_bytes, channel_to_bytes
from channels.testing import CorePair, receive_input

SECRET = bytes(range(32))
HASHLOCK = hash_preimage(SECRET)


def reference_spent(ch: Channel) -> dict[str, int]:
    spent: dict[str, int] = {}
    for op in ch.in_flight:
        if isinstance(op, (Payment, AddLock)):
            spent[op.asset] = spent.get(op.asset, 0) + op.amount
    return spent


def check_derived(pair: CorePair, i: int) -> None:
    """The carried totals equal a walk over ``in_flight``; a carried projection equals the fold."""
    ch = pair.channel(i)
    flight = ch.flight
    assert flight.keys == frozenset(op.key for op in ch.in_flight)
    assert dict(flight.spent) == reference_spent(ch)
    assert ch.spendable(NATIVE) == ch.allocation.balance(NATIVE, ch.me) - reference_spent(ch).get(NATIVE, 0)
    proj = flight.projection
    if proj is not None and proj.holds(ch, pair.now, pair.sides[i].env):
        state = ch.latest.state
        for op in ch.in_flight[:proj.covered]:
            state = apply_operation(state, op, proposer=ch.me, now=pair.now, move=_mover(ch.params, pair.sides[i].env))
        assert proj.state == state


def stall(pair: CorePair, side: int) -> None:
    """Side ``side`` proposes one payment the peer never answers: everything after it queues."""
    pair.pay(side, 1)
    pair.sides[1 - side].inbox.clear()
    assert pair.channel(side).pending is not None


@pytest.fixture
def visited(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """Counts the operations the core walks: through ``Channel.in_flight``, ``InFlight.of``
    and ``apply_operation`` (each call applies one)."""
    seen = [0]
    in_flight = Channel.in_flight.fget
    assert in_flight is not None
    of = InFlight.of.__func__  # type: ignore[attr-defined]

    def counted_in_flight(self: Channel) -> tuple:
        ops = in_flight(self)
        seen[0] += len(ops)
        return ops

    def counted_of(cls: type[InFlight], pending: object, queue: tuple) -> InFlight:
        flight = of(cls, pending, queue)
        seen[0] += len(flight.keys)
        return flight

    def counted_apply(*args: object, **kwargs: object) -> object:
        seen[0] += 1
        return apply_operation(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Channel, "in_flight", property(counted_in_flight))
    monkeypatch.setattr(InFlight, "of", classmethod(counted_of))
    monkeypatch.setattr(channel_module, "apply_operation", counted_apply)
    yield seen


def test_queueing_payments_visits_each_operation_a_bounded_number_of_times(visited: list[int]) -> None:
    """300 payments queued behind an unanswered update: linear work, where walking the batch
    on each one (the duplicate-id check and ``spendable``) visits about 300^2 = 90,000."""
    pair = CorePair((10**9, 10**9))
    stall(pair, 0)
    visited[0] = 0
    n = 300
    for _ in range(n):
        pair.pay(0, 1)
    ch = pair.channel(0)
    assert len(ch.queue) == n
    assert visited[0] <= n, f"{visited[0]} operations visited to queue {n}"
    assert ch.spendable(NATIVE) == 10**9 - n - 1


def test_proposing_locks_applies_about_one_operation_each(visited: list[int]) -> None:
    """Each proposed lock is checked against the state everything in flight leads to. That
    state is carried, so a proposal applies the operations queued since the last one and
    itself; folding from the latest state each time would apply about 400^2 / 2 = 80,000."""
    pair = CorePair((10**9, 10**9))
    stall(pair, 0)
    visited[0] = 0
    n = 200
    for k in range(n):
        pair.propose(0, AddLock(lock_id=b"L%d" % k, asset=NATIVE, amount=1, hashlock=HASHLOCK, expiry=10**6))
        pair.pay(0, 1)  # a payment between two locks keeps the carried state (it covers a prefix)
    assert len(pair.channel(0).queue) == 2 * n
    assert visited[0] <= 3 * n + 1, f"{visited[0]} operations visited to propose {n} locks"
    check_derived(pair, 0)


def test_a_changed_time_or_state_folds_again() -> None:
    """The carried fold is used only for the same latest state and the same time: an
    operation in flight that expired since is still found (the refusal names it)."""
    pair = CorePair((10**9, 10**9))
    stall(pair, 0)
    pair.propose(0, AddLock(lock_id=b"short", asset=NATIVE, amount=5, hashlock=HASHLOCK, expiry=10))
    pair.propose(0, AddLock(lock_id=b"long", asset=NATIVE, amount=5, hashlock=HASHLOCK, expiry=1000))
    assert pair.channel(0).flight.projection is not None
    pair.now = 10  # the first lock in flight expired: any proposal now is refused, as before
    with pytest.raises(InvalidTransition, match="AddLock refused: lock already expired"):
        pair.propose(0, AddLock(lock_id=b"third", asset=NATIVE, amount=5, hashlock=HASHLOCK, expiry=1000))
    assert [op.key for op in pair.channel(0).queue] == [b"add/short", b"add/long"]


def test_the_carried_totals_are_not_stored_and_do_not_change_equality() -> None:
    pair = CorePair((10**9, 10**9))
    stall(pair, 0)
    for _ in range(5):
        pair.pay(0, 7)
    pair.propose(0, AddLock(lock_id=b"L", asset=NATIVE, amount=3, hashlock=HASHLOCK, expiry=10**6))
    ch = pair.channel(0)
    carried = ch._flight
    assert carried is not None and carried.pending is ch.pending and carried.queue is ch.queue
    assert carried.projection is not None
    record = channel_to_bytes(ch)
    loaded = channel_from_bytes(record)
    assert loaded._flight is None
    assert channel_to_bytes(loaded) == record
    assert loaded == ch and hash(loaded) == hash(ch)
    assert loaded.flight.keys == carried.keys and loaded.spendable(NATIVE) == ch.spendable(NATIVE)
    assert "flight" not in repr(ch)
    # A channel evolved with another queue ignores the carried totals (identity no longer matches).
    emptied = attrs.evolve(ch, queue=())
    assert emptied.flight.keys == {op.key for op in emptied.in_flight}
    assert emptied.spendable(NATIVE) == 10**9 - 1


def test_projection_holds_only_for_the_same_inputs() -> None:
    pair = CorePair((10**9, 10**9))
    stall(pair, 0)
    pair.propose(0, AddLock(lock_id=b"L", asset=NATIVE, amount=3, hashlock=HASHLOCK, expiry=10**6))
    ch, env = pair.channel(0), pair.sides[0].env
    proj = ch.flight.projection
    assert isinstance(proj, Projection) and proj.holds(ch, pair.now, env)
    assert not proj.holds(ch, pair.now + 1, env)
    moved = attrs.evolve(ch.latest, state=attrs.evolve(ch.latest.state))  # equal, but another object
    assert not proj.holds(attrs.evolve(ch, latest=moved), pair.now, env)
    assert not proj.holds(ch, pair.now, attrs.evolve(env, apps=env.apps.with_apps()))


# ---------------------------------------------------------------- random sequences

PAY = st.tuples(st.just("pay"), st.integers(0, 1), st.integers(1, 60))
LOCK = st.tuples(st.just("lock"), st.integers(0, 1), st.integers(1, 40), st.integers(1, 40))
STEPS = st.lists(st.one_of(
    *[PAY, LOCK] * 4,  # drawn about as often as all the other steps: queues grow behind a pending update
    st.tuples(st.just("fulfill"), st.integers(0, 1), st.integers(0, 20)),
    st.tuples(st.just("fail"), st.integers(0, 1), st.integers(0, 20)),
    st.tuples(st.just("deliver"), st.integers(0, 1)),
    st.tuples(st.just("reject"), st.integers(0, 1), st.booleans()),
    st.tuples(st.just("cancel"), st.integers(0, 1), st.integers(0, 20)),
    st.tuples(st.just("drop"), st.integers(0, 1)),
    st.tuples(st.just("reconnect"),),
    st.tuples(st.just("time"), st.integers(1, 20)),
    st.tuples(st.just("repeat"), st.integers(0, 1)),
), max_size=60)


@settings(max_examples=200, deadline=None)
@given(steps=STEPS)
def test_carried_totals_equal_a_recomputation(steps: list[tuple]) -> None:
    """Random queue/commit/fail sequences: after every step, on both sides, the carried keys,
    amounts and fold equal a walk over the operations in flight."""
    pair = CorePair((300, 200))
    counter = 0
    for step in steps:
        kind, args = step[0], step[1:]
        try:
            if kind == "pay":
                pair.pay(args[0], args[1])
            elif kind == "lock":
                counter += 1
                pair.propose(args[0], AddLock(lock_id=b"L%d" % counter, asset=NATIVE, amount=args[1],
                                              hashlock=HASHLOCK, expiry=pair.now + args[2]))
            elif kind in ("fulfill", "fail"):
                locks = [lk for lk in pair.channel(args[0]).allocation.locks if lk.payee == args[0]]
                if locks:
                    lk = locks[args[1] % len(locks)]
                    op = (FulfillLock(lock_id=lk.lock_id, preimage=SECRET) if kind == "fulfill"
                          else FailLock(lock_id=lk.lock_id, reason=1))
                    pair.propose(args[0], op)
            elif kind == "deliver":
                side = args[0] if pair.sides[args[0]].inbox else 1 - args[0]
                if pair.sides[side].inbox:
                    pair.deliver(side)
            elif kind == "reject":
                ch = pair.channel(args[0])
                if ch.pending is not None:  # the peer refuses our proposal (retry or not)
                    msg = UpdateReject(channel_id=ch.channel_id, version=ch.pending.version, retry=args[1],
                                       reason="test")
                    pair.apply(args[0], receive_input(msg))
            elif kind == "cancel":
                queue = pair.channel(args[0]).queue
                if queue:
                    pair.apply(args[0], ins.ActionCancelPay(payment_id=PaymentId(queue[args[1] % len(queue)].key)))
            elif kind == "drop":
                pair.sides[args[0]].inbox.clear()
            elif kind == "reconnect":
                pair.reconnect()
            elif kind == "time":
                pair.now += args[0]
            elif kind == "repeat":  # an operation in flight again: refused, and nothing changes
                before = pair.channel(args[0])
                if before.in_flight:
                    last = before.in_flight[-1]
                    with pytest.raises(ChannelsError):
                        if isinstance(last, Payment):
                            pair.apply(args[0], ins.ActionPay(payment_id=last.payment_id, asset=NATIVE, amount=1))
                        else:
                            pair.propose(args[0], last)
                    assert pair.channel(args[0]) is before
        except ChannelsError:
            pass  # refused: insufficient funds, a lock that cannot apply, a full queue
        for i in (0, 1):
            check_derived(pair, i)
    pair.reconnect()
    pair.deliver_all()
    for i in (0, 1):
        check_derived(pair, i)

