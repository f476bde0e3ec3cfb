"""The devnet daemon: real processes over loopback libp2p."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from contextlib import aclosing, asynccontextmanager
from pathlib import Path

import attrs
import pytest
import trio
from daemon_util import DaemonProc
from devnet_util import counter_data, keys, make_params, signed

from channels import encoding
from channels.chain.base import (
    AlreadyWithdrawn,
    BadNonce,
    BadSignature,
    InsufficientBalance,
    InvalidMove,
    LedgerUnavailable,
    Malformed,
    StaleVersion,
    TooLarge,
    WindowOpen,
    WrongChain,
)
from channels.chain.devnet import codec as rc
from channels.chain.devnet import tx as t
from channels.chain.devnet.client import RemoteDevnet, open_remote_devnet
from channels.chain.devnet.scheme import DevnetScheme
from channels.chain.devnet.store import file_digest
from channels.core.ids import NATIVE
from channels.core.state import Lock
from channels.crypto import sha256

pytestmark = pytest.mark.trio
A, B, C = keys("alice", "bob", "carol")
SCHEME = DevnetScheme()
PEER = Path(__file__).parent / "peer_proc.py"


@asynccontextmanager
async def unchanged(proc: DaemonProc, error: type[BaseException]):
    """The block must raise ``error`` and leave the daemon's ledger unchanged (blocks aside)."""
    before = file_digest(proc.db, with_head=False)
    with pytest.raises(error):
        yield
    assert file_digest(proc.db, with_head=False) == before


async def test_remote_ledger_round_trip(daemon: DaemonProc) -> None:
    async with open_remote_devnet(daemon.address) as dn:
        status = await dn.status()
        assert status.chain_id == 1337 and status.height >= 1
        before = await dn.balance(B.address)
        await dn.faucet(A.address, 500)
        await dn.transfer(A, B.address, 200)
        await dn.transfer(A, B.address, 1)  # the nonce is cached and advanced locally
        assert await dn.balance(B.address) == before + 201
        assert (await dn.balances(B.address))["native"] == before + 201
        await dn.create_token(C, "GOLD")
        await dn.mint(C, A.address, 9, "GOLD")
        assert (await dn.balances(A.address))["GOLD"] == 9
        page = await dn.events_page(after=0)
        assert [ev.kind for ev in page][:1] == ["Minted"]
        assert await dn.secret_time(b"\x01" * 32) is None


async def test_two_remote_clients_sharing_one_key_recover_the_nonce(daemon: DaemonProc) -> None:
    async with open_remote_devnet(daemon.address) as one, open_remote_devnet(daemon.address) as two:
        await one.faucet(C.address, 10)
        await one.transfer(C, A.address, 1)
        await two.transfer(C, A.address, 1)  # two's cache is fresh
        await one.transfer(C, A.address, 1)  # one's cached nonce is stale: BadNonce, refetch, retry


