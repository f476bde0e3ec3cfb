"""What comes out of a transition, named by what the shell must do.

``Send`` a message to the peer, ``Submit*`` a transaction to the L1, ``Notify*``
the application, ``Reject`` a peer's misbehaviour with the action to take.
"""

from __future__ import annotations

import enum

import attrs

from .ids import AssetId, ChannelId, PaymentId, Version
from .messages import ChannelMessage
from .ops import AddLock, AppMove, FailLock, FulfillLock, Operation
from .state import Lock, SignedState, State


@attrs.frozen(kw_only=True)
class Send:
    message: ChannelMessage
    # The participant index to send to; None: every other participant (in a two-party
    # channel, the peer). n-party channels address one peer when answering it alone.
    to: int | None = None


@attrs.frozen(kw_only=True)
class SubmitDeposit:
    channel_id: ChannelId
    asset: AssetId
    amount: int


@attrs.frozen(kw_only=True)
class SubmitConclude:
    signed: SignedState


@attrs.frozen(kw_only=True)
class SubmitRegister:
    signed: SignedState


@attrs.frozen(kw_only=True)
class SubmitRefute:
    signed: SignedState


@attrs.frozen(kw_only=True)
class SubmitWithdraw:
    channel_id: ChannelId


@attrs.frozen(kw_only=True)
class SubmitProgress:
    """Force our move on chain: ``next_state`` follows ``signed_prev`` (what the L1 holds)."""

    signed_prev: SignedState
    next_state: State
    mover: int
    signature: bytes


@attrs.frozen(kw_only=True)
class SubmitCheckpoint:
    signed: SignedState


@attrs.frozen(kw_only=True)
class SubmitSecret:
    """Register a preimage in the L1's secret registry (a lock's payee claiming it on chain)."""

    preimage: bytes


@attrs.frozen(kw_only=True)
class NotifyOpened:
    channel_id: ChannelId


@attrs.frozen(kw_only=True)
class NotifyPaymentSent:
    payment_id: PaymentId
    asset: AssetId
    amount: int
    version: Version


@attrs.frozen(kw_only=True)
class NotifyPaymentReceived:
    payment_id: PaymentId
    asset: AssetId
    amount: int
    version: Version


@attrs.frozen(kw_only=True)
class NotifyPaymentFailed:
    payment_id: PaymentId
    reason: str
    asset: AssetId  # what the failed payment would have moved
    amount: int


@attrs.frozen(kw_only=True)
class NotifyOpDone:
    """Our lock, lock settlement or move is in a state signed by both (``key``: ``op.key``)."""

    key: bytes
    operation: Operation
    version: Version


@attrs.frozen(kw_only=True)
class NotifyOpFailed:
    """Our lock, lock settlement or move did not go through; nothing of it was signed by both."""

    key: bytes
    operation: Operation
    reason: str


@attrs.frozen(kw_only=True)
class NotifyLockAdded:
    """The peer locked funds for us: we get them with the preimage before ``expiry``."""

    operation: AddLock
    version: Version


@attrs.frozen(kw_only=True)
class NotifyLockSettled:
    """The peer fulfilled (the preimage is in ``operation``) or failed one of the locks."""

    operation: FulfillLock | FailLock
    lock: Lock
    version: Version


@attrs.frozen(kw_only=True)
class NotifyMoved:
    """The peer made an app move."""

    operation: AppMove
    mover: int
    version: Version


@attrs.frozen(kw_only=True)
class NotifyProgressed:
    """A move was forced on chain; ``turn`` must answer on chain before ``deadline``."""

    state: State
    mover: int
    deadline: int
    turn: int | None


@attrs.frozen(kw_only=True)
class NotifySecretLearned:
    """The payee of one of our locks registered its preimage on the L1 (a forwarder claims
    upstream with it)."""

    lock: Lock
    preimage: bytes
    time: int


@attrs.frozen(kw_only=True)
class NotifyDisputed:
    version: Version
    deadline: int
    ours: bool  # the registered state is our latest (no refute needed)


@attrs.frozen(kw_only=True)
class NotifyClosed:
    """The channel is settled on the L1: funds are in the participants' accounts
    (or it never opened: declined by the peer, or never funded; ``reason`` says so)."""

    channel_id: ChannelId
    version: Version
    reason: str = ""


class RejectAction(enum.Enum):
    IGNORE = "ignore"
    WARN = "warn"
    DISCONNECT = "disconnect"
    CLOSE_ON_CHAIN = "close_on_chain"


@attrs.frozen(kw_only=True)
class Reject:
    """A peer message was refused; the channel state did not change."""

    reason: str
    action: RejectAction = RejectAction.WARN


Effect = (Send | SubmitDeposit | SubmitConclude | SubmitRegister | SubmitRefute | SubmitWithdraw | SubmitSecret
          | SubmitProgress | SubmitCheckpoint | NotifyOpened | NotifyProgressed | NotifySecretLearned
          | NotifyPaymentSent | NotifyPaymentReceived | NotifyPaymentFailed | NotifyOpDone | NotifyOpFailed
          | NotifyLockAdded | NotifyLockSettled | NotifyMoved | NotifyDisputed | NotifyClosed
          | Reject)
