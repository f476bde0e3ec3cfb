"""The durable outbox: every frame and L1 submission a step decides is written in the step's
transaction, drained by the link and the submitter, and survives restarts (proto/02 section 6.3)."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio
from trio.testing import MockClock

from channels.chain.devnet.ledger import Devnet
from channels.core import effects as fx
from channels.core import inputs as ins
from channels.core.ids import NATIVE, PaymentId
from channels.core.messages import UpdateProposal
from channels.errors import StorageError
from channels.net.memory import MemoryNetwork, open_memory_transport
from channels.node import Node, load_config
from channels.node.engine import CoreItem, Waiter
from channels.store.records import submission_from_bytes, submission_to_bytes
from channels.testing import CorePair
from channels.wire import decode_message
from tests.node.test_engine_hardening import engine_for
from tests.node.test_memory_network import open_pair


def pay_item(pair: CorePair, amount: int = 5) -> CoreItem:
    return CoreItem(channel_id=pair.channel(0).channel_id, waiter=Waiter(),
                    input=ins.ActionPay(payment_id=PaymentId(b"p%d" % amount), asset=NATIVE, amount=amount))


def test_frames_are_stored_with_the_state_and_deleted_once_sent(tmp_path: Path) -> None:
    pair = CorePair((100, 100))
    engine = engine_for(pair, tmp_path / "node.db")
    out = engine.step([pay_item(pair)])
    [(seq, frame)] = engine.store.outbox_frames("peer", limit=10)
    assert out.send_seqs == [seq] and out.sends == [("peer", frame)]
    assert isinstance(decode_message(frame), UpdateProposal)
    engine.sent_upto["peer"] = seq  # the link wrote it to the stream
    engine.step([CoreItem(channel_id=pair.channel(0).channel_id, input=ins.ActionResync())])
    left = [s for s, _ in engine.store.outbox_frames("peer", limit=10)]
    assert seq not in left and left, "the sent frame is gone; the resync's frames wait"


@pytest.mark.allow_error_logs  # the engine logs the failed commit before it stops
def test_a_failed_commit_stores_no_frame(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pair = CorePair((100, 100))
    engine = engine_for(pair, tmp_path / "node.db")

    def broken(*args: object) -> None:
        raise StorageError("disk full")

    monkeypatch.setattr(engine.store, "save_channel", broken)
    with pytest.raises(StorageError):
        engine.step([pay_item(pair)])
    assert engine.store.outbox_frames("peer", limit=10) == []


@pytest.mark.parametrize("effect", [
    fx.SubmitDeposit(channel_id=CorePair().channel(0).channel_id, asset=NATIVE, amount=7),
    fx.SubmitRegister(signed=CorePair().channel(0).latest),
    fx.SubmitWithdraw(channel_id=CorePair().channel(0).channel_id),
    fx.SubmitSecret(preimage=b"s" * 32),
    fx.SubmitCheckpoint(signed=CorePair().channel(0).latest),
    fx.SubmitProgress(signed_prev=CorePair().channel(0).latest, next_state=CorePair().channel(0).latest.state,
                      mover=1, signature=bytes(64)),
])
def test_l1_submissions_round_trip_through_the_outbox(effect: fx.Effect) -> None:
    assert submission_from_bytes(submission_to_bytes(effect)) == effect


async def test_frames_decided_while_the_peer_was_away_are_sent_after_a_restart(
        tmp_path: Path, autojump_clock: MockClock) -> None:
    dev = Devnet(None, clock=None)
    net = MemoryNetwork()

    def node(name: str, transport: object) -> object:
        return Node.open(load_config(tmp_path / name, tick_interval=0.05, reconnect_interval=0.02), ledger=dev,
                         transport=transport)  # type: ignore[arg-type]

    async with open_memory_transport(net, "b") as tb, node("b", tb) as b:
        async with open_memory_transport(net, "a") as ta, node("a", ta) as a:
            dev.faucet_sync(a.l1_address, 10_000)
            with trio.fail_after(20):
                cid = await open_pair(a, b, 1_000)
                net.transports["b"].up = False  # b is away
                net.disconnect("a", "b")
                with trio.move_on_after(0.5):
                    await a.pay(cid, 25)  # signed and stored; the frame cannot go out
            assert a.store.outbox_frames(b.peer_id, limit=10), "the proposal waits in the outbox"
        net.transports["b"].up = True
        async with open_memory_transport(net, "a") as ta, node("a", ta) as a2:
            with trio.fail_after(20):
                await b.wait_version(cid, 1)
                while a2.store.outbox_frames(b.peer_id, limit=10):  # drained once sent
                    await trio.sleep(0.05)
        assert b.channel(cid).allocation.balances[0] == (975, 25)
