"""Round-trip rate and latency of ``channels.net.request_response`` over real libp2p (Noise + yamux, loopback TCP).

Two scenarios, each measured sequentially (one call at a time: latency bound)
and pipelined (many concurrent calls on the one RPC stream: throughput bound):

* ``two_process``: the server is a separate OS process (the realistic case).
* ``in_process``: both hosts in one trio run (one CPU does both sides).

Usage: ``python bench/bench_libp2p.py [--calls N] [--pipelined N] [--concurrency N] [--size BYTES]``.
Prints one JSON object on stdout. ``--serve SEED_HEX`` is the child-process mode.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import trio

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from channels.net import Host, open_host  # noqa: E402
from channels.net.request_response import RpcClient, open_rpc_client, serve_rpc  # noqa: E402

PROTOCOL = "/bench/echo/1"
LOOPBACK = ["/ip4/127.0.0.1/tcp/0"]


async def echo(request: bytes, remote_peer_id: str) -> bytes:
    return request


async def serve(seed_hex: str) -> None:
    async with open_host(identity_seed=bytes.fromhex(seed_hex), listen=LOOPBACK) as host:
        serve_rpc(host, PROTOCOL, echo, max_in_flight=256)
        print(host.addresses[0], flush=True)
        await trio.sleep_forever()


async def measure(client: RpcClient, args: argparse.Namespace) -> dict[str, float]:
    payload = os.urandom(args.size)
    for _ in range(200):  # warm up
        await client.call(payload)

    latencies = []
    start = time.perf_counter()
    for _ in range(args.calls):
        t0 = time.perf_counter()
        await client.call(payload)
        latencies.append(time.perf_counter() - t0)
    sequential = time.perf_counter() - start

    remaining = args.pipelined

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            await client.call(payload)

    start = time.perf_counter()
    async with trio.open_nursery() as nursery:
        for _ in range(args.concurrency):
            nursery.start_soon(worker)
    pipelined = time.perf_counter() - start

    cuts = statistics.quantiles(latencies, n=100)
    return {
        "rtt_per_s": round(args.calls / sequential, 1),
        "p50_ms": round(cuts[49] * 1000, 3),
        "p99_ms": round(cuts[98] * 1000, 3),
        "pipelined_per_s": round(args.pipelined / pipelined, 1),
    }


async def connect_timed(host: Host, address: str) -> tuple[str, float]:
    t0 = time.perf_counter()
    peer = await host.connect(address)
    return peer, round((time.perf_counter() - t0) * 1000, 2)


async def two_process(args: argparse.Namespace) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    seed = hashlib.sha256(b"bench-server").hexdigest()
    process = await trio.lowlevel.open_process(
        [sys.executable, __file__, "--serve", seed], stdout=subprocess.PIPE, env=env
    )
    try:
        assert process.stdout is not None
        line = b""
        with trio.fail_after(20):
            while not line.endswith(b"\n"):
                chunk = await process.stdout.receive_some(4096)
                if not chunk:
                    raise RuntimeError("bench server exited before printing its address")
                line += chunk
        async with open_host(identity_seed=hashlib.sha256(b"bench-client").digest(), listen=LOOPBACK) as host:
            peer, connect_ms = await connect_timed(host, line.decode().strip())
            async with open_rpc_client(host, peer, PROTOCOL, timeout=30) as client:
                return {**await measure(client, args), "connect_ms": connect_ms}
    finally:
        process.terminate()
        with trio.move_on_after(5):
            await process.wait()
        if process.returncode is None:
            process.kill()


async def in_process(args: argparse.Namespace) -> dict[str, Any]:
    async with (
        open_host(identity_seed=hashlib.sha256(b"s").digest(), listen=LOOPBACK) as server,
        open_host(identity_seed=hashlib.sha256(b"c").digest(), listen=LOOPBACK) as host,
    ):
        serve_rpc(server, PROTOCOL, echo, max_in_flight=256)
        peer, connect_ms = await connect_timed(host, server.addresses[0])
        async with open_rpc_client(host, peer, PROTOCOL, timeout=30) as client:
            return {**await measure(client, args), "connect_ms": connect_ms}


async def main(args: argparse.Namespace) -> None:
    started = time.perf_counter()
    result: dict[str, Any] = {
        "transport": "tcp loopback, noise, yamux (py-libp2p)",
        "payload_bytes": args.size,
        "calls": args.calls,
        "pipelined_calls": args.pipelined,
        "concurrency": args.concurrency,
    }
    two = await two_process(args)
    result.update(two)  # the headline numbers are the two-process ones
    result["two_process"] = two
    result["in_process"] = await in_process(args)
    result["elapsed_s"] = round(time.perf_counter() - started, 2)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1500, help="sequential calls")
    parser.add_argument("--pipelined", type=int, default=6000, help="pipelined calls")
    parser.add_argument("--concurrency", type=int, default=100, help="concurrent callers when pipelined")
    parser.add_argument("--size", type=int, default=128, help="request payload bytes")
    parser.add_argument("--serve", metavar="SEED_HEX", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        trio.run(serve, args.serve)
    else:
        trio.run(main, args)
