"""Update operations through the pure core: payments, hash-time locks and app moves share
one path (proto/02 section 5.5); each rule names the theft it stops."""

from __future__ import annotations

import pytest

from channels.core import effects as fx
from channels.core import inputs as ins
from channels.core.app import DEFAULT_APPS
from channels.core.ids import NATIVE
from channels.core.messages import Countersign, UpdateProposal
from channels.core.ops import AddLock, AppMove, FailLock, FulfillLock, hash_preimage
from channels.errors import InvalidTransition
from channels.store.records import channel_from_bytes, channel_to_bytes
from channels.testing import CorePair
from channels.wire import decode_message, encode_message
from tests.apps import RaceToTen

SECRET = b"s" * 32
HASH = hash_preimage(SECRET)


def lock(lock_id: bytes = b"l1", amount: int = 30, expiry: int = 1_000) -> AddLock:
    return AddLock(lock_id=lock_id, asset=NATIVE, amount=amount, hashlock=HASH, expiry=expiry)


def totals(pair: CorePair, i: int) -> tuple[int, ...]:
    return pair.channel(i).allocation.totals()


def test_a_lock_added_then_fulfilled_pays_the_payee() -> None:
    pair = CorePair((100, 100))
    pair.propose(0, lock())
    pair.deliver_all()
    for i in (0, 1):
        ch = pair.channel(i)
        assert ch.allocation.balances[0] == (70, 100) and [lk.lock_id for lk in ch.allocation.locks] == [b"l1"]
        assert totals(pair, i) == (200,)
    [added] = pair.notified(1, fx.NotifyLockAdded)
    assert added.operation.hashlock == HASH
    assert [e.key for e in pair.notified(0, fx.NotifyOpDone)] == [b"add/l1"]
    pair.propose(1, FulfillLock(lock_id=b"l1", preimage=SECRET))
    pair.deliver_all()
    assert pair.balances(0) == pair.balances(1) == (70, 130)
    assert not pair.channel(0).allocation.locks
    [settled] = pair.notified(0, fx.NotifyLockSettled)
    assert settled.operation.preimage == SECRET and settled.lock.amount == 30  # a forwarder learns the preimage


def test_a_wrong_preimage_is_never_countersigned() -> None:
    pair = CorePair((100, 100))
    pair.propose(0, lock())
    pair.deliver_all()
    with pytest.raises(InvalidTransition):  # refused locally before anything is signed
        pair.propose(1, FulfillLock(lock_id=b"l1", preimage=b"wrong"))
    forged = _forge(pair, proposer=1, operation=FulfillLock(lock_id=b"l1", preimage=b"wrong"))
    before = pair.channel(0)
    out = pair.apply(0, ins.ReceiveUpdate(message=forged))
    assert pair.channel(0) == before and any(isinstance(e, fx.Reject) for e in out)
    assert not any(isinstance(e, fx.Send) and isinstance(e.message, Countersign) for e in out)


def test_the_payer_fails_a_lock_only_after_expiry_and_the_payee_at_any_time() -> None:
    pair = CorePair((100, 100))
    pair.propose(0, lock(b"l1", expiry=1_000))
    pair.propose(0, lock(b"l2", amount=5, expiry=1_000))
    pair.deliver_all()
    with pytest.raises(InvalidTransition, match="only after its expiry"):
        pair.propose(0, FailLock(lock_id=b"l1"))
    early = _forge(pair, proposer=0, operation=FailLock(lock_id=b"l1"))
    out = pair.apply(1, ins.ReceiveUpdate(message=early))
    assert any(isinstance(e, fx.Reject) for e in out) and len(pair.channel(1).allocation.locks) == 2
    pair.propose(1, FailLock(lock_id=b"l2", reason=7))  # the payee gives up its claim
    pair.deliver_all()
    assert pair.balances(0) == (70, 100)
    pair.now = 1_000
    pair.propose(0, FailLock(lock_id=b"l1"))
    pair.deliver_all()
    assert pair.balances(0) == pair.balances(1) == (100, 100) and not pair.channel(1).allocation.locks
    reasons = {e.operation.reason for e in pair.notified(0, fx.NotifyLockSettled)}
    assert reasons == {7}


