"""Backend interfaces, after go-perun: how states are signed, and what the L1 does.

The core never knows which backend it runs on: it is handed a ``StateScheme``
(pure: ids, digests, signatures) and the shell is handed a ``Ledger`` (async,
the adjudicator operations of ARCHITECTURE section 4 plus an event stream).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Protocol

import attrs

from ..core.backend import Signer as Signer  # re-exported: backends implement them here
from ..core.backend import StateScheme as StateScheme
from ..core.ids import Address, AssetId, ChannelId
from ..core.state import ChannelParams, SignedState, State
from ..errors import (
    DecodeError,
    FrameTooLarge,
    InsufficientFunds,
    InvalidSignature,
    InvalidTransition,
    LedgerError,
    UnknownChannel,
)


@attrs.frozen(kw_only=True)
class ChainEvent:
    """One entry of the ledger's event log; ``cursor`` orders events totally."""

    cursor: int
    # Deposited, Registered, Refuted, Progressed, Checkpointed, Concluded, Withdrawn, SecretRegistered,
    # Transfer, Minted, TokenCreated (the devnet's fields per kind: channels.chain.devnet.events.SCHEMAS)
    kind: str
    channel_id: ChannelId | None
    data: Mapping[str, object]
    height: int
    time: int


@attrs.frozen(kw_only=True)
class ChannelOnChain:
    """The adjudicator's view of one channel."""

    holdings: Mapping[AssetId, int]  # what the escrow holds now ({} once withdrawn)
    registered: SignedState | None  # the state it would pay out: registered/refuted/progressed, or concluded
    deadline: int | None  # L1 time at which the challenge window ends
    concluded: bool
    withdrawn: bool
    checkpoint: SignedState | None = None  # the newest checkpointed state, if any (a floor for register)


class Ledger(Protocol):
    """The adjudicator operations every L1 backend offers (ARCHITECTURE section 4)."""

    async def deposit(self, key: Signer, channel_id: ChannelId, asset: AssetId, amount: int) -> None: ...

    async def conclude(self, key: Signer, params: ChannelParams, signed: SignedState) -> None: ...

    async def register(self, key: Signer, params: ChannelParams, signed: SignedState) -> None: ...

    async def refute(self, key: Signer, params: ChannelParams, signed: SignedState) -> None: ...

    async def progress(self, key: Signer, params: ChannelParams, signed_prev: SignedState,
                       next_state: State, mover: int, signature: bytes) -> None: ...

    async def checkpoint(self, key: Signer, params: ChannelParams, signed: SignedState) -> None: ...

    async def withdraw(self, key: Signer, params: ChannelParams) -> None: ...

    async def register_secret(self, key: Signer, preimage: bytes) -> None: ...

    async def secret_time(self, hashlock: bytes) -> int | None: ...

    async def channel(self, channel_id: ChannelId) -> ChannelOnChain: ...

    async def balance(self, account: Address, asset: AssetId) -> int: ...

    async def now(self) -> int:
        """Current L1 time (the timestamp of the latest block)."""
        ...

    def events(self, *, after: int = 0) -> AsyncIterator[ChainEvent]:
        """Every event with cursor > ``after``, then new ones as they happen."""
        ...


# --- Typed ledger errors -------------------------------------------------------------------------
# Every backend raises these, so the node can react to a refusal without knowing the backend
# (a ``StaleVersion`` on refute means someone else already refuted with something newer). Each
# class has a stable ``code``: the devnet daemon sends (code, message) over its RPC and the client
# re-raises the same class with ``ledger_error_from_code``.


class BadSignature(LedgerError, InvalidSignature):
    """A transaction or state signature does not verify (or one is missing)."""

    code = "bad_signature"


class WrongChain(LedgerError):
    """The transaction or channel is bound to another chain id (cross-chain replay)."""

    code = "wrong_chain"


class BadNonce(LedgerError):
    """The transaction's nonce is not the account's next nonce (replay, or a race: resubmit)."""

    code = "bad_nonce"


class InsufficientBalance(LedgerError, InsufficientFunds):
    """The account does not hold enough of the asset for this transaction."""

    code = "insufficient_funds"


class StaleVersion(LedgerError):
    """The state's version is not above (or at least) the one the adjudicator already holds."""

    code = "stale_version"


class InvalidMove(LedgerError, InvalidTransition):
    """A forced ``progress`` move breaks the app's rules (or the channel has no app)."""

    code = "invalid_move"


