"""p2p-channels: a peer-to-peer state-channel network (payments, games, watchtowers)."""

__version__ = "0.1.0"