@pytest.mark.parametrize("bad", ["overdraft", "duplicate", "expired", "unknown_lock"])
def test_locks_that_break_the_rules_are_refused(bad: str) -> None:
    pair = CorePair((100, 100))
    pair.now = 500
    pair.propose(0, lock(b"l1", amount=10))
    pair.deliver_all()
    op = {"overdraft": lock(b"l2", amount=91), "duplicate": lock(b"l1"), "expired": lock(b"l3", expiry=500),
          "unknown_lock": FulfillLock(lock_id=b"nope", preimage=SECRET)}[bad]
    with pytest.raises(InvalidTransition):
        pair.propose(0, op)
    forged = _forge(pair, proposer=0, operation=op)
    before = pair.channel(1)
    pair.apply(1, ins.ReceiveUpdate(message=forged))
    assert pair.channel(1) == before


def test_payments_and_locks_batch_in_one_update_and_survive_the_record() -> None:
    pair = CorePair((100, 100))
    pair.pay(0, 1)  # in flight
    pair.propose(0, lock(b"l1", amount=10))
    pair.pay(0, 2)
    queued = pair.channel(0)
    assert len(queued.queue) == 2 and channel_from_bytes(channel_to_bytes(queued)) == queued
    assert queued.spendable(NATIVE) == 100 - 1 - 10 - 2
    pair.deliver_all()
    assert pair.balances(1) == (87, 103) and totals(pair, 1) == (200,)
    frames = [m for m in pair.notified(1, fx.NotifyLockAdded)]
    assert len(frames) == 1


def test_an_operation_that_no_longer_applies_fails_alone() -> None:
    pair = CorePair((100, 100))
    pair.propose(1, lock(b"l1", amount=10, expiry=1_000))  # bob locks 10 for alice
    pair.deliver_all()
    pair.pay(1, 1)  # in flight: what bob asks next is queued
    pair.now = 999
    pair.propose(0, FulfillLock(lock_id=b"l1", preimage=SECRET))  # alice claims in the last second ...
    pair.now = 1_000
    pair.propose(1, FailLock(lock_id=b"l1"))  # ... but it reaches bob expired: he takes it back
    pair.pay(1, 2)
    pair.deliver_all()
    # Bob refused the leader's update, so his own stayed unanswered: the node's stall detection
    # re-sends it (ActionResync), now with nothing in its way.
    pair.apply(1, ins.ActionResync())
    pair.deliver_all()
    assert [e.key for e in pair.notified(0, fx.NotifyOpFailed)] == [b"fulfill/l1"]
    assert pair.balances(0) == pair.balances(1) == (103, 97), "the payments around it went through"


def test_a_lock_cannot_be_fulfilled_after_its_expiry() -> None:
    # A forwarder refunded upstream at the expiry must not pay downstream afterwards.
    pair = CorePair((100, 100))
    pair.propose(1, lock(b"l1", amount=10, expiry=1_000))
    pair.deliver_all()
    pair.now = 1_000
    with pytest.raises(InvalidTransition, match="expired"):
        pair.propose(0, FulfillLock(lock_id=b"l1", preimage=SECRET))
    assert pair.balances(0) == (100, 90)


