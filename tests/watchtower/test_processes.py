"""The tower on real processes: a devnet daemon, a tower daemon, an honest node daemon, and a cheater.

The honest node hands its newest co-signed state to the tower (read from its store: the
node's own tower client comes later), then goes offline. The cheater (the hostile peer of
``channels.testing.hostile``, which keeps every state both signed) registers an old state
that pays it more. The tower must refute before the window ends, so the L1 pays the honest
node what it is owed although it never came back; and it must do so after a restart in the
middle of the window too.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import trio

from channels.core.ids import Address, ChannelId
from channels.net import open_host
from channels.store.records import channel_from_bytes
from channels.testing.hostile import HostilePeer, open_hostile_peer
from channels.watchtower.appointment import Appointment
from channels.watchtower.client import appointment_of, open_tower_client, send_appointment
from channels.watchtower.errors import MalformedAppointment, NonMonotonic, Unsigned
from channels.watchtower.protocol import decode_response
from tests.node.test_processes import devnet
from tests.procs import CLI, ENV, LOOPBACK, REPO, SHORT_WINDOWS, NodeProc, Proc

pytestmark = pytest.mark.filterwarnings("ignore")


class TowerProc(Proc):
    def __init__(self, data_dir: Path, devnet_addr: str) -> None:
        super().__init__(["tower", "start", "--data-dir", str(data_dir), "--listen", LOOPBACK, "--devnet",
                          devnet_addr], data_dir.parent / f"{data_dir.name}.log")
        self.data_dir = data_dir

    async def start_and_wait(self, timeout: float = 40) -> str:
        (self.data_dir / "tower.addr").unlink(missing_ok=True)  # left behind by a killed tower
        self.start()
        with trio.fail_after(timeout):
            while True:
                assert self.proc is not None and self.proc.poll() is None, self.log.read_text()[-3000:]
                try:
                    address = (self.data_dir / "tower.addr").read_text().strip()
                except OSError:
                    address = ""
                if address:
                    return address
                await trio.sleep(0.1)

    def status(self) -> dict[str, Any]:
        done = subprocess.run([*CLI, "tower", "status", "--data-dir", str(self.data_dir), "--json"],
                              capture_output=True, text=True, env=ENV, cwd=REPO, timeout=60)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)  # type: ignore[no-any-return]


def node_appointment(data_dir: Path, cid: ChannelId) -> Appointment:
    """The node's newest co-signed state of ``cid``, read from its store without writing to it."""
    conn = sqlite3.connect(f"file:{data_dir / 'node.db'}?mode=ro", uri=True)
    try:
        (record,) = conn.execute("SELECT record FROM channels WHERE channel_id = ?", (cid,)).fetchone()
    finally:
        conn.close()
    return appointment_of(channel_from_bytes(bytes(record)))


@asynccontextmanager
async def scene(tmp_path: Path) -> AsyncIterator[tuple[Any, str, NodeProc, TowerProc]]:
    """A devnet, a tower and an honest node, each a process."""
    async with devnet(tmp_path) as (addr, ledger):
        tower = TowerProc(tmp_path / "tower", addr)
        honest = NodeProc(tmp_path / "honest", addr, SHORT_WINDOWS)
        try:
            await tower.start_and_wait()
            await honest.start_and_wait()
            yield ledger, addr, honest, tower
        finally:
            honest.stop()
            tower.stop()


async def cheat_setup(ledger: Any, peer: HostilePeer, honest: NodeProc, *, window: int) -> tuple[ChannelId, str]:
    """The cheater opens a channel with the honest node and pays it: version 0 owes the honest
    node nothing, version 2 owes it 600. Returns the channel id and the honest L1 account."""
    info: Any = await honest.call("getinfo")
    await peer.fund(1_000)
    await peer.connect(info["addresses"][0])
    cid = await peer.open_channel(1_000, challenge_duration=window)
    await peer.pay(cid, 250)
    await peer.pay(cid, 350)
    return cid, info["l1_account"]


async def wait_refuted(ledger: Any, cid: ChannelId, version: int, timeout: float) -> None:
    with trio.fail_after(timeout):
        while True:
            view = await ledger.channel(cid)
            assert not view.withdrawn, "withdrawn before the tower refuted"
            if view.registered is not None and view.registered.state.version == version:
                return
            await trio.sleep(0.1)


async def test_the_tower_refutes_for_an_offline_client(tmp_path: Path) -> None:
    with trio.fail_after(240):
        async with scene(tmp_path) as (ledger, _addr, honest, tower), open_hostile_peer(ledger=ledger) as peer:
            tower_addr = (tower.data_dir / "tower.addr").read_text().strip()
            cid, account = await cheat_setup(ledger, peer, honest, window=12)
            honest.stop()  # the client goes offline for good
            appt = node_appointment(honest.data_dir, cid)
            assert appt.version == 2 and appt.signed.is_fully_signed
            async with open_host(identity_seed=os.urandom(32), listen=[]) as host:
                async with open_tower_client(host, tower_addr) as client:
                    # Abuse first: a half-signed state and, once stored, an older version are refused.
                    with pytest.raises(Unsigned):
                        await client.send(Appointment(params=appt.params, signed=appt.signed.with_signature(1, b"")))
                    with pytest.raises(MalformedAppointment):  # bytes that are no request at all
                        decode_response(await client._rpc.call(b"\x92\x02\xc4\x03abc"))
                    receipt = await client.send(appt)
                    with pytest.raises(NonMonotonic):
                        await client.send(Appointment(params=appt.params, signed=peer.stale_state(cid, 1)))
                assert receipt.version == 2 and receipt.subject == cid and receipt.verifies()
                assert (await send_appointment(host, tower_addr, appt)).version == 2  # a resend: the same receipt
            status = tower.status()
            assert (status["appointments"], status["clients"], status["running"]) == (1, 1, True)
            assert status["peer_id"] == tower_addr.rsplit("/", 1)[-1]

            before = {who: await ledger.balance(who) for who in (peer.l1_address, Address(bytes.fromhex(account)))}
            await peer.register_stale(cid, 0)  # the cheater's old state: it keeps all 1000
            await wait_refuted(ledger, cid, 2, timeout=12)
            await peer.withdraw(cid, timeout=60)
            assert await ledger.balance(Address(bytes.fromhex(account))) - before[Address(bytes.fromhex(account))] \
                == 600, "the honest node was not paid what it is owed"
            assert await ledger.balance(peer.l1_address) - before[peer.l1_address] == 400
            assert "refuted channel" in tower.log.read_text()


