"""The tower's durable store: appointments, encrypted appointments, clients, disputes, the L1 cursor.

SQLite in WAL mode, like the node's store (``channels/store/sqlite.py``). The shell writes
what the core decided inside ``transaction()`` and answers a client only after the commit:
a receipt is a promise, so the appointment it names must survive ``kill -9`` (and, with
``synchronous=FULL``, power loss). Cursor-only steps commit without fsync: losing one
replays events the core handles idempotently.

The schema carries a version (``meta.schema_version``) from the first release: a later one
migrates forward in one transaction, and a file from a newer version is refused untouched.
Records are canonical msgpack prefixed by a record version, so they can change too.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from pathlib import Path

from ..core.ids import ChannelId
from ..encoding import decode, encode
from ..errors import ChannelsError, StorageError
from ..store.sqlite import Transactions
from .appointment import Appointment, EncryptedAppointment
from .core import (
    Accepted,
    AcceptedBlob,
    Dispute,
    Reaction,
    Stored,
    StoredBlob,
    Usage,
    UsageDelta,
    watched_locks,
)

SCHEMA_VERSION = 1
RECORD_VERSION = 1
MAX_RECORD = 128 * 1024  # a stored record; an appointment is at most 48 KiB encoded
_I64 = 2**63 - 1  # SQLite integers are signed 64-bit: expiries past that are "never"

_V1 = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS appointments (
    channel_id BLOB PRIMARY KEY, client TEXT NOT NULL, size INTEGER NOT NULL, received INTEGER NOT NULL,
    record BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS blobs (
    client TEXT NOT NULL, locator BLOB NOT NULL, size INTEGER NOT NULL, received INTEGER NOT NULL,
    record BLOB NOT NULL, PRIMARY KEY (client, locator));
CREATE INDEX IF NOT EXISTS blobs_by_locator ON blobs (locator);
CREATE TABLE IF NOT EXISTS clients (
    client TEXT PRIMARY KEY, appointments INTEGER NOT NULL, bytes INTEGER NOT NULL,
    first_seen INTEGER NOT NULL, last_seen INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS disputes (channel_id BLOB PRIMARY KEY, record BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS lock_watch (
    channel_id BLOB NOT NULL, hashlock BLOB NOT NULL, expiry INTEGER NOT NULL, PRIMARY KEY (channel_id, hashlock));
CREATE INDEX IF NOT EXISTS lock_watch_by_expiry ON lock_watch (expiry);
CREATE INDEX IF NOT EXISTS lock_watch_by_hashlock ON lock_watch (hashlock);
"""
TABLES = frozenset({"meta", "appointments", "blobs", "clients", "disputes", "lock_watch"})


class TowerStoreError(StorageError):
    """The file is not a tower store, or was written by a newer version."""


def _record(fields: list[object]) -> bytes:
    return encode([RECORD_VERSION, fields], validate=False)


def _fields(blob: bytes) -> object:
    value = decode(bytes(blob), max_size=MAX_RECORD)
    if type(value) is not list or len(value) != 2 or value[0] != RECORD_VERSION:
        raise StorageError(f"a tower record of an unknown version {value[0] if type(value) is list else '?'}")
    return value[1]


