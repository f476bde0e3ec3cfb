"""Inbound connection admission: how many connections we accept, from whom.

Pure bookkeeping (no I/O, no trio), so every rule is unit-testable; ``host.py``
applies it to the real listener. Three bounds, checked in this order:

* ``max_inbound_total`` and ``max_inbound_per_ip`` when the TCP connection is
  accepted, *before* the Noise handshake (the expensive part: a key exchange
  and a signature check per connection);
* ``max_inbound_per_peer`` right after the handshake, once the peer id is known.

A slot is held from accept until that connection closes (by us, by the peer,
or by its process dying), and only that long.
"""

from __future__ import annotations

import ipaddress

import attrs

from ..errors import ConfigError, LocalProtocolError
from .errors import InboundLimitReached

__all__ = ["ConnectionLimits", "InboundSlot", "InboundSlots", "ip_bucket"]

# IPv6 addresses are grouped by their /64: one subscriber (or one cloud VM) is
# routinely given a whole /64, so counting single IPv6 addresses would let one
# attacker present 2**64 "different" sources and walk around the per-IP bound.
IPV6_BUCKET_PREFIX = 64


def _positive(instance: object, attribute: attrs.Attribute[int], value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{attribute.name} must be a positive integer, got {value!r}")


@attrs.frozen(kw_only=True)
class ConnectionLimits:
    """Bounds on live inbound connections (outbound dials are ours and not counted).

    Defaults, and why:

    * ``max_inbound_total = 256``: py-libp2p's swarm refuses any connection past
      300 in total (inbound + outbound), so 256 inbound leaves room for our own
      dials (channel peers, the devnet) even when every inbound slot is taken.
    * ``max_inbound_per_ip = 32``: one machine or NAT gets at most 1/8 of the
      table, so filling it takes at least 8 distinct addresses (IPv6: /64s).
      32 is far above what honest use from one host needs (a few nodes and CLI
      calls on one box), including tests on loopback.
    * ``max_inbound_per_peer = 4``: an honest peer holds one connection, two
      after a simultaneous dial, one more while a restart's old connection is
      still being torn down. Peer ids are free to mint, so this is not a Sybil
      bound (``per_ip`` is); it stops one identity's reconnect loop from
      crowding out everyone else behind the same address.
    """

    max_inbound_total: int = attrs.field(default=256, validator=_positive)
    max_inbound_per_ip: int = attrs.field(default=32, validator=_positive)
    max_inbound_per_peer: int = attrs.field(default=4, validator=_positive)

    def __attrs_post_init__(self) -> None:
        if self.max_inbound_per_ip > self.max_inbound_total:
            raise ConfigError("max_inbound_per_ip cannot exceed max_inbound_total")
        if self.max_inbound_per_peer > self.max_inbound_total:
            raise ConfigError("max_inbound_per_peer cannot exceed max_inbound_total")


def ip_bucket(host: str) -> str:
    """The per-IP accounting key: the IPv4 address, or the IPv6 /64 it lies in."""
    try:
        ip = ipaddress.ip_address(host.split("%", 1)[0])  # drop an IPv6 zone id
    except ValueError:
        return host  # not an IP (a transport we do not expect): its own bucket
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            # ::ffff:a.b.c.d is the same IPv4 host; counting it apart would
            # double that host's allowance on dual-stack listeners.
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network(f"{ip}/{IPV6_BUCKET_PREFIX}", strict=False))
    return str(ip)


@attrs.define(eq=False)
class InboundSlot:
    """One admitted inbound connection; release it exactly once via ``InboundSlots.release``."""

    bucket: str
    peer: str | None = None
    released: bool = False


