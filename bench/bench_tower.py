"""The watchtower: appointments accepted per second, memory per 100,000 appointments, reaction
time from a stale registration to the refute in blocks; prints JSON with ratios to the aims.

    python bench/bench_tower.py [--appointments N] [--clients K] [--seconds S] [--disputes M]

* ``accept.in_process``: the core's checks (two Ed25519 verifies per appointment) and the
  store's group commits (256 per fsync, as the daemon's committer does), no network.
* ``accept.daemon``: a tower process (``serve_tower`` with the rate limits lifted, since the
  default 50/s per client would be what is measured) and K clients over loopback libp2p,
  each pipelining 32 calls; every receipt is checked by the client.
* ``memory``: the resident set (``VmRSS``) of a tower process started on a store of N
  appointments, against one started on an empty store, extrapolated to a million. The
  tower keeps appointments on disk (SQLite) and in memory only usage counters, rate
  buckets and open disputes, so RSS should barely move with N; disk bytes are reported too.
  Aim: a million appointments in under 1 GiB (rust-teos holds 2.2 million in 1.2-1.3 GB).
* ``reaction``: a devnet daemon (block time ``--block-time``) and the tower; M channels each
  get a stale state registered; blocks (and seconds) from the ``Registered`` event to the
  tower's ``Refuted``. Aim: the next block or the one after (2 blocks).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import trio

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from channels.chain.devnet import tx as t  # noqa: E402
from channels.chain.devnet.client import open_remote_devnet  # noqa: E402
from channels.chain.devnet.scheme import ADJUDICATOR, DevnetKey, DevnetScheme  # noqa: E402
from channels.core.ids import NATIVE, Version  # noqa: E402
from channels.core.state import Allocation, ChannelParams, SignedState, State  # noqa: E402
from channels.crypto import sha256  # noqa: E402
from channels.net import open_host  # noqa: E402
from channels.watchtower.appointment import Appointment  # noqa: E402
from channels.watchtower.client import open_tower_client  # noqa: E402
from channels.watchtower.core import Limits, Rate, Tower  # noqa: E402
from channels.watchtower.store import TowerStore  # noqa: E402

SCHEME = DevnetScheme()
ALICE, BOB = DevnetKey.from_label("bench-alice"), DevnetKey.from_label("bench-bob")
CHAIN_ID = 1337
AIM_1M_MIB = 1024
AIM_REACTION_BLOCKS = 2
FREE = Rate(per_second=1e9, burst=1e9)
BENCH_LIMITS = Limits(client_rate=FREE, total_rate=FREE, per_client_appointments=10**7, per_client_bytes=2**40,
                      total_appointments=10**7, total_bytes=2**40)
BATCH = 256


def params(i: int, *, duration: int = 100) -> ChannelParams:
    return ChannelParams(chain_id=CHAIN_ID, adjudicator=ADJUDICATOR, participants=(ALICE.address, BOB.address),
                         challenge_duration=duration, nonce=sha256(b"bench-tower/%d" % i))


def cosigned(p: ChannelParams, version: int) -> SignedState:
    alloc = Allocation(assets=(NATIVE,), balances=((500 + version, 500 - version),))
    state = State(channel_id=p.channel_id, version=Version(version), allocation=alloc)
    return SignedState(state=state, signatures=(SCHEME.sign(ALICE, p, state), SCHEME.sign(BOB, p, state)))


def appointments(n: int, start: int = 0) -> list[Appointment]:
    out = []
    for i in range(start, start + n):
        p = params(i)
        out.append(Appointment(params=p, signed=cosigned(p, 5)))
    return out


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


# --- in process ------------------------------------------------------------------------------------


def fill(db: Path, appts: list[Appointment]) -> dict[str, float]:
    store = TowerStore(db)
    tower = Tower(signer=DevnetKey.from_label("bench-tower"), scheme=SCHEME, chain_id=CHAIN_ID,
                  adjudicator=ADJUDICATOR, records=store, limits=BENCH_LIMITS, usage=store.usage())
    start = time.perf_counter()
    for k in range(0, len(appts), BATCH):
        with store.transaction():
            for j, appt in enumerate(appts[k:k + BATCH]):
                store.save_accepted(tower.accept(appt, f"client-{(k + j) % 100}", time.time()))
    elapsed = time.perf_counter() - start
    store.close()
    return {"appointments": len(appts), "seconds": round(elapsed, 3), "per_s": round(len(appts) / elapsed, 1)}


# --- processes -------------------------------------------------------------------------------------


def start_devnet(data_dir: Path, block_time: float) -> tuple[subprocess.Popen[str], str]:
    cmd = [sys.executable, "-m", "channels", "devnet", "start", "--data-dir", str(data_dir), "--block-time",
           str(block_time)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, cwd=ROOT)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if "/p2p/" not in line:
        proc.kill()
        raise SystemExit(f"the devnet daemon did not start: {line!r}")
    return proc, line.split()[-1]


def start_tower(data_dir: Path, devnet: str) -> tuple[subprocess.Popen[str], str]:
    """A tower process with the benchmark's limits (``--serve`` mode of this script)."""
    cmd = [sys.executable, __file__, "--serve", str(data_dir), devnet]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, cwd=ROOT)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if "/p2p/" not in line:
        proc.kill()
        raise SystemExit(f"the tower did not start: {line!r}")
    return proc, line.strip()


