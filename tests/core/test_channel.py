"""Unit tests of the channel core, driven through the two-core harness."""

from __future__ import annotations

import attrs
import pytest

from channels.core import effects as fx
from channels.core import inputs as ins
from channels.core.channel import MAX_BATCH, Phase, accept_channel, apply_operations, transition, verify_signed
from channels.core.ids import NATIVE, AssetId, PaymentId, Version
from channels.core.messages import CloseProposal, Countersign, UpdateProposal
from channels.core.ops import Payment
from channels.core.state import Allocation
from channels.errors import InsufficientFunds, InvalidTransition, LocalProtocolError, RemoteProtocolError
from channels.testing import CorePair, receive_input
from channels.wire import decode_message


def frames(pair: CorePair, i: int) -> list:
    return [decode_message(f) for f in pair.sides[i].inbox]


def test_open_funds_both_sides() -> None:
    pair = CorePair((100, 40))
    for i in (0, 1):
        assert pair.channel(i).phase is Phase.OPEN
        assert verify_signed(pair.params, pair.channel(i).latest, pair.scheme)
    deposits = [e.amount for i in (0, 1) for e in pair.notified(i, fx.SubmitDeposit)]
    assert sorted(deposits) == [40, 100]


def test_not_open_until_all_deposits_seen() -> None:
    pair = CorePair((100, 40))
    proposal_pair = CorePair((100, 40), labels=("carol", "dave"))
    del proposal_pair
    ch = pair.channel(0)
    funding = attrs.evolve(ch, phase=Phase.FUNDING, holdings=(0,))
    ch2, out = transition(funding, ins.ChainDeposited(asset=NATIVE, holdings=100), now=0, env=pair.sides[0].env)
    assert ch2.phase is Phase.FUNDING and out == []
    ch3, out = transition(ch2, ins.ChainDeposited(asset=NATIVE, holdings=140), now=0, env=pair.sides[0].env)
    assert ch3.phase is Phase.OPEN and isinstance(out[0], fx.NotifyOpened)


def test_payment_moves_balance_and_bumps_version() -> None:
    pair = CorePair((100, 100))
    pair.pay(0, 30)
    pair.deliver_all()
    assert pair.balances(0) == (70, 130) == pair.balances(1)
    assert pair.channel(0).version == pair.channel(1).version == 1
    assert len(pair.notified(0, fx.NotifyPaymentSent)) == 1
    assert [e.amount for e in pair.notified(1, fx.NotifyPaymentReceived)] == [30]


def test_payments_queued_while_in_flight_are_batched() -> None:
    pair = CorePair((1000, 0))
    for _ in range(10):
        pair.pay(0, 1)
    pair.deliver_all()
    assert pair.balances(0) == (990, 10)
    assert pair.channel(0).version == 2  # one update, then one batch of nine


def test_overdraft_is_refused_locally() -> None:
    pair = CorePair((10, 0))
    with pytest.raises(InsufficientFunds):
        pair.pay(0, 11)
    pair.pay(0, 6)
    with pytest.raises(InsufficientFunds):  # in-flight amounts count against the balance
        pair.pay(0, 5)


def test_bad_local_input_raises_and_changes_nothing() -> None:
    pair = CorePair((10, 0))
    before = pair.channel(0)
    with pytest.raises(LocalProtocolError):
        pair.apply(0, ins.ActionPay(payment_id=PaymentId(b"x"), asset=AssetId("gold"), amount=1))
    with pytest.raises(LocalProtocolError):
        pair.apply(0, ins.ActionPay(payment_id=PaymentId(b"x"), asset=NATIVE, amount=0))
    assert pair.channel(0) == before


def _proposal(pair: CorePair, payer: int, amount: int, version: int, *, signer: int | None = None,
              payment_id: bytes = b"evil") -> UpdateProposal:
    """An update moving ``amount`` from ``payer``, signed by ``signer`` (default: the payer)."""
    ch = pair.channel(payer)
    payments = (Payment(payment_id=PaymentId(payment_id), asset=NATIVE, amount=amount),)
    state = attrs.evolve(ch.latest.state, version=Version(version),
                         allocation=ch.allocation.with_transfer(NATIVE, amount, payer, 1 - payer))
    sig = pair.keys[payer if signer is None else signer].sign_digest(pair.scheme.state_digest(pair.params, state))
    return UpdateProposal(channel_id=ch.channel_id, version=Version(version), operations=payments, signature=sig)


