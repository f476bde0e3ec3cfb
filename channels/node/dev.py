"""Developer mode (``channels node start --dev``): this node can play a cheater, to try a
watchtower or a peer's defences from the command line.

It keeps every co-signed state it sees in this run (in memory, at most ``MAX_KEPT`` per
channel) and, on ``dev register-stale``, registers an older one on the L1 and stops
defending that channel (its own refutes are dropped), as a real cheater would. Never run
it with funds that matter: a node in this mode does not protect the channels it cheats on.
"""

from __future__ import annotations

from collections import OrderedDict

from ..core.channel import Channel
from ..core.ids import ChannelId
from ..core.state import SignedState
from ..errors import LocalProtocolError

MAX_KEPT = 10_000  # co-signed states kept per channel; the oldest are forgotten first


class DevModeOff(LocalProtocolError):
    """A ``dev`` command on a node that was not started with ``--dev``."""


class DevTools:
    def __init__(self) -> None:
        self._history: dict[ChannelId, OrderedDict[int, SignedState]] = {}
        self._undefended: set[ChannelId] = set()

    def remember(self, ch: Channel) -> None:
        """Keep ``ch``'s latest state if both signed it."""
        signed = ch.latest
        if not signed.is_fully_signed:
            return
        kept = self._history.setdefault(ch.channel_id, OrderedDict())
        kept[signed.state.version] = signed
        while len(kept) > MAX_KEPT:
            kept.popitem(last=False)

    def stale_state(self, ch: Channel, version: int) -> SignedState:
        """The co-signed state of ``version``, older than the channel's latest."""
        if version >= ch.version:
            raise LocalProtocolError(f"version {version} is not older than the latest, {ch.version}")
        kept = self._history.get(ch.channel_id, OrderedDict())
        if version not in kept:
            known = ", ".join(str(v) for v in list(kept)[-10:]) or "none"
            raise LocalProtocolError(f"no co-signed state of version {version} seen since this node started "
                                     f"(latest known: {known})")
        return kept[version]

    def stop_defending(self, channel_id: ChannelId) -> None:
        self._undefended.add(channel_id)

    def defends(self, channel_id: ChannelId) -> bool:
        return channel_id not in self._undefended
