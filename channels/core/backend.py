"""What the core needs from an L1 backend, declared where the core can import it.

Each backend owns its state encoding and signature scheme (go-perun's backend
interfaces): the devnet signs fixed-layout bytes with Ed25519, an EVM backend would
sign keccak of the ABI encoding with secp256k1. The core only sees these protocols;
``channels.chain.base`` adds the async ``Ledger`` and the ``Backend`` bundle.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from .ids import Address, ChannelId
from .state import ChannelParams, State


@runtime_checkable
class StateScheme(Protocol):
    """How one backend identifies channels and signs states. Pure functions only."""

    def channel_id(self, params: ChannelParams) -> ChannelId: ...

    def state_digest(self, params: ChannelParams, state: State) -> bytes:
        """The bytes a participant signs; binds domain, protocol version, chain id,
        adjudicator, channel id and version so a signature is valid in one place only."""
        ...

    def sign(self, key: "Signer", params: ChannelParams, state: State) -> bytes: ...

    def verify(self, params: ChannelParams, state: State, signer: Address, signature: bytes) -> bool: ...

    def verify_digest(self, signer: Address, digest: bytes, signature: bytes) -> bool:
        """Whether ``signer``'s key signed ``digest`` (the node's identity binding uses it)."""
        ...


class Signer(Protocol):
    """A private key that can sign digests; ``address`` is its L1 account."""

    @property
    def address(self) -> Address: ...

    def sign_digest(self, digest: bytes) -> bytes: ...
