"""No input from a peer may stop the engine, and the store keeps what it is given.

Findings: a payment of 2**63 or more raised ``OverflowError`` in the store, escaped the
engine step and killed the payee, again on every restart (the payer retransmits); one
unreadable record stopped the node from starting, leaving every other channel unwatched;
and data written by 0.1.0 must stay readable.
"""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest

from channels.core import effects as fx
from channels.core import inputs as ins
from channels.core.ids import NATIVE
from channels.core.messages import CloseProposal, Countersign
from channels.node.engine import CoreItem, Engine, OpenItem, Waiter
from channels.store import Store
from channels.store.records import channel_from_bytes
from channels.testing import CorePair, receive_input
from channels.wire import decode_message

DATA = Path(__file__).parent / "data"
BIG = 2**63


def engine_for(pair: CorePair, path: Path, side: int = 0) -> Engine:
    engine = Engine(Store(path), pair.sides[side].env)
    engine.step([OpenItem(peer_id="peer", channel=pair.channel(side), effects=[], waiter=Waiter())])
    return engine


def peer_update(pair: CorePair, amount: int) -> CoreItem:
    """Side 1 pays side 0 ``amount``; the proposal as the engine of side 0 receives it."""
    pair.pay(1, amount)
    frame = pair.sides[0].inbox.popleft()
    return CoreItem(channel_id=pair.channel(0).channel_id, input=receive_input(decode_message(frame)),
                    peer_id="peer")


@pytest.mark.parametrize("amount", [BIG, 2**64 - 11])
def test_a_payment_of_2_pow_63_or_more_is_received_and_stored_exactly(tmp_path: Path, amount: int) -> None:
    pair = CorePair((10, 2**64 - 11))
    engine = engine_for(pair, tmp_path / "node.db")
    out = engine.step([peer_update(pair, amount)])
    assert out.sends, "countersigned"
    cid = pair.channel(0).channel_id
    assert engine.channels[cid].allocation.balances[0][0] == 10 + amount
    assert engine.store.payment_totals()[("in", "received")] == amount
    engine.store.close()
    again = Engine(Store(tmp_path / "node.db"), pair.sides[0].env)  # a restart reads it all back
    assert again.channels[cid].allocation.balances[0][0] == 10 + amount
    assert again.store.payment_totals()[("in", "received")] == amount


@pytest.mark.allow_error_logs  # the engine logs the refused input
def test_peer_input_that_breaks_the_commit_is_refused_not_fatal(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    pair = CorePair((1000, 1000))
    engine = engine_for(pair, tmp_path / "node.db")
    cid = pair.channel(0).channel_id
    before = engine.channels[cid]

    def refuse(*args: object) -> None:
        raise OverflowError("Python int too large to convert to SQLite INTEGER")

    monkeypatch.setattr(engine.store, "record_payment", refuse)
    local = Waiter()
    out = engine.step([peer_update(pair, 5), CoreItem(channel_id=cid, input=ins.ActionClose(), waiter=local)])
    assert engine.channels[cid].version == before.version, "the peer's update was rolled back"
    sent = [type(decode_message(frame)) for _, frame in out.sends]
    assert Countersign not in sent and CloseProposal in sent, "nothing of the refused input went out"
    assert any(peer == "peer" and r.action is fx.RejectAction.DISCONNECT for peer, r in out.rejects)
    assert [err for w, _, err in out.wakeups if w is local] == [None], "the local request was still answered"
    assert engine.channels[cid].closing_requested, "and applied: only the failing input is refused"


def test_an_unreadable_record_is_quarantined_and_the_others_load(tmp_path: Path) -> None:
    good, bad = CorePair((100, 100), labels=("a", "b")), CorePair((100, 100), labels=("c", "d"))
    store = Store(tmp_path / "node.db")
    with store.transaction():
        store.save_channel(good.channel(0), "p1")
        store.save_channel(bad.channel(0), "p2")
    store.close()
    db = sqlite3.connect(tmp_path / "node.db")
    db.execute("UPDATE channels SET record = ? WHERE channel_id = ?", (b"\x93\x01\x02\x03", bad.channel(0).channel_id))
    db.commit()
    db.close()
    store = Store(tmp_path / "node.db")
    loaded = store.load_channels()
    assert [ch.channel_id for ch, _ in loaded] == [good.channel(0).channel_id]
    quarantined = store.quarantined()
    assert [(c, p) for c, p, _ in quarantined] == [(bad.channel(0).channel_id, "p2")]
    assert Store(tmp_path / "node.db").load_channels() == loaded, "a second start is quiet"


def test_a_record_written_by_0_1_0_still_reads() -> None:
    ch = channel_from_bytes((DATA / "channel-record-v1.bin").read_bytes())
    assert ch.version == 1 and ch.pending is not None and len(ch.queue) == 1
    assert ch.retries == 0 and ch.funding_since is None


def test_a_store_written_by_0_1_0_opens(tmp_path: Path) -> None:
    shutil.copy(DATA / "node-v0.1.0.db", tmp_path / "node.db")
    store = Store(tmp_path / "node.db")
    [(ch, peer)] = store.load_channels()
    assert peer == "peerA" and ch.allocation.balances[0] == (995, 1005)
    assert store.chain_cursor() == 42
    assert store.payment(b"p1") == ("sent", "2")
    assert store.payment_totals() == {("out", "sent"): 7}
    assert store.prune_peers() == 1 and list(store.peers()) == ["peerA"], "channel-less peers are forgotten"
    store.record_payment(b"p2", ch.channel_id, "out", NATIVE, BIG, "sent", "3")
    assert store.payment_totals() == {("out", "sent"): 7 + BIG}
