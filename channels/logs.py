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

``--log-format json`` picks ``JsonFormatter``: one JSON object per line with the keys
``time`` (ISO 8601, UTC), ``level``, ``logger``, ``message`` and, when there is one,
``exc`` (the traceback), for log shippers; it keeps the same size cap per record.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, datetime

import attrs

LIMIT = 10  # records per template per interval
INTERVAL = 60.0  # seconds
MAX_KEYS = 1024  # templates tracked at once; the oldest window is closed (and summarised) beyond
MAX_RECORD = 16 * 1024  # characters per formatted record, traceback included

SUMMARY = "ratelimit_summary"  # attribute marking our own summary records: never limited
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
LOG_FORMATS = ("text", "json")  # the choices of --log-format


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


class JsonFormatter(logging.Formatter):
    """One JSON object per record (``time``, ``level``, ``logger``, ``message``, ``exc``), at most
    ``max_chars`` characters: the message and the traceback are cut to fit (each keeps at least
    half of the room when both are long), so the line stays valid JSON."""

    def __init__(self, *, max_chars: int = MAX_RECORD) -> None:
        super().__init__()
        if max_chars < 256:
            raise ValueError("max_chars must leave room for the keys (256 at least)")
        self.max_chars = max_chars

    def format(self, record: logging.LogRecord) -> str:
        entry = {"time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
                 "level": record.levelname, "logger": record.name[:100], "message": ""}
        message = record.getMessage()
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        exc = "\n".join(t for t in (record.exc_text, record.stack_info and self.formatStack(record.stack_info)) if t)
        if exc:
            entry["exc"] = ""
        room = self.max_chars - len(json.dumps(entry, ensure_ascii=False))  # for the two texts, encoded
        exc_size = _encoded_size(exc, room)
        entry["message"] = _cut_encoded(message, max(room // 2, room - exc_size) if exc else room)
        if exc:
            entry["exc"] = _cut_encoded(exc, room - _encoded_size(entry["message"], room))
        return json.dumps(entry, ensure_ascii=False)


def _encoded_size(text: str, limit: int) -> int:
    """Characters ``text`` takes inside a JSON string (counting stops past ``limit``)."""
    return len(json.dumps(text[:limit + 1], ensure_ascii=False)) - 2


def _cut_encoded(text: str, limit: int) -> str:
    """The longest prefix of ``text`` (plus a note if cut) that takes at most ``limit`` JSON characters."""
    if _encoded_size(text, limit) <= limit:
        return text
    note = f" ... [{len(text)} characters, cut]"
    room, used, keep = limit - len(note), 0, 0
    for char in text[:max(0, room)]:
        used += len(json.dumps(char, ensure_ascii=False)) - 2
        if used > room:
            break
        keep += 1
    return text[:keep] + note


def make_formatter(log_format: str = "text", *, max_chars: int = MAX_RECORD) -> logging.Formatter:
    """The formatter of ``--log-format`` (``text`` or ``json``), bounded to ``max_chars`` per record."""
    if log_format == "json":
        return JsonFormatter(max_chars=max_chars)
    if log_format == "text":
        return BoundedFormatter(TEXT_FORMAT, max_chars=max_chars)
    raise ValueError(f"log format {log_format!r} is not one of {', '.join(LOG_FORMATS)}")


class Brief:
    """A value for a log argument, rendered lazily with bytes as hex, not Python reprs.

    ``log.info("channel %s: %s", cid.hex()[:12], Brief(notice))`` prints
    ``NotifyPaymentReceived(payment_id=01a2..., amount=5, ...)`` instead of ``b'\\x01\\xa2'``
    escapes; nesting, sequences and byte strings are cut so one record stays short."""

    MAX_BYTES, MAX_ITEMS, MAX_DEPTH = 32, 8, 3

    def __init__(self, value: object) -> None:
        self.value = value

    def __str__(self) -> str:
        return self._render(self.value, self.MAX_DEPTH)

    def _render(self, value: object, depth: int) -> str:
        if isinstance(value, (bytes, bytearray, memoryview)):
            raw = bytes(value)
            return raw[:self.MAX_BYTES].hex() + ("..." if len(raw) > self.MAX_BYTES else "")
        cls = type(value)
        if attrs.has(cls):
            if depth <= 0:
                return f"{cls.__name__}(...)"
            fields = ", ".join(f"{f.name}={self._render(getattr(value, f.name), depth - 1)}"
                               for f in attrs.fields(cls) if f.repr)
            return f"{cls.__name__}({fields})"
        if isinstance(value, (list, tuple, set, frozenset)):
            items = [self._render(v, depth - 1) for v in list(value)[:self.MAX_ITEMS]]
            more = f", ... ({len(value)} in all)" if len(value) > self.MAX_ITEMS else ""
            return "[" + ", ".join(items) + more + "]"
        if isinstance(value, dict):
            pairs = [f"{self._render(k, depth - 1)}: {self._render(v, depth - 1)}"
                     for k, v in list(value.items())[:self.MAX_ITEMS]]
            more = f", ... ({len(value)} in all)" if len(value) > self.MAX_ITEMS else ""
            return "{" + ", ".join(pairs) + more + "}"
        return str(value)


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
