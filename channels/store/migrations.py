"""Schema versions of the node store and the steps that migrate a database forward.

The version is the ``schema_version`` row of the ``meta`` table (decimal ASCII). A
database with the store's tables but no such row was written by 0.1.0, which had
no version: that is version 1. An empty database is version 0, so a new store is
built by the same steps that upgrade an old one.

``migrate`` runs every step from the database's version up to ``SCHEMA_VERSION`` in
one transaction, then records the new version: a crash or a failing step leaves the
file exactly as it was. A database newer than this code is refused untouched (an
older release cannot know what a newer one's rows mean). Each step is idempotent,
because stores of the releases between 0.1.0 and the first versioned one already
have some of what step 2 adds while still carrying no version.

Channel records are not rewritten here: they carry their own record version
(``records.RECORD_VERSION``), are read at any known version and are written back at
the current one by the next engine step that saves the channel.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable
from pathlib import Path

import attrs

from ..errors import StorageError

log = logging.getLogger("channels.store")

SCHEMA_VERSION = 7
VERSION_KEY = "schema_version"
# What a store of version 1 (0.1.0) has: a database that has ``meta`` but not the
# rest is not a node store (the devnet's database, for one, has ``meta`` and ``channels``).
V1_TABLES = frozenset({"meta", "channels", "peers", "payments"})

_V1 = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS channels (
    channel_id BLOB PRIMARY KEY, peer_id TEXT NOT NULL, record BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS peers (
    peer_id TEXT PRIMARY KEY, l1_address BLOB NOT NULL, addresses TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS payments (
    payment_id BLOB PRIMARY KEY, channel_id BLOB NOT NULL, direction TEXT NOT NULL,
    asset TEXT NOT NULL, amount INTEGER NOT NULL, status TEXT NOT NULL, detail TEXT NOT NULL);
"""

# Quarantine of unreadable channel records; payment amounts as decimal BLOBs (lossless at
# any size: 0.1.0 stored SQLite integers, which stop at 2**63 - 1). The column keeps its
# INTEGER declaration: SQLite stores a BLOB as given whatever the column's affinity.
_V2 = """
CREATE TABLE IF NOT EXISTS quarantine (
    channel_id BLOB PRIMARY KEY, peer_id TEXT NOT NULL, record BLOB NOT NULL, reason TEXT NOT NULL);
UPDATE payments SET amount = CAST(CAST(amount AS TEXT) AS BLOB) WHERE typeof(amount) = 'integer';
"""


# The durable outbox: frames for peers and L1 submissions, written in the transaction of the
# step that decided them and deleted once sent (proto/02 section 6.3).
_V3 = """
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, peer_id TEXT NOT NULL, frame BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS outbox_by_peer ON outbox (peer_id, seq);
CREATE TABLE IF NOT EXISTS l1_outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, channel_id BLOB NOT NULL, effect BLOB NOT NULL);
"""


# The node's event log (``channels.node.events``: cursors survive restarts) and the time a
# payment was first recorded, for ``list-payments`` (0: recorded before schema 4).
_V4 = """
CREATE TABLE IF NOT EXISTS events (
    cursor INTEGER PRIMARY KEY AUTOINCREMENT, time INTEGER NOT NULL, kind TEXT NOT NULL, body BLOB NOT NULL);
"""


def _v4(db: sqlite3.Connection) -> None:
    _script(_V4)(db)
    columns = {row[1] for row in db.execute("PRAGMA table_info(payments)")}
    if "created" not in columns:
        db.execute("ALTER TABLE payments ADD COLUMN created INTEGER NOT NULL DEFAULT 0")


# Watchtowers the node hands its states to, and per tower and channel the newest version the
# tower acknowledged with its signed receipt (channels.node.towers): what is still to send is
# every channel whose latest co-signed version is above that, so nothing is lost to a restart.
_V5 = """
CREATE TABLE IF NOT EXISTS towers (
    peer_id TEXT PRIMARY KEY, address TEXT NOT NULL, added INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS tower_acks (
    peer_id TEXT NOT NULL, channel_id BLOB NOT NULL, version INTEGER NOT NULL, receipt BLOB NOT NULL,
    PRIMARY KEY (peer_id, channel_id));
"""


