"""``channels.net.limits``: the pure inbound admission bookkeeping (no network)."""

from __future__ import annotations

import pytest

from channels.errors import ConfigError, LocalProtocolError
from channels.net import ConnectionLimits, InboundLimitReached, InboundSlots
from channels.net.limits import ip_bucket


def test_defaults_and_validation() -> None:
    limits = ConnectionLimits()
    assert (limits.max_inbound_total, limits.max_inbound_per_ip, limits.max_inbound_per_peer) == (256, 32, 4)
    for bad in (0, -1, True, 1.5, "3"):
        with pytest.raises(ConfigError):
            ConnectionLimits(max_inbound_total=bad)  # type: ignore[arg-type]
        with pytest.raises(ConfigError):
            ConnectionLimits(max_inbound_per_ip=bad)  # type: ignore[arg-type]
        with pytest.raises(ConfigError):
            ConnectionLimits(max_inbound_per_peer=bad)  # type: ignore[arg-type]
    with pytest.raises(ConfigError):
        ConnectionLimits(max_inbound_total=4, max_inbound_per_ip=5, max_inbound_per_peer=1)
    with pytest.raises(ConfigError):
        ConnectionLimits(max_inbound_total=4, max_inbound_per_ip=4, max_inbound_per_peer=5)


def test_total_limit() -> None:
    slots = InboundSlots(ConnectionLimits(max_inbound_total=3, max_inbound_per_ip=3, max_inbound_per_peer=3))
    held = [slots.acquire(f"10.0.0.{i}") for i in range(3)]
    with pytest.raises(InboundLimitReached) as info:
        slots.acquire("10.0.0.99")
    assert info.value.bound == "total"
    slots.release(held[0])
    slots.acquire("10.0.0.99")  # the freed slot is usable again
    assert slots.live == 3
    assert slots.snapshot()["inbound_refused_total"] == 1


def test_per_ip_limit_counts_each_address_apart() -> None:
    slots = InboundSlots(ConnectionLimits(max_inbound_total=10, max_inbound_per_ip=2, max_inbound_per_peer=2))
    a1, _a2 = slots.acquire("192.0.2.1"), slots.acquire("192.0.2.1")
    with pytest.raises(InboundLimitReached) as info:
        slots.acquire("192.0.2.1")
    assert info.value.bound == "per_ip"
    slots.acquire("192.0.2.2")  # another address is not affected
    assert slots.count_ip("192.0.2.1") == 2 and slots.count_ip("192.0.2.2") == 1
    slots.release(a1)
    slots.acquire("192.0.2.1")
    assert slots.snapshot()["inbound_refused_per_ip"] == 1


def test_ipv6_is_bucketed_by_64_and_mapped_ipv4_is_ipv4() -> None:
    assert ip_bucket("2001:db8:1:2:aaaa::1") == ip_bucket("2001:db8:1:2:ffff::9") == "2001:db8:1:2::/64"
    assert ip_bucket("2001:db8:1:3::1") != ip_bucket("2001:db8:1:2::1")
    assert ip_bucket("::ffff:192.0.2.7") == ip_bucket("192.0.2.7") == "192.0.2.7"
    assert ip_bucket("fe80::1%eth0") == "fe80::/64"
    assert ip_bucket("unknown") == "unknown"
    slots = InboundSlots(ConnectionLimits(max_inbound_total=10, max_inbound_per_ip=2, max_inbound_per_peer=2))
    slots.acquire("2001:db8::1")
    slots.acquire("2001:db8::2")
    with pytest.raises(InboundLimitReached):
        slots.acquire("2001:db8::ffff")  # same /64: rotating addresses does not help


def test_per_peer_limit_after_the_handshake() -> None:
    slots = InboundSlots(ConnectionLimits(max_inbound_total=10, max_inbound_per_ip=10, max_inbound_per_peer=2))
    first, second, third = (slots.acquire(f"198.51.100.{i}") for i in range(3))
    slots.bind_peer(first, "peerA")
    slots.bind_peer(second, "peerA")
    with pytest.raises(InboundLimitReached) as info:
        slots.bind_peer(third, "peerA")
    assert info.value.bound == "per_peer"
    assert third.peer is None and slots.live == 3  # refused, but its socket still holds the slot
    slots.bind_peer(third, "peerB")
    assert slots.count_peer("peerA") == 2 and slots.count_peer("peerB") == 1
    slots.release(first)
    assert slots.count_peer("peerA") == 1
    with pytest.raises(LocalProtocolError):
        slots.bind_peer(second, "peerC")  # already bound
    with pytest.raises(LocalProtocolError):
        slots.bind_peer(first, "peerC")  # already released


def test_release_frees_everything_once_and_counts_never_go_negative() -> None:
    slots = InboundSlots(ConnectionLimits(max_inbound_total=2, max_inbound_per_ip=2, max_inbound_per_peer=1))
    for _ in range(1000):  # far past every bound: nothing leaks across cycles
        slot = slots.acquire("203.0.113.5")
        slots.bind_peer(slot, "peer")
        slots.release(slot)
        slots.release(slot)  # idempotent
    snap = slots.snapshot()
    assert snap["inbound"] == snap["inbound_ips"] == snap["inbound_peers"] == 0
    assert snap["inbound_accepted_total"] == 1000
    assert slots.count_ip("203.0.113.5") == 0 and slots.count_peer("peer") == 0
    # a double release did not buy extra capacity
    a, b = slots.acquire("203.0.113.5"), slots.acquire("203.0.113.6")
    with pytest.raises(InboundLimitReached):
        slots.acquire("203.0.113.7")
    slots.release(a)
    slots.release(a)
    slots.acquire("203.0.113.7")
    with pytest.raises(InboundLimitReached):
        slots.acquire("203.0.113.8")
    slots.release(b)
    assert slots.live == 1 and min(slots.snapshot().values()) >= 0


def test_snapshot_reports_bounds_and_live_counts() -> None:
    slots = InboundSlots()
    slot = slots.acquire("127.0.0.1")
    slots.bind_peer(slot, "p")
    assert slots.snapshot() == {
        "inbound": 1,
        "inbound_ips": 1,
        "inbound_peers": 1,
        "inbound_accepted_total": 1,
        "inbound_refused_total": 0,
        "inbound_refused_per_ip": 0,
        "inbound_refused_per_peer": 0,
        "max_inbound_total": 256,
        "max_inbound_per_ip": 32,
        "max_inbound_per_peer": 4,
    }
