"""Onion routes for multi-hop payments (proto/04-onion.md): pure, no I/O, no clock.

``packet`` builds and peels fixed-size packets, ``payloads`` encodes each hop's instructions,
``failures`` carries errors back so only the sender can read them, ``replay`` refuses a packet
seen twice. X25519, ChaCha20 and HMAC-SHA256 only (``keys``).
"""

from __future__ import annotations

from .errors import (
    BadOnion,
    BadOnionKey,
    BadOnionMac,
    FailureDecodeError,
    MalformedFailure,
    OnionExpiryOutOfRange,
    OnionSizeError,
    PayloadDecodeError,
    ReplayCacheFull,
    ReplayedOnion,
    RouteTooLong,
    UnknownOnionVersion,
    UnreadableFailure,
)
from .failures import (
    FAILURE_PACKET_LEN,
    DecodedFailure,
    Failure,
    bad_onion_failure,
    create_failure,
    decode_failure,
    wrap_failure,
)
from .keys import onion_public_from_ed25519, onion_secret_from_ed25519_seed, public_key, random_session_key
from .packet import (
    MAX_HOPS,
    PACKET_LEN,
    ROUTING_INFO_LEN,
    BuiltOnion,
    Hop,
    PeeledPacket,
    build_onion,
    build_packet,
    peel_packet,
    route_fits,
)
from .payloads import FinalPayload, ForwardPayload, HopPayload, decode_payload
from .replay import ReplayCache

__all__ = [
    "FAILURE_PACKET_LEN", "MAX_HOPS", "PACKET_LEN", "ROUTING_INFO_LEN",
    "BadOnion", "BadOnionKey", "BadOnionMac", "BuiltOnion", "DecodedFailure", "Failure", "FailureDecodeError",
    "FinalPayload", "ForwardPayload", "Hop", "HopPayload", "MalformedFailure", "OnionExpiryOutOfRange",
    "OnionSizeError", "PayloadDecodeError", "PeeledPacket", "ReplayCache", "ReplayCacheFull", "ReplayedOnion",
    "RouteTooLong", "UnknownOnionVersion", "UnreadableFailure",
    "bad_onion_failure", "build_onion", "build_packet", "create_failure", "decode_failure", "decode_payload",
    "onion_public_from_ed25519", "onion_secret_from_ed25519_seed", "peel_packet", "public_key",
    "random_session_key", "route_fits", "wrap_failure",
]
