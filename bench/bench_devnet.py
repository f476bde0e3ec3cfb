"""Devnet transactions per second, in-process and through the daemon; prints JSON.

    python bench/bench_devnet.py [--seconds S] [--senders N]

Every transaction is a signed native transfer, applied in its own SQLite transaction
(WAL, synchronous=FULL) with its events. The limits it is compared with are measured
in the same run: the SQLite commit rate and the Ed25519 verify rate (one commit and
one verify per transaction bound the devnet), and, for the daemon, the libp2p round
trip of one pipelined client.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import trio

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from channels.chain.devnet import codec as rc  # noqa: E402
from channels.chain.devnet import tx as t  # noqa: E402
from channels.chain.devnet.client import open_remote_devnet  # noqa: E402
from channels.chain.devnet.ledger import Devnet  # noqa: E402
from channels.chain.devnet.scheme import DevnetKey  # noqa: E402
from channels.core.ids import NATIVE  # noqa: E402
from channels.crypto import verify  # noqa: E402


def sqlite_commits_per_s(path: Path, seconds: float) -> float:
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("CREATE TABLE t (k INTEGER PRIMARY KEY, v BLOB)")
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        db.execute("BEGIN IMMEDIATE")
        db.execute("INSERT INTO t (v) VALUES (?)", (os.urandom(64),))
        db.execute("COMMIT")
        n += 1
    rate = n / (time.perf_counter() - start)
    db.close()
    return rate


def verifies_per_s(seconds: float) -> float:
    key = DevnetKey.from_label("bench")
    msg = os.urandom(32)
    sig = key.sign_digest(msg)
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for _ in range(100):
            verify(key.address, msg, sig)
        n += 100
    return n / (time.perf_counter() - start)


def in_process_tps(path: Path, seconds: float) -> dict[str, float]:
    """Sign + verify + apply + commit, one transaction at a time."""
    alice, bob = DevnetKey.from_label("alice"), DevnetKey.from_label("bob")
    with Devnet(path, auto_mine=False) as dn:
        dn.faucet_sync(alice.address, 10**15)
        op = t.Transfer(to=bob.address, asset=NATIVE, amount=1)
        nonce, n, start = 0, 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            dn.submit(t.sign_tx(alice, chain_id=dn.chain_id, nonce=nonce, op=op))
            nonce += 1
            n += 1
        elapsed = time.perf_counter() - start
        assert dn.store.balance(bob.address, NATIVE) == n
    return {"tx": n, "seconds": round(elapsed, 3), "tx_per_s": round(n / elapsed, 1)}


def start_daemon(data_dir: Path) -> tuple[subprocess.Popen[str], str]:
    """``channels devnet start`` as its own process, as nodes use it; returns (process, multiaddr)."""
    cmd = [sys.executable, "-m", "channels", "devnet", "start", "--data-dir", str(data_dir)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, cwd=ROOT)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if "/p2p/" not in line:
        proc.kill()
        raise SystemExit(f"the devnet daemon did not start: {line!r}")
    return proc, line.split()[-1]


async def daemon_tps(address: str, seconds: float, senders: int) -> dict[str, object]:
    """Through a daemon process, with ``senders`` accounts sending concurrently over one client."""
    async with open_remote_devnet(address) as dn:
        keys = [DevnetKey.from_label(f"sender-{i}") for i in range(senders)]
        sink = DevnetKey.from_label("sink").address
        for key in keys:
            await dn.faucet(key.address, 10**15)
        # one round trip (a STATUS call), the floor for a single sequential sender
        n, start = 0, time.perf_counter()
        while time.perf_counter() - start < 1.0:
            await dn.call_raw(rc.encode_request(rc.STATUS))
            n += 1
        rtt_ms = 1000 * (time.perf_counter() - start) / n

        counts = [0] * senders
        deadline = time.perf_counter() + seconds

        async def send(i: int) -> None:
            while time.perf_counter() < deadline:
                await dn.transfer(keys[i], sink, 1)
                counts[i] += 1

        start = time.perf_counter()
        async with trio.open_nursery() as senders_nursery:
            for i in range(senders):
                senders_nursery.start_soon(send, i)
        elapsed = time.perf_counter() - start
        total = sum(counts)
        assert await dn.balance(sink) == total
    return {"tx": total, "seconds": round(elapsed, 3), "tx_per_s": round(total / elapsed, 1), "senders": senders,
            "rpc_round_trip_ms": round(rtt_ms, 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--senders", type=int, default=8)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        commit_rate = sqlite_commits_per_s(root / "raw.db", 1.0)
        verify_rate = verifies_per_s(1.0)
        local = in_process_tps(root / "inproc.db", args.seconds)
        proc, address = start_daemon(root / "daemon")
        try:
            remote = trio.run(daemon_tps, address, args.seconds, args.senders)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)
    bound = 1 / (1 / commit_rate + 1 / verify_rate)  # one commit and one verify per transaction, in series
    result = {
        "benchmark": "devnet",
        "limits": {"sqlite_commit_full_per_s": round(commit_rate, 1), "ed25519_verify_per_s": round(verify_rate, 1),
                   "commit_plus_verify_per_s": round(bound, 1)},
        "in_process": {**local, "ratio_to_commit_plus_verify": round(local["tx_per_s"] / bound, 3)},
        "daemon": {**remote, "ratio_to_in_process": round(float(remote["tx_per_s"]) / local["tx_per_s"], 3),  # type: ignore[arg-type]
                   "ratio_to_commit_plus_verify": round(float(remote["tx_per_s"]) / bound, 3)},  # type: ignore[arg-type]
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
