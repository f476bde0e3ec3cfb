"""Log output under a flood: the rate limit (deterministic clock) and the node daemon's rotating log file."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from channels.frontend.node_daemon import LOG_FILE, setup_logging
from channels.logs import MAX_RECORD, BoundedFormatter, RateLimitFilter, RotatingFile


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def logger() -> Iterator[logging.Logger]:
    """A private logger (not propagating) with its handlers removed afterwards."""
    lg = logging.getLogger("tests.logs.flood")
    lg.setLevel(logging.DEBUG)
    lg.propagate = False
    yield lg
    for handler in list(lg.handlers):
        lg.removeHandler(handler)
        handler.close()


def capture(lg: logging.Logger, limiter: RateLimitFilter, count: int = 1) -> list[io.StringIO]:
    outs = []
    for _ in range(count):
        out = io.StringIO()
        handler = logging.StreamHandler(out)
        handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
        handler.addFilter(limiter)
        lg.addHandler(handler)
        outs.append(out)
    return outs


def test_ten_thousand_identical_warnings_give_a_bounded_number_of_lines(logger: logging.Logger) -> None:
    clock = Clock()
    limiter = RateLimitFilter(limit=10, interval=60, clock=clock)
    (out,) = capture(logger, limiter)
    for i in range(10_000):
        logger.warning("peer %s sent an invalid frame: %s", f"peer{i % 7}", "bad magic")
    lines = out.getvalue().splitlines()
    assert len(lines) == 10 and lines[0] == "WARNING peer peer0 sent an invalid frame: bad magic"

    clock.now += 60  # the window is over: the next record brings the summary first
    logger.warning("peer %s sent an invalid frame: %s", "peerX", "bad magic")
    lines = out.getvalue().splitlines()
    assert lines[10:] == ["WARNING suppressed 9990 similar messages (at most 10 per 60 s): "
                          "'peer %s sent an invalid frame: %s'",
                          "WARNING peer peerX sent an invalid frame: bad magic"]

    # A flood that goes on for ten minutes: at most 10 lines and one summary per minute.
    for _ in range(600):
        clock.now += 1
        for _ in range(20):
            logger.warning("peer %s sent an invalid frame: %s", "p", "x")
    limiter.flush()  # at shutdown: what the last window suppressed
    assert len(out.getvalue().splitlines()) <= 12 + 11 * 11


def test_templates_levels_and_handlers(logger: logging.Logger) -> None:
    clock = Clock()
    limiter = RateLimitFilter(limit=2, interval=10, clock=clock)
    first, second = capture(logger, limiter, 2)  # one filter on two handlers: decided once per record
    for _ in range(5):
        logger.warning("one %s", 1)
        logger.warning("two %s", 2)  # another template: its own budget
        logger.error("one %s", 1)  # another level: its own budget
        logger.debug("debug %s", 3)  # below min_level (info): never limited
    limiter.flush()
    expected = ["WARNING one 1", "WARNING two 2", "ERROR one 1", "DEBUG debug 3"] * 2 + ["DEBUG debug 3"] * 3 + [
        "WARNING suppressed 3 similar messages (at most 2 per 10 s): 'one %s'",
        "WARNING suppressed 3 similar messages (at most 2 per 10 s): 'two %s'",
        "ERROR suppressed 3 similar messages (at most 2 per 10 s): 'one %s'"]
    assert first.getvalue().splitlines() == second.getvalue().splitlines() == expected
    limiter.flush()  # nothing left to summarise
    assert len(first.getvalue().splitlines()) == len(expected)


def test_many_templates_stay_bounded(logger: logging.Logger) -> None:
    limiter = RateLimitFilter(limit=1, interval=60, max_keys=4, clock=Clock())
    (out,) = capture(logger, limiter)
    for i in range(100):  # a pre-formatted message is a template of its own: tracked keys stay at 4
        logger.warning(f"message {i}")
        logger.warning(f"message {i}")
    assert len(limiter._windows) == 4
    lines = out.getvalue().splitlines()
    assert lines[:2] == ["WARNING message 0", "WARNING message 1"]  # the second of each is dropped
    assert lines.count("WARNING suppressed 1 similar messages (at most 1 per 60 s): 'message 0'") == 1
    assert len(lines) == 100 + 96  # each first, and a summary for each evicted window
    limiter.flush()  # the 4 windows still open
    assert len(out.getvalue().splitlines()) == 200


def test_bounded_formatter() -> None:
    fmt = BoundedFormatter("%(message)s", max_chars=100)
    record = logging.LogRecord("x", logging.WARNING, __file__, 1, "%s", ("é" * 1000,), None)
    text = fmt.format(record)
    assert len(text) == 100 and text.endswith("... [900 characters cut]")
    assert BoundedFormatter().max_chars == MAX_RECORD


@pytest.fixture
def root_logging() -> Iterator[None]:
    """Put the root logger back as it was after ``setup_logging``."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
            handler.close()
    root.setLevel(level)


def test_the_node_log_is_rate_limited_and_rotated(tmp_path: Path, root_logging: None,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    max_bytes = 50_000
    limiter = setup_logging(tmp_path, "debug", max_bytes=max_bytes, backups=2)
    peer_log = logging.getLogger("channels.node.node")
    for i in range(10_000):  # the review's flood: one warning per bad frame
        peer_log.warning("peer %s sent an invalid frame: %s", f"12D3KooW{i:08d}", "frame too large")
    limiter.flush()  # as at exit
    *lines, summary = (tmp_path / LOG_FILE).read_text().splitlines()
    assert len(lines) == limiter.limit and all("sent an invalid frame" in line for line in lines)
    assert summary.endswith("WARNING channels.node.node: suppressed 9990 similar messages (at most 10 per 60 s): "
                            "'peer %s sent an invalid frame: %s'")
    assert len(capsys.readouterr().err.splitlines()) == limiter.limit + 1  # stderr is limited alike

    # Debug records are not rate limited; rotation bounds them: every file stays under max_bytes.
    noisy = logging.getLogger("channels.test.debug")
    for i in range(5_000):
        noisy.debug("payment %d received: %s", i, "ü€😀" * (i % 50))  # multi-byte: sizes are bytes
    noisy.debug("huge %s", "x" * 10 * MAX_RECORD)  # cut to MAX_RECORD characters
    capsys.readouterr()
    files = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(LOG_FILE))
    assert files == [LOG_FILE, f"{LOG_FILE}.1", f"{LOG_FILE}.2"]
    for name in files:
        assert 0 < (tmp_path / name).stat().st_size <= max_bytes, name
    last = (tmp_path / LOG_FILE).read_text().splitlines()[-1]
    assert last.endswith("characters cut]") and len(last) == MAX_RECORD

    # Calling it again replaces the handlers instead of adding a second set.
    setup_logging(tmp_path, "info", max_bytes=max_bytes)
    assert sum(isinstance(h, RotatingFile) for h in logging.getLogger().handlers) == 1
