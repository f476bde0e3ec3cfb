"""How the CLI shows values to people (``--json`` output is never formatted).

One place for the rules, so every command reads alike: amounts are integers with their
asset (``1200 native``), deadlines are local time plus the seconds left, ids are hex.
Stdlib only: the client commands must start fast (``tests/test_cli_imports.py``).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

UNKNOWN = "unknown"


def format_amount(amount: int | None, asset: str | None) -> str:
    """``1200 native``; ``unknown`` when the amount is not known (never a made-up 0)."""
    if amount is None or not asset:
        return UNKNOWN
    return f"{int(amount)} {asset}"


def format_amounts(amounts: Mapping[str, int] | None, *, empty: str = "0 native") -> str:
    """Balances per asset on one line, ``1200 native, 5 gold`` (sorted by asset)."""
    if amounts is None:
        return UNKNOWN
    return ", ".join(format_amount(v, k) for k, v in sorted(amounts.items())) or empty


def format_time(timestamp: float | None) -> str:
    """A Unix time as local time, ``2026-12-02 14:03:11``; ``unknown`` for 0 or None."""
    if not timestamp:
        return UNKNOWN
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(timestamp))


def format_deadline(deadline: float | None, *, now: float | None = None) -> str:
    """``2026-12-02 14:03:11 (in 42 s)`` or ``(7 s ago)``: when, and how long is left.

    ``now`` defaults to the wall clock (devnet time follows it)."""
    if not deadline:
        return UNKNOWN
    left = round(deadline - (time.time() if now is None else now))
    when = "now" if left == 0 else f"in {left} s" if left > 0 else f"{-left} s ago"
    return f"{format_time(deadline)} ({when})"


def format_id(value: bytes | str) -> str:
    """Ids as hex: bytes are hex-encoded, text (already hex, or a peer id) is kept."""
    return value.hex() if isinstance(value, (bytes, bytearray)) else str(value)


def format_fields(fields: list[tuple[str, Any]]) -> str:
    """Aligned ``label:  value`` lines, the layout of ``getinfo``."""
    width = max((len(label) for label, _ in fields), default=0) + 2
    return "\n".join(f"{label + ':':<{width}}{value}" for label, value in fields)