# Multi-hop payments (channels.forwarding): forwards, received and sent payment parts,
# invoices, payments and channel fee policies, each a versioned record keyed within its kind.
# They are written in the engine step's transaction with the channel states they follow from.
_V6 = """
CREATE TABLE IF NOT EXISTS hop_records (
    kind TEXT NOT NULL, key BLOB NOT NULL, status TEXT NOT NULL, created INTEGER NOT NULL,
    body BLOB NOT NULL, PRIMARY KEY (kind, key));
CREATE INDEX IF NOT EXISTS hop_records_by_status ON hop_records (kind, status);
"""


# n-party channels (proto/02 section 13): the peer id of every participant, by participant
# index ("" for ourselves), newline-separated. Two-party channels have no row: their one peer
# stays in ``channels.peer_id``, which for an n-party channel holds the first other participant.
_V7 = """
CREATE TABLE IF NOT EXISTS channel_peers (channel_id BLOB PRIMARY KEY, peers TEXT NOT NULL);
"""


@attrs.frozen
class Step:
    """Migrates a database at version ``to - 1`` to version ``to``."""

    to: int
    what: str
    run: Callable[[sqlite3.Connection], None]


def _script(sql: str) -> Callable[[sqlite3.Connection], None]:
    """Statements run one by one: ``executescript`` would commit the open transaction."""
    def run(db: sqlite3.Connection) -> None:
        for statement in sql.split(";"):
            if statement.strip():
                db.execute(statement)
    return run


STEPS: tuple[Step, ...] = (
    Step(1, "the 0.1.0 tables: meta, channels, peers, payments", _script(_V1)),
    Step(2, "quarantine table; payment amounts as decimal BLOBs", _script(_V2)),
    Step(3, "the durable outbox: frames for peers, L1 submissions", _script(_V3)),
    Step(4, "the event log; payments get their creation time", _v4),
    Step(5, "watchtowers and their receipts", _script(_V5)),
    Step(6, "multi-hop records: forwards, invoices, payments, fee policies", _script(_V6)),
    Step(7, "the peers of n-party channels", _script(_V7)),
)
assert [s.to for s in STEPS] == list(range(1, SCHEMA_VERSION + 1)), "one step per version, in order"


def tables(db: sqlite3.Connection) -> set[str]:
    return {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def schema_version(db: sqlite3.Connection, path: Path | str) -> int:
    """The version of the database behind ``db`` (0: empty; 1: 0.1.0, which wrote none)."""
    present = tables(db)
    if not present:
        return 0
    if not V1_TABLES <= present:
        raise StorageError(f"{path} is not a p2p-channels node store (it has tables {', '.join(sorted(present))})")
    row = db.execute("SELECT value FROM meta WHERE key = ?", (VERSION_KEY,)).fetchone()
    if row is None:
        return 1
    raw = row[0]  # decimal ASCII bytes, as every ``meta`` value is bytes
    text = raw.decode("ascii", "replace") if isinstance(raw, bytes) else ""
    if not (text.isascii() and text.isdigit()) or not 1 <= len(text) <= 9:
        raise StorageError(f"the node store at {path} has an unreadable {VERSION_KEY}: {raw!r:.40}")
    return int(text)


def migrate(db: sqlite3.Connection, path: Path | str, *, target: int = SCHEMA_VERSION,
            steps: tuple[Step, ...] = STEPS) -> int:
    """Bring the database to ``target`` in one transaction; return the version it had.

    ``db`` is in autocommit mode (``isolation_level=None``) and outside a transaction."""
    try:
        db.execute("BEGIN IMMEDIATE")
        try:
            found = schema_version(db, path)
            if found > target:
                raise StorageError(
                    f"the node store at {path} was written by a newer version of p2p-channels (schema {found}; "
                    f"this version reads schema {target} and older); run that version or a later one. (Do not "
                    "go back to a copy from before the upgrade: its channel states are stale.)")
            for step in steps:
                if found < step.to <= target:
                    step.run(db)
            if found != target:
                db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                           (VERSION_KEY, str(target).encode()))
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
    except sqlite3.Error as exc:
        raise StorageError(f"cannot migrate the node store at {path}: {exc}") from None
    if 0 < found < target:
        log.info("node store %s upgraded from schema %d to %d", path, found, target)
    return found
