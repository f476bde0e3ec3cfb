"""SQLite persistence: persist, then send (ARCHITECTURE section 6)."""

from .sqlite import Store

__all__ = ["Store"]
