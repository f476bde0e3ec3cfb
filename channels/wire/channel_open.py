"""Opening a channel: proposal, accept, decline."""

from ..core.messages import ChannelAccept, ChannelDecline, ChannelProposal
from .registry import register

FAMILY = "channel"

register(16, ChannelProposal, FAMILY, (("params", "params"), ("allocation", "allocation"), ("signature", "signature")))
register(18, ChannelAccept, FAMILY, (("channel_id", "channel_id"), ("signature", "signature")))
register(20, ChannelDecline, FAMILY, (("channel_id", "channel_id"), ("reason", "reason")))
