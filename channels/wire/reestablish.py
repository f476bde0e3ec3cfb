"""After every reconnect: exchange the latest versions before anything else (BOLT 2)."""

from ..core.messages import Reestablish
from .registry import register

FAMILY = "channel"

register(48, Reestablish, FAMILY, (("channel_id", "channel_id"), ("latest_version", "u64")))
