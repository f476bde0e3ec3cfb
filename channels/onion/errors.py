"""Why an onion, a hop payload or a failure packet was refused: one class per rule of proto/04-onion.md.

Each error a hop can meet carries ``failure_code``, the code proto/04-onion.md section 6 tells it
to send back, so the forwarding layer maps refusals to failures without a table of its own.
"""

from __future__ import annotations

from ..errors import ChannelsError, DecodeError, LocalProtocolError, RemoteProtocolError

# Failure code flags and codes (proto/04-onion.md section 6.3). Defined here so that errors
# can name them without importing failures.py.
BADONION = 0x8000
PERM = 0x4000
NODE = 0x2000
UPDATE = 0x1000

INVALID_ONION_VERSION = BADONION | PERM | 4
INVALID_ONION_HMAC = BADONION | PERM | 5
INVALID_ONION_KEY = BADONION | PERM | 6
INVALID_ONION_SIZE = BADONION | PERM | 7
REPLAYED_ONION = BADONION | PERM | 32
TEMPORARY_NODE_FAILURE = NODE | 2
EXPIRY_TOO_SOON = UPDATE | 14
EXPIRY_TOO_FAR = 21
INVALID_ONION_PAYLOAD = PERM | 22


class RouteTooLong(LocalProtocolError):
    """The sender's route has too many hops or its payloads do not fit the fixed routing area."""


class BadOnion(DecodeError):
    """The packet cannot be peeled here; the hop reports it to its upstream peer unencrypted."""

    failure_code = INVALID_ONION_HMAC


class OnionSizeError(BadOnion):
    """The packet is not exactly the fixed packet size."""

    failure_code = INVALID_ONION_SIZE


class UnknownOnionVersion(BadOnion):
    """The version byte is not one this implementation processes."""

    failure_code = INVALID_ONION_VERSION


class BadOnionKey(BadOnion):
    """The ephemeral key is not a canonical X25519 public key, or gives a degenerate shared secret."""

    failure_code = INVALID_ONION_KEY


class BadOnionMac(BadOnion):
    """The packet's MAC does not verify: it was altered, or built for another key or payment."""

    failure_code = INVALID_ONION_HMAC


class PayloadDecodeError(DecodeError):
    """This hop's payload is malformed although the MAC verified: the sender built a bad onion."""

    failure_code = INVALID_ONION_PAYLOAD


class ReplayedOnion(RemoteProtocolError):
    """A packet with this shared secret was already accepted here and has not expired."""

    failure_code = REPLAYED_ONION


class OnionExpiryOutOfRange(RemoteProtocolError):
    """The payload's expiry has passed, or lies further ahead than this node keeps replay records."""

    def __init__(self, message: str, *, too_far: bool) -> None:
        super().__init__(message)
        self.failure_code = EXPIRY_TOO_FAR if too_far else EXPIRY_TOO_SOON


class ReplayCacheFull(ChannelsError):
    """The replay cache (or this source's share of it) is full of unexpired entries: refuse, never evict."""

    failure_code = TEMPORARY_NODE_FAILURE


class FailureDecodeError(DecodeError):
    """A returned failure packet is not the fixed size or not well formed."""


class UnreadableFailure(FailureDecodeError):
    """No hop's key authenticates the failure packet: some hop on the way back altered it."""


class MalformedFailure(FailureDecodeError):
    """The failure authenticates as coming from ``hop_index`` but its body is malformed."""

    def __init__(self, message: str, *, hop_index: int) -> None:
        super().__init__(message)
        self.hop_index = hop_index
