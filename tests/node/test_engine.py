"""The engine's persist-then-send rule and the store, without any network."""

from __future__ import annotations

from pathlib import Path

import attrs
import pytest

from channels.core import inputs as ins
from channels.core.ids import NATIVE, PaymentId
from channels.errors import DecodeError, StorageError
from channels.node.engine import CoreItem, Engine, OpenItem, Waiter
from channels.store import Store
from channels.store.records import channel_from_bytes, channel_to_bytes
from channels.testing import CorePair


def engine_with_channel(tmp_path: Path) -> tuple[Engine, CorePair]:
    pair = CorePair((100, 100))
    store = Store(tmp_path / "node.db")
    engine = Engine(store, pair.sides[0].env)
    out = engine.step([OpenItem(peer_id="peer", channel=pair.channel(0), effects=[], waiter=Waiter())])
    assert not out.sends
    return engine, pair


def test_record_round_trip_and_corruption(tmp_path: Path) -> None:
    pair = CorePair((100, 100))
    pair.pay(0, 5)
    pair.pay(0, 6)
    data = channel_to_bytes(pair.channel(0))
    assert channel_from_bytes(data) == pair.channel(0)
    with pytest.raises(DecodeError):
        channel_from_bytes(data[:-3])
    with pytest.raises(DecodeError):
        channel_from_bytes(b"\x93\x01\x02\x03")


@pytest.mark.allow_error_logs  # the engine logs the failed commit
def test_commit_failure_sends_nothing_and_changes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    engine, pair = engine_with_channel(tmp_path)
    cid = pair.channel(0).channel_id
    before = engine.channels[cid]

    def broken(*args: object, **kwargs: object) -> None:
        raise StorageError("disk full")

    monkeypatch.setattr(engine.store, "save_channel", broken)
    waiter = Waiter()
    with pytest.raises(StorageError):  # fatal: the node stops and restarts from the store
        engine.step([CoreItem(channel_id=cid, input=ins.ActionPay(payment_id=PaymentId(b"p"), asset=NATIVE,
                                                                 amount=5), waiter=waiter)])
    assert engine.channels[cid] == before, "nothing is applied, so nothing can have been sent"
    assert waiter.done


def test_signed_proposal_is_durable_before_it_is_sent(tmp_path: Path) -> None:
    engine, pair = engine_with_channel(tmp_path)
    cid = pair.channel(0).channel_id
    out = engine.step([CoreItem(channel_id=cid, input=ins.ActionPay(payment_id=PaymentId(b"p"), asset=NATIVE,
                                                                   amount=5), waiter=Waiter())])
    assert len(out.sends) == 1
    reopened = Store(tmp_path / "node.db")
    stored = reopened.channel(cid)
    assert stored is not None and stored.pending is not None and stored.highest_signed == 1
    reopened.close()


def test_peer_cannot_speak_for_another_peers_channel(tmp_path: Path) -> None:
    engine, pair = engine_with_channel(tmp_path)
    cid = pair.channel(0).channel_id
    before = engine.channels[cid]
    out = engine.step([CoreItem(channel_id=cid, input=ins.ActionResync(), peer_id="mallory")])
    assert out.rejects and out.rejects[0][0] == "mallory"
    assert engine.channels[cid] == before and not out.sends


@pytest.mark.allow_error_logs  # the engine logs the input it ignored
def test_malformed_proposal_is_declined_not_fatal(tmp_path: Path) -> None:
    engine, pair = engine_with_channel(tmp_path)
    from channels.core.messages import ChannelProposal
    from channels.core.state import Allocation
    from channels.node.engine import ProposalItem
    bad = ChannelProposal(params=attrs.evolve(pair.params, nonce=bytes(32)),
                          allocation=Allocation(assets=(NATIVE,), balances=((5,),)), signature=bytes(64))

    def policy(peer: str, proposal: ChannelProposal) -> str | None:
        proposal.allocation.balances[0][1]  # a careless policy would crash here
        return None

    out = engine.step([ProposalItem(peer_id="peer", proposal=bad, accept=policy)])
    assert len(engine.channels) == 1 and not out.sends


def test_proposal_flood_is_capped_per_peer(tmp_path: Path) -> None:
    engine, pair = engine_with_channel(tmp_path)
    from channels.core.channel import propose_channel
    from channels.core.messages import ChannelProposal
    from channels.node.engine import ProposalItem
    items = []
    for i in range(10):
        params = attrs.evolve(pair.params, participants=pair.params.participants[::-1], nonce=bytes([i]) * 32)
        alloc = attrs.evolve(pair.allocation, balances=((100, 0),))
        _, effects = propose_channel(params, alloc, env=pair.sides[1].env)
        proposal = effects[0].message  # type: ignore[union-attr]
        assert isinstance(proposal, ChannelProposal)
        items.append(ProposalItem(peer_id="flooder", proposal=proposal, accept=lambda p, q: None, max_in_flight=3))
    engine.step(items)
    assert sum(1 for p in engine.peer_of.values() if p == "flooder") == 3
