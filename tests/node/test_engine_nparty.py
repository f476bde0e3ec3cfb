"""The engine with an n-party channel (proto/02 section 13), without any network: frames go to
each participant's peer, a message counts as the participant its authenticated peer is, a
stranger is refused, and the participants' peers survive a restart."""

from __future__ import annotations

from pathlib import Path

from channels.core import effects as fx
from channels.core import inputs as ins
from channels.core.ids import ChannelId
from channels.core.ops import AppMove
from channels.encoding import encode
from channels.games import GAME_APPS, LastOneStanding
from channels.node.engine import CoreItem, Engine, OpenItem, Outgoing, Waiter
from channels.store import Store
from channels.testing.coregroup import CoreGroup
from channels.wire import decode_message

PEERS = ("", "peer-b", "peer-c")


def setup(tmp_path: Path) -> tuple[Engine, CoreGroup, ChannelId]:
    g = CoreGroup((100, 100, 100), app_id=LastOneStanding.app_id, apps=GAME_APPS, label="engine")
    g.open()
    engine = Engine(Store(tmp_path / "node.db"), g.members[0].env)
    engine.step([OpenItem(peer_id=PEERS[1], channel=g.channel(0), effects=[], waiter=Waiter(), peers=PEERS)])
    return engine, g, g.channel(0).channel_id


def countersigns(engine: Engine, g: CoreGroup, cid: ChannelId) -> tuple[Outgoing, list[CoreItem]]:
    """Participant 0 (the engine) moves; 1 and 2 countersign: their frames, as the engine gets them."""
    out = engine.step([CoreItem(channel_id=cid, input=ins.ActionPropose(
        operation=AppMove(move_id=b"m", payload=encode(3))), waiter=Waiter())])
    items = []
    for peer in (1, 2):
        frames = [frame for p, frame in out.sends if p == PEERS[peer]]
        assert len(frames) == 1, "the proposal goes to each participant's peer once"
        inp = ins.receive(decode_message(frames[0]), sender=0)
        assert inp is not None
        g.apply(peer, inp)
    for peer in (1, 2):
        for frame in list(g.queues[(peer, 0)]):
            inp = ins.receive(decode_message(frame))
            assert inp is not None
            items.append(CoreItem(channel_id=cid, input=inp, peer_id=PEERS[peer]))
    return out, items


def test_frames_go_to_every_participant_and_count_as_their_sender(tmp_path: Path) -> None:
    engine, g, cid = setup(tmp_path)
    out, items = countersigns(engine, g, cid)
    assert sorted(p for p, _ in out.sends) == ["peer-b", "peer-c"]
    assert out.sends[0][1] == out.sends[1][1], "the same bytes to each"
    engine.step(items[:1])
    assert engine.channels[cid].version == 0, "one countersignature of two: it does not count yet"
    engine.step(items[1:])
    assert engine.channels[cid].version == 1 and engine.channels[cid].latest.is_fully_signed


def test_a_stranger_or_a_misattributed_signature_changes_nothing(tmp_path: Path) -> None:
    engine, g, cid = setup(tmp_path)
    _, items = countersigns(engine, g, cid)
    before = engine.channels[cid]
    out = engine.step([CoreItem(channel_id=cid, input=items[0].input, peer_id="mallory")])
    assert engine.channels[cid] == before
    assert [(p, r.action) for p, r in out.rejects] == [("mallory", fx.RejectAction.DISCONNECT)]
    # c's countersignature, arriving from b's connection, is checked under b's key.
    out = engine.step([CoreItem(channel_id=cid, input=items[1].input, peer_id=PEERS[1])])
    assert engine.channels[cid] == before
    assert [(p, r.action) for p, r in out.rejects] == [("peer-b", fx.RejectAction.WARN)]


def test_the_peers_of_a_channel_survive_a_restart(tmp_path: Path) -> None:
    engine, g, cid = setup(tmp_path)
    engine.store.close()
    again = Engine(Store(tmp_path / "node.db"), g.members[0].env)
    assert again.peers_of[cid] == PEERS
    assert again.channels_of("peer-c") == [cid] and again.channels_of("peer-b") == [cid]
    assert again.all_peers() == ["peer-b", "peer-c"]
    assert again.peers_of_channel(cid) == ["peer-b", "peer-c"]
    assert again.channels[cid] == g.channel(0)


def test_pruning_keeps_every_participant_of_an_n_party_channel(tmp_path: Path) -> None:
    engine, _g, _cid = setup(tmp_path)
    store = engine.store
    with store.transaction():
        for peer in ("peer-b", "peer-c", "stranger"):
            store.save_peer(peer, b"\x01" * 32, [f"/memory/{peer}"])
    with store.transaction():
        assert store.prune_peers() == 1
    assert sorted(store.peers()) == ["peer-b", "peer-c"], "peer-c is no channel's first peer, yet it stays"