def test_a_turn_based_app_is_played_off_chain() -> None:
    apps = DEFAULT_APPS.with_apps(RaceToTen())
    pair = CorePair((10, 10), app_id="race-to-ten", apps=apps)
    assert pair.channel(0).latest.state.app_data == bytes([0, 0])
    moves = [(0, 3), (1, 3), (0, 3), (1, 1)]
    for n, (player, step) in enumerate(moves):
        pair.propose(player, AppMove(move_id=bytes([n + 1]), payload=bytes([step])))
        pair.deliver_all()
    state = pair.channel(0).latest.state
    assert state.app_data == bytes([10, 0]) and RaceToTen().is_terminal(pair.params, state)
    assert pair.balances(0) == pair.balances(1) == (10 - 6 + 4, 10 - 4 + 6)
    with pytest.raises(InvalidTransition, match="game is over"):
        pair.propose(0, AppMove(move_id=b"x", payload=bytes([1])))
    moved = pair.notified(1, fx.NotifyMoved)
    assert [e.mover for e in moved] == [0, 0]


def test_out_of_turn_and_illegal_moves_are_refused() -> None:
    apps = DEFAULT_APPS.with_apps(RaceToTen())
    pair = CorePair((10, 10), app_id="race-to-ten", apps=apps)
    with pytest.raises(InvalidTransition, match="not your turn"):
        pair.propose(1, AppMove(move_id=b"a", payload=bytes([1])))
    with pytest.raises(InvalidTransition, match="adds 1, 2 or 3"):
        pair.propose(0, AppMove(move_id=b"a", payload=bytes([4])))
    forged = _forge(pair, proposer=1, operation=AppMove(move_id=b"a", payload=bytes([1])))
    before = pair.channel(0)
    pair.apply(0, ins.ReceiveUpdate(message=forged))
    assert pair.channel(0) == before


def test_a_payment_channel_has_no_moves() -> None:
    pair = CorePair((10, 10))
    with pytest.raises(InvalidTransition, match="no app moves"):
        pair.propose(0, AppMove(move_id=b"a", payload=b""))


def _forge(pair: CorePair, *, proposer: int, operation: object) -> UpdateProposal:
    """A proposal carrying ``operation`` as the proposer would sign it, skipping its local checks."""
    ch = pair.channel(proposer)
    version = max(ch.version, ch.highest_signed) + 1
    sig = pair.keys[proposer].sign_digest(pair.scheme.state_digest(pair.params, ch.latest.state))
    msg = UpdateProposal(channel_id=ch.channel_id, version=version, operations=(operation,),  # type: ignore[arg-type]
                         signature=sig)
    decoded = decode_message(encode_message(msg))  # through the real wire encoding
    assert isinstance(decoded, UpdateProposal)
    return decoded


def test_a_payee_with_the_secret_goes_on_chain_before_the_expiry() -> None:
    pair = CorePair((100, 100))
    pair.propose(0, lock(b"l1", expiry=1_000))
    pair.deliver_all()
    pair.propose(1, FulfillLock(lock_id=b"l1", preimage=SECRET))  # alice never answers
    pair.sides[0].inbox.clear()
    margin = pair.sides[1].env.lock_margin
    pair.now = 1_000 - margin - 1
    assert not pair.apply(1, ins.Tick())
    pair.now = 1_000 - margin
    out = pair.apply(1, ins.Tick())
    assert pair.channel(1).phase.value == "disputed"
    assert fx.SubmitSecret(preimage=SECRET) in out
    assert any(isinstance(e, fx.SubmitRegister) and e.signed.state.allocation.locks for e in out)
    record = channel_to_bytes(pair.channel(1))
    assert channel_from_bytes(record).preimages == ((b"l1", SECRET),), "the secret survives a restart"


def test_a_payer_goes_on_chain_once_an_unfailed_lock_has_expired() -> None:
    pair = CorePair((100, 100))
    pair.propose(0, lock(b"l1", expiry=1_000))
    pair.deliver_all()
    margin = pair.sides[0].env.lock_margin
    pair.now = 1_000 + margin - 1
    assert not [e for e in pair.apply(0, ins.Tick()) if isinstance(e, fx.SubmitRegister)]
    pair.now = 1_000 + margin
    out = pair.apply(0, ins.Tick())
    assert any(isinstance(e, fx.SubmitRegister) for e in out) and not pair.notified(0, fx.SubmitSecret)


