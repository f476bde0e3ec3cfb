"""Shared test configuration: opt-in slow runs, bounded Hypothesis profiles, per-test hygiene checks."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile("default", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("soak", deadline=None, max_examples=5000, suppress_health_check=list(HealthCheck))
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

LEAK_GRACE = 5.0  # seconds a test's threads and children get to finish exiting after it returns


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--run-slow", action="store_true", help="run long soak, fuzz and load tests")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--run-slow") or os.environ.get("CHANNELS_SLOW_TESTS") == "1":
        return
    skip = pytest.mark.skip(reason="slow: opt in with --run-slow or CHANNELS_SLOW_TESTS=1")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


# --- hygiene: every test is checked for error logs it did not expect and for what it leaves running ---


class _ErrorRecords(logging.Handler):
    """Collects records at ERROR and above from every logger while one test runs."""

    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def _live_children() -> set[int]:
    """Pids of this process's children that are still running (Linux ``/proc``; empty elsewhere)."""
    me, found = os.getpid(), set()
    for entry in Path("/proc").iterdir() if Path("/proc/self/stat").exists() else ():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2:].split()  # after "pid (comm) ": state ppid ...
        if int(fields[1]) == me and fields[0] not in ("Z", "X"):
            found.add(int(entry.name))
    return found


def _own_threads() -> set[threading.Thread]:
    # trio keeps idle worker threads for ``to_thread`` in a cache: they are reused, not leaked.
    return {t for t in threading.enumerate() if t.is_alive() and not t.name.startswith("Trio thread")}


@pytest.fixture(autouse=True)
def hygiene(request: pytest.FixtureRequest) -> Iterator[_ErrorRecords]:
    """Fail a test that logs an error it did not declare, or leaves a thread or child process running.

    A test that provokes errors on purpose says so with ``@pytest.mark.allow_error_logs``."""
    errors = _ErrorRecords()
    root = logging.getLogger()
    root.addHandler(errors)
    threads, children = _own_threads(), _live_children()
    try:
        yield errors
    finally:
        root.removeHandler(errors)
    problems = []
    if errors.records and request.node.get_closest_marker("allow_error_logs") is None:
        problems += [f"unexpected error log: {r.name}: {r.getMessage()[:300]}" for r in errors.records[:5]]
    deadline = time.monotonic() + LEAK_GRACE
    while True:  # a thread or child that is just exiting gets a moment to finish
        leaked_threads = _own_threads() - threads
        leaked_children = _live_children() - children
        if not (leaked_threads or leaked_children) or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    problems += [f"thread left running: {t.name}" for t in leaked_threads]
    for pid in leaked_children:
        problems.append(f"child process left running: pid {pid}")
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)
