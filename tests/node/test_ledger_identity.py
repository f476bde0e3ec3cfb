"""A node's store belongs to one ledger (chain id and genesis id): against another one (a reset
devnet, another devnet) the node refuses to start in one line and changes nothing.

Found by re-running the README's library snippet on the same data dirs: the stored chain cursor
belonged to the previous in-memory devnet, the whole L1 balance went into escrow a second time
and the run ended in a 160-line exception group."""

from __future__ import annotations

import sqlite3
import subprocess
from pathlib import Path
from typing import Any

import attrs
import pytest
import trio

from channels.chain.base import Malformed
from channels.chain.devnet import codec as rc
from channels.chain.devnet.client import RemoteDevnet
from channels.chain.devnet.ledger import Devnet
from channels.chain.devnet.service import DevnetService
from channels.net.memory import MemoryNetwork, open_memory_transport
from channels.node import Node, load_config
from channels.node.node import LEDGER_CHAIN_KEY, LEDGER_GENESIS_KEY, LedgerMismatch
from tests.devnet.daemon_util import DaemonProc
from tests.procs import CLI, ENV, LOOPBACK, REPO, NodeProc

RELEASED_DEVNET = Path(__file__).parents[1] / "devnet" / "data" / "devnet_v1.sql"


def dump(db: Path) -> list[str]:
    """Every row of a store, as SQL: equal dumps mean nothing was written."""
    con = sqlite3.connect(db)
    try:
        return list(con.iterdump())
    finally:
        con.close()


def meta(db: Path, key: str) -> bytes | None:
    con = sqlite3.connect(db)
    try:
        row = con.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else bytes(row[0])
    finally:
        con.close()


async def run_once(data_dir: Path, ledger: Any = None, **kw: Any) -> None:
    """Open a node on the memory transport, let it read the L1's events, close it.

    Node.open raises the refusal itself; the memory transport's nursery wraps it in a group."""
    try:
        async with open_memory_transport(MemoryNetwork(), "n") as transport, \
                Node.open(load_config(data_dir), ledger=ledger, transport=transport, **kw) as node:
            with trio.fail_after(10):
                while node.engine.cursor < node.ledger.store.last_cursor():  # type: ignore[attr-defined]
                    await node.engine.changed.wait()
    except BaseExceptionGroup as group:
        while len(group.exceptions) == 1 and isinstance(group.exceptions[0], BaseExceptionGroup):
            group = group.exceptions[0]
        if len(group.exceptions) != 1:
            raise
        raise group.exceptions[0] from None


async def test_a_store_refuses_another_ledger_and_stays_as_it_was(tmp_path: Path) -> None:
    first, data_dir = Devnet(None, clock=None), tmp_path / "a"
    with first:
        first.faucet_sync(b"\x01" * 32, 5)  # events: the node's chain cursor moves past them
        await run_once(data_dir, first)
        db = data_dir / "node.db"
        assert meta(db, LEDGER_GENESIS_KEY) == first.genesis and len(first.genesis) == 32
        assert meta(db, LEDGER_CHAIN_KEY) == (1337).to_bytes(8, "big")
        before = dump(db)

        for other in (Devnet(None, clock=None), Devnet(None, clock=None, chain_id=7)):  # a reset, another chain
            with other:
                assert other.genesis != first.genesis
                with pytest.raises(LedgerMismatch) as refused:
                    await run_once(data_dir, other)
                message = str(refused.value)
                assert "\n" not in message and f"genesis {first.genesis.hex()[:16]}" in message
                assert f"chain {other.chain_id}, genesis {other.genesis.hex()[:16]}" in message
                assert "use a fresh data dir, or the original devnet" in message
                assert dump(db) == before  # nothing read, nothing written

        await run_once(data_dir, first)  # the original ledger is still welcome


async def test_a_store_from_before_the_check_adopts_the_ledger_it_is_opened_with(tmp_path: Path) -> None:
    data_dir = tmp_path / "a"
    with Devnet(None, clock=None) as old, Devnet(None, clock=None) as new:
        await run_once(data_dir, old)
        con = sqlite3.connect(data_dir / "node.db")
        con.execute("DELETE FROM meta WHERE key IN (?, ?)", (LEDGER_CHAIN_KEY, LEDGER_GENESIS_KEY))
        con.commit()
        con.close()
        await run_once(data_dir, new)  # no record: nothing to compare, the ledger is adopted
        assert meta(data_dir / "node.db", LEDGER_GENESIS_KEY) == new.genesis
        with pytest.raises(LedgerMismatch):
            await run_once(data_dir, old)


