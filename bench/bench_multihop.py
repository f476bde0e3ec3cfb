"""Three-hop payments per second between four node processes, beside direct payments.

A line a - b - c - d: node A runs in this process (a library ``Node``, so the payer's
figures hold no CLI start-up), b, c and d are ``channels node start`` daemons, the L1 is a
devnet daemon. Each channel is funded by its left end; once gossip has told A the terms of
b -> c and c -> d, the same run measures with the same number of payments in flight: direct
payments A -> b (``node.pay``: balance updates, many payments per update) and keysends A -> d
(``node.payments.keysend``: a route over the gossiped graph, an onion, a lock forwarded at b
and at c, the preimage settling back over all three channels, every step committed before it
is sent). The aim is a three-hop rate of at least 25% of the direct one. Beside the rates: the
CPU each process spent per payment (which one is the bottleneck), and the py-libp2p round
trip between two processes, measured in the same run.

    python bench/bench_multihop.py [--payments 2000] [--in-flight 50] [--sequential 100] [--profile FILE]
"""

from __future__ import annotations

import argparse
import cProfile
import importlib.util
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import trio

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from channels.chain.devnet.client import open_remote_devnet  # noqa: E402
from channels.core.ids import Address, ChannelId  # noqa: E402
from channels.invoice.peerid import public_key_of  # noqa: E402
from channels.node import Node, load_config  # noqa: E402
from tests.devnet.daemon_util import DaemonProc  # noqa: E402
from tests.procs import NodeProc  # noqa: E402

AIM = 0.25  # three-hop payments per second over direct ones
DEPOSIT = 10**12  # each channel, from its left end: no payment here runs out of liquidity
GOSSIP_WAIT = 60.0  # seconds A may take to learn the terms of b -> c and c -> d
FORWARD_LIMIT = 64  # the forwarders' default max_forwards_in_flight (docs/settings.md)


