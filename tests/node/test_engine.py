"""The engine's persist-then-send rule and the store, without any network."""

from __future__ import annotations

from pathlib import Path

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


def test_commit_failure_sends_nothing_and_changes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    engine, pair = engine_with_channel(tmp_path)
    cid = pair.channel(0).channel_id
    before = engine.channels[cid]

    def broken(*args: object, **kwargs: object) -> None:
        raise StorageError("disk full")

    monkeypatch.setattr(engine.store, "save_channel", broken)
    waiter = Waiter()
    out = engine.step([CoreItem(channel_id=cid, input=ins.ActionPay(payment_id=PaymentId(b"p"), asset=NATIVE,
                                                                   amount=5), waiter=waiter)])
    assert not out.sends, "nothing is sent unless it was committed"
    assert engine.channels[cid] == before
    assert [type(err) for _, _, err in out.wakeups] == [StorageError]


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
