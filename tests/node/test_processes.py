"""End to end on real processes: a devnet daemon, node daemons, libp2p on loopback.

* 1,000 direct payments in mixed directions, then a cooperative close: the L1
  balances equal the expected values to the unit.
* ``kill -9`` of the payer at random moments during a payment stream (20 kills),
  restarts: the channel resumes, nothing is lost, nothing is signed twice.
* A peer that registers a stale state and vanishes is refuted automatically and
  ends with what it was owed, no more.
"""

from __future__ import annotations

import os
import random
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import attrs
import pytest
import trio

from channels.chain.devnet.client import open_remote_devnet
from channels.chain.devnet.scheme import DevnetScheme
from channels.core.ids import Address, ChannelId
from channels.core.state import ChannelParams, State
from channels.frontend.control_client import NodeNotRunning, RpcFailed
from channels.node import Node, load_config
from tests.devnet.daemon_util import DaemonProc
from tests.procs import SHORT_WINDOWS, NodeProc

OPEN_AMOUNT = 100_000


@asynccontextmanager
async def devnet(tmp_path: Path) -> AsyncIterator[tuple[str, Any]]:
    proc = DaemonProc(tmp_path / "devnet", block_time=0.2)
    try:
        address = proc.start()
        async with open_remote_devnet(address) as ledger:
            yield address, ledger
    finally:
        proc.stop()


@asynccontextmanager
async def node_procs(tmp_path: Path, devnet_addr: str, *names: str,
                     settings: Mapping[str, object] | None = None) -> AsyncIterator[dict[str, NodeProc]]:
    procs = {n: NodeProc(tmp_path / n, devnet_addr, settings) for n in names}
    try:
        async with trio.open_nursery() as nursery:
            for p in procs.values():
                nursery.start_soon(p.start_and_wait)
        yield procs
    finally:
        for p in procs.values():
            p.stop()


async def fund(ledger: Any, account: str | bytes, amount: int) -> None:
    address = bytes.fromhex(account) if isinstance(account, str) else account
    await ledger.faucet(Address(address), amount)


async def l1(ledger: Any, account: str) -> int:
    return int(await ledger.balance(Address(bytes.fromhex(account))))


async def test_thousand_payments_then_cooperative_close(tmp_path: Path) -> None:
    with trio.fail_after(240):
        async with devnet(tmp_path) as (addr, ledger), node_procs(tmp_path, addr, "a", "b") as nodes:
            a, b = nodes["a"], nodes["b"]
            info_a: Any = await a.call("getinfo")
            info_b: Any = await b.call("getinfo")
            await fund(ledger, info_a["l1_account"], 500_000)
            await fund(ledger, info_b["l1_account"], 1)
            start_a, start_b = await l1(ledger, info_a["l1_account"]), await l1(ledger, info_b["l1_account"])
            await a.call("connect", address=info_b["addresses"][0])
            opened: Any = await a.call("open", peer_id=info_b["peer_id"], amount=OPEN_AMOUNT)
            cid = opened["channel_id"]
            rng = random.Random(7)
            plan = [(rng.random() < 0.5, rng.randint(1, 50)) for _ in range(1000)]
            net_to_b = 0
            sem = trio.Semaphore(16)

            async def pay(from_a: bool, amount: int) -> None:
                nonlocal net_to_b
                async with sem:
                    await (a if from_a else b).call("pay-direct", channel_id=cid, amount=amount)
                net_to_b += amount if from_a else -amount

            # a pays first so b has funds to pay back; then mixed directions, many in flight.
            await pay(True, 20_000)
            async with trio.open_nursery() as nursery:
                for from_a, amount in plan:
                    nursery.start_soon(pay, from_a, amount)
            channels_a: Any = await a.call("list-channels")
            row = channels_a["channels"][0]
            assert (row["balance"], row["peer_balance"]) == (OPEN_AMOUNT - net_to_b, net_to_b)
            closed: Any = await a.call("close", channel_id=cid)
            assert closed["state"] == "settled"
            assert await l1(ledger, info_a["l1_account"]) == start_a - net_to_b
            assert await l1(ledger, info_b["l1_account"]) == start_b + net_to_b


class RecordingScheme(DevnetScheme):
    """Remembers every (signer, version) -> digest it saw verify, to catch equivocation."""

    def __init__(self) -> None:
        self.seen: dict[tuple[bytes, int], set[bytes]] = {}

    def verify(self, params: ChannelParams, state: State, signer: Address, signature: bytes) -> bool:
        ok = super().verify(params, state, signer, signature)
        if ok:
            self.seen.setdefault((signer, state.version), set()).add(self.state_digest(params, state))
        return ok