@pytest.mark.parametrize("case", ["overdraft", "bad_signature", "stale", "too_far", "negative"])
def test_rule_breaking_updates_are_rejected_without_change(case: str) -> None:
    pair = CorePair((100, 100))
    pair.pay(0, 5)
    pair.deliver_all()
    before = pair.channel(1)
    if case == "overdraft":
        msg = attrs.evolve(_proposal(pair, 0, 5, 2), operations=(Payment(payment_id=PaymentId(b"e"), asset=NATIVE,
                                                                        amount=10_000),))
    elif case == "bad_signature":
        msg = attrs.evolve(_proposal(pair, 0, 5, 2), signature=bytes(64))
    elif case == "stale":
        msg = _proposal(pair, 0, 5, 1)
    elif case == "too_far":
        msg = _proposal(pair, 0, 5, 100)
    else:
        msg = attrs.evolve(_proposal(pair, 0, 5, 2), operations=())
    out = pair.apply(1, ins.ReceiveUpdate(message=msg))
    assert pair.channel(1) == before
    assert any(isinstance(e, fx.Reject) for e in out)
    assert not any(isinstance(e, fx.Send) and isinstance(e.message, Countersign) for e in out)


def test_payee_cannot_take_money_via_update() -> None:
    """The receiver recomputes the state: a proposal paying the proposer cannot verify."""
    pair = CorePair((100, 100))
    # Bob (payee direction reversed) signs a state where alice's balance goes down.
    msg = _proposal(pair, 0, 50, 1, signer=1, payment_id=b"t")
    before = pair.channel(0)
    out = pair.apply(0, ins.ReceiveUpdate(message=msg))
    assert pair.channel(0) == before and isinstance(out[0], fx.Reject)


def test_apply_operations_rules() -> None:
    pair = CorePair((10, 10))
    state, env = pair.channel(0).latest.state, pair.sides[0].env

    def apply(ops: list[Payment], st: object = state) -> object:
        return apply_operations(st, ops, params=pair.params, proposer=0, version=1, now=0, env=env)  # type: ignore

    ok = apply([Payment(payment_id=PaymentId(b"a"), asset=NATIVE, amount=10)])
    assert ok.allocation.balances == ((0, 20),)  # type: ignore[attr-defined]
    with pytest.raises(InvalidTransition):
        apply([Payment(payment_id=PaymentId(b"a"), asset=NATIVE, amount=11)])
    dup = Payment(payment_id=PaymentId(b"a"), asset=NATIVE, amount=1)
    with pytest.raises(InvalidTransition):
        apply([dup, dup])
    many = [Payment(payment_id=PaymentId(i.to_bytes(4, "big")), asset=NATIVE, amount=1) for i in range(MAX_BATCH + 1)]
    with pytest.raises(InvalidTransition):
        apply(many, attrs.evolve(state, allocation=Allocation(assets=(NATIVE,), balances=((10**6, 0),))))


def test_collision_resolves_without_double_signing() -> None:
    pair = CorePair((100, 100))
    pair.pay(0, 10)
    pair.pay(1, 7)  # both proposed version 1 at once
    pair.deliver_all()
    assert pair.balances(0) == pair.balances(1) == (97, 103)
    for i in (0, 1):
        assert all(len(d) == 1 for d in pair.signed_versions(i).values())
    assert pair.channel(0).version >= 3  # version 1 was skipped by both


def test_duplicate_proposal_gets_identical_countersign() -> None:
    pair = CorePair((100, 100))
    pair.pay(0, 10)
    frame = pair.sides[1].inbox[0]
    pair.deliver(1)
    first = pair.sides[0].inbox.popleft()
    pair.sides[1].inbox.append(frame)
    pair.deliver(1)
    assert pair.sides[0].inbox.popleft() == first


def test_reestablish_retransmits_lost_countersign() -> None:
    pair = CorePair((100, 100))
    pair.pay(0, 10)
    pair.deliver(1)  # bob countersigned; the countersign is lost
    pair.reconnect()
    pair.deliver_all()
    assert pair.channel(0).version == 1 and pair.channel(0).pending is None
    assert pair.balances(0) == (90, 110)


def test_reestablish_retransmits_lost_proposal() -> None:
    pair = CorePair((100, 100))
    pair.pay(0, 10)
    pair.reconnect()  # the proposal never arrived
    pair.deliver_all()
    assert pair.channel(1).version == 1 and pair.balances(1) == (90, 110)


def test_cooperative_close_submits_conclude_once_final() -> None:
    pair = CorePair((100, 100))
    pair.pay(1, 20)
    pair.apply(0, ins.ActionClose())
    pair.deliver_all()
    for i in (0, 1):
        assert pair.channel(i).phase is Phase.CLOSING
        assert pair.channel(i).latest.state.is_final
    assert len(pair.notified(0, fx.SubmitConclude)) == 1
    with pytest.raises(LocalProtocolError):
        pair.pay(0, 1)
    pair.apply(0, ins.ChainConcluded(version=pair.channel(0).version))
    assert any(isinstance(e, fx.SubmitWithdraw) for e in pair.sides[0].effects)
    pair.apply(0, ins.ChainWithdrawn())
    assert pair.channel(0).phase is Phase.SETTLED


