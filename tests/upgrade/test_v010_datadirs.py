"""Upgrades keep channels open: data dirs written by 0.1.0 run under this version.

``tests/data/v0.1.0/`` holds a devnet dir and two node dirs (``a``, ``b``) made by the
real 0.1.0 daemons (``tests/data/make_v010_datadirs.py``; how, and the balances, in its
README). The current daemons start on copies of them, on new loopback ports, and the
channels opened under 0.1.0 pay both ways, close cooperatively and by force, and pay out
on the L1 exactly.

Reconnection after the upgrade: each node redials the addresses its peer announced under
0.1.0 (the ``peers`` table). The end-to-end test starts ``b`` on its 0.1.0 port, so ``a``
finds it there by itself, and ``a`` on a new port: ``b``'s stored address for ``a`` is
stale, and ``b`` learns the new one from the ``Init`` of ``a``'s redial. Nodes that both
come back on new ports (ephemeral ``tcp/0``) each redial stale addresses until one explicit
``connect`` to the peer's new address; the test does that when ``b``'s old port is taken.

The ledger copy is aged by a year first: the devnet's clock then jumps forward at its
first block, as it does for anyone upgrading a data dir written long ago.
"""

from __future__ import annotations

import json
import shutil
import socket
import sqlite3
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import trio

from channels.chain.devnet.ledger import Devnet
from channels.core.ids import Address, ChannelId
from channels.store import Store
from channels.store.migrations import SCHEMA_VERSION, VERSION_KEY
from tests.devnet.daemon_util import DaemonProc
from tests.procs import LOOPBACK, NodeProc

FIXTURE = Path(__file__).parents[1] / "data" / "v0.1.0"
EXPECTED: dict[str, Any] = json.loads((FIXTURE / "expected.json").read_text())
IDS = {name: ChannelId(bytes.fromhex(cid)) for name, cid in EXPECTED["channel_ids"].items()}

# After the upgrade (channel balances from the fixture README):
#   open_ab (a 3968 / b 1032): a->b 100, b->a 30, then b closes cooperatively: a 3898, b 1102
#   open_ba (a 275 / b 1725):  a->b 75, b->a 10, then a force-closes (3 s window): a 210, b 1790
PAYMENTS = {"open_ab": [("a", 100), ("b", 30)], "open_ba": [("a", 75), ("b", 10)]}
FINAL = {"open_ab": {"a": 3898, "b": 1102}, "open_ba": {"a": 210, "b": 1790}}
L1_BEFORE = {"a": 4900, "b": 3100}
L1_AFTER = {"a": 4900 + 3898 + 210, "b": 3100 + 1102 + 1790}  # 9008, 5992


def copy_fixture(tmp_path: Path) -> Path:
    dest = tmp_path / "v010"
    shutil.copytree(FIXTURE, dest)
    for key in dest.glob("*/*.key"):
        key.chmod(0o600)  # git keeps no modes; key files are written 0600
    return dest


def l1_address(name: str) -> Address:
    return Address(bytes.fromhex(EXPECTED["l1_accounts"][name]))


def test_the_fixture_readme_matches_the_fixture() -> None:
    readme = (FIXTURE / "README.md").read_text()
    for name, spec in EXPECTED["channels"].items():
        assert f"| `{name}` | {spec['opener']} | {spec['challenge_duration']} s | {spec['state']} | " \
               f"{spec['a']} | {spec['b']} |" in readme
    assert EXPECTED["l1"] == L1_BEFORE
    for name, pays in PAYMENTS.items():
        net_to_b = sum(n if payer == "a" else -n for payer, n in pays)
        start = EXPECTED["channels"][name]
        assert FINAL[name] == {"a": start["a"] - net_to_b, "b": start["b"] + net_to_b}
    assert sum(L1_AFTER.values()) == 15_000, "the faucet paid 15000 in all and nothing was created or lost"
    assert not list(FIXTURE.glob("**/*-wal")) + list(FIXTURE.glob("**/*-shm")), "checkpointed files only"