def test_secrets_go_to_the_l1_when_the_peer_registers() -> None:
    pair = CorePair((100, 100))
    pair.propose(0, lock(b"l1", expiry=1_000))
    pair.deliver_all()
    pair.propose(1, FulfillLock(lock_id=b"l1", preimage=SECRET))
    pair.sides[0].inbox.clear()
    out = pair.apply(1, ins.ChainRegistered(signed=pair.channel(1).latest, deadline=500))
    assert fx.SubmitSecret(preimage=SECRET) in out


def _peer_holds_our_lock_countersigned(pair: CorePair) -> tuple[object, object]:
    """Bob countersigns alice's lock but the countersign never reaches her: bob can register
    a state with her lock in it that alice never saw complete. Returns (older, newer) states."""
    older = pair.channel(0).latest
    pair.propose(0, lock(b"l1", expiry=1_000))
    pair.deliver(1)  # bob countersigns ...
    pair.sides[0].inbox.clear()  # ... and alice never hears of it
    newer = pair.channel(1).latest
    assert newer.state.version > older.state.version and newer.state.allocation.locks
    return older, newer


def test_a_lock_the_peer_may_hold_is_not_failed_when_it_registers_an_older_state() -> None:
    # Double payment: bob registers an older state, so alice would fail her lock and pay again
    # by another route, then bob refutes with the newer state (alice's lock in it) and the L1
    # pays him the lock with the secret. The lock is decided only when the L1 concludes.
    pair = CorePair((100, 100))
    older, newer = _peer_holds_our_lock_countersigned(pair)
    out = pair.apply(0, ins.ChainRegistered(signed=older, deadline=500))  # type: ignore[arg-type]
    assert not [e for e in out if isinstance(e, fx.NotifyOpFailed)], "failed while bob may still pay it on chain"
    out = pair.apply(0, ins.ChainSecretRegistered(preimage=SECRET, time=10))
    assert [e.preimage for e in out if isinstance(e, fx.NotifySecretLearned)] == [SECRET]
    out = pair.apply(0, ins.ChainRegistered(signed=newer, deadline=600))  # type: ignore[arg-type]
    assert [e.key for e in out if isinstance(e, fx.NotifyOpDone)] == [b"add/l1"]
    out = pair.apply(0, ins.ChainConcluded(version=newer.state.version))  # type: ignore[attr-defined]
    assert not [e for e in out if isinstance(e, fx.NotifyOpFailed)]


def test_a_lock_the_peer_did_not_register_fails_when_the_l1_concludes() -> None:
    pair = CorePair((100, 100))
    older, _ = _peer_holds_our_lock_countersigned(pair)
    out = pair.apply(0, ins.ChainRegistered(signed=older, deadline=500))  # type: ignore[arg-type]
    assert not [e for e in out if isinstance(e, fx.NotifyOpFailed)]
    record = channel_from_bytes(channel_to_bytes(pair.channel(0)))  # a restart keeps what is undecided
    assert [v for v, _ in record.abandoned] == [older.state.version + 1]  # type: ignore[attr-defined]
    out = pair.apply(0, ins.ChainConcluded(version=older.state.version))  # type: ignore[attr-defined]
    assert [e.key for e in out if isinstance(e, fx.NotifyOpFailed)] == [b"add/l1"]
    assert not pair.channel(0).abandoned


def test_a_secret_registered_before_the_dispute_reaches_a_lock_still_in_our_proposal() -> None:
    pair = CorePair((100, 100))
    _peer_holds_our_lock_countersigned(pair)
    out = pair.apply(0, ins.ChainSecretRegistered(preimage=SECRET, time=10))
    [learned] = [e for e in out if isinstance(e, fx.NotifySecretLearned)]
    assert learned.lock.lock_id == b"l1" and learned.lock.payer == 0 and learned.lock.amount == 30
