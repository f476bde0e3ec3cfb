"""n-party channels in the core (proto/02 section 13): three cores playing last one standing,
relayed by hand so each test decides which frame arrives, which is lost, and who restarts."""

from __future__ import annotations

import pytest

from channels.core import effects as fx
from channels.core import inputs as ins
from channels.core.channel import Phase, transition, verify_signed
from channels.core.ids import NATIVE, PaymentId, Version
from channels.core.messages import Countersign, UpdateProposal, UpdateReject
from channels.core.ops import AppMove
from channels.encoding import encode
from channels.errors import InvalidTransition, LocalProtocolError
from channels.games import GAME_APPS, LastOneStanding
from channels.testing.coregroup import CoreGroup
from channels.wire import decode_message

APP = LastOneStanding()


def group(label: str = "trio") -> CoreGroup:
    g = CoreGroup((100, 100, 100), app_id=APP.app_id, apps=GAME_APPS, label=label)
    g.open()
    return g


def same_latest(g: CoreGroup) -> None:
    latest = [g.channel(i).latest for i in range(g.n)]
    assert all(s == latest[0] for s in latest), "every participant holds the same latest state"
    assert verify_signed(g.params, latest[0], g.scheme), "with all three signatures"


def moved(g: CoreGroup, i: int) -> list[fx.NotifyMoved]:
    return [e for e in g.members[i].effects if isinstance(e, fx.NotifyMoved)]


def test_opening_deposits_only_once_version_0_carries_all_signatures() -> None:
    g = CoreGroup((100, 100, 100), app_id=APP.app_id, apps=GAME_APPS, label="open")
    from channels.core.channel import propose_channel

    g.members[0].channel, effects = propose_channel(g.params, g.allocation, env=g.members[0].env)
    g._emit(0, effects)
    g.deliver(0, 1)  # participant 1 accepts; participant 2 has not seen the proposal yet
    assert g.channel(1).phase is Phase.PROPOSED
    assert not any(isinstance(e, fx.SubmitDeposit) for e in g.members[1].effects), \
        "no deposit while a signature on version 0 is missing"
    g.deliver(1, 2)  # 1's accept overtakes the proposal at 2: dropped, 2 knows no channel yet
    g.run()
    assert [g.channel(i).phase for i in range(3)] == [Phase.FUNDING, Phase.FUNDING, Phase.PROPOSED]
    assert not any(isinstance(e, fx.SubmitDeposit) for e in g.members[2].effects)
    g.apply(2, ins.ActionResync())  # 2 stalls: it asks every peer for the accepts it lacks
    g.run()
    assert all(g.channel(i).phase is Phase.FUNDING for i in range(3))
    for i in range(3):
        deposits = [e for e in g.members[i].effects if isinstance(e, fx.SubmitDeposit)]
        assert [(d.asset, d.amount) for d in deposits] == [(NATIVE, 100)], "each funds its own share once"
    g.fund()
    assert all(g.channel(i).phase is Phase.OPEN for i in range(3))
    same_latest(g)


def test_each_participant_proposes_an_update() -> None:
    g = group("each")
    for mover in (0, 1, 2):
        g.move(mover, 3)
        g.run()
        assert g.versions() == [mover + 1] * 3
        same_latest(g)
        for other in {0, 1, 2} - {mover}:
            assert moved(g, other)[-1].mover == mover, "the others are told of the move once it counts"
    assert APP.turn(g.params, g.channel(0).latest.state) == 0
    assert all(g.channel(i).pending is None and g.channel(i).cosign is None for i in range(3))


def test_a_state_counts_only_with_all_signatures() -> None:
    """Participant 1 countersigns to the proposer only: 2 must not hold the move as latest."""
    g = group("partial")
    g.move(0, 2)
    g.deliver(0, 1)
    g.deliver(0, 2)
    g.drop(1, 2)  # 1's countersignature to 2 is lost
    g.run()
    assert g.versions() == [1, 1, 0]
    assert g.channel(2).cosign is not None and not moved(g, 2), "2 holds it aside, not as its latest"
    assert APP.turn(g.params, g.channel(2).latest.state) == 0


def test_a_lost_countersignature_is_recovered_by_reestablish() -> None:
    g = group("lost")
    g.move(0, 2)
    g.deliver(0, 1)
    g.deliver(0, 2)
    g.drop(1, 2)
    g.run()
    assert g.versions() == [1, 1, 0]
    g.apply(2, ins.ActionReconnect(peer=1))  # the link to 1 comes back: 2 sends Reestablish(0)
    g.run()
    assert g.versions() == [1, 1, 1]
    same_latest(g)
    assert moved(g, 2)[-1].mover == 0
    g.move(1, 1)  # and the game goes on
    g.run()
    assert g.versions() == [2, 2, 2]