class InboundSlots:
    """Live inbound connections by IP bucket and by peer, against ``ConnectionLimits``.

    Counts only ever move through ``acquire`` / ``bind_peer`` / ``release``, and
    ``release`` is idempotent, so a connection can never free a slot twice (which
    would let counts go negative and the bounds drift open).
    """

    def __init__(self, limits: ConnectionLimits | None = None) -> None:
        self.limits = limits if limits is not None else ConnectionLimits()
        self._live = 0
        self._by_bucket: dict[str, int] = {}
        self._by_peer: dict[str, int] = {}
        self._accepted = 0
        self._refused = {"total": 0, "per_ip": 0, "per_peer": 0}

    def acquire(self, remote_ip: str) -> InboundSlot:
        """Admit a freshly accepted connection from ``remote_ip``, or raise ``InboundLimitReached``."""
        limits = self.limits
        bucket = ip_bucket(remote_ip)
        # Slot exhaustion / descriptor exhaustion: a flood of connections from
        # many sources cannot hold more than max_inbound_total sockets (and
        # pending handshakes) at once.
        if self._live >= limits.max_inbound_total:
            self._refused["total"] += 1
            raise InboundLimitReached("total", f"inbound connection limit ({limits.max_inbound_total}) reached")
        # One source monopolising the table: a single machine (or IPv6 /64)
        # cannot take more than its share, so it cannot lock honest peers out.
        if self._by_bucket.get(bucket, 0) >= limits.max_inbound_per_ip:
            self._refused["per_ip"] += 1
            raise InboundLimitReached("per_ip", f"{bucket} already has {limits.max_inbound_per_ip} inbound connections")
        self._live += 1
        self._by_bucket[bucket] = self._by_bucket.get(bucket, 0) + 1
        self._accepted += 1
        return InboundSlot(bucket)

    def bind_peer(self, slot: InboundSlot, peer_id: str) -> None:
        """Record the authenticated peer of ``slot``, or raise ``InboundLimitReached``.

        On refusal the slot stays held (its socket is still open); the caller
        closes the connection, then releases the slot.
        """
        if slot.released or slot.peer is not None:
            raise LocalProtocolError("bind_peer needs a live slot that has no peer yet")
        # One identity hogging connections (a reconnect loop, or many parallel
        # dials under one key): it keeps max_inbound_per_peer, no more.
        if self._by_peer.get(peer_id, 0) >= self.limits.max_inbound_per_peer:
            self._refused["per_peer"] += 1
            raise InboundLimitReached(
                "per_peer", f"peer {peer_id} already has {self.limits.max_inbound_per_peer} inbound connections"
            )
        slot.peer = peer_id
        self._by_peer[peer_id] = self._by_peer.get(peer_id, 0) + 1

    def release(self, slot: InboundSlot) -> None:
        """Free ``slot`` (its connection has closed); a second call does nothing."""
        if slot.released:
            return
        slot.released = True
        self._live -= 1
        _decrement(self._by_bucket, slot.bucket)
        if slot.peer is not None:
            _decrement(self._by_peer, slot.peer)

    @property
    def live(self) -> int:
        """Inbound connections currently holding a slot (handshaking or open)."""
        return self._live

    def count_ip(self, remote_ip: str) -> int:
        """Live inbound connections from ``remote_ip``'s bucket."""
        return self._by_bucket.get(ip_bucket(remote_ip), 0)

    def count_peer(self, peer_id: str) -> int:
        """Live inbound connections authenticated as ``peer_id``."""
        return self._by_peer.get(peer_id, 0)

    def snapshot(self) -> dict[str, int]:
        """Live counts, lifetime totals and the configured bounds, for metrics and ``getinfo``."""
        return {
            "inbound": self._live,
            "inbound_ips": len(self._by_bucket),
            "inbound_peers": len(self._by_peer),
            "inbound_accepted_total": self._accepted,
            "inbound_refused_total": self._refused["total"],
            "inbound_refused_per_ip": self._refused["per_ip"],
            "inbound_refused_per_peer": self._refused["per_peer"],
            "max_inbound_total": self.limits.max_inbound_total,
            "max_inbound_per_ip": self.limits.max_inbound_per_ip,
            "max_inbound_per_peer": self.limits.max_inbound_per_peer,
        }


def _decrement(counts: dict[str, int], key: str) -> None:
    left = counts.get(key, 0) - 1
    if left > 0:
        counts[key] = left
    else:
        counts.pop(key, None)  # no zero (or negative) entries: the dicts stay bounded by live slots
