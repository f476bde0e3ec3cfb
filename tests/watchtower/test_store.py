"""The tower's SQLite store: what the core decides survives a restart, and the schema is versioned."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from channels.chain.devnet.scheme import ADJUDICATOR
from channels.errors import StorageError
from channels.watchtower.client import seal
from channels.watchtower.core import Tower, Usage
from channels.watchtower.status import read_status
from channels.watchtower.store import SCHEMA_VERSION, TowerStore, TowerStoreError
from tests.watchtower.helpers import (
    CHAIN_ID,
    SCHEME,
    TOWER_KEY,
    appointment,
    channel,
    event,
    lock,
    make_tower,
    preimage,
    registered,
    signed,
)

NOW = 1_000


def open_tower(store: TowerStore) -> Tower:
    tower = make_tower()
    return Tower(signer=TOWER_KEY, scheme=SCHEME, chain_id=CHAIN_ID, adjudicator=ADJUDICATOR, records=store,
                 limits=tower.limits, usage=store.usage(), disputes=store.disputes())


def test_appointments_disputes_usage_and_cursor_survive_a_restart(tmp_path: Path) -> None:
    db = tmp_path / "tower.db"
    store = TowerStore(db)
    tower = open_tower(store)
    p, q = channel(b"p"), channel(b"q")
    x = lock("x", expiry=NOW + 500)
    with store.transaction():
        store.save_accepted(tower.accept(appointment(p, 5, locks=[x], preimages=[preimage("x")]), "alice", NOW))
        store.save_accepted(tower.accept(appointment(q, 2), "bob", NOW))
        store.save_blob(tower.accept_encrypted(seal(appointment(q, 3), signed(q, 2), 0, seq=3), "bob", NOW))
    reaction = tower.on_chain_event(registered(p, signed(p, 1), deadline=NOW + 100, cursor=7))
    with store.transaction():
        store.apply(reaction)
        store.set_cursor(7)
    usage = {c: tower.usage(c) for c in ("alice", "bob")}
    owed = tower.pending(NOW + 1)
    store.close()

    store = TowerStore(db)
    again = open_tower(store)
    assert store.cursor() == 7 and store.schema_version == SCHEMA_VERSION
    stored = store.appointment(p.channel_id)
    assert stored is not None and stored.appointment == appointment(p, 5, locks=[x], preimages=[preimage("x")])
    assert {c: again.usage(c) for c in ("alice", "bob")} == usage and usage["bob"].appointments == 2
    assert again.disputes == tower.disputes
    # the restarted tower owes the same refute and preimage as before
    assert again.pending(NOW + 1) == owed and len(owed) == 2
    assert store.locks_due(NOW + 500, 10) == [(p.channel_id, x.hashlock, x.expiry)]
    assert [sb.client for sb in store.blobs(seal(appointment(q, 3), signed(q, 2), 0, seq=3).locator)] == ["bob"]
    status = read_status(tmp_path)
    assert (status["appointments"], status["clients"], status["disputes"], status["chain_cursor"]) == (3, 2, 1, 7)
    store.close()


def test_the_counters_follow_replacements_settlement_and_secret_registrations(tmp_path: Path) -> None:
    store = TowerStore(tmp_path / "tower.db")
    tower = open_tower(store)
    p = channel()
    x = lock("x", expiry=NOW + 500)
    for v, client in ((1, "alice"), (2, "bob"), (3, "alice")):
        with store.transaction():
            store.save_accepted(tower.accept(appointment(p, v, locks=[x], preimages=[preimage("x")]), client, NOW))
    assert store.usage() == {"alice": tower.usage("alice")} and tower.usage("bob") == Usage()
    with store.transaction():
        store.apply(tower.on_chain_event(event("SecretRegistered", None, hashlock=x.hashlock, preimage=preimage("x"),
                                               time=NOW)))
    assert store.locks_due(NOW + 10_000, 10) == []
    with store.transaction():
        store.apply(tower.on_chain_event(event("Concluded", p.channel_id, version=3, state=signed(p, 3, locks=[x]))))
    # The preimage went on chain before the conclusion: the shell finds it on the L1 and says so.
    assert [a.hashlock for a in tower.pending(NOW + 1)] == [x.hashlock]  # type: ignore[union-attr]
    with store.transaction():
        store.apply(tower.secret_registered(x.hashlock))
        store.apply(tower.expire(NOW + 1))
    assert store.appointment(p.channel_id) is None and store.disputes() == [] and store.usage() == {}
    store.close()


def test_a_failed_transaction_leaves_nothing(tmp_path: Path) -> None:
    store = TowerStore(tmp_path / "tower.db")
    tower = open_tower(store)
    with pytest.raises(RuntimeError), store.transaction():
        store.save_accepted(tower.accept(appointment(channel(), 1), "alice", NOW))
        raise RuntimeError("crash before the commit")
    assert store.appointment(channel().channel_id) is None and store.usage() == {}
    store.close()


def test_a_newer_schema_and_a_foreign_database_are_refused_untouched(tmp_path: Path) -> None:
    db = tmp_path / "tower.db"
    TowerStore(db).close()
    conn = sqlite3.connect(db)
    conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION + 1).encode(),))
    conn.commit()
    conn.close()
    with pytest.raises(TowerStoreError, match="newer version"):
        TowerStore(db)
    foreign = tmp_path / "other.db"
    conn = sqlite3.connect(foreign)
    conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value BLOB)")
    conn.commit()
    conn.close()
    with pytest.raises(StorageError, match="not a tower store"):
        TowerStore(foreign)
    conn = sqlite3.connect(foreign)
    assert [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")] == ["meta"]
    conn.close()


def test_status_reads_while_a_writer_holds_the_store(tmp_path: Path) -> None:
    store = TowerStore(tmp_path / "tower.db")
    tower = open_tower(store)
    with store.transaction():
        store.save_accepted(tower.accept(appointment(channel(), 1), "alice", NOW))
    readonly = TowerStore(tmp_path / "tower.db", readonly=True)
    assert readonly.appointment(channel().channel_id) is not None
    with pytest.raises(StorageError):
        with readonly.transaction():
            readonly.set_cursor(3)
    readonly.close()
    assert read_status(tmp_path)["appointments"] == 1 and read_status(tmp_path)["running"] is False
    store.close()