def test_countersignatures_that_overtake_the_proposal_are_kept() -> None:
    g = group("early")
    g.move(0, 1)
    g.deliver(0, 1)  # 1 countersigns to 0 and 2; 2 gets 1's countersignature first
    g.deliver(1, 2)
    assert g.channel(2).early and g.channel(2).version == 0
    g.run()
    assert g.versions() == [1, 1, 1] and not g.channel(2).early
    same_latest(g)


def test_a_participant_restarts_from_its_record() -> None:
    g = group("restart")
    g.move(0, 3)
    g.deliver(0, 1)
    g.deliver(0, 2)
    g.deliver(1, 0)
    before = g.channel(2)
    assert before.cosign is not None
    g.restart(2)  # its countersignatures and what was on the way to it are lost
    assert g.channel(2) == before, "the record holds the co-signed state and the early signatures"
    for i in range(3):
        for j in range(3):
            if i != j:
                g.apply(i, ins.ActionReconnect(peer=j))
    g.run()
    assert g.versions() == [1, 1, 1]
    same_latest(g)


def test_a_collision_at_one_version_is_settled_by_the_lowest_index() -> None:
    g = group("collide")
    g.move(0, 2)  # 0 moves at version 1 ...
    g.apply(1, ins.ActionClose())  # ... while 1 proposes to close at version 1
    assert g.channel(1).pending is not None and g.channel(1).pending.version == 1
    g.deliver(0, 2)  # 2 co-signs 0's move first
    g.deliver(1, 2)  # so it cannot sign 1's close at the same version: it asks 1 to retry higher
    assert g.channel(2).cosign is not None and g.channel(2).cosign.proposer == 0
    g.run()
    # 0 leads and re-proposes its move at version 2, but 1 signed a final state at version 1:
    # it never signs an update again, so the move fails and 1's close goes in, higher.
    assert all(g.channel(i).phase is Phase.CLOSING for i in range(3))
    same_latest(g)
    final = g.channel(0).latest.state
    assert final.is_final and final.version == 3
    assert APP.load(g.params, final)[1].count == 0
    assert [type(e) for e in g.members[0].effects if isinstance(e, (fx.NotifyOpFailed, fx.NotifyOpDone))] \
        == [fx.NotifyOpFailed]
    assert g.signed_twice() == []
    assert any(isinstance(e, fx.SubmitConclude) for e in g.members[1].effects)


def test_never_two_states_signed_at_one_version() -> None:
    """Three proposers at once, delivered in every order round robin: each participant signs
    at most one state per version, and all end on the same fully signed state."""
    g = group("once")
    g.move(0, 1)
    g.apply(1, ins.ActionClose())
    g.apply(2, ins.ActionClose())
    g.run()
    for _ in range(3):  # a yielded participant whose leader went quiet stops waiting (stall)
        for i in range(3):
            g.apply(i, ins.ActionResync())
        g.run()
    assert g.signed_twice() == []
    assert all(g.channel(i).phase is Phase.CLOSING for i in range(3))
    same_latest(g)
    assert g.channel(0).latest.state.is_final


def test_bad_signatures_are_refused_and_change_nothing() -> None:
    g = group("forged")
    before = [g.channel(i) for i in range(3)]
    # A proposal signed by someone other than its sender.
    op = AppMove(move_id=b"x", payload=encode(1))
    forged = UpdateProposal(channel_id=g.channel(0).channel_id, version=Version(1), operations=(op,),
                            signature=b"\x01" * 64)
    ch, out = transition(before[1], ins.ReceiveUpdate(message=forged, sender=0), now=0, env=g.members[1].env)
    assert ch == before[1]
    assert [e.action for e in out if isinstance(e, fx.Reject)] == [fx.RejectAction.WARN]
    assert not any(isinstance(e, fx.Send) for e in out), "nothing is countersigned"
    # A genuine proposal by 0, attributed to 2 by the transport: checked against 2's key.
    g.move(0, 1)
    frame = g.queues[(0, 1)][0]
    real = decode_message(frame)
    ch, out = transition(before[1], ins.ReceiveUpdate(message=real, sender=2), now=0, env=g.members[1].env)
    assert ch == before[1] and any(isinstance(e, fx.Reject) for e in out)
    # A bad countersignature on 0's pending proposal changes nothing.
    pending0 = g.channel(0)
    bad = Countersign(channel_id=pending0.channel_id, version=Version(1), signature=b"\x02" * 64)
    ch, out = transition(pending0, ins.ReceiveCountersign(message=bad, sender=1), now=0, env=g.members[0].env)
    assert ch == pending0 and [e.action for e in out if isinstance(e, fx.Reject)] == [fx.RejectAction.WARN]
    # Valid bytes from no other participant (our own index) are refused too.
    ch, out = transition(pending0, ins.ReceiveCountersign(message=bad, sender=0), now=0, env=g.members[0].env)
    assert ch == pending0 and any(isinstance(e, fx.Reject) for e in out)


