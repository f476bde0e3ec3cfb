"""Durable payments between two node processes over libp2p.

Node A runs in this process (a library ``Node``), node B is a ``channels node
start`` daemon, the L1 is a devnet daemon: real streams, real SQLite commits
(WAL, synchronous=FULL) before every send. Reported beside two limits measured in
the same run: the py-libp2p round-trip rate between two processes and the SQLite
durable commit rate. A lock-step design needs at least one round trip and two
durable commits per payment; batching beats that with many payments in flight.

    python bench/bench_node.py [--sequential 2000] [--concurrent 5000] [--in-flight 500]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import trio

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from channels.chain.devnet.client import open_remote_devnet  # noqa: E402
from channels.core.ids import ChannelId  # noqa: E402
from channels.node import Node, load_config  # noqa: E402
from tests.devnet.daemon_util import DaemonProc  # noqa: E402
from tests.procs import NodeProc  # noqa: E402


def sqlite_commit_rate(directory: Path, seconds: float = 1.5) -> float:
    db = sqlite3.connect(str(directory / "bench.db"), isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("CREATE TABLE t (k INTEGER PRIMARY KEY, v BLOB)")
    blob = os.urandom(700)  # about one channel record
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        db.execute("BEGIN")
        db.execute("INSERT OR REPLACE INTO t VALUES (?, ?)", (n % 16, blob))
        db.execute("COMMIT")
        n += 1
    rate = n / (time.perf_counter() - start)
    db.close()
    return rate


async def libp2p_rtt() -> dict[str, Any]:
    spec = importlib.util.spec_from_file_location("bench_libp2p", REPO / "bench" / "bench_libp2p.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    args = argparse.Namespace(calls=1000, size=256, pipelined=5000, concurrency=100)
    return await module.two_process(args)  # type: ignore[no-any-return]


def quantiles_ms(latencies: list[float]) -> tuple[float, float]:
    cuts = statistics.quantiles(latencies, n=100)
    return round(cuts[49] * 1000, 3), round(cuts[98] * 1000, 3)


async def bench(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    devnet = DaemonProc(work / "devnet", block_time=0.5)
    b = NodeProc(work / "b", "")
    try:
        address = devnet.start()
        b.args[b.args.index("--devnet") + 1] = address
        b.args[b.args.index("--log-level") + 1] = "warning"
        info: Any = await b.start_and_wait()
        async with open_remote_devnet(address) as ledger:
            config = load_config(work / "a", listen="/ip4/127.0.0.1/tcp/0")
            async with Node.open(config, ledger=ledger) as a:
                await ledger.faucet(a.l1_address, 10**12)
                await a.connect(info["addresses"][0])
                cid = ChannelId(await a.open_channel(info["peer_id"], 10**11))
                for _ in range(50):  # warm up
                    await a.pay(cid, 1)

                latencies = []
                start = time.perf_counter()
                for _ in range(args.sequential):
                    t0 = time.perf_counter()
                    await a.pay(cid, 1)
                    latencies.append(time.perf_counter() - t0)
                seq_elapsed = time.perf_counter() - start
                seq_p50, seq_p99 = quantiles_ms(latencies)

                many: list[float] = []
                limit = trio.Semaphore(args.in_flight)

                async def one() -> None:
                    async with limit:
                        t0 = time.perf_counter()
                        await a.pay(cid, 1)
                        many.append(time.perf_counter() - t0)

                start = time.perf_counter()
                async with trio.open_nursery() as nursery:
                    for _ in range(args.concurrent):
                        nursery.start_soon(one)
                con_elapsed = time.perf_counter() - start
                con_p50, con_p99 = quantiles_ms(many)
                version = a.channel(cid).version
        return {
            "sequential": {"payments": args.sequential, "payments_per_s": round(args.sequential / seq_elapsed, 1),
                           "p50_ms": seq_p50, "p99_ms": seq_p99},
            "in_flight": {"payments": args.concurrent, "in_flight": args.in_flight,
                          "payments_per_s": round(args.concurrent / con_elapsed, 1),
                          "p50_ms": con_p50, "p99_ms": con_p99, "final_version": version},
        }
    finally:
        b.stop()
        devnet.stop()


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        commit_rate = sqlite_commit_rate(work)
        rtt = await libp2p_rtt()
        payments = await bench(args, work)
    seq, con = payments["sequential"], payments["in_flight"]
    print(json.dumps({
        **payments,
        "limits": {"libp2p_two_process": rtt, "sqlite_full_commits_per_s": round(commit_rate, 1)},
        "ratios": {
            "sequential_over_libp2p_rtt_rate": round(seq["payments_per_s"] / rtt["rtt_per_s"], 3),
            "sequential_over_half_commit_rate": round(seq["payments_per_s"] / (commit_rate / 2), 3),
            "in_flight_over_libp2p_rtt_rate": round(con["payments_per_s"] / rtt["rtt_per_s"], 2),
            "in_flight_over_lockstep_280": round(con["payments_per_s"] / 280, 2),
        },
        "aims": {"in_flight_at_least_1000_per_s": con["payments_per_s"] >= 1000,
                 "sequential_p50_at_most_5_ms": seq["p50_ms"] <= 5.0},
    }, indent=2))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sequential", type=int, default=2000)
    parser.add_argument("--concurrent", type=int, default=5000)
    parser.add_argument("--in-flight", type=int, default=500)
    trio.run(main, parser.parse_args())
