"""A watchtower guarding a game channel and a channel with a pending lock, on real processes
(a devnet daemon, a tower daemon, two node daemons over loopback libp2p; issue 12):

* a game channel: the cheater (``--dev``) registers a stale game state while the honest
  node is stopped, and the tower refutes with the newest one; on a second channel the
  cheater also forces a move from its stale state (``progress``) while the tower is paused,
  and the tower, catching up, refutes the forced move (proto/07-watchtower.md section 7.1).
  Each payout is the newest state's allocation, to the unit.
* a pending lock: the honest payee learns the secret and fulfils the lock while the payer
  is paused (SIGSTOP), so the fulfillment is never countersigned; its tower gets the
  preimage at the same version. The payer registers a state from before the lock; the
  tower refutes with the state holding the lock and registers the preimage before the
  expiry, so the payee gets its balance plus the lock.

The tower needs no game rules: it only stores and submits states both players signed; the
L1 checks the forced move with the rules it was started with (``devnet start --apps``).
"""

from __future__ import annotations

import hashlib
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import attrs
import trio

from channels.chain.base import ChannelOnChain
from channels.chain.devnet.client import open_remote_devnet
from channels.chain.devnet.scheme import DevnetKey, DevnetScheme
from channels.core.ids import ChannelId, Version
from channels.core.state import ChannelParams, SignedState
from channels.keyfile import L1_ACCOUNT, read_key
from channels.watchtower.store import TowerStore
from tests.apps import RaceToTen
from tests.node.test_app_processes import balance, channel, wait_for
from tests.node.test_cli import cli
from tests.procs import CLI, ENV, LOOPBACK, REPO, SHORT_WINDOWS, NodeProc, Proc, wait_for_file

APP = "tests.apps:RaceToTen"
WINDOW = "8"  # seconds of challenge window (blocks every 0.2 s)


@attrs.define
class Net:
    devnet: str
    tower: Proc
    tower_dir: Path
    cheat: NodeProc
    honest: NodeProc

    @property
    def c(self) -> str:
        return str(self.cheat.data_dir)

    @property
    def h(self) -> str:
        return str(self.honest.data_dir)

    def balances(self) -> tuple[int, int]:
        """(cheater, honest) native L1 balances."""
        return (balance(self.devnet, self.cheat.data_dir / "l1.key"),
                balance(self.devnet, self.honest.data_dir / "l1.key"))

    def held(self, cid: str) -> Any:
        """The tower's appointment for ``cid`` (its store, read-only), or None."""
        store = TowerStore(self.tower_dir / "tower.db", readonly=True)
        try:
            stored = store.appointment(ChannelId(bytes.fromhex(cid)))
            return None if stored is None else stored.appointment
        finally:
            store.close()


@contextmanager
def network(tmp_path: Path, settings: dict[str, object], devnet_args: tuple[str, ...] = ()) -> Iterator[Net]:
    """A devnet, a tower, a cheater (``--dev``) and an honest node that uses the tower."""
    dv = Proc(["devnet", "start", "--data-dir", str(tmp_path / "dv"), "--listen", LOOPBACK, "--block-time", "0.2",
               *devnet_args], tmp_path / "dv.log")
    procs: list[Proc] = [dv]
    try:
        devnet = wait_for_file(tmp_path / "dv" / "devnet.addr", dv.start(), 30)
        tower = Proc(["tower", "start", "--data-dir", str(tmp_path / "tower"), "--listen", LOOPBACK,
                      "--devnet", devnet], tmp_path / "tower.log")
        cheat = NodeProc(tmp_path / "cheat", devnet, {**settings, "dev": True})
        honest = NodeProc(tmp_path / "honest", devnet, settings)
        procs += [tower, cheat, honest]
        tower_addr = wait_for_file(tmp_path / "tower" / "tower.addr", tower.start(), 30)
        for node in (cheat, honest):
            node.start()
        for node in (cheat, honest):
            assert node.proc is not None
            wait_for_file(node.data_dir / "node.addr", node.proc, 30)
        net = Net(devnet=devnet, tower=tower, tower_dir=tmp_path / "tower", cheat=cheat, honest=honest)
        cli("--data-dir", net.h, "tower", "add", tower_addr)
        cli("--data-dir", net.c, "connect", (honest.data_dir / "node.addr").read_text().strip())
        yield net
    finally:
        for proc in procs:  # a paused daemon is resumed, so that it can stop
            if proc.proc is not None and proc.proc.poll() is None:
                proc.proc.send_signal(signal.SIGCONT)
        for proc in reversed(procs):
            proc.stop()


