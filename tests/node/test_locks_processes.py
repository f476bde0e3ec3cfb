"""Hash-time locks between real node processes over loopback libp2p, on a devnet daemon:
one fulfilled off-chain through the control socket, and one whose payer is killed, which
the payee claims on the L1 with the secret before the lock's expiry, and one that expires
while its payee is gone, which the payer takes back on the L1."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import trio

from channels.core.ops import hash_preimage
from tests.node.test_processes import devnet, fund, l1, node_procs
from tests.procs import SHORT_WINDOWS

SECRET = bytes(range(32))
SETTINGS = {**SHORT_WINDOWS, "lock_margin": 8}


async def open_channel(a: Any, b: Any, ledger: Any) -> tuple[str, dict[str, Any], dict[str, Any]]:
    info_a: Any = await a.call("getinfo")
    info_b: Any = await b.call("getinfo")
    await fund(ledger, info_a["l1_account"], 10_000)
    await a.call("connect", address=info_b["addresses"][0])
    opened: Any = await a.call("open", peer_id=info_b["peer_id"], amount=1_000, challenge_duration=3)
    return opened["channel_id"], info_a, info_b


async def test_a_lock_is_fulfilled_between_processes(tmp_path: Path) -> None:
    with trio.fail_after(120):
        async with devnet(tmp_path) as (addr, ledger), node_procs(tmp_path, addr, "a", "b",
                                                                   settings=SETTINGS) as nodes:
            a, b = nodes["a"], nodes["b"]
            cid, _, _ = await open_channel(a, b, ledger)
            added: Any = await a.call("add-lock", channel_id=cid, amount=300, hashlock=hash_preimage(SECRET).hex(),
                                      expiry=await ledger.now() + 3_600)
            assert added["balance"] == 700
            done: Any = await b.call("fulfill-lock", channel_id=cid, lock_id=added["lock_id"], preimage=SECRET.hex())
            assert (done["balance"], done["peer_balance"]) == (300, 700)


async def test_the_payee_claims_a_lock_on_chain_after_the_payer_is_killed(tmp_path: Path) -> None:
    with trio.fail_after(150):
        async with devnet(tmp_path) as (addr, ledger), node_procs(tmp_path, addr, "a", "b",
                                                                   settings=SETTINGS) as nodes:
            a, b = nodes["a"], nodes["b"]
            cid, info_a, info_b = await open_channel(a, b, ledger)
            expiry = await ledger.now() + 15  # the challenge window (3 s) is far shorter than this
            added: Any = await a.call("add-lock", channel_id=cid, amount=300, hashlock=hash_preimage(SECRET).hex(),
                                      expiry=expiry)
            start_a, start_b = await l1(ledger, info_a["l1_account"]), await l1(ledger, info_b["l1_account"])
            a.kill9()  # the payer vanishes with the lock pending
            with trio.move_on_after(1):  # never countersigned; the secret is stored first
                await b.call("fulfill-lock", channel_id=cid, lock_id=added["lock_id"], preimage=SECRET.hex())
            while True:
                rows: Any = await b.call("list-channels")
                if rows["channels"][0]["state"] == "settled":
                    break
                await trio.sleep(0.2)
            secret_time = await ledger.secret_time(hash_preimage(SECRET))
            assert secret_time is not None and secret_time < expiry, "the secret was registered in time"
            assert await l1(ledger, info_b["l1_account"]) - start_b == 300
            assert await l1(ledger, info_a["l1_account"]) - start_a == 700


async def test_an_expired_lock_returns_to_its_payer_on_chain_after_the_payee_is_killed(tmp_path: Path) -> None:
    with trio.fail_after(150):
        async with devnet(tmp_path) as (addr, ledger), node_procs(tmp_path, addr, "a", "b",
                                                                   settings=SETTINGS) as nodes:
            a, b = nodes["a"], nodes["b"]
            cid, info_a, _ = await open_channel(a, b, ledger)
            expiry = await ledger.now() + 4
            await a.call("add-lock", channel_id=cid, amount=300, hashlock=hash_preimage(SECRET).hex(), expiry=expiry)
            start_a = await l1(ledger, info_a["l1_account"])
            b.kill9()  # the payee vanishes and never fails the lock back
            while True:  # the payer's node goes to the L1 once the lock expired, and withdraws
                rows: Any = await a.call("list-channels")
                if rows["channels"][0]["state"] == "settled":
                    break
                await trio.sleep(0.2)
            assert await ledger.secret_time(hash_preimage(SECRET)) is None
            assert await l1(ledger, info_a["l1_account"]) - start_a == 1_000, "700 balance + the 300 lock back"
