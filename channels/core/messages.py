"""What peers say to each other about a channel, as value objects.

The bytes live in ``channels.wire``; the core only sees these verified-shape
objects. States are never sent whole for updates: the receiver recomputes the
next state from its own latest state and the listed operations, so a peer cannot
slip a different allocation under an innocent-looking payment.
"""

from __future__ import annotations

import attrs

from .ids import ChannelId, Version
from .ops import Operation
from .state import Allocation, ChannelParams


@attrs.frozen(kw_only=True)
class ChannelProposal:
    """Open a channel: parameters, initial allocation, proposer's signature on version 0."""

    params: ChannelParams
    allocation: Allocation
    signature: bytes


@attrs.frozen(kw_only=True)
class ChannelAccept:
    channel_id: ChannelId
    signature: bytes


@attrs.frozen(kw_only=True)
class ChannelDecline:
    channel_id: ChannelId
    reason: str


@attrs.frozen(kw_only=True)
class UpdateProposal:
    """Proposer signed ``latest + operations`` at ``version``; asks for a countersignature."""

    channel_id: ChannelId
    version: Version
    operations: tuple[Operation, ...]
    signature: bytes


@attrs.frozen(kw_only=True)
class CloseProposal:
    """Proposer signed the final state: the latest allocation, ``is_final``, at ``version``."""

    channel_id: ChannelId
    version: Version
    signature: bytes


@attrs.frozen(kw_only=True)
class Countersign:
    """The receiver's signature on the proposed state: the state is now fully signed."""

    channel_id: ChannelId
    version: Version
    signature: bytes


@attrs.frozen(kw_only=True)
class UpdateReject:
    """The receiver will not sign ``version``. With ``retry`` the proposer re-proposes
    the same payments at a higher version (the receiver had already signed another
    state at this one); without it the proposer fails those payments."""

    channel_id: ChannelId
    version: Version
    retry: bool
    reason: str


@attrs.frozen(kw_only=True)
class Reestablish:
    """Sent first after every (re)connect: the latest fully signed version I hold."""

    channel_id: ChannelId
    latest_version: Version


ChannelMessage = (ChannelProposal | ChannelAccept | ChannelDecline | UpdateProposal | CloseProposal
                  | Countersign | UpdateReject | Reestablish)


@attrs.frozen(kw_only=True)
class Init:
    """First frame on every channel stream: who we are on the L1 and where to reach us.

    ``signature`` is the L1 key's signature over the sender's libp2p peer id and the
    chain id (see ``channels.node.identity``): it binds the network identity to the
    L1 account, so a peer cannot claim someone else's account as its own."""

    l1_address: bytes
    chain_id: int
    addresses: tuple[str, ...]
    signature: bytes