def wait_acknowledged(net: Net, cid: str, version: int) -> None:
    def done() -> bool:
        (tower,) = cli("--data-dir", net.h, "tower", "list")["towers"]
        return bool(tower["status"] == "ok" and tower["channels"].get(cid) == version and tower["pending"] == 0)
    wait_for(f"the tower acknowledges version {version} of {cid[:12]}", done)


def on_l1(devnet: str, cid: str) -> ChannelOnChain:
    async def read() -> ChannelOnChain:
        async with open_remote_devnet(devnet) as ledger:
            return await ledger.channel(ChannelId(bytes.fromhex(cid)))
    return trio.run(read)


def secret_time(devnet: str, secret: bytes) -> int | None:
    async def read() -> int | None:
        async with open_remote_devnet(devnet) as ledger:
            return await ledger.secret_time(hashlib.sha256(secret).digest())
    return trio.run(read)


def force_stale_move(devnet: str, key_file: Path, params: ChannelParams, mover: int, payload: bytes) -> SignedState:
    """What a cheater does with its own tools: a move forced on the L1 from the stale state
    it registered (``progress``), signed by itself alone."""
    key = DevnetKey(read_key(key_file, use=L1_ACCOUNT))
    scheme = DevnetScheme()

    async def force() -> SignedState:
        async with open_remote_devnet(devnet) as ledger:
            view = await ledger.channel(params.channel_id)
            assert view.registered is not None
            prev = view.registered
            moved = RaceToTen().apply_move(params, prev.state, payload, mover)
            nxt = attrs.evolve(moved, version=Version(prev.state.version + 1))
            await ledger.progress(key, params, prev, nxt, mover, scheme.sign(key, params, nxt))
            return prev
    return trio.run(force)


def play(net: Net, cid: str) -> dict[str, Any]:
    """Four moves of race-to-ten; the honest node (participant 0) moves first and small, so the
    first state is the one the cheater prefers: it paid the least there."""
    for version, (who, step) in enumerate(((net.h, "01"), (net.c, "03"), (net.h, "01"), (net.c, "03")), 1):
        assert cli("--data-dir", who, "move", cid, step)["version"] == version
    newest = channel(net.honest.data_dir, cid)
    # The mover pays a coin a step: honest 20-1+3-1+3 = 24, cheater 16; after move 1, 19 and 21.
    assert (newest["version"], newest["balance"], newest["peer_balance"]) == (4, 24, 16), newest
    return newest