async def test_bad_input_gets_typed_errors_and_changes_nothing(daemon: DaemonProc) -> None:
    async with open_remote_devnet(daemon.address) as dn:
        await dn.faucet(A.address, 1000)
        await dn.faucet(B.address, 1000)
        nonce = await dn.nonce(A.address)
        op = t.Transfer(to=B.address, asset=NATIVE, amount=1)
        good = t.sign_tx(A, chain_id=1337, nonce=nonce, op=op)
        async with unchanged(daemon, BadSignature):
            await dn.submit(attrs.evolve(good, signature=bytes(64)))
        async with unchanged(daemon, WrongChain):
            await dn.submit(t.sign_tx(A, chain_id=7, nonce=nonce, op=op))
        await dn.submit(good)
        async with unchanged(daemon, BadNonce):
            await dn.submit(good)  # replay
        async with unchanged(daemon, InsufficientBalance):
            await dn.transfer(A, B.address, 10**12)
        async with unchanged(daemon, Malformed):
            await dn.submit_bytes(b"\x93\x01\x02")
        async with unchanged(daemon, TooLarge):
            await dn.submit_bytes(b"\x00" * (t.MAX_TX_SIZE + 1))
        async with unchanged(daemon, TooLarge):
            await dn.call_raw(b"\x00" * (rc.MAX_REQUEST + 1))
        for bad in (b"", b"\xc1", encoding.encode([999]), encoding.encode([rc.NONCE, b"short"]),
                    encoding.encode([rc.FAUCET, A.address, "native", -5]), b"\x81\xa1a\x01"):
            async with unchanged(daemon, Malformed):
                await dn.call_raw(bad)

        params = make_params([A, B], duration=30, nonce=os.urandom(8))
        await dn.deposit(A, params.channel_id, NATIVE, 10)
        await dn.deposit(B, params.channel_id, NATIVE, 10)
        await dn.register(A, params, signed(params, [A, B], 5, (10, 10)))
        async with unchanged(daemon, StaleVersion):
            await dn.refute(B, params, signed(params, [A, B], 5, (0, 20)))
        async with unchanged(daemon, WindowOpen):
            await dn.withdraw(B, params)

        game = make_params([A, B], duration=30, nonce=os.urandom(8), app_id="test-counter")
        v4 = signed(game, [A, B], 4, (0, 0), app_data=counter_data(4))
        await dn.register(A, game, v4)
        bad_move = attrs.evolve(v4.state, version=5, app_data=counter_data(9))
        async with unchanged(daemon, InvalidMove):
            await dn.progress(A, game, v4, bad_move, 0, SCHEME.sign(A, game, bad_move))