async def test_kill9_payer_during_payment_stream(tmp_path: Path) -> None:
    kills = int(os.environ.get("CHANNELS_KILLS", "20"))
    rng = random.Random(2026)
    with trio.fail_after(420):
        async with devnet(tmp_path) as (addr, ledger), node_procs(tmp_path, addr, "payer") as nodes:
            payer = nodes["payer"]
            info: Any = await payer.call("getinfo")
            await fund(ledger, info["l1_account"], 1_000_000)
            recorder = RecordingScheme()
            config = load_config(tmp_path / "payee", listen="/ip4/127.0.0.1/tcp/0")
            async with Node.open(config, ledger=ledger) as payee:
                payee.engine.env = attrs.evolve(payee.engine.env, scheme=recorder)
                await payer.call("connect", address=payee.addresses[0])
                opened: Any = await payer.call("open", peer_id=payee.peer_id, amount=OPEN_AMOUNT)
                cid = ChannelId(bytes.fromhex(opened["channel_id"]))
                acknowledged = in_doubt = 0

                async def stream(stop: trio.Event) -> None:
                    nonlocal acknowledged, in_doubt

                    async def one() -> None:
                        nonlocal acknowledged, in_doubt
                        amount = rng.randint(1, 9)
                        try:
                            await payer.call("pay-direct", channel_id=cid.hex(), amount=amount)
                        except (RpcFailed, NodeNotRunning, OSError):
                            in_doubt += amount  # killed mid-payment: it may or may not have happened
                        else:
                            acknowledged += amount

                    while not stop.is_set():
                        async with trio.open_nursery() as nursery:
                            for _ in range(4):
                                nursery.start_soon(one)

                for _ in range(kills):
                    stop = trio.Event()
                    async with trio.open_nursery() as nursery:
                        nursery.start_soon(stream, stop)
                        await trio.sleep(rng.uniform(0.05, 0.6))
                        payer.kill9()
                        stop.set()
                    await payer.start_and_wait()
                # Settle: one more acknowledged payment proves the channel resumed.
                await payer.call("pay-direct", channel_id=cid.hex(), amount=1)
                acknowledged += 1
                while True:
                    listed: Any = await payer.call("list-channels")
                    row = listed["channels"][0]
                    ch = payee.channel(cid)
                    if row["version"] == ch.version and ch.pending is None:
                        break
                    await trio.sleep(0.05)
                moved = ch.allocation.balances[0][ch.me]
                assert (row["balance"], row["peer_balance"]) == (OPEN_AMOUNT - moved, moved)
                assert acknowledged <= moved <= acknowledged + in_doubt, "nothing acknowledged was lost"
                payer_address = bytes.fromhex(info["l1_account"])
                versions = {v: d for (s, v), d in recorder.seen.items() if s == payer_address}
                assert len(versions) > kills, "the payer signed many versions"
                assert all(len(d) == 1 for d in versions.values()), "the payer never signed two states at one version"
                closed: Any = await payer.call("close", channel_id=cid.hex())
                assert closed["state"] == "settled"
                assert await ledger.balance(payee.l1_address) == moved


async def test_stale_state_adversary_is_refuted(tmp_path: Path) -> None:
    with trio.fail_after(180):
        async with devnet(tmp_path) as (addr, ledger), node_procs(tmp_path, addr, "honest",
                                                                           settings=SHORT_WINDOWS) as nodes:
            honest = nodes["honest"]
            info: Any = await honest.call("getinfo")
            await fund(ledger, info["l1_account"], 10_000)
            config = load_config(tmp_path / "cheat", listen="/ip4/127.0.0.1/tcp/0", **SHORT_WINDOWS)
            async with Node.open(config, ledger=ledger) as cheat:
                await fund(ledger, cheat.l1_address, 1)
                await honest.call("connect", address=cheat.addresses[0])
                opened: Any = await honest.call("open", peer_id=cheat.peer_id, amount=1_000, challenge_duration=3)
                cid = ChannelId(bytes.fromhex(opened["channel_id"]))
                await honest.call("pay-direct", channel_id=cid.hex(), amount=600)
                await cheat.wait_version(cid, 1)
                stale = cheat.channel(cid).latest  # holds 600 for the cheat
                await cheat.pay(cid, 500)  # now it is owed only 100
                params = cheat.channel(cid).params
                cheat_key = cheat.l1_key
            before_cheat = await ledger.balance(cheat_key.address)
            before_honest = await l1(ledger, info["l1_account"])
            # The cheat is offline now; it registers its stale state and hopes.
            await ledger.register(cheat_key, params, stale)
            while True:
                view = await ledger.channel(cid)
                if view.withdrawn:
                    break
                await trio.sleep(0.1)
            assert await ledger.balance(cheat_key.address) - before_cheat == 100
            assert await l1(ledger, info["l1_account"]) - before_honest == 900
            listed: Any = await honest.call("list-channels")
            assert listed["channels"][0]["state"] == "settled"


pytestmark = pytest.mark.filterwarnings("ignore")
