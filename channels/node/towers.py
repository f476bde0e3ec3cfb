"""The node as a watchtower client (proto/07-watchtower.md): every channel's newest state
signed by both goes to every tower the operator added, so a cheater who registers an older
state while this node is offline is refuted anyway.

Durable without a queue of its own: the store keeps, per tower and channel, the version the
tower acknowledged with its signed receipt, and what is still to send is every channel whose
latest co-signed version is above it. A newer state supersedes the older ones, so a node that
pays a thousand times a second sends each tower only the newest state per channel when it
gets to it; a restart resumes from the stored acknowledgements. A tower that fails is retried
with backoff (``RETRY_FIRST`` doubling to ``RETRY_MAX`` seconds), never blocking the node.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import attrs
import trio

from .. import encoding
from ..core.channel import Channel, Phase
from ..errors import ChannelsError, ConfigError

if TYPE_CHECKING:
    from ..watchtower.appointment import Appointment
    from .node import Node

log = logging.getLogger("channels.node.towers")

RETRY_FIRST, RETRY_MAX = 1.0, 60.0  # seconds between attempts at a failing tower
CONNECT_TIMEOUT = 10.0
WATCHED = (Phase.OPEN, Phase.CLOSING, Phase.DISPUTED)  # channels a cheater could still register on


@attrs.define
class TowerState:
    """What the node knows of one tower while it runs (the acknowledgements are in the store)."""

    address: str
    status: str = "connecting"  # ok, connecting, unreachable, refused
    last_error: str = ""
    retry_in: float = 0.0
    wake: trio.Event = attrs.Factory(trio.Event)
    # Digest of the last acknowledged appointment of each channel that carried preimages: a
    # secret learned after its state was signed (a fulfillment the peer has not countersigned)
    # is sent again at the same version (proto/07-watchtower.md section 4). In memory: after a
    # restart such channels are resent once, which the tower answers with a receipt.
    sent: dict[bytes, bytes] = attrs.Factory(dict)


class TowerClients:
    """One sender task per configured tower; ``changed()`` after every committed step."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self.towers: dict[str, TowerState] = {}
        self._cancel: dict[str, trio.CancelScope] = {}

    def start(self, nursery: trio.Nursery) -> None:
        self._nursery = nursery
        for peer_id, address in self.node.store.towers().items():
            self._spawn(peer_id, address)

    def changed(self) -> None:
        for tower in self.towers.values():
            tower.wake.set()

    async def add(self, address: str) -> str:
        """Check the tower (reachable, same chain and adjudicator), then keep it."""
        from ..watchtower.client import open_tower_client  # libp2p: only where towers are used

        if "/p2p/" not in address:
            raise ConfigError(f"a tower's address must end in /p2p/PEER_ID (its tower.addr), got {address!r:.100}")
        async with open_tower_client(self.node.transport, address, timeout=CONNECT_TIMEOUT) as client:  # type: ignore[arg-type]
            info = await client.info()
            peer_id = client.peer_id
        if info.chain_id != self.node.chain_id or info.adjudicator != self.node.adjudicator:
            raise ConfigError(f"tower {peer_id} watches chain {info.chain_id}, not this node's {self.node.chain_id}")
        with self.node.store.transaction():
            self.node.store.add_tower(peer_id, address)
        if peer_id in self._cancel:
            self._cancel.pop(peer_id).cancel()
        self._spawn(peer_id, address)
        return peer_id

    def remove(self, peer_id: str) -> bool:
        with self.node.store.transaction():
            removed = self.node.store.remove_tower(peer_id)
        scope = self._cancel.pop(peer_id, None)
        if scope is not None:
            scope.cancel()
        self.towers.pop(peer_id, None)
        return removed

    def describe(self) -> list[dict[str, Any]]:
        out = []
        for peer_id, address in self.node.store.towers().items():
            state = self.towers.get(peer_id) or TowerState(address)
            acked = self.node.store.tower_acked(peer_id)
            pending = [ch for ch in self._watched() if self._due(ch, acked, state) is not None]
            out.append({"peer_id": peer_id, "address": address, "status": state.status,
                        "last_error": state.last_error or None,
                        "channels": {cid.hex(): v for cid, v in sorted(acked.items())},
                        "pending": len(pending)})
        return out

    # -- sending ---------------------------------------------------------------------------------

    def _spawn(self, peer_id: str, address: str) -> None:
        state = self.towers[peer_id] = TowerState(address)
        scope = trio.CancelScope()
        self._cancel[peer_id] = scope
        self._nursery.start_soon(self._run, peer_id, state, scope)

    def _watched(self) -> list[Channel]:
        return [ch for ch in self.node.engine.channels.values()
                if ch.phase in WATCHED and ch.latest.is_fully_signed]

    @staticmethod
    def _due(ch: Channel, acked: dict[bytes, int], state: TowerState) -> Appointment | None:
        """The appointment this tower still needs for ``ch``: a newer co-signed version, or
        the acknowledged one with preimages the tower has not acknowledged yet."""
        from ..watchtower.client import appointment_of

        version = acked.get(ch.channel_id, -1)
        if version > ch.version or (version == ch.version and not ch.preimages):
            return None
        appointment = appointment_of(ch)
        if version == ch.version and (not appointment.preimages
                                      or state.sent.get(ch.channel_id) == appointment.digest()):
            return None
        return appointment

    async def _run(self, peer_id: str, state: TowerState, scope: trio.CancelScope) -> None:
        from ..watchtower.client import open_tower_client
        from ..watchtower.errors import NonMonotonic, TowerUnavailable

        delay = RETRY_FIRST
        with scope:
            while True:
                try:
                    async with open_tower_client(self.node.transport, state.address,  # type: ignore[arg-type]
                                                 timeout=CONNECT_TIMEOUT) as client:
                        state.status, state.last_error, delay = "ok", "", RETRY_FIRST
                        # Read once per connection, then kept current here (this task is the
                        # only writer): no store read on every committed step.
                        acked = self.node.store.tower_acked(peer_id)
                        while True:
                            state.wake = trio.Event()
                            for ch in self._watched():
                                appointment = self._due(ch, acked, state)
                                if appointment is None:
                                    continue
                                try:
                                    receipt = await client.send(appointment)
                                except NonMonotonic:
                                    continue  # the peer gave it a newer one: it is covered
                                with self.node.store.transaction():
                                    self.node.store.set_tower_ack(peer_id, ch.channel_id, receipt.version,
                                                                  encoding.encode(receipt.to_fields()))
                                acked[ch.channel_id] = receipt.version
                                if appointment.preimages:
                                    state.sent[ch.channel_id] = appointment.digest()
                            await state.wake.wait()
                except ChannelsError as exc:
                    state.status = "unreachable" if isinstance(exc, TowerUnavailable) else "refused"
                    state.last_error = f"{type(exc).__name__}: {exc}"[:300]
                    log.info("tower %s: %s; retrying in %g s", peer_id, exc, delay)
                state.retry_in = delay
                await trio.sleep(delay)  # a full wait: new states must not turn retries into a busy loop
                delay = min(delay * 2, RETRY_MAX)