async def test_the_0_1_0_devnet_dir_opens(tmp_path: Path) -> None:
    dest = copy_fixture(tmp_path)
    db = sqlite3.connect(dest / "devnet" / "devnet.db")
    assert db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone() == (1,)
    db.close()
    with Devnet(dest / "devnet" / "devnet.db", auto_mine=False) as ledger:
        assert ledger.store.chain_id == 1337
        assert {n: await ledger.balance(l1_address(n)) for n in "ab"} == L1_BEFORE
        for name, cid in IDS.items():
            view = await ledger.channel(cid)
            spec = EXPECTED["channels"][name]
            if spec["state"] == "settled":
                assert view.withdrawn and not view.holdings
            else:
                assert not view.withdrawn and view.registered is None
                assert sum(view.holdings.values()) == spec["a"] + spec["b"]
    db = sqlite3.connect(dest / "devnet" / "devnet.db")
    assert db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()[0] >= 2, "migrated forward"
    db.close()


@pytest.mark.parametrize("side", ["a", "b"])
def test_the_0_1_0_node_stores_open(tmp_path: Path, side: str) -> None:
    dest = copy_fixture(tmp_path)
    store = Store(dest / side / "node.db")
    assert store.opened_at_version == 1
    loaded = {ch.channel_id: ch for ch, _ in store.load_channels()}
    assert set(loaded) == set(IDS.values()) and store.quarantined() == []
    for name, cid in IDS.items():
        ch, spec = loaded[cid], EXPECTED["channels"][name]
        assert ch.version == EXPECTED["versions"][name]
        assert (ch.allocation.balances[0][ch.me], ch.allocation.balances[0][ch.peer]) == \
            ((spec["a"], spec["b"]) if side == "a" else (spec["b"], spec["a"]))
        assert ch.phase.value == spec["state"] and ch.params.challenge_duration == spec["challenge_duration"]
    other = "b" if side == "a" else "a"
    assert list(store.peers()) == [EXPECTED["peer_ids"][other]]
    store.close()


AGE = 366 * 86400  # seconds the ledger copy is moved into the past


def age_ledger(db_path: Path, seconds: int) -> None:
    """Move every time the ledger stored ``seconds`` into the past (as if written long ago)."""
    db = sqlite3.connect(db_path)
    with db:
        db.execute("UPDATE meta SET value = value - ? WHERE key = 'time'", (seconds,))
        db.execute("UPDATE blocks SET time = time - ?", (seconds,))
        db.execute("UPDATE events SET time = time - ?", (seconds,))
    db.close()


def stored_port(node_db: Path, peer_id: str) -> int:
    """The TCP port of the address ``peer_id`` announced under 0.1.0, as stored in ``node_db``."""
    db = sqlite3.connect(node_db)
    (addresses,) = db.execute("SELECT addresses FROM peers WHERE peer_id = ?", (peer_id,)).fetchone()
    db.close()
    return int(addresses.split("\n")[0].split("/")[4])


def port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@asynccontextmanager
async def upgraded(tmp_path: Path) -> AsyncIterator[tuple[DaemonProc, dict[str, NodeProc], bool]]:
    """The current devnet daemon and node daemons on copies of the 0.1.0 dirs; and whether
    ``b`` listens on its 0.1.0 port (so ``a`` can redial it by itself)."""
    dest = copy_fixture(tmp_path)
    age_ledger(dest / "devnet" / "devnet.db", AGE)
    devnet = DaemonProc(dest / "devnet", block_time=0.1)
    nodes: dict[str, NodeProc] = {}
    old_port = stored_port(dest / "a" / "node.db", EXPECTED["peer_ids"]["b"])
    b_on_old_port = port_free(old_port)
    try:
        address = devnet.start()
        nodes = {n: NodeProc(dest / n, address) for n in "ab"}
        if b_on_old_port:
            args = nodes["b"].args
            args[args.index(LOOPBACK)] = f"/ip4/127.0.0.1/tcp/{old_port}"
        async with trio.open_nursery() as nursery:
            for node in nodes.values():
                nursery.start_soon(node.start_and_wait, 20)
        yield devnet, nodes, b_on_old_port
    finally:
        for node in nodes.values():
            node.stop()
        devnet.stop()


async def rows(node: NodeProc) -> dict[str, dict[str, Any]]:
    listed: Any = await node.call("list-channels")
    return {c["channel_id"]: c for c in listed["channels"]}


