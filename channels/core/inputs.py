"""What goes into a transition, named by origin (ARCHITECTURE section 3).

``Action*`` come from the local API, ``Receive*`` from a peer (already decoded,
not yet trusted), ``Chain*`` from the L1 watcher, ``Tick`` from the clock.
"""

from __future__ import annotations

import attrs

from .ids import AssetId, PaymentId, Version
from .messages import (
    ChannelAccept,
    ChannelDecline,
    CloseProposal,
    Countersign,
    Reestablish,
    UpdateProposal,
    UpdateReject,
)
from .ops import Operation
from .state import SignedState


@attrs.frozen(kw_only=True)
class ActionPay:
    payment_id: PaymentId
    asset: AssetId
    amount: int


@attrs.frozen(kw_only=True)
class ActionPropose:
    """Queue an operation other than a payment: add, fulfill or fail a lock, or an app move."""

    operation: Operation


@attrs.frozen(kw_only=True)
class ActionCancelPay:
    """The caller gave up on a payment: drop it if it is still only queued."""

    payment_id: PaymentId


@attrs.frozen(kw_only=True)
class ActionClose:
    """Cooperative close: propose a final state and conclude on the L1."""


@attrs.frozen(kw_only=True)
class ActionForceClose:
    """Unilateral close: register the latest state and withdraw after the window."""


@attrs.frozen(kw_only=True)
class ActionReconnect:
    """The transport to the peer is up again: start the reestablish exchange."""

    peer: int | None = None  # n-party channels: the participant whose transport came up


@attrs.frozen(kw_only=True)
class ActionResync:
    """Our update has waited too long: re-send the reestablish and our proposal.

    Both are idempotent for the receiver; this recovers from a frame the
    transport lost or misordered without tearing the connection down."""


@attrs.frozen(kw_only=True)
class ReceiveAccept:
    message: ChannelAccept
    sender: int | None = None  # participant index of the sender (n-party channels; None: the peer)


@attrs.frozen(kw_only=True)
class ReceiveDecline:
    message: ChannelDecline
    sender: int | None = None  # participant index of the sender (n-party channels; None: the peer)


@attrs.frozen(kw_only=True)
class ReceiveUpdate:
    message: UpdateProposal
    sender: int | None = None  # participant index of the sender (n-party channels; None: the peer)


@attrs.frozen(kw_only=True)
class ReceiveClose:
    message: CloseProposal
    sender: int | None = None  # participant index of the sender (n-party channels; None: the peer)


@attrs.frozen(kw_only=True)
class ReceiveCountersign:
    message: Countersign
    sender: int | None = None  # participant index of the sender (n-party channels; None: the peer)


@attrs.frozen(kw_only=True)
class ReceiveReject:
    message: UpdateReject
    sender: int | None = None  # participant index of the sender (n-party channels; None: the peer)


@attrs.frozen(kw_only=True)
class ReceiveReestablish:
    message: Reestablish
    sender: int | None = None  # participant index of the sender (n-party channels; None: the peer)


@attrs.frozen(kw_only=True)
class ChainDeposited:
    asset: AssetId
    holdings: int  # total now held for this asset
    amount: int = 0  # this deposit
    ours: bool = False  # made from our L1 account


@attrs.frozen(kw_only=True)
class ChainRegistered:
    """A dispute was registered (or refuted, or progressed) with ``signed``."""

    signed: SignedState
    deadline: int


@attrs.frozen(kw_only=True)
class ChainProgressed:
    """A move was forced on chain: ``signed`` carries the mover's signature only."""

    signed: SignedState
    deadline: int
    mover: int


@attrs.frozen(kw_only=True)
class ChainCheckpointed:
    """A newer state signed by all was anchored on the L1 without closing."""

    signed: SignedState


@attrs.frozen(kw_only=True)
class ChainSecretRegistered:
    """A preimage entered the L1's secret registry at L1 time ``time``."""

    preimage: bytes
    time: int


@attrs.frozen(kw_only=True)
class ActionCheckpoint:
    """Anchor our latest state on the L1 (a floor for any later registration)."""


@attrs.frozen(kw_only=True)
class ChainConcluded:
    version: Version


@attrs.frozen(kw_only=True)
class ChainWithdrawn:
    """The first withdraw paid the balances; locks of the paid state stay in escrow until
    each is decided (secret registered before its expiry, or the expiry passed)."""


@attrs.frozen(kw_only=True)
class ChainLockResolved:
    """A lock in escrow was paid out: to its payee (``fulfilled``) or back to its payer."""

    lock_id: bytes
    fulfilled: bool


@attrs.frozen(kw_only=True)
class Tick:
    """Time passed; ``now`` (L1 time) is given to every transition anyway."""


Input = (ActionPay | ActionPropose | ActionCheckpoint | ActionCancelPay | ActionClose | ActionForceClose
         | ActionReconnect | ActionResync | ReceiveAccept | ReceiveDecline
         | ReceiveUpdate | ReceiveClose | ReceiveCountersign | ReceiveReject | ReceiveReestablish
         | ChainDeposited | ChainRegistered | ChainProgressed | ChainCheckpointed | ChainSecretRegistered
         | ChainConcluded | ChainWithdrawn | ChainLockResolved | Tick)


_BY_MESSAGE: dict[type, type] = {
    UpdateProposal: ReceiveUpdate, Countersign: ReceiveCountersign, CloseProposal: ReceiveClose,
    UpdateReject: ReceiveReject, Reestablish: ReceiveReestablish, ChannelAccept: ReceiveAccept,
    ChannelDecline: ReceiveDecline,
}


def receive(message: object, sender: int | None = None) -> Input | None:
    """The ``Receive*`` input for a decoded channel message (None: not a channel-core message);
    ``sender``: the participant index the shell authenticated (n-party channels)."""
    kind = _BY_MESSAGE.get(type(message))
    return None if kind is None else kind(message=message, sender=sender)
