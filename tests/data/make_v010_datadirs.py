"""Make the 0.1.0 data dirs of ``tests/data/v0.1.0/`` with the real 0.1.0 code.

Runs a 0.1.0 devnet daemon and two 0.1.0 node daemons (``a`` and ``b``) on loopback,
funds them, opens three channels, pays in both directions, closes one, stops everything
with SIGTERM and copies what a data dir keeps across restarts (databases, key files,
config; not sockets, locks, logs or address files) to ``--out``. Only the standard
library is used here, so the script runs against any checkout::

    git archive 96dfb23 | tar -x -C /tmp/v010        # 0.1.0
    .venv/bin/python tests/data/make_v010_datadirs.py --checkout /tmp/v010 --out tests/data/v0.1.0

The daemons are the checkout's own ``channels.cli`` (``PYTHONPATH`` and the working
directory point at it; the script checks that ``channels`` is imported from there).
Keys are random, so every run makes different ids; the balances are always the ones
in ``EXPECTED`` (written to ``expected.json`` next to the data dirs).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

LOOPBACK = "/ip4/127.0.0.1/tcp/0"
BLOCK_TIME = 0.2
TIMEOUT = 60.0  # bound of every wait
FAUCET = {"a": 10_000, "b": 5_000}
# Settings both 0.1.0 and later versions read: an old config.toml must keep loading.
NODE_CONFIG = "tick_interval = 0.2\nreconnect_interval = 0.2\n"
KEEP = {"devnet": ("devnet.db", "identity.key"),
        "a": ("node.db", "identity.key", "l1.key", "config.toml"),
        "b": ("node.db", "identity.key", "l1.key", "config.toml")}

# What the run leaves behind (and what tests/upgrade checks against):
#   open_ab  a opened, 5000, window 60 s: a->b 1200, b->a 200, a->b 37, b->a 5
#   open_ba  b opened, 2000, window 3 s:  b->a 300, a->b 50, b->a 25
#   closed   a opened, 1000, window 60 s: a->b 100, then closed cooperatively
EXPECTED: dict[str, Any] = {
    "channels": {
        "open_ab": {"opener": "a", "challenge_duration": 60, "state": "open", "a": 3968, "b": 1032},
        "open_ba": {"opener": "b", "challenge_duration": 3, "state": "open", "a": 275, "b": 1725},
        "closed": {"opener": "a", "challenge_duration": 60, "state": "settled", "a": 900, "b": 100},
    },
    "l1": {"a": 10_000 - 5_000 - 1_000 + 900, "b": 5_000 - 2_000 + 100},
}


def rpc(data_dir: Path, method: str, **params: Any) -> Any:
    """One JSON-RPC call on a node's control socket (newline-delimited JSON)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(TIMEOUT)
        s.connect(str(data_dir / "rpc.sock"))
        s.sendall(json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).encode() + b"\n")
        buf = b""
        while b"\n" not in buf:
            chunk = s.recv(65536)
            if not chunk:
                raise RuntimeError(f"{method}: the node closed the connection")
            buf += chunk
    answer = json.loads(buf[:buf.index(b"\n")])
    if "error" in answer:
        raise RuntimeError(f"{method} {params}: {answer['error']}")
    return answer["result"]


