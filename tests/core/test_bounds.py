"""Every collection in a channel record is bounded, whatever the peer answers.

Findings these stop: a peer answering every proposal with a retry-reject made the node
sign new versions forever and grow ``abandoned`` until its record could not be read back
(the node then failed to start); payments queued for an offline peer did the same; and
channels a free identity proposed but never funded stayed forever.
"""

from __future__ import annotations

import attrs
import pytest

from channels.core import effects as fx
from channels.core import inputs as ins
from channels.core.channel import (
    MAX_ABANDONED,
    MAX_QUEUE,
    MAX_RETRIES,
    Env,
    Phase,
    accept_channel,
    propose_channel,
    transition,
)
from channels.core.messages import UpdateReject
from channels.errors import LocalProtocolError, QueueFull
from channels.store.records import channel_from_bytes, channel_to_bytes
from channels.testing import CorePair


def retry_reject(pair: CorePair) -> list[fx.Effect]:
    """Answer A's pending proposal with a retry-reject (what the hostile peer always does)."""
    pending = pair.channel(0).pending
    assert pending is not None
    pair.sides[1].inbox.clear()
    reject = UpdateReject(channel_id=pair.channel(0).channel_id, version=pending.version, retry=True, reason="again")
    return pair.apply(0, ins.ReceiveReject(message=reject))


def test_retry_loop_stops_after_max_retries_and_disconnects() -> None:
    pair = CorePair((1000, 1000))
    pid = pair.pay(0, 10)
    signatures_before = len(pair.signed_in_order(0))
    out: list[fx.Effect] = []
    for _ in range(MAX_RETRIES + 1):
        assert pair.channel(0).pending is not None, "re-proposes while under the bound"
        out = retry_reject(pair)
    ch = pair.channel(0)
    assert ch.pending is None and not ch.queue, "no endless re-proposing"
    assert any(isinstance(e, fx.Reject) and e.action is fx.RejectAction.DISCONNECT for e in out)
    failed = [e.payment_id for e in pair.notified(0, fx.NotifyPaymentFailed)]
    assert failed == [pid]
    assert len(pair.signed_in_order(0)) - signatures_before == MAX_RETRIES
    assert channel_from_bytes(channel_to_bytes(ch)) == ch


def test_abandoned_proposals_stay_bounded_and_the_record_reads_back() -> None:
    pair = CorePair((100_000, 100_000))
    refused = None
    for _ in range(MAX_ABANDONED):  # each round: a payment, then retry-rejects until we give up
        try:
            pair.pay(0, 1)
        except LocalProtocolError as exc:
            refused = exc
            break
        while pair.channel(0).pending is not None:
            retry_reject(pair)
        assert len(pair.channel(0).abandoned) <= MAX_ABANDONED
    assert refused is not None and "close the channel" in str(refused)
    ch = pair.channel(0)
    assert len(ch.abandoned) == MAX_ABANDONED
    assert channel_from_bytes(channel_to_bytes(ch)) == ch


def test_queue_is_bounded_while_the_peer_does_not_answer() -> None:
    pair = CorePair((100_000, 100_000))
    pair.pay(0, 1)  # in flight, never answered
    for _ in range(MAX_QUEUE):
        pair.pay(0, 1)
    with pytest.raises(QueueFull):
        pair.pay(0, 1)
    ch = pair.channel(0)
    assert len(ch.queue) == MAX_QUEUE
    assert channel_from_bytes(channel_to_bytes(ch)) == ch


def test_progress_resets_the_retry_count() -> None:
    pair = CorePair((1000, 1000))
    pair.pay(0, 10)
    retry_reject(pair)
    retry_reject(pair)
    assert pair.channel(0).retries == 2
    pair.deliver_all()
    assert pair.channel(0).retries == 0 and pair.balances(0) == (990, 1010)


def _unfunded(deposits: tuple[int, int], timeout: int) -> tuple[Env, Env, object, object]:
    pair = CorePair(deposits)  # for its keys and params only
    envs = [attrs.evolve(side.env, funding_timeout=timeout) for side in pair.sides]
    a, out = propose_channel(pair.params, pair.allocation, env=envs[0])
    proposal = out[0]
    assert isinstance(proposal, fx.Send)
    b, _ = accept_channel(proposal.message, env=envs[1])  # type: ignore[arg-type]
    return envs[0], envs[1], a, b


def test_funding_timeout_drops_a_channel_we_put_nothing_into() -> None:
    _, env_b, _, b = _unfunded((500, 0), timeout=100)
    b, _ = transition(b, ins.Tick(), now=1_000, env=env_b)  # first sight starts the clock
    b, out = transition(b, ins.Tick(), now=1_099, env=env_b)
    assert b.phase is Phase.FUNDING and not out
    b, out = transition(b, ins.Tick(), now=1_100, env=env_b)
    assert b.phase is Phase.SETTLED
    assert [type(e) for e in out] == [fx.NotifyClosed]


def test_funding_timeout_recovers_our_deposit_through_a_forced_close() -> None:
    env_a, _, a, _ = _unfunded((500, 0), timeout=100)
    a, _ = transition(a, ins.Tick(), now=1_000, env=env_a)  # still proposed: no accept seen
    a, out = transition(a, ins.Tick(), now=1_100, env=env_a)
    assert a.phase is Phase.SETTLED, "nothing deposited while proposed"
    env_a, _, a, b = _unfunded((500, 0), timeout=100)
    accept = transition(b, ins.ActionReconnect(), now=0, env=env_a)[1][0]
    assert isinstance(accept, fx.Send)
    a, _ = transition(a, ins.ReceiveAccept(message=accept.message), now=0, env=env_a)  # type: ignore[arg-type]
    assert a.phase is Phase.FUNDING
    a, _ = transition(a, ins.Tick(), now=1_000, env=env_a)
    a, out = transition(a, ins.Tick(), now=1_100, env=env_a)
    assert a.phase is Phase.DISPUTED
    assert any(isinstance(e, fx.SubmitRegister) and e.signed.state.version == 0 for e in out)


def test_no_funding_timeout_by_default() -> None:
    pair = CorePair((500, 0))
    b, _ = accept_channel(
        propose_channel(pair.params, pair.allocation, env=pair.sides[0].env)[1][0].message,  # type: ignore[union-attr]
        env=pair.sides[1].env)
    for now in (0, 10**9):
        b, _ = transition(b, ins.Tick(), now=now, env=pair.sides[1].env)
    assert b.phase is Phase.FUNDING
