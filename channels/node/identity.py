"""Binding a node's network identity (libp2p peer id) to its L1 account."""

from __future__ import annotations

import struct

from ..core.backend import StateScheme
from ..core.ids import Address
from ..crypto import sha256

INIT_DOMAIN = b"p2p-channels/init/v1"


def init_digest(peer_id: str, chain_id: int) -> bytes:
    return sha256(INIT_DOMAIN + struct.pack(">Q", chain_id) + peer_id.encode())


def verify_init(scheme: StateScheme, peer_id: str, chain_id: int, l1_address: bytes, signature: bytes) -> bool:
    """True when ``l1_address``'s key signed this peer id for this chain (checked by the
    backend's scheme: the key type is the L1's).

    Stops account impersonation: without it a peer could announce a victim's L1
    address, and we would open channels whose funds it cannot touch but we lock."""
    return scheme.verify_digest(Address(l1_address), init_digest(peer_id, chain_id), signature)