class Run:
    def __init__(self, checkout: Path, work: Path) -> None:
        self.checkout = checkout
        self.work = work
        self.env = {**os.environ, "PYTHONPATH": str(checkout)}
        self.procs: list[tuple[str, subprocess.Popen[bytes]]] = []

    def cli(self, *args: str) -> str:
        out = subprocess.run([sys.executable, "-m", "channels.cli", *args], cwd=self.checkout, env=self.env,
                             capture_output=True, timeout=TIMEOUT, check=True)
        return out.stdout.decode()

    def check_version(self) -> None:
        code = "import channels, json; print(json.dumps([channels.__version__, channels.__file__]))"
        out = subprocess.run([sys.executable, "-c", code], cwd=self.checkout, env=self.env, capture_output=True,
                             timeout=TIMEOUT, check=True)
        version, path = json.loads(out.stdout)
        if version != "0.1.0" or not Path(path).resolve().is_relative_to(self.checkout.resolve()):
            raise SystemExit(f"channels {version} from {path}: not the 0.1.0 checkout at {self.checkout}")

    def daemon(self, name: str, args: list[str]) -> subprocess.Popen[bytes]:
        with open(self.work / f"{name}.out", "ab") as log:  # the child keeps its own descriptor
            proc = subprocess.Popen([sys.executable, "-m", "channels.cli", *args], cwd=self.checkout,
                                    env=self.env, stdout=log, stderr=subprocess.STDOUT)
        self.procs.append((name, proc))
        return proc

    def start_devnet(self) -> str:
        d = self.work / "devnet"
        d.mkdir()
        proc = self.daemon("devnet", ["devnet", "start", "--data-dir", str(d), "--listen", LOOPBACK,
                                      "--block-time", str(BLOCK_TIME)])
        return str(wait_for(lambda: (d / "devnet.addr").exists() and (d / "devnet.addr").read_text().strip(),
                            proc, "devnet.addr"))

    def start_node(self, name: str, devnet: str) -> dict[str, Any]:
        d = self.work / name
        d.mkdir()
        (d / "config.toml").write_text(NODE_CONFIG)
        proc = self.daemon(name, ["node", "start", "--data-dir", str(d), "--listen", LOOPBACK, "--devnet", devnet])

        def ready() -> Any:
            try:
                return rpc(d, "getinfo") if (d / "node.addr").exists() else None
            except OSError:
                return None

        return wait_for(ready, proc, f"{name} getinfo")  # type: ignore[no-any-return]

    def stop_all(self) -> list[str]:
        """SIGTERM to every daemon, nodes first, then the devnet; what went wrong, if anything."""
        problems = []
        for name, proc in reversed(self.procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
                    problems.append(f"{name} did not stop on SIGTERM")
            if proc.returncode != 0:
                problems.append(f"{name} exited with {proc.returncode} (see {self.work / name}.out)")
        return problems


def wait_for(check: Any, proc: subprocess.Popen[bytes], what: str) -> Any:
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        if proc.poll() is not None:
            raise RuntimeError(f"a daemon exited with {proc.returncode} while waiting for {what}")
        time.sleep(0.1)
    raise RuntimeError(f"{what}: not within {TIMEOUT} s")


def settle(dirs: dict[str, Path], cid: str) -> dict[str, dict[str, Any]]:
    """Wait until both nodes show ``cid`` at one version with nothing pending; their rows."""
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        rows = {n: next(c for c in rpc(d, "list-channels")["channels"] if c["channel_id"] == cid)
                for n, d in dirs.items()}
        if rows["a"]["version"] == rows["b"]["version"] and rows["a"]["state"] == rows["b"]["state"]:
            return rows
        time.sleep(0.1)
    raise RuntimeError(f"channel {cid} did not settle on both sides")


def checkpoint(db: Path) -> None:
    """Fold the WAL into the file: the copy is complete without -wal/-shm."""
    conn = sqlite3.connect(db)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
    for suffix in ("-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)


def make(checkout: Path, out: Path) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="v010-"))  # short: rpc.sock paths have a length limit
    run = Run(checkout, work)
    run.check_version()
    dirs = {"a": work / "a", "b": work / "b"}
    try:
        devnet = run.start_devnet()
        info = {n: run.start_node(n, devnet) for n in dirs}
        for n, amount in FAUCET.items():
            run.cli("devnet", "faucet", "--data-dir", str(work / "devnet"), "--to", str(dirs[n] / "l1.key"),
                    "--amount", str(amount))
        rpc(dirs["a"], "connect", address=info["b"]["addresses"][0])
        other = {"a": "b", "b": "a"}
        ids: dict[str, str] = {}
        plan = {"open_ab": [("a", 1200), ("b", 200), ("a", 37), ("b", 5)],
                "open_ba": [("b", 300), ("a", 50), ("b", 25)],
                "closed": [("a", 100)]}
        for name, spec in EXPECTED["channels"].items():
            opener = spec["opener"]
            total = spec["a"] + spec["b"]
            opened = rpc(dirs[opener], "open", peer_id=info[other[opener]]["peer_id"], amount=total,
                         challenge_duration=spec["challenge_duration"])
            ids[name] = opened["channel_id"]
            for i, (payer, amount) in enumerate(plan[name]):
                rpc(dirs[payer], "pay-direct", channel_id=ids[name], amount=amount,
                    payment_id=f"{name}-{i}".encode().hex())
            rows = settle(dirs, ids[name])
            assert (rows["a"]["balance"], rows["b"]["balance"]) == (spec["a"], spec["b"]), rows
        closed = rpc(dirs["a"], "close", channel_id=ids["closed"])
        assert closed["state"] == "settled", closed
        settle(dirs, ids["closed"])
        for name, spec in EXPECTED["channels"].items():
            rows = settle(dirs, ids[name])
            assert rows["a"]["state"] == spec["state"], rows
        l1 = {n: rpc(d, "getinfo")["l1_balances"].get("native", 0) for n, d in dirs.items()}
        assert l1 == EXPECTED["l1"], l1
        result = {**EXPECTED, "channel_ids": ids,
                  "peer_ids": {n: info[n]["peer_id"] for n in dirs},
                  "l1_accounts": {n: info[n]["l1_account"] for n in dirs},
                  "versions": {name: settle(dirs, cid)["a"]["version"] for name, cid in ids.items()}}
    finally:
        problems = run.stop_all()
    if problems:
        raise RuntimeError("; ".join(problems))
    for name, files in KEEP.items():  # other files in ``out`` (its README) stay
        shutil.rmtree(out / name, ignore_errors=True)
        (out / name).mkdir(parents=True)
        for f in files:
            if f.endswith(".db"):
                checkpoint(work / name / f)
            shutil.copy2(work / name / f, out / name / f)
    (out / "expected.json").write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    shutil.rmtree(work)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkout", type=Path, required=True, help="a 0.1.0 source tree (git archive 96dfb23)")
    parser.add_argument("--out", type=Path, required=True,
                        help="where to write devnet/, a/, b/ and expected.json (replaced)")
    args = parser.parse_args()
    print(json.dumps(make(args.checkout.resolve(), args.out.resolve()), indent=2, sort_keys=True))


if __name__ == "__main__":
    main()
