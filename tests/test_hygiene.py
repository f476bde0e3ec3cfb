"""The per-test hygiene checks of ``tests/conftest.py`` fail what they promise to fail."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

CONFTEST = (Path(__file__).with_name("conftest.py")).read_text()

INNER = '''
import logging, subprocess, sys, threading

import pytest


def test_logs_an_error():
    logging.getLogger("channels.somewhere").error("boom")


@pytest.mark.allow_error_logs
def test_logs_an_expected_error():
    logging.getLogger("channels.somewhere").error("boom, on purpose")


def test_leaves_a_child_running():
    subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])


def test_leaves_a_thread_running():
    stop = threading.Event()
    threading.Thread(target=stop.wait, args=(60,), name="forgotten", daemon=True).start()


def test_clean():
    logging.getLogger("channels.somewhere").warning("only a warning")
'''


def test_hygiene_fails_error_logs_and_leftovers(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(CONFTEST.replace("LEAK_GRACE = 5.0", "LEAK_GRACE = 0.2"))
    pytester.makepyfile(test_inner=INNER)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:randomly", timeout=120)
    outcomes = result.parseoutcomes()
    assert outcomes.get("passed") == 5 and outcomes.get("errors") == 3, outcomes  # errors: at teardown
    result.stdout.fnmatch_lines(["*unexpected error log: channels.somewhere: boom*",
                                 "*child process left running: pid*", "*thread left running: forgotten*"])