async def test_a_ledger_without_a_genesis_id_is_checked_by_chain_id(tmp_path: Path) -> None:
    """An older devnet daemon sends no genesis id: the chain id is still compared."""
    data_dir = tmp_path / "a"
    with Devnet(None, clock=None) as dev, Devnet(None, clock=None, chain_id=9) as other:
        await run_once(data_dir, dev)
        old_daemon = attrs.evolve(await dev.backend(data_dir / "l1.key"), genesis=None)
        await run_once(data_dir, backend=old_daemon)
        assert meta(data_dir / "node.db", LEDGER_GENESIS_KEY) == dev.genesis  # kept, not forgotten
        expected = r"\(chain 1337, genesis [0-9a-f]{16}\) .* \(chain 9, genesis unknown\)"
        with pytest.raises(LedgerMismatch, match=expected):
            await run_once(data_dir, backend=attrs.evolve(await other.backend(data_dir / "l1.key"), genesis=None))


async def test_the_genesis_id_is_kept_drawn_once_and_sent_with_the_status(tmp_path: Path) -> None:
    path = tmp_path / "devnet.db"
    with Devnet(path, clock=None) as dev:
        genesis = dev.genesis
        status = rc.decode_response(await DevnetService(dev).handle(rc.encode_request(rc.STATUS)))
        assert status[2] == 1337 and status[5] == genesis
        assert (await dev.status()).genesis == genesis
    with Devnet(path, clock=None) as again:
        assert again.genesis == genesis
    with Devnet(tmp_path / "other.db", clock=None) as other:
        assert other.genesis != genesis

    released = tmp_path / "released.db"  # written before genesis ids: one is drawn, then kept
    con = sqlite3.connect(released)
    con.executescript(RELEASED_DEVNET.read_text())
    con.close()
    with Devnet(released, clock=None) as upgraded:
        drawn = upgraded.genesis
        assert len(drawn) == 32
    with Devnet(released, clock=None) as reopened:
        assert reopened.genesis == drawn


async def test_the_client_reads_the_genesis_id_and_accepts_an_older_daemon() -> None:
    remote = RemoteDevnet(None, "", "", None, timeout=1)  # type: ignore[arg-type]
    answers: list[list[Any]] = [[7, 1_700_000_000, 1337, b"\x00" * 32, 1000, b"\x07" * 32],
                                [7, 1_700_000_000, 1337, b"\x00" * 32, 1000],  # before genesis ids
                                [7, 1_700_000_000, 1337, b"\x00" * 32, 1000, b"short"]]

    async def daemon(type_id: int, *fields: Any, idempotent: bool = True) -> list[Any]:
        return answers.pop(0)

    remote._call = daemon  # type: ignore[method-assign]
    assert (await remote.status()).genesis == b"\x07" * 32
    assert (await remote.status()).genesis is None
    with pytest.raises(Malformed, match="genesis id is 32 bytes"):
        await remote.status()


# --- real processes: ``channels node start`` with a data dir of another devnet -----------------


async def test_node_start_against_a_new_devnet_refuses_in_one_line(tmp_path: Path) -> None:
    first = DaemonProc(tmp_path / "dv1", block_time=0.2)
    node = NodeProc(tmp_path / "a", first.start())
    try:
        with trio.fail_after(60):
            await node.start_and_wait()
        assert node.stop() == 0
    finally:
        node.stop()
        first.stop()
    before = dump(node.data_dir / "node.db")
    with DaemonProc(tmp_path / "dv2", block_time=0.2) as second:  # a fresh devnet: same chain id, new genesis
        done = await trio.to_thread.run_sync(lambda: subprocess.run(
            [*CLI, "node", "start", "--data-dir", str(node.data_dir), "--listen", LOOPBACK, "--devnet",
             second.address], capture_output=True, text=True, timeout=60, env=ENV, cwd=REPO))
    assert done.returncode == 1, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: the store in "), done.stderr
    assert "was written against another ledger" in lines[0] and "use a fresh data dir" in lines[0]
    assert dump(node.data_dir / "node.db") == before
    assert not (node.data_dir / "rpc.sock").exists()