class WindowOpen(LedgerError):
    """The challenge window has not ended yet: wait for the deadline before withdrawing."""

    code = "window_open"


class WindowClosed(LedgerError):
    """The challenge window has ended: the registered state is final, withdraw it."""

    code = "window_closed"


class AlreadyWithdrawn(LedgerError):
    """The channel's funds were already paid out; nothing is paid twice."""

    code = "already_withdrawn"


class AlreadyConcluded(LedgerError):
    """The channel was already concluded; only withdraw is possible now."""

    code = "already_concluded"


class AlreadyRegistered(LedgerError):
    """A dispute is already open: submit a newer state with refute instead."""

    code = "already_registered"


class NotRegistered(LedgerError):
    """No dispute is registered (and the channel is not concluded) for this operation."""

    code = "not_registered"


class NotFinal(LedgerError):
    """Conclude needs a state marked final and signed by every participant."""

    code = "not_final"


class WrongChannel(LedgerError):
    """The parameters do not hash to the channel id, or the state belongs to another channel."""

    code = "wrong_channel"


class StateMismatch(LedgerError):
    """``progress`` must start from exactly the state the adjudicator holds."""

    code = "state_mismatch"


class UnknownChannelOnChain(LedgerError, UnknownChannel):
    """The adjudicator has never seen this channel (no deposit, no registration)."""

    code = "unknown_channel"


class UnknownAsset(LedgerError):
    """The asset is neither "native" nor a token created on this ledger."""

    code = "unknown_asset"


class AssetExists(LedgerError):
    """A token with this symbol already exists."""

    code = "asset_exists"


class Unauthorized(LedgerError):
    """The sender may not do this (e.g. mint a token it did not create)."""

    code = "unauthorized"


class Overflow(LedgerError):
    """An amount would exceed the 64-bit range the ledger keeps."""

    code = "overflow"


class Malformed(LedgerError, DecodeError):
    """The request or transaction is not well formed (bad encoding, shape or value)."""

    code = "malformed"


class TooLarge(LedgerError, FrameTooLarge):
    """The request is above the size cap; it was refused before being decoded."""

    code = "too_large"


class LedgerUnavailable(LedgerError):
    """The ledger could not be reached or did not answer; retry, nothing is known to be applied."""

    code = "unavailable"


LEDGER_ERRORS: dict[str, type[LedgerError]] = {
    cls.code: cls for cls in (
        BadSignature, WrongChain, BadNonce, InsufficientBalance, StaleVersion, InvalidMove, WindowOpen,
        WindowClosed, AlreadyWithdrawn, AlreadyConcluded, AlreadyRegistered, NotRegistered, NotFinal,
        WrongChannel, StateMismatch, UnknownChannelOnChain, UnknownAsset, AssetExists, Unauthorized,
        Overflow, Malformed, TooLarge, LedgerUnavailable)
}


def ledger_error_from_code(code: str, message: str) -> LedgerError:
    """Rebuild the typed error a remote ledger reported; unknown codes keep their code string."""
    cls = LEDGER_ERRORS.get(code)
    if cls is not None:
        return cls(message)
    err = LedgerError(message)
    err.code = code
    return err


@attrs.frozen(kw_only=True)
class Backend:
    """Everything a node needs from one L1, handed over as one object: nothing under
    ``channels.node`` knows which backend it runs on (a new backend is a new folder under
    ``channels/chain`` and nothing else)."""

    scheme: StateScheme
    signer: Signer
    ledger: "Ledger"
    chain_id: int
    adjudicator: bytes
    address_length: int  # bytes of an L1 address (32 on the devnet, 20 on an EVM chain)
    signature_length: int  # bytes of a state signature (64 for Ed25519, 65 for secp256k1)
    block_time: float  # seconds between blocks, for the shortest safe challenge window
    asset_ids: str = "a token symbol, or 'native'"  # how this ledger names assets, for messages
    # The ledger's identity beside ``chain_id``: bytes that differ between two ledgers with one
    # chain id (a reset devnet, another devnet), e.g. a genesis hash. A node records both with
    # its store and refuses to run against another ledger (its stored chain cursor and channels
    # belong to the first). None: this ledger cannot tell (the chain id alone is checked).
    genesis: bytes | None = None


class BackendFactory(Protocol):
    async def backend(self, key_path: Path) -> Backend:
        """This ledger with the account whose key is in ``key_path`` (created if missing)."""
        ...