async def test_two_client_processes_fund_dispute_and_settle(daemon: DaemonProc) -> None:
    nonce = os.urandom(16).hex()
    procs = {role: subprocess.Popen([sys.executable, str(PEER), role, daemon.address, nonce],
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for role in ("bob", "alice")}
    results = {}
    for role, proc in procs.items():
        out, err = await trio.to_thread.run_sync(lambda p=proc: p.communicate(timeout=90))
        assert proc.returncode == 0, err
        results[role] = json.loads(out.strip().splitlines()[-1])
    # alice registered the stale v1 (150/50); bob refuted with v2 (60/140), which was paid
    assert results["alice"] == {"role": "alice", "gained": 1000 - 100 + 60, "withdrawn": True, "paid_version": 2}
    assert results["bob"] == {"role": "bob", "gained": 1000 - 100 + 140, "withdrawn": True, "paid_version": 2}


async def test_daemon_killed_mid_dispute_keeps_the_dispute_and_its_deadline(tmp_path: Path) -> None:
    proc = DaemonProc(tmp_path / "devnet", block_time=0.1)
    address = proc.start()
    params = make_params([A, B], duration=4, nonce=b"restart")
    try:
        with trio.fail_after(60):
            async with open_remote_devnet(address) as dn:
                await dn.faucet(A.address, 100)
                await dn.faucet(B.address, 100)
                await dn.deposit(A, params.channel_id, NATIVE, 50)
                await dn.deposit(B, params.channel_id, NATIVE, 50)
                await dn.register(A, params, signed(params, [A, B], 3, (20, 80)))
                before = await dn.channel(params.channel_id)
                assert before.deadline is not None

                proc.stop(signal.SIGKILL)  # the registration was answered, so it is on disk
                with pytest.raises(LedgerUnavailable):
                    await dn.channel(params.channel_id)
                assert proc.start() == address  # same identity and port: same multiaddr

                after = await dn.channel(params.channel_id)  # the client reconnects by itself
                assert after == before
                async with aclosing(dn.events(after=0)) as events:
                    kinds = [ev.kind async for ev in _until(events, "Registered")]
                assert kinds[-3:] == ["Deposited", "Deposited", "Registered"]
                if await dn.now() < before.deadline:
                    with pytest.raises(WindowOpen):
                        await dn.withdraw(B, params)
                await _wait_until(dn, before.deadline)
                await dn.withdraw(B, params)
                assert (await dn.balance(A.address), await dn.balance(B.address)) == (70, 130)
                with pytest.raises(AlreadyWithdrawn):
                    await dn.withdraw(A, params)
    finally:
        proc.stop()
    assert not (tmp_path / "devnet" / "devnet.addr").exists()  # a clean stop removes the address file


async def test_event_subscription_survives_a_daemon_restart(tmp_path: Path) -> None:
    proc = DaemonProc(tmp_path / "devnet", block_time=0.2)
    address = proc.start()
    seen: list[tuple[int, str]] = []
    try:
        with trio.fail_after(60):
            async with open_remote_devnet(address) as dn, trio.open_nursery() as nursery:
                async def watch() -> None:
                    async for ev in dn.events(after=0):
                        seen.append((ev.cursor, ev.kind))
                        if len(seen) == 3:
                            return

                nursery.start_soon(watch)
                await dn.faucet(A.address, 1)
                proc.stop()
                proc.start()
                await dn.faucet(A.address, 2)
                await dn.faucet(A.address, 3)
        assert seen == [(1, "Minted"), (2, "Minted"), (3, "Minted")]
    finally:
        proc.stop()


async def _until(events, kind: str):
    async for ev in events:
        yield ev
        if ev.kind == kind:
            return


async def _wait_until(dn: RemoteDevnet, time: int) -> None:
    while await dn.now() < time:
        await trio.sleep(0.1)


async def test_a_lock_left_in_escrow_is_resolved_through_the_daemon(daemon: DaemonProc) -> None:
    """Client -> daemon -> resolution: the withdraw pays the balances and keeps the lock, a
    preimage registered afterwards (before the expiry) pays it to the payee, and the
    ``LockResolved`` event travels over the RPC."""
    payer, payee = keys("rpc-lock-payer", "rpc-lock-payee")
    params = make_params([payer, payee], duration=1, nonce=b"rpc-lock")
    with trio.fail_after(30):
        async with open_remote_devnet(daemon.address) as dn:
            for key in (payer, payee):
                await dn.faucet(key.address, 100)
                await dn.deposit(key, params.channel_id, NATIVE, 100)
            lock = Lock(asset=NATIVE, amount=25, hashlock=sha256(b"rpc preimage"), expiry=await dn.now() + 3600,
                        payer=0, payee=1)
            await dn.register(payer, params, signed(params, [payer, payee], 1, (75, 100), locks=[lock]))
            await _wait_until(dn, (await dn.channel(params.channel_id)).deadline)
            await dn.withdraw(payer, params)
            assert (await dn.balance(payer.address), await dn.balance(payee.address)) == (75, 100)
            view = await dn.channel(params.channel_id)
            assert view.withdrawn and view.holdings == {"native": 25}
            async with unchanged(daemon, WindowOpen):  # undecided: the payer cannot take it back
                await dn.withdraw(payer, params)
            await dn.register_secret(payee, b"rpc preimage")
            (ev,) = await dn.send(payee, t.Withdraw(params=params))
            assert (ev.kind, ev.channel_id) == ("LockResolved", params.channel_id)
            assert {k: ev.data[k] for k in ("version", "index", "fulfilled", "to", "asset", "amount")} == {
                "version": 1, "index": 0, "fulfilled": True, "to": payee.address, "asset": "native", "amount": 25}
            assert (await dn.balance(payer.address), await dn.balance(payee.address)) == (75, 125)
            assert (await dn.channel(params.channel_id)).holdings == {}
            assert (await dn.events_page(after=ev.cursor - 1))[0] == ev
            async with unchanged(daemon, AlreadyWithdrawn):
                await dn.withdraw(payer, params)


async def test_second_daemon_on_the_same_data_dir_is_refused(daemon: DaemonProc) -> None:
    cmd = [sys.executable, "-m", "channels", "devnet", "start", "--data-dir", str(daemon.data_dir)]
    with trio.fail_after(60):
        run = await trio.run_process(cmd, capture_stdout=True, capture_stderr=True, check=False)
    assert run.returncode == 1 and b"another devnet daemon" in run.stderr
