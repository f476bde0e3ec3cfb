"""Commands that only talk to a node's control socket import neither libp2p nor trio nor pynacl.

Found by a new user: every CLI call took 1.1-1.7 s, even ``--help``, of which about 0.95 s
was importing libp2p through the devnet CLI module."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.procs import ENV, REPO

PROBE = """
import sys
from channels.frontend.cli import main
try:
    code = main(sys.argv[1:])
except SystemExit as exc:  # --help exits from inside argparse
    code = exc.code
heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("libp2p", "trio", "nacl"))
print("LIBP2P" if heavy else "CLEAN", code)
"""


@pytest.mark.parametrize("args", [["--help"], ["getinfo"], ["list-channels"], ["health"], ["devnet", "--help"]])
def test_control_socket_commands_do_not_import_libp2p(tmp_path: Path, args: list[str]) -> None:
    argv = ["--data-dir", str(tmp_path / "none"), *args] if args[0] != "--help" else args
    done = subprocess.run([sys.executable, "-c", PROBE, *argv], capture_output=True, text=True, env=ENV, cwd=REPO,
                          timeout=60)
    assert "CLEAN" in done.stdout, f"{args}: {done.stdout}{done.stderr[-2000:]}"