def test_receiver_concludes_itself_if_proposer_does_not() -> None:
    pair = CorePair((100, 100))
    pair.apply(0, ins.ActionClose())
    pair.deliver_all()
    assert not pair.notified(1, fx.SubmitConclude)
    pair.now = 100
    pair.apply(1, ins.Tick())
    assert len(pair.notified(1, fx.SubmitConclude)) == 1


def test_stale_registration_is_refuted() -> None:
    pair = CorePair((100, 100), challenge_duration=60)
    stale = pair.channel(1).latest
    pair.pay(1, 50)
    pair.deliver_all()
    out = pair.apply(0, ins.ChainRegistered(signed=stale, deadline=60))
    refutes = [e for e in out if isinstance(e, fx.SubmitRefute)]
    assert refutes and refutes[0].signed == pair.channel(0).latest and refutes[0].signed.state.version == 1
    assert pair.channel(0).phase is Phase.DISPUTED
    pair.now = 30  # the refute was lost: it is sent again
    assert [type(e) for e in pair.apply(0, ins.Tick())] == [fx.SubmitRefute]
    pair.apply(0, ins.ChainRegistered(signed=pair.channel(0).latest, deadline=60))  # the Refuted event
    pair.now = 59
    assert not pair.apply(0, ins.Tick())
    pair.now = 60
    assert isinstance(pair.apply(0, ins.Tick())[0], fx.SubmitWithdraw)


def test_registration_of_our_latest_is_not_refuted() -> None:
    pair = CorePair((100, 100))
    pair.pay(0, 1)
    pair.deliver_all()
    out = pair.apply(0, ins.ChainRegistered(signed=pair.channel(0).latest, deadline=60))
    assert not any(isinstance(e, fx.SubmitRefute) for e in out)


def test_forged_registration_event_is_rejected() -> None:
    pair = CorePair((100, 100))
    forged = attrs.evolve(pair.channel(0).latest, signatures=(bytes(64), bytes(64)))
    before = pair.channel(0)
    out = pair.apply(0, ins.ChainRegistered(signed=forged, deadline=60))
    assert isinstance(out[0], fx.Reject) and pair.channel(0) == before


def test_lost_register_is_resubmitted() -> None:
    pair = CorePair((100, 100))
    pair.apply(0, ins.ActionForceClose())
    pair.now = 5
    assert not pair.apply(0, ins.Tick())
    pair.now = 10
    assert [type(e) for e in pair.apply(0, ins.Tick())] == [fx.SubmitRegister]


def test_adopted_registration_reports_payments_sent_not_failed() -> None:
    pair = CorePair((100, 100))
    pair.pay(0, 10)
    pair.deliver(1)  # bob countersigned; the countersign is lost, bob registers it
    out = pair.apply(0, ins.ChainRegistered(signed=pair.channel(1).latest, deadline=60))
    assert [type(e) for e in out if isinstance(e, (fx.NotifyPaymentSent, fx.NotifyPaymentFailed))] == [
        fx.NotifyPaymentSent]
    assert pair.channel(0).version == 1


def test_payment_id_bounds() -> None:
    pair = CorePair((100, 100))
    for bad in (b"", b"x" * 33, "text"):
        with pytest.raises(LocalProtocolError):
            pair.apply(0, ins.ActionPay(payment_id=bad, asset=NATIVE, amount=1))  # type: ignore[arg-type]


def test_lost_accept_is_resent_on_reconnect() -> None:
    pair = CorePair((100, 100))
    ch = attrs.evolve(pair.channel(1), phase=Phase.FUNDING)
    pair.sides[1].channel = ch
    out = pair.apply(1, ins.ActionReconnect())
    assert [type(e.message).__name__ for e in out if isinstance(e, fx.Send)] == ["ChannelAccept"]


def test_force_close_registers_latest_and_decides_a_signed_payment_when_the_l1_concludes() -> None:
    pair = CorePair((100, 100))
    pair.pay(0, 3)  # signed and sent: bob may countersign it and refute with it
    queued = pair.pay(0, 4)  # queued behind it, never signed: fails at once
    out = pair.apply(0, ins.ActionForceClose())
    assert [e.payment_id for e in out if isinstance(e, fx.NotifyPaymentFailed)] == [queued]
    assert [e.signed.state.version for e in out if isinstance(e, fx.SubmitRegister)] == [0]
    out = pair.apply(0, ins.ChainConcluded(version=Version(0)))
    assert len([e for e in out if isinstance(e, fx.NotifyPaymentFailed)]) == 1


