"""Typed network errors: the only exceptions ``channels.net`` lets escape.

py-libp2p raises a zoo of exception types (``SwarmException``, ``StreamEOF``,
``MuxedStreamError`` ...). Callers above this package must never need to import
libp2p to handle a failure, so every libp2p error is translated into one of
these, with a message that says what happened and what to do.
"""

from __future__ import annotations

from ..errors import ChannelsError, DecodeError, LocalProtocolError


class NetError(ChannelsError):
    """Root of every network failure (peer, connection or stream)."""


class InvalidAddress(LocalProtocolError):
    """A multiaddr string could not be parsed or lacks a required part."""


class PeerUnreachable(NetError):
    """No connection to the peer could be established (dial failed or refused)."""


class InboundLimitReached(NetError):
    """We refused an inbound connection: one of our ``ConnectionLimits`` is full.

    Raised inside ``InboundSlots`` and handled by the host (the connection is
    closed and counted); it never reaches callers of ``Host``. ``bound`` names
    the limit: ``"total"``, ``"per_ip"`` or ``"per_peer"``.
    """

    def __init__(self, bound: str, message: str) -> None:
        super().__init__(message)
        self.bound = bound


class ProtocolNotSupported(NetError):
    """The peer does not serve the requested protocol id."""


class StreamClosed(NetError):
    """The stream ended: the remote closed it, the connection dropped, or we closed it."""


class StreamReset(StreamClosed):
    """The stream was aborted (reset) rather than closed cleanly."""


class TruncatedFrame(DecodeError):
    """The stream ended in the middle of a frame; the peer crashed or misbehaved."""


class MessageTooLarge(LocalProtocolError):
    """We were asked to send a frame above the frame cap; nothing was sent."""


class RpcError(NetError):
    """An RPC call did not produce a response."""


class RpcTimeout(RpcError, TimeoutError):
    """No response arrived within the call's timeout; the call was abandoned."""


class RpcClosed(RpcError):
    """The RPC stream closed before the response arrived; open a new client."""


class RpcRemoteError(RpcError):
    """The server's handler failed; the message is the server's description."""
