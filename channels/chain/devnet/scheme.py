"""The devnet state scheme: Ed25519 over a fixed-layout, domain-separated digest.

Layout (all integers big-endian), hashed with SHA-256 to a 32-byte digest:

    "p2p-channels/devnet/state" | u16 protocol version | u64 chain id
    | u16 len | adjudicator | 32 channel id | u64 version | u8 is_final
    | u8 n_assets | per asset: u8 len | name | per participant u64 balance
    | u16 n_locks | per lock: u8 len | asset | u64 amount | 32 hashlock | u64 expiry | u8 payer | u8 payee
                            | u8 len | lock id
    | u32 len | app data

The lock id joined the layout with update operations; a state without locks (every state
0.1.0 could sign) has the same layout, so its signatures stay valid.

Binding the chain id and adjudicator stops a signature being replayed on another
ledger; binding the channel id and version stops it being replayed in another
channel or as another version (replay and equivocation attacks).
"""

from __future__ import annotations

import hashlib
import struct

import attrs

from ...core.ids import Address, ChannelId
from ...core.state import ChannelParams, State
from ...crypto import SigningKey, verify
from ..base import Signer

PROTOCOL_VERSION = 1
STATE_DOMAIN = b"p2p-channels/devnet/state"
# The devnet adjudicator's address: ``ChannelParams.adjudicator`` of every devnet channel.
# One adjudicator per chain, so a fixed name suffices; the chain id is bound separately.
ADJUDICATOR = hashlib.sha256(b"p2p-channels/devnet/adjudicator/v1").digest()


def state_layout(params: ChannelParams, state: State) -> bytes:
    alloc = state.allocation
    out = [STATE_DOMAIN, struct.pack(">HQH", PROTOCOL_VERSION, params.chain_id, len(params.adjudicator)),
           params.adjudicator, state.channel_id, struct.pack(">QB", state.version, int(state.is_final)),
           struct.pack(">B", len(alloc.assets))]
    for asset, row in zip(alloc.assets, alloc.balances, strict=True):
        name = asset.encode()
        out.append(struct.pack(">B", len(name)) + name + b"".join(struct.pack(">Q", b) for b in row))
    out.append(struct.pack(">H", len(alloc.locks)))
    for lk in alloc.locks:
        name = lk.asset.encode()
        out.append(struct.pack(">B", len(name)) + name + struct.pack(">Q", lk.amount) + lk.hashlock
                   + struct.pack(">QBB", lk.expiry, lk.payer, lk.payee) + struct.pack(">B", len(lk.lock_id))
                   + lk.lock_id)
    out.append(struct.pack(">I", len(state.app_data)) + state.app_data)
    return b"".join(out)


@attrs.frozen
class DevnetKey:
    """A ``Signer`` backed by an Ed25519 key; the address is the public key."""

    key: SigningKey

    @property
    def address(self) -> Address:
        return Address(self.key.public_key)

    def sign_digest(self, digest: bytes) -> bytes:
        return self.key.sign(digest)

    @classmethod
    def from_label(cls, label: str) -> "DevnetKey":
        return cls(SigningKey.from_label(label))

    @classmethod
    def generate(cls) -> "DevnetKey":
        return cls(SigningKey.generate())


class DevnetScheme:
    """``StateScheme`` of the devnet ledger."""

    def channel_id(self, params: ChannelParams) -> ChannelId:
        return params.channel_id

    def state_digest(self, params: ChannelParams, state: State) -> bytes:
        return hashlib.sha256(state_layout(params, state)).digest()

    def sign(self, key: Signer, params: ChannelParams, state: State) -> bytes:
        return key.sign_digest(self.state_digest(params, state))

    def verify_digest(self, signer: Address, digest: bytes, signature: bytes) -> bool:
        return verify(signer, digest, signature)

    def verify(self, params: ChannelParams, state: State, signer: Address, signature: bytes) -> bool:
        """Never raises: a state that cannot even be laid out (decoded from a hostile
        source with out-of-range fields) simply does not verify."""
        try:
            digest = self.state_digest(params, state)
        except (struct.error, ValueError, TypeError, UnicodeError):
            return False
        return verify(signer, digest, signature)
