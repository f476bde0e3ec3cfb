"""SQLite persistence and the event log: restarts keep everything, kill -9 loses nothing committed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import trio
from devnet_util import keys, make_params, signed

from channels.chain.base import AlreadyWithdrawn, WindowOpen
from channels.chain.devnet.ledger import Devnet
from channels.core.ids import NATIVE
from channels.core.state import Lock
from channels.crypto import sha256

pytestmark = pytest.mark.trio
A, B = keys("alice", "bob")
PARAMS = make_params([A, B], duration=100)


async def open_dispute(dn: Devnet) -> None:
    await dn.faucet(A.address, 500)
    await dn.faucet(B.address, 500)
    await dn.deposit(A, PARAMS.channel_id, NATIVE, 100)
    await dn.deposit(B, PARAMS.channel_id, NATIVE, 100)
    await dn.register_secret(A, b"secret")
    await dn.checkpoint(A, PARAMS, signed(PARAMS, [A, B], 2, (100, 100)))
    await dn.register(A, PARAMS, signed(PARAMS, [A, B], 3, (150, 50)))


async def test_restart_keeps_accounts_channels_disputes_and_deadlines(tmp_path: Path) -> None:
    path = tmp_path / "devnet.db"
    with Devnet(path, clock=None, chain_id=1337) as dn:
        await open_dispute(dn)
        dn.advance_time(40)
        digest, view, head = dn.state_digest(), await dn.channel(PARAMS.channel_id), dn.head
    with Devnet(path, clock=None, chain_id=1) as again:  # an existing ledger keeps its chain id
        assert again.state_digest() == digest
        assert again.head == head and again.chain_id == 1337
        assert await again.channel(PARAMS.channel_id) == view
        assert await again.nonce(A.address) == 4
        again.advance_time(59)
        assert await again.now() == head.time + 59  # the time shift survived the restart
        with pytest.raises(WindowOpen):
            await again.withdraw(B, PARAMS)
        again.advance_time(1)
        await again.withdraw(B, PARAMS)
        assert await again.balance(A.address) == 400 + 150


async def test_kill_9_after_commit_loses_nothing(tmp_path: Path) -> None:
    path = tmp_path / "devnet.db"
    script = textwrap.dedent(f"""
        import sys, time, trio
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from test_persistence import open_dispute
        from channels.chain.devnet.ledger import Devnet
        dn = Devnet({str(path)!r}, clock=None)
        trio.run(open_dispute, dn)
        print("committed", flush=True)
        time.sleep(60)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        with trio.fail_after(30):
            line = await trio.to_thread.run_sync(proc.stdout.readline)  # type: ignore[union-attr]
        assert line.strip() == "committed"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    with Devnet(path, clock=None) as dn:
        view = await dn.channel(PARAMS.channel_id)
        assert view.registered is not None and view.registered.state.version == 3
        assert view.deadline is not None and view.holdings == {"native": 200}
        assert await dn.secret_time(b"\x00" * 32) is None
        assert await dn.balance(A.address) == 400
        assert [ev.kind for ev in dn.store.events_after(0)][-1] == "Registered"


async def test_events_replay_from_a_cursor_then_follow_live(dn: Devnet) -> None:
    await dn.faucet(A.address, 10)
    await dn.faucet(B.address, 20)
    seen = []

    async def watch(after: int) -> None:
        async for ev in dn.events(after=after):
            seen.append((ev.cursor, ev.kind))
            if len(seen) == 3:
                return

    async with trio.open_nursery() as nursery:
        nursery.start_soon(watch, 1)  # the node stored cursor 1: it gets 2, then live ones
        await trio.testing.wait_all_tasks_blocked()
        assert seen == [(2, "Minted")]
        await dn.transfer(A, B.address, 5)
        await dn.deposit(B, PARAMS.channel_id, NATIVE, 5)
    assert seen == [(2, "Minted"), (3, "Transfer"), (4, "Deposited")]


async def test_events_resume_from_a_cursor_after_restart(tmp_path: Path) -> None:
    path = tmp_path / "devnet.db"
    with Devnet(path, clock=None) as dn:
        await open_dispute(dn)
        cursor = dn.store.events_after(0)[2].cursor  # the first deposit
    with Devnet(path, clock=None) as dn:
        got = []
        with trio.move_on_after(1):
            async for ev in dn.events(after=cursor):
                got.append(ev.kind)
                if ev.kind == "Registered":
                    break
        assert got == ["Deposited", "SecretRegistered", "Checkpointed", "Registered"]


async def test_a_lock_in_escrow_survives_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "devnet.db"
    with Devnet(path, clock=None) as dn:
        await open_dispute(dn)
        t0 = await dn.now()
        lock = Lock(asset=NATIVE, amount=40, hashlock=sha256(b"late"), expiry=t0 + 3600, payer=0, payee=1)
        await dn.refute(B, PARAMS, signed(PARAMS, [A, B], 4, (110, 50), locks=[lock]))
        dn.advance_time(100)
        await dn.withdraw(A, PARAMS)
        view, digest = await dn.channel(PARAMS.channel_id), dn.state_digest()
        assert view.withdrawn and view.holdings == {"native": 40}
    with Devnet(path, clock=None) as again:
        assert again.state_digest() == digest and await again.channel(PARAMS.channel_id) == view
        with pytest.raises(WindowOpen):
            await again.withdraw(A, PARAMS)
        await again.register_secret(B, b"late")
        await again.withdraw(A, PARAMS)
        assert (await again.balance(A.address), await again.balance(B.address)) == (400 + 110, 400 + 50 + 40)
    with Devnet(path, clock=None) as again:
        with pytest.raises(AlreadyWithdrawn):
            await again.withdraw(B, PARAMS)