def test_a_tower_refutes_stale_game_states_and_a_move_forced_from_one(tmp_path: Path) -> None:
    settings = {**SHORT_WINDOWS, "auto_accept_funding": 100, "apps": [APP]}
    with network(tmp_path, settings, ("--apps", APP)) as net:
        for node in (net.cheat, net.honest):
            cli("devnet", "faucet", "--devnet", net.devnet, "--to", str(node.data_dir / "l1.key"), "--amount", "100")
        c_id = cli("--data-dir", net.c, "getinfo")["peer_id"]
        opened = [cli("--data-dir", net.h, "open", c_id, "20", "--peer-amount", "20", "--app", "race-to-ten",
                      "--challenge-duration", WINDOW)["channel_id"] for _ in range(2)]
        for cid in opened:
            play(net, cid)
            wait_acknowledged(net, cid, 4)
            held = net.held(cid)
            assert (held.version, held.params.app_id) == (4, "race-to-ten")  # the tower holds the newest game state
        registered, forced = opened
        params = net.held(forced).params
        before = net.balances()
        net.honest.stop()  # the honest player goes offline

        # 1. A stale game state registered: the live tower refutes with version 4.
        assert cli("--data-dir", net.c, "dev", "register-stale", registered, "1")["registered_version"] == 1
        wait_for("the cheater's first channel settles", lambda: channel(net.cheat.data_dir, registered)["state"]
                 == "settled")
        view = on_l1(net.devnet, registered)
        assert view.withdrawn and view.registered is not None and view.registered.state.version == 4
        after = net.balances()
        assert (after[0] - before[0], after[1] - before[1]) == (16, 24), "paid as in version 4, not 21/19"

        # 2. A stale state registered and a move forced from it while the tower is paused: the tower
        #    catches up from its cursor and refutes the forced move with version 4.
        assert net.tower.proc is not None
        net.tower.proc.send_signal(signal.SIGSTOP)
        assert cli("--data-dir", net.c, "dev", "register-stale", forced, "1")["registered_version"] == 1
        stale = force_stale_move(net.devnet, net.cheat.data_dir / "l1.key", params, 1, b"\x01")
        assert stale.state.version == 1
        view = on_l1(net.devnet, forced)
        assert view.registered is not None and view.registered.state.version == 2  # the forced move, cheater-signed
        assert not view.registered.signatures[0] and view.registered.state.allocation.balances[0] == (20, 20)
        net.tower.proc.send_signal(signal.SIGCONT)
        wait_for("the cheater's second channel settles", lambda: channel(net.cheat.data_dir, forced)["state"]
                 == "settled")
        view = on_l1(net.devnet, forced)
        assert view.withdrawn and view.registered is not None and view.registered.state.version == 4
        final = net.balances()
        assert (final[0] - after[0], final[1] - after[1]) == (16, 24), "paid as in version 4, not 20/20"


SECRET = b"the honest payee's secret".ljust(32, b".")


def test_a_tower_claims_a_pending_lock_for_its_stopped_payee(tmp_path: Path) -> None:
    with network(tmp_path, {**SHORT_WINDOWS, "lock_margin": 8}) as net:
        cli("devnet", "faucet", "--devnet", net.devnet, "--to", str(net.cheat.data_dir / "l1.key"), "--amount", "1000")
        h_id = cli("--data-dir", net.h, "getinfo")["peer_id"]
        cid = cli("--data-dir", net.c, "open", h_id, "1000", "--challenge-duration", WINDOW)["channel_id"]
        cli("--data-dir", net.c, "pay-direct", cid, "100")  # version 1: what the cheater will register
        # Far from expiry: neither the tower's lock margin (60 s) nor the nodes' (8 s) is reached.
        expiry = cli("devnet", "status", "--devnet", net.devnet)["time"] + 120
        lock = cli("--data-dir", net.c, "add-lock", cid, "300", hashlib.sha256(SECRET).hexdigest(), str(expiry))
        assert (lock["balance"], lock["peer_balance"]) == (600, 100)  # version 2: 300 locked to the honest node
        wait_acknowledged(net, cid, 2)
        assert net.held(cid).preimages == ()

        assert net.cheat.proc is not None
        net.cheat.proc.send_signal(signal.SIGSTOP)  # the payer never countersigns the fulfillment
        fulfil = subprocess.Popen([*CLI, "--data-dir", net.h, "fulfill-lock", cid, lock["lock_id"], SECRET.hex()],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV, cwd=REPO)
        try:  # the secret is stored at once, and the tower gets it at the same version
            wait_for("the tower holds the preimage", lambda: net.held(cid).preimages == (SECRET,))
            assert net.held(cid).version == 2
            wait_acknowledged(net, cid, 2)
        finally:
            fulfil.terminate()  # the call waits for a countersignature that cannot come
            fulfil.wait(timeout=10)
        before = net.balances()
        net.honest.stop()
        net.cheat.proc.send_signal(signal.SIGCONT)

        assert cli("--data-dir", net.c, "dev", "register-stale", cid, "1")["registered_version"] == 1
        # The cheater may or may not have read the fulfillment left in its socket before the honest
        # node stopped; either way only the L1 decides, so the wait is on the L1's payout.
        wait_for("the honest node is paid its balance and the lock",
                 lambda: net.balances()[1] - before[1] == 400)
        view = on_l1(net.devnet, cid)
        assert view.withdrawn and view.registered is not None and view.registered.state.version == 2
        assert net.balances()[0] - before[0] == 600
        registered = secret_time(net.devnet, SECRET)
        assert registered is not None and registered < expiry, "the tower registered the preimage in time"
