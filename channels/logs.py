"""Log output that input from others cannot blow up: a rate limit per message and a size cap per record.

Peers (and local clients) choose how often the node logs "peer X sent an invalid
frame": one line each, unbounded, is a disk-filling lever. ``RateLimitFilter``
lets through at most ``limit`` records per *message template* (logger, level and
the unformatted ``msg``, so "invalid frame from A" and "... from B" count together:
a peer key would let many identities multiply the budget) per ``interval``
seconds, then drops the rest and later logs one line, "suppressed K similar
messages (at most N per T s): 'template'", when that window is over (on the next record through the filter,
or at ``flush()``). ``BoundedFormatter`` cuts any single record (a traceback, a
huge peer-supplied string) to ``MAX_RECORD`` characters, and ``RotatingFile``
rotates on the encoded size, so a log file never exceeds its ``max_bytes``.

Both are deterministic: the clock is injectable and there are no timers.
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

import attrs

LIMIT = 10  # records per template per interval
INTERVAL = 60.0  # seconds
MAX_KEYS = 1024  # templates tracked at once; the oldest window is closed (and summarised) beyond
MAX_RECORD = 16 * 1024  # characters per formatted record, traceback included

SUMMARY = "ratelimit_summary"  # attribute marking our own summary records: never limited


@attrs.define
class _Window:
    start: float
    passed: int = 0
    suppressed: int = 0


class RateLimitFilter(logging.Filter):
    """At most ``limit`` records per template per ``interval`` s; then one summary line.

    Attach one instance to every handler that should be limited (a filter on the
    root *logger* would miss records propagated from child loggers). A record seen
    by several handlers is decided once. Records below ``min_level`` pass untouched:
    debug output is opted into, and rotation bounds it.
    """

    def __init__(self, limit: int = LIMIT, interval: float = INTERVAL, *, min_level: int = logging.INFO,
                 max_keys: int = MAX_KEYS, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        if limit < 1 or interval <= 0 or max_keys < 1:
            raise ValueError("limit, interval and max_keys must be positive")
        self.limit, self.interval, self.min_level, self.max_keys, self.clock = (
            limit, interval, min_level, max_keys, clock)
        self._windows: OrderedDict[tuple[str, int, str], _Window] = OrderedDict()  # oldest window first
        self._lock = threading.Lock()
        self._decided = f"_ratelimit_{id(self)}"

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < self.min_level or getattr(record, SUMMARY, False):
            return True
        decided = record.__dict__.get(self._decided)
        if decided is not None:  # this record already went through another handler
            return bool(decided)
        key = (record.name, record.levelno, str(record.msg))
        with self._lock:
            now = self.clock()
            closed = self._close_windows(lambda w: now - w.start >= self.interval)
            window = self._windows.get(key)
            if window is None:
                window = self._windows[key] = _Window(start=now)
                while len(self._windows) > self.max_keys:
                    closed.append(self._windows.popitem(last=False))
            allow = window.passed < self.limit
            if allow:
                window.passed += 1
            else:
                window.suppressed += 1
        record.__dict__[self._decided] = allow
        self._summarise(closed)
        return allow

    def flush(self) -> None:
        """Log the summaries of every window that suppressed something (at shutdown)."""
        with self._lock:
            closed = self._close_windows(lambda w: True)
        self._summarise(closed)

    def _close_windows(self, expired: Callable[[_Window], bool]) -> list[tuple[tuple[str, int, str], _Window]]:
        closed = []
        while self._windows:
            window = next(iter(self._windows.values()))
            if not expired(window):
                break  # windows are in start order: the rest are younger
            closed.append(self._windows.popitem(last=False))
        return closed

    def _summarise(self, closed: list[tuple[tuple[str, int, str], _Window]]) -> None:
        # Outside the lock: logging re-enters this filter (which lets the summary through).
        for (name, level, template), window in closed:
            if window.suppressed:
                logging.getLogger(name).log(
                    level, "suppressed %d similar messages (at most %d per %g s): %.200r",
                    window.suppressed, self.limit, self.interval, template, extra={SUMMARY: True})


class BoundedFormatter(logging.Formatter):
    """A formatter whose output (message, traceback and all) is at most ``max_chars`` characters."""

    def __init__(self, fmt: str | None = None, *, max_chars: int = MAX_RECORD) -> None:
        super().__init__(fmt)
        self.max_chars = max_chars

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        if len(text) <= self.max_chars:
            return text
        note = f" ... [{len(text) - self.max_chars} characters cut]"
        return text[:max(0, self.max_chars - len(note))] + note


class RotatingFile(logging.handlers.RotatingFileHandler):
    """``RotatingFileHandler`` that counts encoded bytes (the stdlib counts characters).

    The file then never exceeds ``maxBytes`` unless one record alone is larger (with
    ``BoundedFormatter`` that is at most 4 bytes per character of ``max_chars``)."""

    def shouldRollover(self, record: logging.LogRecord) -> bool:
        if self.maxBytes <= 0 or not os.path.isfile(self.baseFilename):
            return False
        if self.stream is None:
            self.stream = self._open()
        size = len(f"{self.format(record)}\n".encode(self.encoding or "utf-8", self.errors or "strict"))
        self.stream.seek(0, os.SEEK_END)
        used = self.stream.tell()
        return used > 0 and used + size > self.maxBytes
