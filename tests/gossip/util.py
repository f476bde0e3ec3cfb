"""Fixed keys and signed gossip messages for the gossip tests (and the vector generator)."""

from __future__ import annotations

import hashlib

import attrs

from channels.chain.devnet.scheme import DevnetKey, DevnetScheme
from channels.core.ids import Address
from channels.core.state import ChannelParams
from channels.crypto import SigningKey
from channels.gossip.messages import ChannelAnnouncement, ChannelUpdate, NodeAnnouncement
from channels.gossip.validate import Escrow, GossipConfig, GossipState

CHAIN_ID = 1337
ADJUDICATOR = hashlib.sha256(b"p2p-channels/devnet/adjudicator/v1").digest()
SCHEME = DevnetScheme()
NOW = 1_700_000_000


def node_key(label: str) -> SigningKey:
    return SigningKey.from_label("gossip-node/" + label)


def l1_key(label: str) -> DevnetKey:
    return DevnetKey(SigningKey.from_label("gossip-l1/" + label))


def params(a: str, b: str, nonce: int = 0) -> ChannelParams:
    return ChannelParams(chain_id=CHAIN_ID, adjudicator=ADJUDICATOR,
                         participants=(Address(l1_key(a).address), Address(l1_key(b).address)),
                         challenge_duration=3600, nonce=nonce.to_bytes(32, "big"))


def channel(a: str, b: str, *, nonce: int = 0, asset: str = "native", capacity: int = 10_000,
            p: ChannelParams | None = None) -> ChannelAnnouncement:
    """The channel between ``a`` and ``b`` (``a`` is participant 0), signed by all four keys."""
    p = p or params(a, b, nonce)
    keys = sorted((node_key(a).public_key, node_key(b).public_key))
    ann = ChannelAnnouncement(channel_id=SCHEME.channel_id(p), params=p, asset=asset, capacity=capacity,
                              node_keys=(keys[0], keys[1]))
    digest = ann.digest()
    by_key = {node_key(x).public_key: node_key(x) for x in (a, b)}
    return attrs.evolve(ann, node_signatures=tuple(by_key[k].sign(digest) for k in keys),
                        l1_signatures=(l1_key(a).sign_digest(digest), l1_key(b).sign_digest(digest)))


def direction_of(ann: ChannelAnnouncement, label: str) -> int:
    return ann.node_keys.index(node_key(label).public_key)


def update(ann: ChannelAnnouncement, source: str, *, timestamp: int = NOW, base_fee: int = 1, fee_ppm: int = 100,
           expiry_delta: int = 40, htlc_minimum: int = 1, htlc_maximum: int = 5_000, enabled: bool = True,
           signer: str | None = None) -> ChannelUpdate:
    upd = ChannelUpdate(channel_id=ann.channel_id, direction=direction_of(ann, source), timestamp=timestamp,
                        base_fee=base_fee, fee_ppm=fee_ppm, expiry_delta=expiry_delta, htlc_minimum=htlc_minimum,
                        htlc_maximum=htlc_maximum, enabled=enabled)
    return attrs.evolve(upd, signature=node_key(signer or source).sign(upd.digest(CHAIN_ID)))


def node(label: str, *, timestamp: int = NOW, alias: str | None = None, l1: str | None = None,
         addresses: tuple[str, ...] = ("/ip4/127.0.0.1/tcp/9735",)) -> NodeAnnouncement:
    ann = NodeAnnouncement(node_key=node_key(label).public_key, l1_address=l1_key(l1 or label).address,
                           addresses=addresses, alias=label if alias is None else alias, timestamp=timestamp)
    digest = ann.digest(CHAIN_ID)
    return attrs.evolve(ann, node_signature=node_key(label).sign(digest),
                        l1_signature=l1_key(l1 or label).sign_digest(digest))


class FakeL1:
    """Escrows by channel id; ``fail`` makes the next checks raise (the L1 is unreachable)."""

    def __init__(self) -> None:
        self.escrows: dict[bytes, Escrow] = {}
        self.fail = False
        self.calls = 0

    def fund(self, ann: ChannelAnnouncement, amount: int | None = None) -> None:
        self.escrows[ann.channel_id] = Escrow(holdings={ann.asset: ann.capacity if amount is None else amount})

    async def __call__(self, channel_id: bytes) -> Escrow | None:
        self.calls += 1
        if self.fail:
            raise ConnectionError("the L1 is unreachable")
        return self.escrows.get(channel_id)


def config(**overrides: object) -> GossipConfig:
    return GossipConfig(chain_id=CHAIN_ID, adjudicator=ADJUDICATOR, **overrides)  # type: ignore[arg-type]


def state(l1: FakeL1, store: object = None, **overrides: object) -> GossipState:
    return GossipState(config(**overrides), SCHEME, l1, store)  # type: ignore[arg-type]
