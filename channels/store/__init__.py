"""SQLite persistence: persist, then send (DESIGN section 6)."""

from .sqlite import Store

__all__ = ["Store"]