WINDOW = 24  # seconds: room for a tower process to start again under load


async def test_a_tower_restarted_mid_window_still_wins(tmp_path: Path) -> None:
    with trio.fail_after(240):
        async with scene(tmp_path) as (ledger, _addr, honest, tower), open_hostile_peer(ledger=ledger) as peer:
            tower_addr = (tower.data_dir / "tower.addr").read_text().strip()
            cid, account = await cheat_setup(ledger, peer, honest, window=WINDOW)
            honest.stop()
            async with open_host(identity_seed=os.urandom(32), listen=[]) as host:
                await send_appointment(host, tower_addr, node_appointment(honest.data_dir, cid))
            tower.kill9()  # the tower dies with the appointment on disk
            honest_l1 = Address(bytes.fromhex(account))
            before = await ledger.balance(honest_l1)
            await peer.register_stale(cid, 0)
            registered_at = await ledger.now()
            await trio.sleep(2)  # part of the window passes with nobody watching
            new_addr = await tower.start_and_wait()
            assert new_addr.rsplit("/", 1)[-1] == tower_addr.rsplit("/", 1)[-1]  # the same peer id
            await wait_refuted(ledger, cid, 2, timeout=WINDOW - 2)
            assert await ledger.now() < registered_at + WINDOW
            await peer.withdraw(cid, timeout=60)
            assert await ledger.balance(honest_l1) - before == 600
            assert "refuted channel" in tower.log.read_text()


async def test_tower_stop_and_status_from_the_cli(tmp_path: Path) -> None:
    with trio.fail_after(120):
        async with devnet(tmp_path) as (addr, _ledger):
            tower = TowerProc(tmp_path / "tower", addr)
            try:
                await tower.start_and_wait()
                status = tower.status()
                assert status["running"] and status["appointments"] == 0 and status["addresses"]
                busy = subprocess.run([*CLI, "tower", "start", "--data-dir", str(tower.data_dir), "--devnet", addr],
                                      capture_output=True, text=True, env=ENV, cwd=REPO, timeout=60)
                assert busy.returncode == 1 and busy.stderr.startswith("error: another tower is running")
                stop = subprocess.run([*CLI, "tower", "stop", "--data-dir", str(tower.data_dir)], capture_output=True,
                                      text=True, env=ENV, cwd=REPO, timeout=60)
                assert stop.returncode == 0, stop.stderr
                assert tower.proc is not None and tower.proc.wait(timeout=10) == 0
                assert not (tower.data_dir / "tower.addr").exists() and not (tower.data_dir / "tower.pid").exists()
                assert tower.status()["running"] is False
                again = subprocess.run([*CLI, "tower", "stop", "--data-dir", str(tower.data_dir)],
                                       capture_output=True, text=True, env=ENV, cwd=REPO, timeout=60)
                assert again.returncode == 1 and again.stderr.strip().startswith("error: no tower is running")
            finally:
                tower.stop()


async def test_a_tower_process_refuses_bad_appointments_and_keeps_serving(tmp_path: Path) -> None:
    """Wrong domain, too large, half-signed, replayed-older and garbage, against a tower daemon
    process: each refused with its typed error, nothing stored, and an honest client still served."""
    from channels.watchtower.appointment import MAX_APPOINTMENT_BYTES
    from channels.watchtower.errors import WrongDomain
    from tests.watchtower.helpers import appointment, channel

    with trio.fail_after(120):
        async with devnet(tmp_path) as (addr, _ledger):
            tower = TowerProc(tmp_path / "tower", addr)
            try:
                tower_addr = await tower.start_and_wait()
                good = appointment(channel(b"good"), 3)
                async with open_host(identity_seed=os.urandom(32), listen=[]) as host, \
                        open_tower_client(host, tower_addr) as client:
                    with pytest.raises(WrongDomain):  # a channel of another chain: a tower can't act for it
                        await client.send(appointment(channel(b"other", chain_id=7), 1))
                    with pytest.raises(MalformedAppointment, match="app data longer"):  # past the state's bound
                        await client.send(appointment(channel(b"big"), 1, app_data=bytes(MAX_APPOINTMENT_BYTES)))
                    with pytest.raises(Unsigned):
                        await client.send(Appointment(params=good.params, signed=good.signed.with_signature(0, b"")))
                    with pytest.raises(MalformedAppointment):
                        decode_response(await client._rpc.call(os.urandom(64)))
                    assert tower.status()["appointments"] == 0, "a refused appointment was stored"
                    assert (await client.send(good)).version == 3  # the same connection is still served
                    with pytest.raises(NonMonotonic):
                        await client.send(appointment(channel(b"good"), 2))
                status = tower.status()
                assert (status["appointments"], status["clients"], status["running"]) == (1, 1, True)
            finally:
                tower.stop()
