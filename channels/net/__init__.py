"""Networking over py-libp2p: the only package in the project that imports libp2p.

``host`` wraps a libp2p host (Noise + yamux over TCP) with typed errors,
``stream`` is one cancel-safe framed stream, ``frames`` is the length-prefixed
framing, ``rpc`` is request/response and server push over one long-lived stream.
(``memory`` is an in-process stand-in with the same shape, for tests.)
"""

from __future__ import annotations

from .errors import (
    InboundLimitReached,
    InvalidAddress,
    MessageTooLarge,
    NetError,
    PeerUnreachable,
    ProtocolNotSupported,
    RpcClosed,
    RpcError,
    RpcRemoteError,
    RpcTimeout,
    StreamClosed,
    StreamReset,
    TruncatedFrame,
)
from .host import Host, Stream, open_host
from .limits import ConnectionLimits, InboundSlots

__all__ = [
    "ConnectionLimits",
    "Host",
    "InboundLimitReached",
    "InboundSlots",
    "InvalidAddress",
    "MessageTooLarge",
    "NetError",
    "PeerUnreachable",
    "ProtocolNotSupported",
    "RpcClosed",
    "RpcError",
    "RpcRemoteError",
    "RpcTimeout",
    "Stream",
    "StreamClosed",
    "StreamReset",
    "TruncatedFrame",
    "open_host",
]