def load_bench(name: str) -> Any:
    spec = importlib.util.spec_from_file_location(name, REPO / "bench" / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


bench_node = load_bench("bench_node")  # libp2p_rtt and quantiles_ms, measured and cut the same way


def cpu_seconds(pids: dict[str, int]) -> dict[str, float]:
    """CPU time (user + system) of this process (``a``) and of each daemon so far (Linux /proc)."""
    out = {"a": time.process_time()}
    for name, pid in pids.items():
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[name] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return out


def cpu_ms_per_payment(before: dict[str, float], after: dict[str, float], payments: int) -> dict[str, float]:
    """Which process the payments cost most: CPU ms per payment (the machine's cores are shared)."""
    return {name: round((after[name] - before[name]) * 1000 / payments, 3) for name in after if name in before}


async def in_flight(count: int, limit: int, pay: Any) -> tuple[float, list[float]]:
    """``count`` calls of ``pay`` with at most ``limit`` running: elapsed seconds and latencies."""
    latencies: list[float] = []
    slots = trio.Semaphore(limit)

    async def one() -> None:
        async with slots:
            t0 = time.perf_counter()
            await pay()
            latencies.append(time.perf_counter() - t0)

    start = time.perf_counter()
    async with trio.open_nursery() as nursery:
        for _ in range(count):
            nursery.start_soon(one)
    return time.perf_counter() - start, latencies


def update_counts(node: Node) -> dict[str, int]:
    """Updates A completed (proposed by itself or by a peer) and proposals it gave up because
    a peer proposed at the same time (collisions: both sides of a channel add and settle locks)."""
    stats = node.stats
    return {"local": stats.updates.get("local"), "remote": stats.updates.get("remote"),
            "collisions": sum(n for labels, n in stats.rejects.values.items()
                              if "concurrent" in labels[0] or "already signed" in labels[0])}


def diff_counts(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {key: after[key] - before[key] for key in after}


async def bench(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    devnet = DaemonProc(work / "devnet", block_time=0.5)
    # Forwarders keep the default limit unless more are asked in flight than it allows:
    # beyond it the extra locks fail back and are retried, which measures the limit instead.
    settings = {"max_forwards_in_flight": max(FORWARD_LIMIT, args.in_flight)}
    daemons = {name: NodeProc(work / name, "", settings) for name in "bcd"}
    try:
        address = devnet.start()
        for proc in daemons.values():
            proc.args[proc.args.index("--devnet") + 1] = address
            proc.args[proc.args.index("--log-level") + 1] = "warning"
        infos: dict[str, Any] = {}

        async def start(name: str) -> None:
            infos[name] = await daemons[name].start_and_wait(timeout=60)

        async with trio.open_nursery() as nursery:
            for name in daemons:
                nursery.start_soon(start, name)
        b, c = daemons["b"], daemons["c"]
        async with open_remote_devnet(address) as ledger:
            config = load_config(work / "a", listen="/ip4/127.0.0.1/tcp/0")
            async with Node.open(config, ledger=ledger) as a:
                for account in (bytes(a.l1_address), bytes.fromhex(infos["b"]["l1_account"]),
                                bytes.fromhex(infos["c"]["l1_account"])):
                    await ledger.faucet(Address(account), 2 * DEPOSIT)
                await a.connect(infos["b"]["addresses"][0])
                await b.call("connect", address=infos["c"]["addresses"][0])
                await c.call("connect", address=infos["d"]["addresses"][0])
                opened: dict[str, str] = {}

                async def open_ab() -> None:
                    opened["ab"] = bytes(await a.open_channel(infos["b"]["peer_id"], DEPOSIT)).hex()

                async def open_by(proc: NodeProc, peer: str, key: str) -> None:
                    got: Any = await proc.call("open", peer_id=infos[peer]["peer_id"], amount=DEPOSIT)
                    opened[key] = got["channel_id"]

                setup = time.perf_counter()
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(open_ab)
                    nursery.start_soon(open_by, b, "c", "bc")
                    nursery.start_soon(open_by, c, "d", "cd")
                # A routes over its own channel directly; b -> c and c -> d it learns from gossip.
                keys = {name: public_key_of(infos[name]["peer_id"]) for name in "bcd"}
                needed = {(keys["b"], keys["c"]), (keys["c"], keys["d"])}
                with trio.move_on_after(GOSSIP_WAIT):
                    while not needed <= {(e.source, e.target) for e in a.payments.graph().edges}:
                        await trio.sleep(0.1)
                missing = needed - {(e.source, e.target) for e in a.payments.graph().edges}
                if missing:
                    raise RuntimeError(f"gossip: after {GOSSIP_WAIT:.0f} s A knows no terms for "
                                       f"{len(missing)} of the directions b -> c, c -> d")
                gossip_s = time.perf_counter() - setup
                ab, d_id = ChannelId(bytes.fromhex(opened["ab"])), infos["d"]["peer_id"]

                async def direct() -> None:
                    await a.pay(ab, 1)

                failed: list[str] = []

                async def three_hops() -> None:
                    record = await a.payments.keysend(d_id, 1000, timeout=60)
                    if record.status != "succeeded":
                        failed.append(record.failure or record.status)
                    elif len(record.route) != 3:
                        failed.append(f"route of {len(record.route)} hops")

                for _ in range(50):  # warm up both paths
                    await direct()
                for _ in range(20):
                    await three_hops()
                if failed:
                    raise RuntimeError(f"three-hop warm-up failed: {failed[:3]}")

                seq: list[float] = []
                for _ in range(args.sequential):
                    t0 = time.perf_counter()
                    await three_hops()
                    seq.append(time.perf_counter() - t0)
                pids = {"devnet": devnet.proc.pid} if devnet.proc else {}
                pids.update({name: proc.proc.pid for name, proc in daemons.items() if proc.proc})
                cpu = [cpu_seconds(pids)]
                counts = [update_counts(a)]
                direct_s, direct_lat = await in_flight(args.payments, args.in_flight, direct)
                cpu.append(cpu_seconds(pids))
                counts.append(update_counts(a))
                profile = cProfile.Profile() if args.profile else None
                if profile is not None:
                    profile.enable()
                hop_s, hop_lat = await in_flight(args.payments, args.in_flight, three_hops)
                if profile is not None:
                    profile.disable()
                    profile.dump_stats(args.profile)
                cpu.append(cpu_seconds(pids))
                counts.append(update_counts(a))
                version = a.channel(ab).version
        direct_p50, direct_p99 = bench_node.quantiles_ms(direct_lat)
        hop_p50, hop_p99 = bench_node.quantiles_ms(hop_lat)
        seq_p50, seq_p99 = bench_node.quantiles_ms(seq) if len(seq) >= 2 else (None, None)
        return {
            "payments": args.payments, "in_flight": args.in_flight,
            "direct_payments_per_s": round(args.payments / direct_s, 1),
            "multihop_3hop_payments_per_s": round(args.payments / hop_s, 1),
            "direct": {"p50_ms": direct_p50, "p99_ms": direct_p99,
                       "cpu_ms_per_payment": cpu_ms_per_payment(cpu[0], cpu[1], args.payments),
                       "updates_at_a": diff_counts(counts[0], counts[1])},
            "multihop_3hop": {"p50_ms": hop_p50, "p99_ms": hop_p99, "failed": len(failed),
                              "failures": sorted(set(failed))[:3], "sequential_payments": args.sequential,
                              "sequential_p50_ms": seq_p50, "sequential_p99_ms": seq_p99,
                              "cpu_ms_per_payment": cpu_ms_per_payment(cpu[1], cpu[2], args.payments),
                              "updates_at_a": diff_counts(counts[1], counts[2])},
            "setup": {"open_and_gossip_s": round(gossip_s, 2), "final_version_ab": int(version),
                      "max_forwards_in_flight": settings["max_forwards_in_flight"]},
        }
    finally:
        for proc in daemons.values():
            proc.stop()
        devnet.stop()


async def main(args: argparse.Namespace) -> None:
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        rtt = await bench_node.libp2p_rtt()
        result = await bench(args, Path(tmp))
    ratio = result["multihop_3hop_payments_per_s"] / result["direct_payments_per_s"]
    print(json.dumps({
        **result,
        "multihop_over_direct": round(ratio, 3),
        "aim_ratio": AIM,
        "aims": {"multihop_at_least_25_percent_of_direct": ratio >= AIM},
        "limits": {"libp2p_two_process": rtt},
        "ratios": {"direct_over_libp2p_rtt_rate": round(result["direct_payments_per_s"] / rtt["rtt_per_s"], 2),
                   "multihop_over_libp2p_rtt_rate": round(result["multihop_3hop_payments_per_s"] / rtt["rtt_per_s"],
                                                          3)},
        "elapsed_s": round(time.perf_counter() - started, 1),
    }, indent=2))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--payments", type=int, default=2000, help="payments in each in-flight run")
    parser.add_argument("--in-flight", type=int, default=50, help="payments in flight at once (both runs)")
    parser.add_argument("--sequential", type=int, default=100, help="three-hop payments one at a time (latency)")
    parser.add_argument("--profile", metavar="FILE", help="write cProfile stats of the payer's three-hop run")
    parsed = parser.parse_args()
    if parsed.payments < 2 or parsed.in_flight < 1 or parsed.sequential < 0:
        parser.error("--payments must be at least 2, --in-flight at least 1, --sequential at least 0")
    trio.run(main, parsed)