async def l1(node: NodeProc) -> int:
    info: Any = await node.call("getinfo")
    return int(info["l1_balances"].get("native", 0))


async def test_0_1_0_channels_pay_and_close_with_exact_payouts(tmp_path: Path) -> None:
    with trio.fail_after(60):
        async with upgraded(tmp_path) as (_devnet, nodes, b_on_old_port):
            a, b = nodes["a"], nodes["b"]
            info = {n: await p.call("getinfo") for n, p in nodes.items()}
            for n, i in info.items():  # same identities, same L1 accounts, same money
                assert (i["peer_id"], i["l1_account"]) == (EXPECTED["peer_ids"][n], EXPECTED["l1_accounts"][n])  # type: ignore[index]
                assert await l1(nodes[n]) == L1_BEFORE[n]
            before = await rows(a)
            for name, cid in IDS.items():
                spec = EXPECTED["channels"][name]
                row = before[cid.hex()]
                assert (row["state"], row["balance"], row["peer_balance"]) == (spec["state"], spec["a"], spec["b"])

            if not b_on_old_port:  # both on new ports: the stored addresses are all stale
                await a.call("connect", address=info["b"]["addresses"][0])  # type: ignore[index]
            for name, pays in PAYMENTS.items():
                for payer, amount in pays:
                    paid: Any = await nodes[payer].call("pay-direct", channel_id=IDS[name].hex(), amount=amount)
                    assert paid["version"] > EXPECTED["versions"][name]
            for name, final in FINAL.items():
                assert (await rows(a))[IDS[name].hex()]["balance"] == final["a"]
                row = (await rows(b))[IDS[name].hex()]
                assert (row["balance"], row["peer_balance"]) == (final["b"], final["a"])

            async def close_ab() -> None:
                closed: Any = await b.call("close", channel_id=IDS["open_ab"].hex())
                assert closed["state"] == "settled"

            async def force_close_ba() -> None:
                closed: Any = await a.call("close", channel_id=IDS["open_ba"].hex(), force=True)
                assert closed["registered"]
                while (await rows(a))[IDS["open_ba"].hex()]["state"] != "settled":
                    await trio.sleep(0.1)  # the 3 s window set under 0.1.0, then the withdrawal

            async with trio.open_nursery() as nursery:
                nursery.start_soon(close_ab)
                nursery.start_soon(force_close_ba)
            while {n: await l1(p) for n, p in nodes.items()} != L1_AFTER:
                await trio.sleep(0.1)  # the peer's side of a payout may land a block later
            assert {n: await l1(p) for n, p in nodes.items()} == L1_AFTER
            for node in nodes.values():
                states = {c["channel_id"]: c["state"] for c in (await rows(node)).values()}
                assert states == {cid.hex(): "settled" for cid in IDS.values()}
            for n, node in nodes.items():
                assert node.stop() == 0, f"node {n} stops cleanly"
                db = sqlite3.connect(node.data_dir / "node.db")
                assert db.execute("SELECT value FROM meta WHERE key = ?", (VERSION_KEY,)).fetchone() == \
                    (str(SCHEMA_VERSION).encode(),)
                db.close()

            # Downgrades are refused: a store from a newer version stops the daemon with a clear line.
            db = sqlite3.connect(a.data_dir / "node.db")
            db.execute("UPDATE meta SET value = ? WHERE key = ?", (str(SCHEMA_VERSION + 1).encode(), VERSION_KEY))
            db.commit()
            db.close()
            proc = a.start()
            try:
                assert proc.wait(timeout=20) != 0
            except subprocess.TimeoutExpired:
                proc.kill()
                raise
            assert "written by a newer version of p2p-channels" in a.log.read_text()
    written, now = (ledger_time(d / "devnet" / "devnet.db") for d in (FIXTURE, tmp_path / "v010"))
    assert now >= written, "the aged ledger's clock jumped forward by the year at its first block"


def ledger_time(db_path: Path) -> int:
    db = sqlite3.connect(db_path)
    (value,) = db.execute("SELECT value FROM meta WHERE key = 'time'").fetchone()
    db.close()
    return int(value)
