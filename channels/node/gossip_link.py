"""The node's part in gossip (proto/08-gossip.md): what it announces and when.

A node on libp2p runs a ``GossipService``. When one of its channels opens, the side that
proposed it asks the peer to co-sign the channel's announcement and publishes it; each side
then publishes its own direction's terms (``set-fees`` publishes new ones). A channel that
settles on the L1 leaves the graph. The payer's routes read the gossiped graph.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import trio

from ..core.channel import Channel, Phase
from ..core.ids import ChannelId
from ..errors import ChannelsError
from ..forwarding import FeePolicy

if TYPE_CHECKING:
    from ..gossip.service import GossipService
    from .node import Node

log = logging.getLogger("channels.node.gossip")

ANNOUNCE_WAIT = 30.0  # seconds the non-proposing side waits for the announcement before its update


class NodeGossip:
    """Glue between a node and its gossip service (``node.gossip``; None on other transports)."""

    def __init__(self, node: Node, service: GossipService) -> None:
        self.node = node
        self.service = service
        self._busy: set[ChannelId] = set()
        self._known: dict[ChannelId, Phase] = {}

    @classmethod
    async def start(cls, node: Node, nursery: trio.Nursery, host: Any) -> NodeGossip:
        from ..gossip.graph_store import GraphStore
        from ..gossip.service import GossipService, ledger_escrow_check
        from ..gossip.validate import GossipConfig, GossipState

        state = GossipState(GossipConfig(chain_id=node.chain_id, adjudicator=bytes(node.adjudicator)),
                            node.backend.scheme, ledger_escrow_check(node.ledger),
                            GraphStore(node.config.data_dir / "graph.sqlite"))
        gossip = cls(node, None)  # type: ignore[arg-type]
        service = GossipService(host, state, node_key=node.identity, l1_signer=node.l1_key,
                                has_channel=gossip.has_channel)
        gossip.service = service
        await nursery.start(service.run)
        node.payments.graph_source = service.graph
        node.on_commit.append(gossip.changed)
        gossip.changed(list(node.engine.channels))  # announce what opened while we were away
        return gossip

    def has_channel(self, peer_id: str, channel_id: bytes, asset: str, capacity: int) -> bool:
        """Co-sign only an announcement of a channel we really have open with that peer, for at
        most what it holds (a peer must not advertise our channel as bigger than it is)."""
        cid = ChannelId(channel_id)
        ch = self.node.engine.channels.get(cid)
        if ch is None or self.node.engine.peer_of.get(cid) != peer_id or ch.phase is not Phase.OPEN:
            return False
        return asset in ch.allocation.assets and capacity <= _capacity(ch, asset)

    def changed(self, channel_ids: list[ChannelId]) -> None:
        for cid in channel_ids:
            ch = self.node.engine.channels.get(cid)
            if ch is None or self._known.get(cid) is ch.phase:
                continue
            self._known[cid] = ch.phase
            if ch.phase is Phase.OPEN and cid not in self._busy and ch.params.app_id == "payment":
                self._busy.add(cid)
                self.node._nursery.start_soon(self._announce, cid)
            elif ch.phase is Phase.SETTLED:
                self.service.state.channel_closed(bytes(cid))

    async def _announce(self, cid: ChannelId) -> None:
        ch = self.node.engine.channels[cid]
        peer = self.node.engine.peer_of[cid]
        asset = str(ch.allocation.assets[0])
        try:
            if self.service.state.channel(bytes(cid)) is None:
                if ch.me == 0:  # the proposer asks for the co-signature
                    await self.service.announce_channel(peer, ch.params, asset, _capacity(ch, asset))
                else:
                    with trio.move_on_after(ANNOUNCE_WAIT):
                        await self.service.wait_until(lambda: self.service.state.channel(bytes(cid)) is not None)
            if self.service.state.channel(bytes(cid)) is not None:
                await self.publish_policy(cid, self.node.payments.hops.policy(bytes(cid)))
        except ChannelsError as exc:
            log.warning("channel %s not announced: %s", cid.hex()[:12], exc)
        finally:
            self._busy.discard(cid)

    async def publish_policy(self, cid: ChannelId, policy: FeePolicy) -> None:
        """Publish our direction's terms (after ``set-fees``, and once a channel is announced)."""
        ch = self.node.engine.channels.get(cid)
        if ch is None or self.service.state.channel(bytes(cid)) is None:
            return
        cap = _capacity(ch, str(ch.allocation.assets[0]))
        try:
            await self.service.update_channel(
                bytes(cid), base_fee=policy.base_fee, fee_ppm=policy.fee_ppm, expiry_delta=policy.expiry_delta,
                htlc_minimum=policy.htlc_minimum,
                htlc_maximum=min(cap, policy.htlc_maximum) if policy.htlc_maximum is not None else cap,
                enabled=policy.enabled)
        except ChannelsError as exc:
            log.warning("channel %s: terms not published: %s", cid.hex()[:12], exc)


def _capacity(ch: Channel, asset: str) -> int:
    a = [str(x) for x in ch.allocation.assets].index(asset)
    return sum(ch.allocation.balances[a]) + sum(lk.amount for lk in ch.allocation.locks if str(lk.asset) == asset)
