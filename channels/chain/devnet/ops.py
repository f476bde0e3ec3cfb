"""The ``Ledger`` operations as typed transactions, shared by the in-process and remote devnet.

Each method builds one operation and hands it to ``_submit``, which signs it with the
caller's key (nonce and chain id bound) and applies it, locally or through the daemon.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs

from ...chain.base import Backend, ChainEvent, Signer
from ...core.ids import NATIVE, Address, AssetId, ChannelId
from ...core.state import ChannelParams, SignedState, State
from . import tx as t


@attrs.frozen(kw_only=True)
class Status:
    """The head of the chain (``channels devnet status``).

    ``block_time`` is the interval, in seconds, at which the ledger mines blocks (block
    times themselves are whole seconds). A challenge window of ``d`` seconds spans about
    ``d / block_time`` blocks. ``None`` only from a daemon too old to report it.
    ``genesis`` is the ledger's genesis id (proto/03-ledger.md section 1); ``None`` likewise."""

    height: int
    time: int
    chain_id: int
    block_time: float | None = None
    genesis: bytes | None = None


class DevnetOps:
    """Adjudicator and token operations over an abstract ``_submit``."""

    async def _submit(self, key: Signer, op: t.Op) -> list[ChainEvent]:
        raise NotImplementedError

    async def status(self) -> Status:
        raise NotImplementedError

    async def backend(self, key_path: Path) -> Backend:
        """This ledger as a node's backend, signing with the key in ``key_path`` (created
        if missing): the devnet's Ed25519 scheme, chain id, genesis id and block time."""
        from ...keyfile import L1_ACCOUNT, load_or_create_key
        from .scheme import ADJUDICATOR, DevnetKey, DevnetScheme

        head = await self.status()
        key = load_or_create_key(key_path, use=L1_ACCOUNT)
        return Backend(scheme=DevnetScheme(), signer=DevnetKey(key), ledger=self,  # type: ignore[arg-type]
                       chain_id=int(head.chain_id), adjudicator=bytes(getattr(self, "adjudicator", ADJUDICATOR)),
                       address_length=32, signature_length=64,
                       block_time=float(head.block_time) if head.block_time else 1.0, genesis=head.genesis)

    async def deposit(self, key: Signer, channel_id: ChannelId, asset: AssetId, amount: int) -> None:
        await self._submit(key, t.Deposit(channel_id=channel_id, asset=asset, amount=amount))

    async def conclude(self, key: Signer, params: ChannelParams, signed: SignedState) -> None:
        await self._submit(key, t.Conclude(params=params, signed=signed))

    async def register(self, key: Signer, params: ChannelParams, signed: SignedState) -> None:
        await self._submit(key, t.Register(params=params, signed=signed))

    async def refute(self, key: Signer, params: ChannelParams, signed: SignedState) -> None:
        await self._submit(key, t.Refute(params=params, signed=signed))

    async def progress(self, key: Signer, params: ChannelParams, signed_prev: SignedState,
                       next_state: State, mover: int, signature: bytes) -> None:
        await self._submit(key, t.Progress(params=params, signed_prev=signed_prev, next_state=next_state,
                                           mover=mover, signature=signature))

    async def checkpoint(self, key: Signer, params: ChannelParams, signed: SignedState) -> None:
        await self._submit(key, t.Checkpoint(params=params, signed=signed))

    async def withdraw(self, key: Signer, params: ChannelParams) -> None:
        await self._submit(key, t.Withdraw(params=params))

    async def register_secret(self, key: Signer, preimage: bytes) -> None:
        await self._submit(key, t.RegisterSecret(preimage=preimage))

    async def transfer(self, key: Signer, to: Address, amount: int, asset: AssetId = NATIVE) -> None:
        await self._submit(key, t.Transfer(to=to, asset=asset, amount=amount))

    async def create_token(self, key: Signer, asset: AssetId | str) -> None:
        """Create a custom token; ``key`` becomes its issuer (the only one who may mint it)."""
        await self._submit(key, t.CreateToken(asset=AssetId(asset)))

    async def mint(self, key: Signer, to: Address, amount: int, asset: AssetId | str) -> None:
        await self._submit(key, t.Mint(to=to, asset=AssetId(asset), amount=amount))

    async def send(self, key: Signer, op: Any) -> list[ChainEvent]:
        """Submit any operation; returns the events it caused."""
        return await self._submit(key, op)
