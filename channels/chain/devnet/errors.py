"""Refusals only the devnet daemon gives (``proto/03-ledger.md`` section 10).

They are ``LedgerError`` subclasses with a stable ``code`` like the ledger's own in
``channels.chain.base``; ``error_from_code`` rebuilds either kind from a daemon's
``(code, message)``, so a client catches the very class the daemon raised.
"""

from __future__ import annotations

import re

from ...chain.base import ledger_error_from_code
from ...errors import LedgerError


class RateLimited(LedgerError):
    """Too many faucet requests: this peer's or the daemon's budget is used up; retry later."""

    code = "rate_limited"


class TooManySubscriptions(LedgerError):
    """The daemon serves no more event subscriptions for this peer, or at all; poll or retry later."""

    code = "too_many_subscriptions"


class CursorPruned(LedgerError):
    """Events after the requested cursor were pruned from the log: re-read the state, then resume.

    ``pruned_through`` is the highest pruned cursor: resuming after it (or any later
    cursor) is answered again."""

    code = "cursor_pruned"

    def __init__(self, message: str, *, pruned_through: int | None = None) -> None:
        super().__init__(message)
        if pruned_through is None:
            found = _PRUNED.search(message)
            pruned_through = int(found.group(1)) if found else None
        self.pruned_through = pruned_through


_PRUNED = re.compile(r"up to cursor (\d+) were pruned")


def cursor_pruned(pruned_through: int, kept: int) -> CursorPruned:
    """The refusal of a cursor below the log's retained part (its message names the resume point)."""
    return CursorPruned(f"events up to cursor {pruned_through} were pruned (the devnet keeps the last {kept}); "
                        f"re-read the state you follow, then resume after cursor {pruned_through} or later",
                        pruned_through=pruned_through)


DEVNET_ERRORS: dict[str, type[LedgerError]] = {cls.code: cls for cls in (RateLimited, TooManySubscriptions,
                                                                          CursorPruned)}


def error_from_code(code: str, message: str) -> LedgerError:
    """The typed error for a code the daemon sent (devnet codes first, then the ledger's)."""
    cls = DEVNET_ERRORS.get(code)
    if cls is not None:
        return cls(message)
    return ledger_error_from_code(code, message)