def test_cooperative_close_needs_all_three_signatures() -> None:
    g = group("close")
    for mover in (0, 1, 2, 0):
        g.move(mover, 3)
        g.run()
    g.apply(2, ins.ActionClose())
    g.deliver(2, 0)
    g.deliver(2, 1)
    g.deliver(0, 2)  # 2 has 0's countersignature only: not closed yet
    assert g.channel(2).phase is Phase.OPEN and g.channel(2).pending is not None
    g.run()
    assert all(g.channel(i).phase is Phase.CLOSING for i in range(3))
    same_latest(g)
    final = g.channel(2).latest
    assert final.state.is_final and final.state.version == 5
    concludes = [e for e in g.members[2].effects if isinstance(e, fx.SubmitConclude)]
    assert len(concludes) == 1 and verify_signed(g.params, concludes[0].signed, g.scheme)
    with pytest.raises((LocalProtocolError, InvalidTransition)):
        g.move(0, 1)


def test_payments_and_locks_are_refused() -> None:
    g = group("nopay")
    with pytest.raises(LocalProtocolError, match="app moves only"):
        g.apply(0, ins.ActionPay(payment_id=PaymentId(b"p"), asset=NATIVE, amount=1))
    from channels.core.channel import apply_operations
    from channels.core.ops import Payment

    with pytest.raises(InvalidTransition, match="app moves only"):
        apply_operations(g.channel(0).latest.state, (Payment(payment_id=b"p", asset=NATIVE, amount=1),),
                         params=g.params, proposer=2, version=1, now=0, env=g.members[0].env)


def test_a_stale_state_registered_by_one_participant_is_refuted() -> None:
    """Stale-state attack with three: participant 1 registers version 1, which pays it more;
    the others answer with the newest state all three signed, within the window."""
    g = group("stale")
    g.move(0, 3)
    g.run()
    old = g.channel(1).latest
    g.move(1, 3)
    g.run()
    g.move(2, 3)
    g.run()
    assert old.state.version == 1 and g.versions() == [3, 3, 3]
    for i in (0, 2):
        out = g.apply(i, ins.ChainRegistered(signed=old, deadline=100))
        refute = [e for e in out if isinstance(e, fx.SubmitRefute)]
        assert len(refute) == 1 and refute[0].signed == g.channel(i).latest
        assert verify_signed(g.params, refute[0].signed, g.scheme)
        assert g.channel(i).phase is Phase.DISPUTED and g.channel(i).cosign is None


@pytest.mark.parametrize("field", ["proposer", "signer", "version"])
def test_a_corrupt_n_party_record_is_a_typed_error(field: str) -> None:
    from channels.encoding import decode
    from channels.errors import DecodeError
    from channels.store.records import channel_from_bytes, channel_to_bytes

    g = group("record")
    g.move(0, 3)
    if field == "proposer":
        g.deliver(0, 2)  # 2 co-signs 0's state
        assert g.channel(2).cosign is not None
    else:
        g.deliver(0, 1)
        g.deliver(1, 2)  # 1's countersignature reaches 2 before 0's proposal
        assert g.channel(2).early
    fields = decode(channel_to_bytes(g.channel(2)))
    assert channel_from_bytes(encode(fields, validate=False)) == g.channel(2)
    if field == "proposer":
        fields[-1][0][0] = 99
    elif field == "signer":
        fields[-1][1][0][1] = 8
    else:
        fields[-1][1][0][0] = -1
    with pytest.raises(DecodeError):
        channel_from_bytes(encode(fields, validate=False))


def test_a_participant_lied_to_completes_the_state_again_from_our_proposal() -> None:
    # Liveness against a liar: 2 countersigns 0's state to 0 only and tells 1 it gave up, so 1
    # drops the state it co-signed while 0 and 2 hold it with every signature. On resync 0,
    # its proposer, resends the proposal: 1 signs that very state again and catches up.
    g = group("lied-to")
    g.move(0, 2)
    g.deliver(0, 1)
    g.deliver(0, 2)
    g.drop(2, 1)
    cid = g.channel(1).channel_id
    g.apply(1, ins.ReceiveReject(message=UpdateReject(channel_id=cid, version=Version(1), retry=True, reason="lie"),
                                 sender=2))
    g.run()
    assert g.versions() == [1, 0, 1] and g.channel(1).cosign is None
    g.restart(0)  # the proposal is kept in 0's record
    assert g.channel(0).proposed_latest is not None
    for i in range(3):
        g.apply(i, ins.ActionResync())
    g.run()
    assert g.versions() == [1, 1, 1] and not g.signed_twice()
    same_latest(g)
    g.move(1, 3)  # and the game goes on off-chain
    g.run()
    assert g.versions() == [2, 2, 2]
