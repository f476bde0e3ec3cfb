"""SQLite persistence of the devnet: every account, token, channel, deposit, secret,
event and block, in one file.

WAL with ``synchronous=FULL``: a transaction that returned has reached the disk, so
it survives ``kill -9`` and power loss (ARCHITECTURE section 6: the records that decide
disputes are never half-written). Each ledger transaction's ``Writes`` and its events
go in one SQLite transaction: either all of it is visible, or none.

Amounts (balances and deposits) are kept as decimal TEXT in columns of TEXT affinity,
which SQLite stores as given: lossless for any size. SQLite integers are signed 64-bit,
and a column of INTEGER or NUMERIC affinity would turn a larger number into a REAL;
balances have no upper bound (a payout must never fail for the receiver's balance).

The logs are bounded: the store keeps the last ``log_kept`` events, receipts and
blocks and remembers the highest pruned cursor, so a client resuming below it gets
``CursorPruned`` instead of a silent gap.

Each ledger has a **genesis id**: 32 random bytes drawn when it is created (or when a file
from before genesis ids is first opened), kept in ``meta``. It names the ledger, so a node
can tell a reset or another devnet from the one its store was written against.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from ... import encoding
from ...chain.base import ChainEvent
from ...core.ids import Address, AssetId, ChannelId
from ...errors import ConfigError, LedgerError, StorageError
from .errors import cursor_pruned
from .events import SCHEMAS, decode_data, encode_data
from .rules import ChannelRecord, DepositEntry, Secret, Writes

# 1: the first release; 2: log pruning (meta.pruned_through, receipts_by_first); 3: lock ids in
# stored states, and lock escrow (a channel record gains its pending locks; older records have none).
SCHEMA_VERSION = 3
_RECORD_MAX = 1 << 20
SQL_INT_MAX = 2**63 - 1  # SQLite's largest integer, and so its largest rowid and event cursor
LOG_KEPT = 100_000  # events, receipts and blocks kept (the rest is pruned, oldest first)
GENESIS_SIZE = 32  # bytes of a ledger's genesis id

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS accounts (address BLOB PRIMARY KEY, nonce INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS balances (address BLOB NOT NULL, asset TEXT NOT NULL, amount TEXT NOT NULL,
                                     PRIMARY KEY (address, asset));
CREATE TABLE IF NOT EXISTS tokens (asset TEXT PRIMARY KEY, issuer BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS channels (channel_id BLOB PRIMARY KEY, record BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS deposits (seq INTEGER PRIMARY KEY AUTOINCREMENT, channel_id BLOB NOT NULL,
                                     depositor BLOB NOT NULL, asset TEXT NOT NULL, amount TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS deposits_by_channel ON deposits (channel_id, seq);
CREATE TABLE IF NOT EXISTS secrets (hashlock BLOB PRIMARY KEY, preimage BLOB NOT NULL, time INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS events (cursor INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL,
                                   channel_id BLOB, data BLOB NOT NULL, height INTEGER NOT NULL,
                                   time INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS blocks (height INTEGER PRIMARY KEY, time INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS receipts (id BLOB PRIMARY KEY, height INTEGER NOT NULL, first_cursor INTEGER NOT NULL,
                                     last_cursor INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS receipts_by_first ON receipts (first_cursor);
"""


