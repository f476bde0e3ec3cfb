"""Updating a channel: proposal, countersignature, rejection."""

from ..core.messages import Countersign, UpdateProposal, UpdateReject
from .registry import register

FAMILY = "channel"

register(32, UpdateProposal, FAMILY, (("channel_id", "channel_id"), ("version", "u64"), ("operations", "operations"),
                                      ("signature", "signature")))
register(34, Countersign, FAMILY, (("channel_id", "channel_id"), ("version", "u64"), ("signature", "signature")))
register(36, UpdateReject, FAMILY, (("channel_id", "channel_id"), ("version", "u64"), ("retry", "bool"),
                                    ("reason", "reason")))
