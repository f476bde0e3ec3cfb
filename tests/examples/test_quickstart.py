"""``examples/quickstart.py``, the README's library quickstart, runs as a user runs it, twice in a row."""

from __future__ import annotations

import re
import subprocess
import sys

from tests.procs import ENV, REPO

RUN_TIMEOUT = 120.0  # seconds per run: two libp2p hosts, an open, a payment and a close on loopback


def test_the_quickstart_runs_twice_and_the_balances_add_up() -> None:
    """Each run starts from fresh temporary dirs and a new devnet, so a second run is the same as
    the first (reusing a data dir with a new devnet moved the balance into escrow twice)."""
    for run in (1, 2):
        done = subprocess.run([sys.executable, str(REPO / "examples" / "quickstart.py")], capture_output=True,
                              text=True, timeout=RUN_TIMEOUT, env=ENV, cwd=REPO)
        assert done.returncode == 0, f"run {run}: {done.stdout}{done.stderr[-3000:]}"
        assert "Traceback" not in done.stderr
        before = re.search(r"^before: alice (\d+), bob (\d+) on the L1$", done.stdout, re.MULTILINE)
        after = re.search(r"^after: alice (\d+), bob (\d+) on the L1$", done.stdout, re.MULTILINE)
        assert before is not None and after is not None, done.stdout
        assert (int(before[1]), int(before[2])) == (10_000, 0)
        assert (int(after[1]), int(after[2])) == (10_000 - 250, 250), done.stdout
        assert "paid 250" in done.stdout