def stop(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def serve(data_dir: str, devnet: str) -> None:
    from channels.watchtower.daemon import serve_tower

    async def run() -> None:
        with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            async with trio.open_nursery() as nursery:
                info = await nursery.start(lambda task_status: serve_tower(
                    data_dir, devnet=devnet, limits=BENCH_LIMITS, poll=0.1, task_status=task_status))
                print(info.address, flush=True)
                async for _ in signals:
                    nursery.cancel_scope.cancel()
                    break

    trio.run(run)


async def daemon_accepts(address: str, appts: list[Appointment], clients: int, seconds: float) -> dict[str, float]:
    counts = [0] * clients
    deadline = time.perf_counter() + seconds
    chunks = [appts[i::clients] for i in range(clients)]

    async def client(i: int) -> None:
        async with open_host(identity_seed=os.urandom(32), listen=[]) as host, \
                open_tower_client(host, address, timeout=60) as tc:
            todo = iter(chunks[i])

            async def lane() -> None:
                for appt in todo:
                    if time.perf_counter() >= deadline:
                        return
                    receipt = await tc.send(appt)
                    assert receipt.version == appt.version
                    counts[i] += 1

            async with trio.open_nursery() as lanes:
                for _ in range(32):
                    lanes.start_soon(lane)

    start = time.perf_counter()
    async with trio.open_nursery() as nursery:
        for i in range(clients):
            nursery.start_soon(client, i)
    elapsed = time.perf_counter() - start
    total = sum(counts)
    return {"appointments": total, "clients": clients, "seconds": round(elapsed, 3),
            "per_s": round(total / elapsed, 1)}


async def reaction(devnet: str, tower: str, disputes: int, block_time: float) -> dict[str, Any]:
    """Register a stale state in ``disputes`` watched channels, one at a time; blocks to the refute."""
    cheater = DevnetKey.from_label("bench-cheater")
    blocks, seconds = [], []
    async with open_remote_devnet(devnet) as ledger, open_host(identity_seed=os.urandom(32), listen=[]) as host, \
            open_tower_client(host, tower) as tc:
        chans = [params(10**9 + i, duration=60) for i in range(disputes)]
        for p in chans:
            await tc.send(Appointment(params=p, signed=cosigned(p, 7)))
        for p in chans:
            events = await ledger.send(cheater, t.Register(params=p, signed=cosigned(p, 2)))
            registered = next(e for e in events if e.kind == "Registered")
            start = time.perf_counter()
            with trio.fail_after(60):
                async for ev in ledger.events(after=registered.cursor):
                    if ev.kind == "Refuted" and ev.channel_id == p.channel_id:
                        break
            seconds.append(time.perf_counter() - start)
            blocks.append(ev.height - registered.height)
            assert ev.data["version"] == 7
    return {"block_time": block_time, "samples": disputes, "blocks_median": statistics.median(blocks),
            "blocks_max": max(blocks), "seconds_median": round(statistics.median(seconds), 3),
            "seconds_max": round(max(seconds), 3), "aim_blocks": AIM_REACTION_BLOCKS,
            "ratio_to_aim": round(statistics.median(blocks) / AIM_REACTION_BLOCKS, 3)}


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--serve":
        serve(sys.argv[2], sys.argv[3])
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--appointments", type=int, default=100_000, help="appointments in the memory test")
    parser.add_argument("--clients", type=int, default=4, help="concurrent clients of the daemon test")
    parser.add_argument("--seconds", type=float, default=5.0, help="duration of the daemon accept test")
    parser.add_argument("--disputes", type=int, default=10, help="stale registrations in the reaction test")
    parser.add_argument("--block-time", type=float, default=0.5, help="the devnet's block time")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        appts = appointments(args.appointments)
        signing = time.perf_counter() - t0
        (root / "full").mkdir()
        local = fill(root / "full" / "tower.db", appts)
        disk = sum(f.stat().st_size for f in (root / "full").iterdir())
        devnet_proc, devnet = start_devnet(root / "devnet", args.block_time)
        try:
            rss: dict[str, int] = {}
            for name in ("empty", "full"):
                proc, _ = start_tower(root / name, devnet)
                try:
                    time.sleep(1.0)  # let it settle after start-up
                    rss[name] = rss_kib(proc.pid)
                finally:
                    stop(proc)
            proc, address = start_tower(root / "daemon", devnet)
            try:
                remote = trio.run(daemon_accepts, address, appointments(20_000, start=args.appointments),
                                  args.clients, args.seconds)
                react = trio.run(reaction, devnet, address, args.disputes, args.block_time)
            finally:
                stop(proc)
        finally:
            stop(devnet_proc)
    delta_mib = (rss["full"] - rss["empty"]) / 1024  # noise of a few MiB either way: nothing grows with N
    per_100k = max(0.0, delta_mib) * 100_000 / args.appointments
    one_million = rss["empty"] / 1024 + 10 * per_100k
    result = {
        "benchmark": "tower",
        "accept": {"in_process": local, "daemon": remote,
                   "daemon_ratio_to_in_process": round(remote["per_s"] / local["per_s"], 3),
                   "signing_the_test_appointments_s": round(signing, 3)},
        "memory": {"appointments": args.appointments, "rss_empty_mib": round(rss["empty"] / 1024, 1),
                   "rss_full_mib": round(rss["full"] / 1024, 1), "rss_delta_mib": round(delta_mib, 2),
                   "rss_per_100k_mib": round(per_100k, 2),
                   "rss_1m_extrapolated_mib": round(one_million, 1), "aim_1m_mib": AIM_1M_MIB,
                   "ratio_to_aim": round(one_million / AIM_1M_MIB, 3),
                   "disk_bytes_per_appointment": round(disk / args.appointments, 1)},
        "reaction": react,
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
