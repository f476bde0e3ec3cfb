"""The README's first command: ``channels demo`` runs the network and exits 0."""

from __future__ import annotations

import subprocess
import sys

from tests.procs import ENV, REPO


def test_network_demo_runs_and_accounts_for_every_unit() -> None:
    done = subprocess.run([sys.executable, "-m", "channels", "demo"], capture_output=True, text=True,
                          timeout=180, env=ENV, cwd=REPO)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "every unit accounted for" in done.stdout
    assert "stopped every process the demo started" in done.stdout


def test_core_demo_conserves_totals() -> None:
    done = subprocess.run([sys.executable, "-m", "channels", "demo", "--core", "--payments", "5"],
                          capture_output=True, text=True, timeout=60, env=ENV, cwd=REPO)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "total 2000, conserved" in done.stdout