def test_close_proposal_with_bad_signature_rejected() -> None:
    pair = CorePair((100, 100))
    before = pair.channel(1)
    msg = CloseProposal(channel_id=before.channel_id, version=Version(1), signature=bytes(64))
    out = pair.apply(1, receive_input(msg))
    assert pair.channel(1) == before and isinstance(out[0], fx.Reject)


def test_accept_refuses_forged_proposal() -> None:
    pair = CorePair((100, 100))
    from channels.core.messages import ChannelProposal
    bad = ChannelProposal(params=pair.params, allocation=pair.allocation, signature=bytes(64))
    with pytest.raises(RemoteProtocolError):
        accept_channel(bad, env=pair.sides[1].env)


def test_never_signs_twice_even_when_asked() -> None:
    pair = CorePair((100, 100))
    pair.pay(0, 5)  # alice signed version 1
    ch = pair.channel(0)
    other = attrs.evolve(ch.latest.state, version=Version(1),
                         allocation=ch.allocation.with_transfer(NATIVE, 9, 0, 1))
    from channels.core.channel import _sign
    with pytest.raises(LocalProtocolError):
        _sign(ch, other, pair.sides[0].env)


def test_lost_deposit_is_resubmitted_until_seen() -> None:
    pair = CorePair((100, 40))
    ch = attrs.evolve(pair.channel(1), phase=Phase.FUNDING, holdings=(100,), deposited=(0,), submitted_at=None)
    pair.sides[1].channel = ch
    assert pair.apply(1, ins.Tick()) == []  # starts the clock
    pair.now = 10
    assert [(e.asset, e.amount) for e in pair.apply(1, ins.Tick())] == [(NATIVE, 40)]
    opened = pair.apply(1, ins.ChainDeposited(asset=NATIVE, holdings=140, amount=40, ours=True))
    assert pair.channel(1).phase is Phase.OPEN and isinstance(opened[0], fx.NotifyOpened)


def test_nothing_is_signed_after_a_final_state() -> None:
    """Final-state replay: we must not countersign updates once we signed a final state."""
    pair = CorePair((500, 500))
    pair.apply(0, ins.ActionClose())  # alice signs a final state; bob receives it later
    final_frame = pair.sides[1].inbox.popleft()
    msg = _proposal(pair, 1, 200, 2, payment_id=b"bait")
    out = pair.apply(0, ins.ReceiveUpdate(message=msg))
    assert not any(isinstance(e, fx.NotifyPaymentReceived) for e in out)
    assert not any(isinstance(e, fx.Send) and isinstance(e.message, Countersign) for e in out)
    assert pair.channel(0).version == 0
    del final_frame


def test_registration_while_proposed_is_not_ignored() -> None:
    pair = CorePair((100, 100))
    from channels.core.channel import propose_channel
    from channels.core.messages import ChannelProposal
    params = attrs.evolve(pair.params, nonce=bytes(range(32)))
    a, out = propose_channel(params, pair.allocation, env=pair.sides[0].env)
    proposal = out[0].message
    assert isinstance(proposal, ChannelProposal)
    b, _ = accept_channel(proposal, env=pair.sides[1].env)
    pair.sides[0].channel = a
    got = pair.apply(0, ins.ChainRegistered(signed=b.latest, deadline=60))
    assert pair.channel(0).phase is Phase.DISPUTED and any(isinstance(e, fx.NotifyDisputed) for e in got)
    assert any(isinstance(e, fx.Reject) for e in pair.apply(0, ins.ReceiveAccept(
        message=__import__("channels.core.messages", fromlist=["ChannelAccept"]).ChannelAccept(
            channel_id=a.channel_id, signature=b.latest.signatures[1]))))


def test_queued_payment_can_be_cancelled_signed_one_cannot() -> None:
    pair = CorePair((100, 100))
    first = pair.pay(0, 1)  # signed and sent
    second = pair.pay(0, 2)  # queued behind it
    [failed] = pair.apply(0, ins.ActionCancelPay(payment_id=second))
    assert isinstance(failed, fx.NotifyPaymentFailed)
    assert (failed.payment_id, failed.asset, failed.amount) == (second, NATIVE, 2)  # list-payments shows it
    assert pair.apply(0, ins.ActionCancelPay(payment_id=first)) == []
    pair.deliver_all()
    assert pair.balances(0) == (99, 101)


def test_yielded_follower_recovers_on_resync() -> None:
    pair = CorePair((100, 100))
    pair.sides[1].channel = attrs.evolve(pair.channel(1), yielded=True, queue=(
        Payment(payment_id=PaymentId(b"q"), asset=NATIVE, amount=3),))
    out = pair.apply(1, ins.ActionResync())
    assert any(isinstance(e, fx.Send) and isinstance(e.message, UpdateProposal) for e in out)
