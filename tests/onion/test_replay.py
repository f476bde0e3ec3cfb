"""The replay cache refuses a packet seen twice, forgets only expired tags, and is bounded
(proto/04-onion.md section 7)."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from channels.errors import LocalProtocolError
from channels.onion import (
    OnionExpiryOutOfRange,
    ReplayCache,
    ReplayCacheFull,
    ReplayedOnion,
    build_onion,
    peel_packet,
)
from channels.onion import errors as e
from channels.onion import replay as r

from .helpers import NOW, PAYMENT_HASH, SESSION, route


def tag(i: int) -> bytes:
    return hashlib.sha256(b"tag%d" % i).digest()


def accept(cache: ReplayCache, packet: bytes, node_secret: bytes, *, now: int = NOW) -> bytes | None:
    """What a hop does (section 4.3 steps 4 to 7): peel, decode, then the replay rule."""
    peeled = peel_packet(packet, node_secret=node_secret, associated_data=PAYMENT_HASH)
    payload = peeled.decode_payload()
    cache.check_and_add(peeled.replay_tag, expiry=payload.expiry, now=now, source=b"channel-in")
    return peeled.next_packet


def test_a_replayed_packet_is_refused_at_every_hop() -> None:
    hops, secrets = route(3)
    packet = build_onion(hops, session_key=SESSION, associated_data=PAYMENT_HASH).packet
    caches = [ReplayCache() for _ in secrets]
    current: bytes | None = packet
    sent = []
    for cache, s in zip(caches, secrets, strict=True):
        assert current is not None
        sent.append(current)
        current = accept(cache, current, s)
    for cache, s, pkt in zip(caches, secrets, sent, strict=True):
        with pytest.raises(ReplayedOnion) as info:
            accept(cache, pkt, s)
        assert info.value.failure_code == e.REPLAYED_ONION
        assert len(cache) == 1


def test_a_new_packet_for_the_same_route_is_not_a_replay() -> None:
    hops, secrets = route(2)
    cache = ReplayCache()
    for i in range(3):
        session = hashlib.sha256(b"session %d" % i).digest()
        accept(cache, build_onion(hops, session_key=session, associated_data=PAYMENT_HASH).packet, secrets[0])
    assert len(cache) == 3


def test_tags_are_forgotten_only_after_their_expiry_and_replays_then_fail_as_expired() -> None:
    cache = ReplayCache(max_horizon=1000)
    cache.check_and_add(tag(1), expiry=NOW + 100, now=NOW)
    with pytest.raises(ReplayedOnion):
        cache.check_and_add(tag(1), expiry=NOW + 100, now=NOW + 99)
    assert cache.prune(NOW + 99) == 0 and tag(1) in cache
    with pytest.raises(OnionExpiryOutOfRange) as info:  # after eviction the expiry rule refuses it
        cache.check_and_add(tag(1), expiry=NOW + 100, now=NOW + 100)
    assert info.value.failure_code == e.EXPIRY_TOO_SOON
    assert tag(1) not in cache and len(cache) == 0


def test_the_horizon_bounds_how_long_an_entry_lives() -> None:
    cache = ReplayCache(max_horizon=1000)
    cache.check_and_add(tag(1), expiry=NOW + 1000, now=NOW)
    with pytest.raises(OnionExpiryOutOfRange) as info:
        cache.check_and_add(tag(2), expiry=NOW + 1001, now=NOW)
    assert info.value.failure_code == e.EXPIRY_TOO_FAR and len(cache) == 1


def test_a_full_cache_refuses_and_never_evicts() -> None:
    cache = ReplayCache(max_entries=3, max_horizon=1000)
    for i in range(3):
        cache.check_and_add(tag(i), expiry=NOW + 10 + i, now=NOW)
    with pytest.raises(ReplayCacheFull) as info:
        cache.check_and_add(tag(9), expiry=NOW + 500, now=NOW + 5)
    assert info.value.failure_code == e.TEMPORARY_NODE_FAILURE
    assert all(tag(i) in cache for i in range(3)) and tag(9) not in cache
    with pytest.raises(ReplayedOnion):  # still refused: nothing was pushed out
        cache.check_and_add(tag(0), expiry=NOW + 10, now=NOW + 5)
    cache.check_and_add(tag(9), expiry=NOW + 500, now=NOW + 10)  # tag 0 expired: room again
    assert tag(0) not in cache and len(cache) == 3


def test_one_source_cannot_fill_the_cache_for_everyone() -> None:
    cache = ReplayCache(max_entries=10, max_per_source=2)
    cache.check_and_add(tag(1), expiry=NOW + 10, now=NOW, source=b"mallory")
    cache.check_and_add(tag(2), expiry=NOW + 10, now=NOW, source=b"mallory")
    with pytest.raises(ReplayCacheFull):
        cache.check_and_add(tag(3), expiry=NOW + 10, now=NOW, source=b"mallory")
    cache.check_and_add(tag(3), expiry=NOW + 100, now=NOW, source=b"honest")
    cache.check_and_add(tag(4), expiry=NOW + 11, now=NOW + 10, source=b"mallory")  # mallory's expired
    assert len(cache) == 2


def test_entries_survive_a_restart() -> None:
    cache = ReplayCache(max_horizon=1000)
    cache.check_and_add(tag(1), expiry=NOW + 50, now=NOW, source=b"a")
    cache.check_and_add(tag(2), expiry=NOW + 500, now=NOW, source=b"b")
    saved = cache.entries()
    restarted = ReplayCache(max_horizon=1000)
    restarted.restore(saved, now=NOW + 100)
    assert tag(2) in restarted and tag(1) not in restarted
    with pytest.raises(ReplayedOnion):
        restarted.check_and_add(tag(2), expiry=NOW + 500, now=NOW + 100)
    small = ReplayCache(max_entries=1)
    with pytest.raises(ReplayCacheFull):
        small.restore(saved, now=NOW)
    assert len(small) == 0, "restore is all or nothing"
    with pytest.raises(LocalProtocolError):
        small.restore([(b"short", NOW + 1, b"")], now=NOW)


def test_bad_arguments_are_typed() -> None:
    for kwargs in ({"max_entries": 0}, {"max_entries": r.MAX_REPLAY_ENTRIES + 1}, {"max_per_source": 0},
                   {"max_entries": 5, "max_per_source": 6}, {"max_horizon": 0}):
        with pytest.raises(LocalProtocolError):
            ReplayCache(**kwargs)
    cache = ReplayCache()
    for args in ((b"short", NOW + 1, NOW, b""), (tag(1), "soon", NOW, b""), (tag(1), NOW + 1, NOW, bytes(65))):
        with pytest.raises(LocalProtocolError):
            cache.check_and_add(args[0], expiry=args[1], now=args[2], source=args[3])  # type: ignore[arg-type]
    assert len(cache) == 0


@settings(max_examples=50)
@given(st.lists(st.tuples(st.integers(0, 30), st.integers(1, 60), st.integers(0, 3)), max_size=200))
def test_model(ops: list[tuple[int, int, int]]) -> None:
    """Against a plain dict model: a tag is refused iff it was accepted and has not expired;
    the size never exceeds the bounds."""
    cache = ReplayCache(max_entries=8, max_per_source=4, max_horizon=50)
    model: dict[bytes, tuple[int, bytes]] = {}
    now = NOW
    for t, lifetime, src in ops:
        now += 1
        model = {k: v for k, v in model.items() if v[0] > now}
        key, source, expiry = tag(t), bytes([src]), now + lifetime
        try:
            cache.check_and_add(key, expiry=expiry, now=now, source=source)
        except ReplayedOnion:
            assert key in model
        except OnionExpiryOutOfRange:
            assert lifetime > 50 and key not in model
        except ReplayCacheFull:
            assert key not in model and (len(model) >= 8 or sum(v[1] == source for v in model.values()) >= 4)
        else:
            assert key not in model and lifetime <= 50
            model[key] = (expiry, source)
        assert len(cache) == len(model) <= 8
