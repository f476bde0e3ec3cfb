"""Closing a channel cooperatively: the final-state proposal (answered by Countersign)."""

from ..core.messages import CloseProposal
from .registry import register

FAMILY = "channel"

register(38, CloseProposal, FAMILY, (("channel_id", "channel_id"), ("version", "u64"), ("signature", "signature")))