class TowerStore(Transactions):
    """One SQLite file; not thread-safe (one daemon owns it). ``readonly`` opens for ``status``."""

    _what = "tower store"

    def __init__(self, path: Path | str, *, readonly: bool = False) -> None:
        self.path = Path(path)
        try:
            if readonly:
                self._db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, isolation_level=None,
                                           check_same_thread=False)
            else:
                self._db = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            raise StorageError(f"cannot open the tower store at {self.path}: {exc}") from None
        try:
            if readonly:
                self._check_version(self._version())
            else:
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute("PRAGMA synchronous=FULL")
                self._migrate()
        except sqlite3.Error as exc:
            self._db.close()
            raise StorageError(f"cannot open the tower store at {self.path}: {exc}") from None
        except BaseException:
            self._db.close()
            raise

    def close(self) -> None:
        self._db.close()

    # --- schema -----------------------------------------------------------------------------------

    def _tables(self) -> set[str]:
        return {r[0] for r in self._db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}

    def _version(self) -> int:
        tables = self._tables()
        if not tables:
            return 0
        if not TABLES <= tables:
            raise TowerStoreError(f"{self.path} is not a tower store (another program's database?)")
        row = self._db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        if row is None:
            raise TowerStoreError(f"{self.path} has no schema version; it is not a tower store")
        return int(bytes(row[0]).decode())

    def _check_version(self, version: int) -> None:
        if version > SCHEMA_VERSION:
            raise TowerStoreError(f"{self.path} was written by a newer version (schema {version}; this one reads "
                                  f"up to {SCHEMA_VERSION}); upgrade p2p-channels")

    def _migrate(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            version = self._version()
            self._check_version(version)
            if version < 1:
                for statement in _V1.strip().split(";"):
                    if statement.strip():
                        self._db.execute(statement)
            if version < SCHEMA_VERSION:
                self._db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('schema_version', ?)",
                                 (str(SCHEMA_VERSION).encode(),))
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    @property
    def schema_version(self) -> int:
        return self._version()

    # --- transactions -----------------------------------------------------------------------------

    # --- meta -------------------------------------------------------------------------------------

    def get_meta(self, key: str) -> bytes | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return bytes(row[0]) if row else None

    def set_meta(self, key: str, value: bytes) -> None:
        self._db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    def cursor(self) -> int:
        raw = self.get_meta("chain_cursor")
        return int.from_bytes(raw, "big") if raw else 0

    def set_cursor(self, cursor: int) -> None:
        self.set_meta("chain_cursor", cursor.to_bytes(8, "big"))

    # --- reads (``core.Records``) -----------------------------------------------------------------

    def appointment(self, channel_id: ChannelId) -> Stored | None:
        row = self._db.execute("SELECT client, size, received, record FROM appointments WHERE channel_id = ?",
                               (channel_id,)).fetchone()
        if row is None:
            return None
        return Stored(appointment=self._appointment(row[3]), client=row[0], size=row[1], received=row[2])

    @staticmethod
    def _appointment(blob: bytes) -> Appointment:
        try:
            return Appointment.from_fields(_fields(blob))
        except ChannelsError as exc:
            raise StorageError(f"an unreadable appointment record: {exc}") from None

    @staticmethod
    def _blob(client: str, size: int, received: int, blob: bytes) -> StoredBlob:
        try:
            return StoredBlob(blob=EncryptedAppointment.from_fields(_fields(blob)), client=client, size=size,
                              received=received)
        except ChannelsError as exc:
            raise StorageError(f"an unreadable encrypted appointment record: {exc}") from None

    def blob(self, client: str, locator: bytes) -> StoredBlob | None:
        row = self._db.execute("SELECT size, received, record FROM blobs WHERE client = ? AND locator = ?",
                               (client, locator)).fetchone()
        return None if row is None else self._blob(client, row[0], row[1], row[2])

    def blobs(self, locator: bytes) -> list[StoredBlob]:
        rows = self._db.execute("SELECT client, size, received, record FROM blobs WHERE locator = ? ORDER BY client",
                                (locator,)).fetchall()
        return [self._blob(*row) for row in rows]

    def locks_due(self, until: int, limit: int) -> list[tuple[ChannelId, bytes, int]]:
        rows = self._db.execute("SELECT channel_id, hashlock, expiry FROM lock_watch WHERE expiry <= ? "
                                "ORDER BY expiry LIMIT ?", (min(until, _I64), limit)).fetchall()
        return [(ChannelId(bytes(c)), bytes(h), e) for c, h, e in rows]

    def usage(self) -> dict[str, Usage]:
        rows = self._db.execute("SELECT client, appointments, bytes FROM clients WHERE appointments > 0 OR bytes > 0")
        return {c: Usage(appointments=n, bytes=b) for c, n, b in rows}

    def disputes(self) -> list[Dispute]:
        out = []
        for (record,) in self._db.execute("SELECT record FROM disputes ORDER BY channel_id"):
            try:
                out.append(Dispute.from_fields(_fields(record)))
            except ChannelsError as exc:
                raise StorageError(f"an unreadable dispute record: {exc}") from None
        return out

    def channel_ids(self) -> Iterator[ChannelId]:
        """Every channel with a plain appointment (the re-read after pruned L1 events)."""
        for (cid,) in self._db.execute("SELECT channel_id FROM appointments ORDER BY channel_id").fetchall():
            yield ChannelId(bytes(cid))

    def counts(self) -> dict[str, int]:
        """What ``channels tower status`` shows."""
        plain = self._db.execute("SELECT COUNT(*) FROM appointments").fetchone()[0]
        encrypted = self._db.execute("SELECT COUNT(*) FROM blobs").fetchone()[0]
        clients = self._db.execute("SELECT COUNT(*) FROM clients WHERE appointments > 0").fetchone()[0]
        disputes = self._db.execute("SELECT COUNT(*) FROM disputes").fetchone()[0]
        size = self._db.execute("SELECT COALESCE(SUM(bytes), 0) FROM clients").fetchone()[0]
        return {"plain": plain, "encrypted": encrypted, "clients": clients, "disputes": disputes, "bytes": size}

    # --- writes (inside ``transaction()``) --------------------------------------------------------

    def _usage(self, deltas: Iterable[UsageDelta], now: int) -> None:
        for client, count, size in deltas:
            self._db.execute(
                "INSERT INTO clients (client, appointments, bytes, first_seen, last_seen) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (client) DO UPDATE SET appointments = appointments + excluded.appointments, "
                "bytes = bytes + excluded.bytes, last_seen = MAX(last_seen, excluded.last_seen)",
                (client, count, size, now, now))

    def _put(self, stored: Stored) -> None:
        cid = stored.appointment.channel_id
        self._db.execute("DELETE FROM lock_watch WHERE channel_id = ?", (cid,))
        self._db.execute("INSERT OR REPLACE INTO appointments (channel_id, client, size, received, record) "
                         "VALUES (?, ?, ?, ?, ?)",
                         (cid, stored.client, stored.size, stored.received, _record(stored.appointment.to_fields())))
        self._db.executemany("INSERT OR REPLACE INTO lock_watch (channel_id, hashlock, expiry) VALUES (?, ?, ?)",
                             [(cid, h, min(e, _I64)) for h, e in watched_locks(stored.appointment)])

    def save_accepted(self, acc: Accepted) -> None:
        if acc.changed:
            self._put(acc.stored)
        self._usage(acc.usage or ((acc.stored.client, 0, 0),), acc.receipt.time)

    def save_blob(self, acc: AcceptedBlob) -> None:
        if acc.changed:
            s = acc.stored
            self._db.execute("INSERT OR REPLACE INTO blobs (client, locator, size, received, record) "
                             "VALUES (?, ?, ?, ?, ?)",
                             (s.client, s.blob.locator, s.size, s.received, _record(s.blob.to_fields())))
        self._usage(acc.usage or ((acc.stored.client, 0, 0),), acc.receipt.time)

    def delete_blobs(self, client: str, locators: Iterable[bytes], usage: Iterable[UsageDelta], now: int = 0) -> None:
        self._db.executemany("DELETE FROM blobs WHERE client = ? AND locator = ?", [(client, x) for x in locators])
        self._usage(usage, now)

    def apply(self, r: Reaction, now: int = 0) -> None:
        for d in r.disputes:
            self._db.execute("INSERT OR REPLACE INTO disputes (channel_id, record) VALUES (?, ?)",
                             (d.channel_id, _record(d.to_fields())))
        self._db.executemany("DELETE FROM disputes WHERE channel_id = ?", [(c,) for c in r.closed])
        self._db.executemany("DELETE FROM blobs WHERE client = ? AND locator = ?", list(r.blobs_used))
        for stored in r.learned:
            self._put(stored)
        for cid in r.forgotten:
            self._db.execute("DELETE FROM appointments WHERE channel_id = ?", (cid,))
            self._db.execute("DELETE FROM lock_watch WHERE channel_id = ?", (cid,))
        self._db.executemany("DELETE FROM lock_watch WHERE hashlock = ?", [(h,) for h in r.secrets_seen])
        if r.prune_locks_before is not None:
            self._db.execute("DELETE FROM lock_watch WHERE expiry <= ?", (min(r.prune_locks_before, _I64),))
        self._usage(r.usage, now)
