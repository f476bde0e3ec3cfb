"""Typed errors of the gossip layer (ARCHITECTURE section 9)."""

from __future__ import annotations

from ..errors import ChannelsError, DecodeError, LocalProtocolError, RemoteProtocolError


class GossipError(ChannelsError):
    """Root of the gossip layer's own errors."""


class GossipDecodeError(DecodeError, GossipError):
    """Bytes from a peer are not one valid gossip message (proto/08-gossip.md section 2)."""


class GossipRateLimited(LocalProtocolError, GossipError):
    """Our own channel update came faster than the network's rate limit allows: retry later."""


class AnnouncementRefused(RemoteProtocolError, GossipError):
    """The channel peer would not co-sign the announcement (or its signatures do not verify)."""


class GraphStoreError(GossipError):
    """The graph file is not usable (another schema, or corrupt): delete it, the graph is re-synced."""
