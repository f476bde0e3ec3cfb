"""Public helpers for testing code built on channels.

* ``CorePair`` (``corepair``): two pure cores relayed by hand, no I/O at all.
* ``HostilePeer`` (``hostile``): a scriptable peer on a real libp2p host that speaks
  the channel protocol honestly or not, to attack real nodes over loopback.

``hostile`` imports libp2p, so it is loaded only when one of its names is used:
``from channels.testing import CorePair`` stays cheap.
"""

from __future__ import annotations

from typing import Any

from .corepair import CorePair, RecordingScheme, Side, receive_input

_HOSTILE = {"Declined", "HostilePeer", "HostileStream", "NoMessage", "Policy", "Received", "open_hostile_peer",
            "open_hostile_peers", "reject_updates"}

__all__ = ["CorePair", "RecordingScheme", "Side", "receive_input", *sorted(_HOSTILE)]


def __getattr__(name: str) -> Any:
    if name in _HOSTILE:
        from . import hostile

        return getattr(hostile, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
