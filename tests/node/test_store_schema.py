"""The node store's schema version and its forward migrations (``channels.store.migrations``).

A new store is built by the migration steps and records ``schema_version``; a store
without one is version 1 (0.1.0) and is migrated in one transaction at open; a store
newer than the code, a store whose migration fails, and a file that is not a node store
are refused with a ``StorageError`` and left as they were.
"""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest

from channels.chain.devnet.store import Store as DevnetStore
from channels.errors import StorageError
from channels.store import Store
from channels.store.migrations import SCHEMA_VERSION, STEPS, V1_TABLES, VERSION_KEY, Step, migrate, tables

DATA = Path(__file__).parent / "data"
V010_NODE = Path(__file__).parents[1] / "data" / "v0.1.0" / "a" / "node.db"


def dump(path: Path) -> list[str]:
    """Everything in the database, schema and rows, as SQL text."""
    db = sqlite3.connect(path)
    try:
        return list(db.iterdump())
    finally:
        db.close()


def meta_version(path: Path) -> bytes | None:
    db = sqlite3.connect(path)
    try:
        row = db.execute("SELECT value FROM meta WHERE key = ?", (VERSION_KEY,)).fetchone()
        return None if row is None else bytes(row[0])
    finally:
        db.close()


def set_version(path: Path, value: object) -> None:
    db = sqlite3.connect(path)
    db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (VERSION_KEY, value))
    db.commit()
    db.close()


def test_a_new_store_is_built_by_the_steps_and_records_its_version(tmp_path: Path) -> None:
    store = Store(tmp_path / "node.db")
    assert (store.opened_at_version, store.schema_version) == (0, SCHEMA_VERSION)
    store.close()
    assert meta_version(tmp_path / "node.db") == str(SCHEMA_VERSION).encode()
    db = sqlite3.connect(tmp_path / "node.db")
    assert tables(db) == V1_TABLES | {"quarantine", "outbox", "l1_outbox", "events", "towers", "tower_acks",
                                      "hop_records", "channel_peers", "sqlite_sequence"}
    db.close()
    again = Store(tmp_path / "node.db")
    assert again.opened_at_version == SCHEMA_VERSION, "an up-to-date store is opened without a migration"
    again.close()


@pytest.mark.parametrize("fixture", [DATA / "node-v0.1.0.db", V010_NODE], ids=["hand-made", "daemon-made"])
def test_a_0_1_0_store_has_no_version_and_migrates_to_the_current_one(tmp_path: Path, fixture: Path) -> None:
    path = tmp_path / "node.db"
    shutil.copy(fixture, path)
    assert meta_version(path) is None
    db = sqlite3.connect(path)
    integers = db.execute("SELECT COUNT(*) FROM payments WHERE typeof(amount) = 'integer'").fetchone()[0]
    assert integers and "quarantine" not in tables(db), "0.1.0: integer amounts, no quarantine table"
    db.close()
    store = Store(path)
    totals, channels = store.payment_totals(), store.load_channels()
    assert store.opened_at_version == 1
    store.close()
    assert meta_version(path) == str(SCHEMA_VERSION).encode()
    db = sqlite3.connect(path)
    kinds = {t for (t,) in db.execute("SELECT DISTINCT typeof(amount) FROM payments")}
    assert kinds == {"blob"} and "quarantine" in tables(db), "amounts rewritten as decimal BLOBs"
    db.close()
    again = Store(path)
    assert again.opened_at_version == SCHEMA_VERSION
    assert again.payment_totals() == totals and again.load_channels() == channels, "nothing changed meaning"
    assert again.quarantined() == []
    again.close()


def test_a_store_between_0_1_0_and_the_first_versioned_release_migrates(tmp_path: Path) -> None:
    """Hardened releases before schema versions had the quarantine table and BLOB amounts
    next to 0.1.0 integers, but no version: the idempotent steps take them as they are."""
    path = tmp_path / "node.db"
    shutil.copy(DATA / "node-v0.1.0.db", path)
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE quarantine (channel_id BLOB PRIMARY KEY, peer_id TEXT NOT NULL, record BLOB NOT NULL, "
               "reason TEXT NOT NULL)")
    db.execute("INSERT INTO quarantine VALUES (x'01', 'peerX', x'00', 'unreadable')")
    db.execute("INSERT INTO payments VALUES (x'0b', x'00', 'out', 'native', CAST('18446744073709551616' AS BLOB), "
               "'sent', '9')")
    db.commit()
    db.close()
    store = Store(path)
    assert store.opened_at_version == 1
    assert store.payment_totals() == {("out", "sent"): 7 + 2**64}
    assert store.quarantined() == [(b"\x01", "peerX", "unreadable")]
    store.close()


def test_a_store_written_by_a_newer_version_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "node.db"
    Store(path).close()
    set_version(path, str(SCHEMA_VERSION + 1).encode())
    before = dump(path)
    newer = SCHEMA_VERSION + 1
    with pytest.raises(StorageError, match=rf"written by a newer version of p2p-channels \(schema {newer}; "):
        Store(path)
    assert dump(path) == before


@pytest.mark.parametrize("value", [b"two", b"", b"-1", 2, b"1234567890"])
def test_an_unreadable_schema_version_is_refused(tmp_path: Path, value: object) -> None:
    path = tmp_path / "node.db"
    Store(path).close()
    set_version(path, value)
    with pytest.raises(StorageError, match="unreadable schema_version"):
        Store(path)


def test_a_failing_step_leaves_the_store_as_it_was(tmp_path: Path) -> None:
    path = tmp_path / "node.db"
    shutil.copy(DATA / "node-v0.1.0.db", path)
    before = dump(path)

    def half_then_fail(db: sqlite3.Connection) -> None:
        db.execute("CREATE TABLE half (x)")
        db.execute("DELETE FROM payments")
        db.execute("SELECT * FROM no_such_table")

    db = sqlite3.connect(path, isolation_level=None)
    with pytest.raises(StorageError, match="cannot migrate the node store"):
        migrate(db, path, target=SCHEMA_VERSION + 1, steps=(*STEPS, Step(SCHEMA_VERSION + 1, "fails", half_then_fail)))
    db.close()
    assert dump(path) == before, "steps 2 and 3 ran in one transaction, rolled back together"
    store = Store(path)  # and the real migration still runs afterwards
    assert store.opened_at_version == 1
    store.close()


def test_a_file_that_is_not_a_node_store_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "devnet.db"
    DevnetStore(path, chain_id=1337, genesis_time=0).close()  # has ``meta`` and ``channels`` too
    before = dump(path)
    with pytest.raises(StorageError, match="is not a p2p-channels node store"):
        Store(path)
    assert dump(path) == before


def test_one_step_per_version_in_order() -> None:
    assert [s.to for s in STEPS] == list(range(1, SCHEMA_VERSION + 1))
    assert all(s.what for s in STEPS)
