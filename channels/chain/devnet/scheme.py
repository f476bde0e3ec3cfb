"""The devnet state scheme: Ed25519 over a fixed-layout, domain-separated digest.

Layout (all integers big-endian), hashed with SHA-256 to a 32-byte digest:

    "p2p-channels/devnet/state" | u16 protocol version | u64 chain id
    | u16 len | adjudicator | 32 channel id | u64 version | u8 is_final
    | u8 n_assets | per asset: u8 len | name | per participant AMOUNT balance
    | u16 n_locks | per lock: u8 len | asset | AMOUNT amount | 32 hashlock | u64 expiry | u8 payer | u8 payee
                            | u8 len | lock id
    | u32 len | app data

AMOUNT is a u64 in layout version 1 and a u256 in layout version 2. A state whose amounts
all fit 64 bits is laid out in version 1, any other in version 2: the version field makes
the two layouts disjoint, so no signature can be moved from one reading to the other, and
every state 0.1.0 could sign keeps its layout and its signatures. The lock id joined the
layout with update operations; a state without locks has the same layout as under 0.1.0.

Binding the chain id and adjudicator stops a signature being replayed on another
ledger; binding the channel id and version stops it being replayed in another
channel or as another version (replay and equivocation attacks).
"""

from __future__ import annotations

import hashlib
import struct

import attrs

from ...core.ids import MAX_U64, Address, ChannelId
from ...core.state import ChannelParams, State
from ...crypto import SigningKey, verify
from ..base import Signer

PROTOCOL_VERSION = 1  # the layout of every state whose amounts fit 64 bits
WIDE_VERSION = 2  # the layout with 256-bit amounts
STATE_DOMAIN = b"p2p-channels/devnet/state"
# The devnet adjudicator's address: ``ChannelParams.adjudicator`` of every devnet channel.
# One adjudicator per chain, so a fixed name suffices; the chain id is bound separately.
ADJUDICATOR = hashlib.sha256(b"p2p-channels/devnet/adjudicator/v1").digest()


def _wide(state: State) -> bool:
    alloc = state.allocation
    return any(b > MAX_U64 for row in alloc.balances for b in row) or any(lk.amount > MAX_U64 for lk in alloc.locks)


def state_layout(params: ChannelParams, state: State) -> bytes:
    alloc = state.allocation
    wide = _wide(state)

    def amount(n: int) -> bytes:
        return n.to_bytes(32, "big") if wide else struct.pack(">Q", n)

    version = WIDE_VERSION if wide else PROTOCOL_VERSION
    out = [STATE_DOMAIN, struct.pack(">HQH", version, params.chain_id, len(params.adjudicator)),
           params.adjudicator, state.channel_id, struct.pack(">QB", state.version, int(state.is_final)),
           struct.pack(">B", len(alloc.assets))]
    for asset, row in zip(alloc.assets, alloc.balances, strict=True):
        name = asset.encode()
        out.append(struct.pack(">B", len(name)) + name + b"".join(amount(b) for b in row))
    out.append(struct.pack(">H", len(alloc.locks)))
    for lk in alloc.locks:
        name = lk.asset.encode()
        out.append(struct.pack(">B", len(name)) + name + amount(lk.amount) + lk.hashlock
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
        except (struct.error, ValueError, TypeError, UnicodeError, OverflowError):
            return False
        return verify(signer, digest, signature)