def _add_lock_ids(db: sqlite3.Connection) -> None:
    """Schema 2 -> 3: give the locks of stored states the lock id they lacked.

    Earlier releases wrote a lock as 6 fields; a lock now has a 7th, its id, and a 6-field
    one no longer decodes. Each such lock gets its index in its state's locks as a one-byte
    id (distinct within the state, as ids must be; 0x00, the id of a lock built without one,
    for a state's first lock), in the channel records (state and checkpoint) and in the
    state of every stored event. Lock escrow itself changes no table: a channel record
    gains an 8th field, its pending locks, and a 7-field record reads as having none,
    which is what the earlier rule left behind (it paid every lock at the withdraw)."""
    for cid, blob in db.execute("SELECT channel_id, record FROM channels").fetchall():
        f = encoding.decode(blob, max_size=_RECORD_MAX)
        if type(f) is list and len(f) >= 5:
            new = [*f[:2], _signed_with_lock_ids(f[2]), f[3], _signed_with_lock_ids(f[4]), *f[5:]]
            if new != f:
                db.execute("UPDATE channels SET record = ? WHERE channel_id = ?", (encoding.encode(new), cid))
    for kind, schema in SCHEMAS.items():
        names = [name for name, _ in schema]
        if "state" not in names:
            continue
        at = names.index("state")
        for cursor, blob in db.execute("SELECT cursor, data FROM events WHERE kind = ?", (kind,)).fetchall():
            f = encoding.decode(blob, max_size=_RECORD_MAX)
            if type(f) is list and len(f) > at:
                new = [*f[:at], _signed_with_lock_ids(f[at]), *f[at + 1:]]
                if new != f:
                    db.execute("UPDATE events SET data = ? WHERE cursor = ?", (encoding.encode(new), cursor))


def _signed_with_lock_ids(signed: object) -> object:
    """A stored SignedState ``[[channel_id, version, [assets, balances, locks], ...], sigs]``
    with each 6-field lock given its index as its id; anything else as it is."""
    try:
        locks = signed[0][2][2]  # type: ignore[index]
    except (TypeError, IndexError, KeyError):
        return signed
    if type(locks) is not list or not any(type(lk) is list and len(lk) == 6 for lk in locks):
        return signed
    state, sigs = signed[0], signed[1]  # type: ignore[index]
    alloc = state[2]
    # At most MAX_LOCKS (256) locks: every index fits one byte.
    new_locks = [[*lk, bytes([i])] if type(lk) is list and len(lk) == 6 else lk for i, lk in enumerate(locks)]
    return [[*state[:2], [*alloc[:2], new_locks, *alloc[3:]], *state[3:]], sigs]


# Schema upgrades, each run in the transaction that opens an older file: data written by
# an earlier release stays readable (its amounts were decimal TEXT already). A step is SQL
# or a function of the connection.
_MIGRATIONS: dict[int, str | Callable[[sqlite3.Connection], None]] = {
    1: """
INSERT OR IGNORE INTO meta VALUES ('pruned_through', 0);
CREATE INDEX IF NOT EXISTS receipts_by_first ON receipts (first_cursor);
""",
    2: _add_lock_ids,
}


