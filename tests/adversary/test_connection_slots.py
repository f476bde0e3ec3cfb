"""Closed inbound connections must give their slot back (security finding).

py-libp2p 0.8.1 takes one slot of a 250-slot limiter per inbound connection and
frees it only when the swarm shuts down. So after ~250 connections over its
life (e.g. 250 ``channels devnet`` CLI calls), a node or devnet daemon reset
every new inbound connection: nobody could reach the L1 to refute a stale
state, nor open a channel with the node. ``channels.net.host`` now frees the
slot when the connection closes.

Here thousands of connect/close cycles (each a new TCP connection, Noise
handshake and yamux session, closed cleanly) hit a real devnet daemon and a
real node daemon, then an honest client must still get through to both.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import trio

from channels.chain.devnet.client import open_remote_devnet
from channels.net import open_host
from tests.node.test_processes import devnet, fund, l1, node_procs

OLD_LIMIT = 250  # py-libp2p's inbound slots: max_connections (300) - min_connections (50)
# Parallel dialers, each with its own identity and one connection at a time:
# well under the default per-IP bound (32) even while the server is still
# tearing down the previous connections (loopback is one source address).
WORKERS = 16
# 8x the old limit per target. Both targets are churned at once: ~35 s on 2
# cores (~58 cycles/s per target), so the full run stays in the default suite.
CYCLES = 2000


async def churn(address: str, cycles: int) -> float:
    """``cycles`` connections to ``address``, each closed before its dialer's next; the seconds taken."""
    remaining = cycles
    started = time.perf_counter()

    async def dialer() -> None:
        nonlocal remaining
        async with open_host(identity_seed=os.urandom(32), listen=[]) as client:
            while remaining > 0:
                remaining -= 1
                peer = await client.connect(address, timeout=10)  # PeerUnreachable once slots run out
                await client.disconnect(peer)

    async with trio.open_nursery() as nursery:
        for _ in range(WORKERS):
            nursery.start_soon(dialer)
    return time.perf_counter() - started


async def test_connection_churn_never_locks_out_honest_peers(tmp_path: Path) -> None:
    cycles = CYCLES
    with trio.fail_after(240):
        async with devnet(tmp_path) as (dv_addr, ledger), node_procs(tmp_path, dv_addr, "a", "b") as nodes:
            a, b = nodes["a"], nodes["b"]
            info_a: Any = await a.call("getinfo")
            info_b: Any = await b.call("getinfo")
            timings: dict[str, float] = {}

            async def timed(name: str, address: str) -> None:
                timings[name] = await churn(address, cycles)

            async with trio.open_nursery() as nursery:
                nursery.start_soon(timed, "devnet", dv_addr)
                nursery.start_soon(timed, "node", info_a["addresses"][0])
            print(
                f"\n{cycles} connect/close cycles each, in parallel: "
                + ", ".join(f"{k} {v:.1f}s ({cycles / v:.0f}/s)" for k, v in timings.items())
            )

            # An honest devnet client (a new inbound connection, like any CLI call) gets through.
            with trio.fail_after(20):
                async with open_remote_devnet(dv_addr) as fresh:
                    await fund(fresh, info_b["l1_account"], 50_000)
                    assert await l1(fresh, info_b["l1_account"]) >= 50_000
                    assert (await fresh.status()).chain_id == (await ledger.status()).chain_id

            # An honest payment: b dials the churned node a, opens a channel and pays.
            with trio.fail_after(60):
                await b.call("connect", address=info_a["addresses"][0])
                opened: Any = await b.call("open", peer_id=info_a["peer_id"], amount=10_000)
                await b.call("pay-direct", channel_id=opened["channel_id"], amount=1_234)
                listed: Any = await b.call("list-channels")
                row = listed["channels"][0]
                assert (row["balance"], row["peer_balance"]) == (10_000 - 1_234, 1_234)
                while True:
                    seen: Any = await a.call("list-channels")
                    if seen["channels"] and seen["channels"][0]["balance"] == 1_234:
                        break
                    await trio.sleep(0.05)
