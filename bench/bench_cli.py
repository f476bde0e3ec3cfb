"""Wall time of CLI calls that only talk to a running node's control socket.

Reported beside ``python -c pass`` measured in the same run (the interpreter's own floor):
a command that merely asks a running node must not pay for importing libp2p or trio.
Aim: ``channels getinfo`` at most 150 ms.

    python bench/bench_cli.py [--runs 15]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import trio

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.devnet.daemon_util import DaemonProc  # noqa: E402
from tests.procs import ENV, NodeProc  # noqa: E402

AIM_MS = 150.0


def wall_ms(argv: list[str], runs: int) -> dict[str, float]:
    """Median and best wall time of ``runs`` runs of ``argv``; every run must succeed."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, check=True, capture_output=True, env=ENV, cwd=REPO, timeout=60)
        times.append((time.perf_counter() - start) * 1000)
    return {"p50_ms": round(statistics.median(times), 1), "min_ms": round(min(times), 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-cli-") as tmp:
        devnet = DaemonProc(Path(tmp) / "devnet")
        address = devnet.start()
        node = NodeProc(Path(tmp) / "node", address)
        try:
            trio.run(node.start_and_wait)
            cli = [sys.executable, "-m", "channels", "--data-dir", str(node.data_dir)]
            floor = wall_ms([sys.executable, "-c", "pass"], args.runs)
            results = {"python_c_pass": floor,
                       "channels_help": wall_ms([sys.executable, "-m", "channels", "--help"], args.runs),
                       "channels_getinfo": wall_ms([*cli, "getinfo", "--json"], args.runs),
                       "channels_list_channels": wall_ms([*cli, "list-channels", "--json"], args.runs)}
        finally:
            node.stop()
            devnet.stop()
    getinfo = results["channels_getinfo"]["p50_ms"]
    results["getinfo_over_python_ms"] = round(getinfo - floor["p50_ms"], 1)
    results["getinfo_aim_ms"] = AIM_MS
    results["getinfo_ratio_to_aim"] = round(getinfo / AIM_MS, 3)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