class Store:
    """The devnet's durable state; the only writer of its SQLite file.

    Implements ``rules.View`` for reads. Not thread-safe: one trio thread owns it."""

    def __init__(self, path: str | Path | None, *, chain_id: int, genesis_time: int,
                 log_kept: int = LOG_KEPT) -> None:
        if type(log_kept) is not int or log_kept < 1:
            raise ConfigError("the devnet keeps at least one event (log_kept >= 1)")
        self.log_kept = log_kept
        try:
            self._db = sqlite3.connect(":memory:" if path is None else str(path), isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            raise StorageError(f"cannot open the devnet database at {path}: {exc}") from exc
        with self._transaction():
            meta = dict(self._db.execute("SELECT key, value FROM meta"))
            if not meta:
                if type(chain_id) is not int or not 0 <= chain_id <= SQL_INT_MAX:
                    raise ConfigError(f"a devnet chain id is an integer in 0 .. 2^63-1, got {chain_id!r}")
                meta = {"schema": SCHEMA_VERSION, "chain_id": chain_id, "height": 0, "time": genesis_time,
                        "time_offset": 0, "pruned_through": 0}
                self._db.executemany("INSERT INTO meta VALUES (?, ?)", meta.items())
                self._db.execute("INSERT INTO blocks VALUES (0, ?)", (genesis_time,))
            while meta["schema"] in _MIGRATIONS:
                step = _MIGRATIONS[meta["schema"]]
                if callable(step):
                    step(self._db)
                else:
                    for statement in step.split(";"):
                        if statement.strip():
                            self._db.execute(statement)
                self._db.execute("UPDATE meta SET value = ? WHERE key = 'schema'", (meta["schema"] + 1,))
                meta = dict(self._db.execute("SELECT key, value FROM meta"))
            if "genesis" not in meta and meta["schema"] == SCHEMA_VERSION:
                # New, or written before genesis ids: from now on the file keeps this one.
                meta["genesis"] = os.urandom(GENESIS_SIZE)
                self._db.execute("INSERT INTO meta VALUES ('genesis', ?)", (meta["genesis"],))
        if meta["schema"] != SCHEMA_VERSION:
            raise ConfigError(f"devnet database has schema {meta['schema']}, this version reads {SCHEMA_VERSION}")
        self._chain_id = int(meta["chain_id"])
        self.height = int(meta["height"])
        self.time = int(meta["time"])
        self.time_offset = int(meta["time_offset"])
        self.pruned_through = int(meta["pruned_through"])
        self.genesis = bytes(meta["genesis"])  # the ledger's genesis id (see the module docstring)

    def close(self) -> None:
        self._db.close()

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        """BEGIN IMMEDIATE .. COMMIT, or ROLLBACK on any error: never half-applied."""
        try:
            self._db.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise StorageError(f"devnet database is busy or broken: {exc}") from exc
        try:
            yield
        except sqlite3.Error as exc:
            self._db.execute("ROLLBACK")
            raise StorageError(f"devnet write failed: {exc}") from exc
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        try:
            self._db.execute("COMMIT")
        except sqlite3.Error as exc:
            self._db.execute("ROLLBACK")
            raise StorageError(f"devnet commit failed: {exc}") from exc

    # --- rules.View ----------------------------------------------------------------------------

    @property
    def chain_id(self) -> int:
        return self._chain_id

    def nonce(self, account: Address) -> int:
        row = self._db.execute("SELECT nonce FROM accounts WHERE address = ?", (account,)).fetchone()
        return 0 if row is None else int(row[0])

    def balance(self, account: Address, asset: AssetId) -> int:
        row = self._db.execute("SELECT amount FROM balances WHERE address = ? AND asset = ?",
                               (account, asset)).fetchone()
        return 0 if row is None else int(row[0])

    def balances(self, account: Address) -> dict[AssetId, int]:
        rows = self._db.execute("SELECT asset, amount FROM balances WHERE address = ? ORDER BY asset", (account,))
        return {AssetId(a): int(n) for a, n in rows if int(n)}

    def token_issuer(self, asset: AssetId) -> Address | None:
        row = self._db.execute("SELECT issuer FROM tokens WHERE asset = ?", (asset,)).fetchone()
        return None if row is None else Address(row[0])

    def assets(self) -> list[AssetId]:
        return [AssetId(a) for (a,) in self._db.execute("SELECT asset FROM tokens ORDER BY asset")]

    def channel(self, channel_id: ChannelId) -> ChannelRecord | None:
        row = self._db.execute("SELECT record FROM channels WHERE channel_id = ?", (channel_id,)).fetchone()
        if row is None:
            return None
        return ChannelRecord.from_fields(encoding.decode(row[0], max_size=_RECORD_MAX))

    def deposits(self, channel_id: ChannelId) -> list[DepositEntry]:
        rows = self._db.execute("SELECT depositor, asset, amount FROM deposits WHERE channel_id = ? ORDER BY seq",
                                (channel_id,))
        return [DepositEntry(depositor=Address(d), asset=AssetId(a), amount=int(n)) for d, a, n in rows]

    def secret(self, hashlock: bytes) -> Secret | None:
        row = self._db.execute("SELECT preimage, time FROM secrets WHERE hashlock = ?", (hashlock,)).fetchone()
        return None if row is None else Secret(preimage=row[0], time=int(row[1]))

    # --- writes --------------------------------------------------------------------------------

    def commit(self, w: Writes) -> list[ChainEvent]:
        """Apply one transaction's writes and events atomically; return the stored events."""
        with self._transaction():
            out = self._write(w)
            pruned = self._prune()
        self.pruned_through = pruned
        return out

    def commit_batch(self, steps: Sequence[Callable[[], Writes]]) -> list[list[ChainEvent] | LedgerError]:
        """Run several transactions' rules and writes under one durable commit (group commit).

        Each step sees the writes of the steps before it and stays atomic on its own: a
        step whose rules refuse writes nothing, one whose write fails rolls back to its
        savepoint. One fsync for the batch is what lets a daemon go past one commit per
        transaction; nobody is answered before the batch is durable."""
        results: list[list[ChainEvent] | LedgerError] = []
        with self._transaction():
            for step in steps:
                try:
                    w = step()
                except LedgerError as exc:
                    results.append(exc)
                    continue
                self._db.execute("SAVEPOINT step")
                try:
                    results.append(self._write(w))
                except sqlite3.Error as exc:
                    self._db.execute("ROLLBACK TO step")
                    err = LedgerError(f"devnet write failed: {exc}")
                    err.code = "internal"
                    results.append(err)
                self._db.execute("RELEASE step")
            pruned = self._prune()
        self.pruned_through = pruned
        return results

    def _prune(self) -> int:
        """Drop what the logs hold beyond the last ``log_kept`` entries; return the pruned cursor.

        Growth bound (a faucet or transaction flood must not fill the disk): at most
        ``log_kept`` events, receipts and blocks stay. A receipt goes with its first event, so
        a kept receipt always lists all its events. Runs inside the caller's transaction."""
        db, kept = self._db, self.log_kept
        pruned = self.pruned_through
        target = self.last_cursor() - kept
        if target > pruned:
            db.execute("DELETE FROM events WHERE cursor <= ?", (target,))
            db.execute("DELETE FROM receipts WHERE first_cursor BETWEEN 1 AND ?", (target,))
            db.execute("UPDATE meta SET value = ? WHERE key = 'pruned_through'", (target,))
            pruned = target
        # Receipts of transactions without events (a repeated RegisterSecret) count by rowid.
        db.execute("DELETE FROM receipts WHERE rowid <= (SELECT MAX(rowid) FROM receipts) - ?", (kept,))
        return pruned

    def _write(self, w: Writes) -> list[ChainEvent]:
        db = self._db
        db.executemany("INSERT OR REPLACE INTO balances VALUES (?, ?, ?)",
                       [(a, s, str(n)) for (a, s), n in w.balances.items()])
        db.executemany("INSERT OR REPLACE INTO accounts VALUES (?, ?)", w.nonces.items())
        db.executemany("INSERT INTO tokens VALUES (?, ?)", w.tokens.items())
        db.executemany("INSERT OR REPLACE INTO channels VALUES (?, ?)",
                       [(cid, encoding.encode(r.to_fields())) for cid, r in w.channels.items()])
        db.executemany("INSERT INTO deposits (channel_id, depositor, asset, amount) VALUES (?, ?, ?, ?)",
                       [(cid, d.depositor, d.asset, str(d.amount)) for cid, d in w.deposits])
        db.executemany("INSERT INTO secrets VALUES (?, ?, ?)", [(h, s.preimage, s.time) for h, s in w.secrets.items()])
        out = []
        for kind, cid, data in w.events:
            cur = db.execute("INSERT INTO events (kind, channel_id, data, height, time) VALUES (?, ?, ?, ?, ?)",
                             (kind, cid, encode_data(kind, data), self.height, self.time))
            out.append(ChainEvent(cursor=int(cur.lastrowid or 0), kind=kind, channel_id=cid, data=data,
                                  height=self.height, time=self.time))
        if w.receipt is not None:
            first, last = (out[0].cursor, out[-1].cursor) if out else (0, -1)
            db.execute("INSERT INTO receipts VALUES (?, ?, ?, ?)", (w.receipt, self.height, first, last))
        return out

    def receipt(self, receipt_id: bytes) -> tuple[int, list[ChainEvent]] | None:
        """``(height, events)`` of an applied transaction or faucet request, or None."""
        row = self._db.execute("SELECT height, first_cursor, last_cursor FROM receipts WHERE id = ?",
                               (receipt_id,)).fetchone()
        if row is None:
            return None
        height, first, last = row
        return int(height), self._events(first - 1, last - first + 1) if last >= first else []

    def mine(self, time: int) -> None:
        """Append a block at ``time`` (never before the previous block)."""
        time = max(time, self.time)
        with self._transaction():
            self._db.execute("INSERT INTO blocks VALUES (?, ?)", (self.height + 1, time))
            self._db.execute("DELETE FROM blocks WHERE height <= ?", (self.height + 1 - self.log_kept,))
            self._db.executemany("UPDATE meta SET value = ? WHERE key = ?",
                                 [(self.height + 1, "height"), (time, "time")])
        self.height += 1
        self.time = time

    def set_time_offset(self, offset: int) -> None:
        with self._transaction():
            self._db.execute("UPDATE meta SET value = ? WHERE key = 'time_offset'", (offset,))
        self.time_offset = offset

    # --- event log -----------------------------------------------------------------------------

    def events_after(self, cursor: int, limit: int = 256) -> list[ChainEvent]:
        """Up to ``limit`` events with a cursor above ``cursor``, in order.

        Any integer is answered: ``CursorPruned`` if events after it were pruned (a silent
        gap would make a watcher miss a dispute), nothing beyond the head."""
        if cursor < self.pruned_through:
            raise cursor_pruned(self.pruned_through, self.log_kept)
        # SQLite integers stop at 2^63-1 (so do cursors): a cursor beyond, which a client may
        # well send, has no events after it instead of overflowing the query.
        if cursor >= SQL_INT_MAX or limit <= 0:
            return []
        return self._events(max(cursor, 0), min(limit, SQL_INT_MAX))

    def _events(self, cursor: int, limit: int) -> list[ChainEvent]:
        rows = self._db.execute("SELECT cursor, kind, channel_id, data, height, time FROM events WHERE cursor > ? "
                                "ORDER BY cursor LIMIT ?", (cursor, limit))
        return [ChainEvent(cursor=c, kind=k, channel_id=None if cid is None else ChannelId(cid),
                           data=decode_data(k, d), height=h, time=t) for c, k, cid, d, h, t in rows]

    def last_cursor(self) -> int:
        row = self._db.execute("SELECT MAX(cursor) FROM events").fetchone()
        return int(row[0] or 0)

    def digest(self, *, with_head: bool = True) -> bytes:
        """SHA-256 over every table in a fixed order: equal digests mean equal ledgers
        (the genesis id is left out: two ledgers fed the same transactions are equal).

        ``with_head=False`` leaves out the blocks and the head's height and time, which
        a daemon's miner changes on its own (tests compare the rest around a refusal)."""
        return ledger_digest(self._db, with_head=with_head)


def ledger_digest(db: sqlite3.Connection, *, with_head: bool = True) -> bytes:
    h = hashlib.sha256()
    for table, order in _DIGEST_TABLES:
        if table == "blocks" and not with_head:
            continue
        h.update(table.encode())
        for row in db.execute(f"SELECT * FROM {table} ORDER BY {order}"):
            if table == "meta" and (row[0] == "genesis" or (not with_head and row[0] in ("height", "time"))):
                continue  # the genesis id names the ledger, it is not part of its state
            h.update(encoding.encode(list(row)))
    return h.digest()


def file_digest(path: str | Path, *, with_head: bool = True) -> bytes:
    """The digest of a ledger file another process (a running daemon) owns, read-only."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        db.execute("BEGIN")  # one snapshot for every table
        return ledger_digest(db, with_head=with_head)
    finally:
        db.close()


_DIGEST_TABLES = (("meta", "key"), ("accounts", "address"), ("balances", "address, asset"), ("tokens", "asset"),
                  ("channels", "channel_id"), ("deposits", "seq"), ("secrets", "hashlock"), ("events", "cursor"),
                  ("receipts", "id"), ("blocks", "height"))
