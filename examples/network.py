"""The live network demo (``channels demo``, or ``python examples/network.py``): a devnet daemon
and three node daemons on loopback, driven over their control sockets as a user drives them with the CLI."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import trio

from channels.core.ids import Address
from channels.errors import ChannelsError
from channels.frontend.control_client import NodeNotRunning, RpcFailed, call

NAMES = ("alice", "bob", "carol")
LOOPBACK = "/ip4/127.0.0.1/tcp/0"
START_TIMEOUT = 60.0


@contextmanager
def _processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    procs: list[subprocess.Popen[bytes]] = []
    try:
        yield procs
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)


def _spawn(procs: list[subprocess.Popen[bytes]], log: Path, *args: str) -> subprocess.Popen[bytes]:
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "channels", *args], stdout=out, stderr=subprocess.STDOUT)
    procs.append(proc)
    return proc


async def _wait_file(path: Path, proc: subprocess.Popen[bytes], log: Path) -> str:
    with trio.fail_after(START_TIMEOUT):
        while not (path.exists() and path.read_text().strip()):
            if proc.poll() is not None:
                raise ChannelsError(f"a demo process exited early; see {log}:\n{log.read_text()[-1500:]}")
            await trio.sleep(0.1)
    return path.read_text().strip()


async def _wait_node(rpc: Path, proc: subprocess.Popen[bytes], log: Path) -> Any:
    with trio.fail_after(START_TIMEOUT):
        while True:
            if proc.poll() is not None:
                raise ChannelsError(f"a node exited early; see {log}:\n{log.read_text()[-1500:]}")
            try:
                return await call(rpc, "getinfo")
            except (NodeNotRunning, RpcFailed):
                await trio.sleep(0.1)


async def run(workdir: Path) -> int:
    from channels.chain.devnet.client import open_remote_devnet

    with _processes() as procs:
        print("starting a devnet L1 daemon and three channel nodes on 127.0.0.1 ...")
        dv_dir = workdir / "devnet"
        dv_log = workdir / "devnet.log"
        dv = _spawn(procs, dv_log, "devnet", "start", "--data-dir", str(dv_dir), "--listen", LOOPBACK,
                    "--block-time", "0.2")
        devnet = await _wait_file(dv_dir / "devnet.addr", dv, dv_log)
        print(f"  devnet     {devnet}")
        nodes: dict[str, Any] = {}
        node_procs = {}
        for name in NAMES:
            log = workdir / f"{name}.log"
            node_procs[name] = (_spawn(procs, log, "node", "start", "--data-dir", str(workdir / name), "--listen",
                                       LOOPBACK, "--devnet", devnet, "--log-level", "warning"), log)
        for name in NAMES:
            proc, log = node_procs[name]
            nodes[name] = await _wait_node(workdir / name / "rpc.sock", proc, log)
            print(f"  {name:<10} {nodes[name]['addresses'][0]}")

        def rpc(name: str) -> Path:
            return workdir / name / "rpc.sock"

        async with open_remote_devnet(devnet) as ledger:
            async def l1(name: str) -> int:
                return int(await ledger.balance(Address(bytes.fromhex(nodes[name]["l1_account"]))))

            for name, amount in (("alice", 10_000), ("bob", 10_000), ("carol", 1_000)):
                await ledger.faucet(Address(bytes.fromhex(nodes[name]["l1_account"])), amount)
            before = {n: await l1(n) for n in NAMES}
            print("\nL1 balances before: " + ", ".join(f"{n} {before[n]}" for n in NAMES))

            await call(rpc("alice"), "connect", {"address": nodes["bob"]["addresses"][0]})
            await call(rpc("bob"), "connect", {"address": nodes["carol"]["addresses"][0]})
            ab = (await call(rpc("alice"), "open", {"peer_id": nodes["bob"]["peer_id"], "amount": 5_000}))["channel_id"]
            print(f"\nalice opened channel {ab[:12]}... with bob, depositing 5000 on the L1")
            bc = (await call(rpc("bob"), "open", {"peer_id": nodes["carol"]["peer_id"], "amount": 3_000}))["channel_id"]
            print(f"bob   opened channel {bc[:12]}... with carol, depositing 3000 on the L1")

            print("\noff-chain payments (signed states over libp2p, no L1 transaction):")
            story = [("alice", ab, 1_200), ("bob", ab, 200), ("alice", ab, 300), ("bob", bc, 800),
                     ("carol", bc, 150), ("bob", bc, 50)]
            peer = {("alice", ab): "bob", ("bob", ab): "alice", ("bob", bc): "carol", ("carol", bc): "bob"}
            for payer, cid, amount in story:
                result = await call(rpc(payer), "pay-direct", {"channel_id": cid, "amount": amount})
                print(f"  {payer:>5} pays {peer[(payer, cid)]:<5} {amount:>5}   channel {cid[:8]} version "
                      f"{result['version']:>2}: {payer} {result['balance']}, {peer[(payer, cid)]} "
                      f"{result['peer_balance']}")
            burst = 200
            limit = trio.Semaphore(32)

            async def tiny() -> None:
                async with limit:
                    await call(rpc("alice"), "pay-direct", {"channel_id": ab, "amount": 1})

            async with trio.open_nursery() as nursery:
                for _ in range(burst):
                    nursery.start_soon(tiny)
            row = (await call(rpc("alice"), "list-channels"))["channels"][0]
            print(f"  alice pays bob 1 unit {burst} times at once: batched into version {row['version']}; "
                  f"alice {row['balance']}, bob {row['peer_balance']}")

            print("\na multi-hop payment: carol writes an invoice, alice pays it through bob (onion-routed locks):")
            invoice = await call(rpc("carol"), "invoice", {"amount": 400, "description": "demo"})
            print(f"  carol's invoice: {invoice['invoice'][:48]}...")
            paid = await call(rpc("alice"), "pay", {"invoice": invoice["invoice"]})
            hops = " -> ".join(["alice", *("bob" if p == nodes["bob"]["peer_id"] else "carol" for p in paid["route"])])
            print(f"  {paid['status']}: {paid['amount']} over {hops}, fee {paid['fee_paid']} to bob; "
                  f"preimage {paid['preimage'][:16]}... proves it")
            multihop_fee = int(paid["fee_paid"]) if paid["status"] == "succeeded" else 0
            multihop = 400 if paid["status"] == "succeeded" else 0

            print("\nclosing cooperatively (final state signed by both, conclude + withdraw on the L1):")
            for name, cid in (("alice", ab), ("carol", bc)):
                closed = await call(rpc(name), "close", {"channel_id": cid})
                print(f"  {name} closed {cid[:12]}...: {closed['state']}")
            after = {n: await l1(n) for n in NAMES}
            print("\nL1 balances after:  " + ", ".join(f"{n} {after[n]}" for n in NAMES))
            deltas = {n: after[n] - before[n] for n in NAMES}
            print("change:             " + ", ".join(f"{n} {deltas[n]:+d}" for n in NAMES))
            expected = {"alice": -(1_200 - 200 + 300 + burst + multihop + multihop_fee),
                        "carol": 800 - 150 + 50 + multihop}
            expected["bob"] = -expected["alice"] - expected["carol"]
            ok = deltas == expected and sum(deltas.values()) == 0 and multihop > 0
            print("every unit accounted for" if ok else f"MISMATCH: expected {expected}")

        for name in NAMES:
            await call(rpc(name), "stop")
        with trio.fail_after(30):
            for proc in procs[1:]:
                while proc.poll() is None:
                    await trio.sleep(0.1)
        print("stopped every process the demo started")
        return 0 if ok else 1


def run_network_demo(keep: bool = False) -> int:
    workdir = Path(tempfile.mkdtemp(prefix="channels-demo-"))
    os.chmod(workdir, 0o700)
    code = trio.run(run, workdir)
    if keep:
        print(f"data and logs kept in {workdir}")
    else:
        import shutil

        shutil.rmtree(workdir, ignore_errors=True)
    return code


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="a devnet daemon and three nodes on loopback, paying each other")
    parser.add_argument("--keep", action="store_true", help="keep the data dirs and logs")
    sys.exit(run_network_demo(keep=parser.parse_args().keep))
