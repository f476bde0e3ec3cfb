"""The node's durable store: channels, peers, the L1 cursor, payment outcomes.

One ``transaction()`` per engine step holds everything that step decided (the
channel records, the chain cursor, payment outcomes); messages are sent only
after it commits. WAL mode: every commit survives ``kill -9``. Steps in which we
signed a new state commit with ``synchronous=FULL`` (fsync), so they also survive
power loss and a restarted node never signs a second state at a version it
already signed. Other steps (a countersignature received, a chain cursor moved)
commit with ``synchronous=NORMAL``: an OS crash may roll back the last of those,
which the protocol recovers from (the peer retransmits on reestablish, chain
events replay idempotently), and it saves an fsync per payment.

The schema carries a version (``meta.schema_version``); opening an older file migrates it
forward in one transaction, and a file from a newer version is refused (``migrations``).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..core.channel import Channel
from ..core.ids import ChannelId
from ..errors import ChannelsError, StorageError
from .migrations import SCHEMA_VERSION, migrate
from .records import channel_from_bytes, channel_to_bytes


def _amount_to_db(amount: int) -> bytes:
    """Amounts are stored as decimal ASCII in a BLOB: lossless at any size.

    An SQLite INTEGER holds only signed 64 bits (a payment of 2**63 raised
    ``OverflowError`` and killed the payee: a free, repeatable crash), and numeric
    text in an INTEGER column is silently turned into a lossy REAL. A BLOB is
    stored as given. Rows written by 0.1.0 held plain integers: the schema 2
    migration rewrites them, and the reader still takes an integer."""
    return str(amount).encode()


def _amount_from_db(value: int | bytes) -> int:
    return value if isinstance(value, int) else int(bytes(value).decode())


class Transactions:
    """All-or-nothing blocks over ``self._db`` (autocommit mode), for every SQLite store of the
    package: the node's and the watchtower's. ``durable`` commits with fsync (power-loss safe);
    otherwise crash-safe only. A failure raises ``StorageError`` naming ``_what``."""

    _db: sqlite3.Connection
    _what = "store"
    _in_tx = False
    _durable = True  # the connection is opened with synchronous=FULL

    @contextmanager
    def transaction(self, *, durable: bool = True) -> Iterator[None]:
        if self._in_tx:
            raise StorageError(f"nested {self._what} transaction")
        self._in_tx = True
        try:
            if durable != self._durable:
                self._db.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
                self._durable = durable
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
        except sqlite3.Error as exc:
            raise StorageError(f"{self._what} transaction failed: {exc}") from None
        finally:
            self._in_tx = False


class Store(Transactions):
    """A SQLite database in the node's data directory. Not thread-safe: one engine owns it."""

    def __init__(self, path: Path | str) -> None:
        """Open (or create) the store at ``path``, migrating an older schema forward.

        Raises ``StorageError`` for a file that is not a node store or was written by a
        newer version (see ``migrations``); either is left as it was."""
        try:
            self._db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            raise StorageError(f"cannot open the store at {path}: {exc}") from None
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            #: the schema version the file had when opened (0: new; 1: written by 0.1.0)
            self.opened_at_version = migrate(self._db, path)
        except sqlite3.Error as exc:
            self._db.close()
            raise StorageError(f"cannot open the store at {path}: {exc}") from None
        except BaseException:
            self._db.close()
            raise
        self.schema_version = SCHEMA_VERSION

    def close(self) -> None:
        self._db.close()

    # -- channels
    def save_channel(self, ch: Channel, peer_id: str) -> None:
        self._db.execute("INSERT OR REPLACE INTO channels (channel_id, peer_id, record) VALUES (?, ?, ?)",
                         (ch.channel_id, peer_id, channel_to_bytes(ch)))

    def save_channel_peers(self, channel_id: bytes, peers: tuple[str, ...]) -> None:
        """The peer id of each participant of an n-party channel, by index ("" for us)."""
        self._db.execute("INSERT OR REPLACE INTO channel_peers (channel_id, peers) VALUES (?, ?)",
                         (channel_id, "\n".join(peers)))

    def channel_peers(self) -> dict[bytes, tuple[str, ...]]:
        rows = self._db.execute("SELECT channel_id, peers FROM channel_peers").fetchall()
        return {bytes(cid): tuple(peers.split("\n")) for cid, peers in rows}

    def load_channels(self) -> list[tuple[Channel, str]]:
        """Every readable channel. A record that cannot be read is moved to ``quarantine``
        (see ``quarantined``) instead of stopping the node: its other channels still
        need watching, or a peer could cheat on them while the node cannot start."""
        channels, bad = [], []
        for cid, record, peer in self._db.execute("SELECT channel_id, record, peer_id FROM channels").fetchall():
            try:
                channels.append((channel_from_bytes(bytes(record)), peer))
            except ChannelsError as exc:
                bad.append((bytes(cid), peer, bytes(record), str(exc)))
        if bad:
            with self.transaction():
                for cid, peer, record, reason in bad:
                    self._db.execute("INSERT OR REPLACE INTO quarantine VALUES (?, ?, ?, ?)",
                                     (cid, peer, record, reason))
                    self._db.execute("DELETE FROM channels WHERE channel_id = ?", (cid,))
        return channels

    def quarantined(self) -> list[tuple[bytes, str, str]]:
        """``(channel_id, peer_id, reason)`` of records set aside as unreadable (kept byte for byte)."""
        rows = self._db.execute("SELECT channel_id, peer_id, reason FROM quarantine").fetchall()
        return [(bytes(c), p, r) for c, p, r in rows]

    def channel(self, channel_id: ChannelId) -> Channel | None:
        row = self._db.execute("SELECT record FROM channels WHERE channel_id = ?", (channel_id,)).fetchone()
        return channel_from_bytes(bytes(row[0])) if row else None

    # -- meta (chain cursor, settings)
    def get_meta(self, key: str) -> bytes | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return bytes(row[0]) if row else None

    def set_meta(self, key: str, value: bytes) -> None:
        self._db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    def chain_cursor(self) -> int:
        raw = self.get_meta("chain_cursor")
        return int.from_bytes(raw, "big") if raw else 0

    def set_chain_cursor(self, cursor: int) -> None:
        self.set_meta("chain_cursor", cursor.to_bytes(8, "big"))

    # -- peers
    def save_peer(self, peer_id: str, l1_address: bytes, addresses: list[str]) -> None:
        self._db.execute("INSERT OR REPLACE INTO peers (peer_id, l1_address, addresses) VALUES (?, ?, ?)",
                         (peer_id, l1_address, "\n".join(addresses)))

    def prune_peers(self) -> int:
        """Forget peers we share no channel with (rows from 0.1.0, which stored every Init)."""
        keep = {p for peers in self.channel_peers().values() for p in peers if p}  # n-party participants
        idle = [p for (p,) in self._db.execute("SELECT peer_id FROM peers WHERE peer_id NOT IN "
                                               "(SELECT peer_id FROM channels)").fetchall() if p not in keep]
        for p in idle:
            self._db.execute("DELETE FROM peers WHERE peer_id = ?", (p,))
        return len(idle)

    def peers(self) -> dict[str, tuple[bytes, list[str]]]:
        rows = self._db.execute("SELECT peer_id, l1_address, addresses FROM peers").fetchall()
        return {p: (bytes(a), [x for x in addrs.split("\n") if x]) for p, a, addrs in rows}

    # -- the durable outbox
    def outbox_add(self, peer_id: str, frame: bytes) -> int:
        """Queue ``frame`` for ``peer_id`` (inside the step's transaction); its sequence number."""
        seq = self._db.execute("INSERT INTO outbox (peer_id, frame) VALUES (?, ?)", (peer_id, frame)).lastrowid
        assert seq is not None
        return seq

    def outbox_frames(self, peer_id: str, *, limit: int) -> list[tuple[int, bytes]]:
        """The oldest ``limit`` frames still queued for ``peer_id``, in order."""
        rows = self._db.execute("SELECT seq, frame FROM outbox WHERE peer_id = ? ORDER BY seq LIMIT ?",
                                (peer_id, limit)).fetchall()
        return [(int(seq), bytes(frame)) for seq, frame in rows]

    def outbox_sent(self, peer_id: str, upto: int) -> None:
        """Frames for ``peer_id`` up to ``upto`` were written to the peer's stream."""
        self._db.execute("DELETE FROM outbox WHERE peer_id = ? AND seq <= ?", (peer_id, upto))

    def outbox_trim(self, peer_id: str, keep: int) -> int:
        """Keep only the newest ``keep`` frames for ``peer_id``; the number dropped."""
        return self._db.execute(
            "DELETE FROM outbox WHERE peer_id = ? AND seq NOT IN "
            "(SELECT seq FROM outbox WHERE peer_id = ? ORDER BY seq DESC LIMIT ?)", (peer_id, peer_id, keep)).rowcount

    def outbox_peers(self) -> list[str]:
        return [p for (p,) in self._db.execute("SELECT DISTINCT peer_id FROM outbox ORDER BY peer_id")]

    def l1_add(self, channel_id: bytes, effect: bytes) -> int:
        seq = self._db.execute("INSERT INTO l1_outbox (channel_id, effect) VALUES (?, ?)",
                               (channel_id, effect)).lastrowid
        assert seq is not None
        return seq

    def l1_pending(self) -> list[tuple[int, bytes, bytes]]:
        rows = self._db.execute("SELECT seq, channel_id, effect FROM l1_outbox ORDER BY seq").fetchall()
        return [(int(seq), bytes(cid), bytes(effect)) for seq, cid, effect in rows]

    def l1_done(self, seqs: list[int]) -> None:
        self._db.executemany("DELETE FROM l1_outbox WHERE seq = ?", [(seq,) for seq in seqs])

    # -- watchtowers (channels.node.towers)
    def add_tower(self, peer_id: str, address: str) -> None:
        self._db.execute("INSERT OR REPLACE INTO towers VALUES (?, ?, ?)", (peer_id, address, int(time.time())))

    def remove_tower(self, peer_id: str) -> bool:
        self._db.execute("DELETE FROM tower_acks WHERE peer_id = ?", (peer_id,))
        return self._db.execute("DELETE FROM towers WHERE peer_id = ?", (peer_id,)).rowcount > 0

    def towers(self) -> dict[str, str]:
        """``{peer_id: multiaddr}`` of the configured towers."""
        return {p: a for p, a in self._db.execute("SELECT peer_id, address FROM towers ORDER BY added, peer_id")}

    def tower_acked(self, peer_id: str) -> dict[bytes, int]:
        """``{channel_id: version}`` a tower acknowledged."""
        rows = self._db.execute("SELECT channel_id, version FROM tower_acks WHERE peer_id = ?", (peer_id,))
        return {bytes(cid): v for cid, v in rows}

    def set_tower_ack(self, peer_id: str, channel_id: bytes, version: int, receipt: bytes) -> None:
        self._db.execute("INSERT OR REPLACE INTO tower_acks VALUES (?, ?, ?, ?)",
                         (peer_id, channel_id, version, receipt))

    # -- payments
    def record_payment(self, payment_id: bytes, channel_id: bytes, direction: str, asset: str, amount: int,
                       status: str, detail: str = "") -> None:
        # The creation time survives status changes: the row is updated, never replaced.
        self._db.execute(
            "INSERT INTO payments (payment_id, channel_id, direction, asset, amount, status, detail, created) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (payment_id) DO UPDATE SET channel_id = excluded.channel_id, "
            "direction = excluded.direction, asset = excluded.asset, amount = excluded.amount, "
            "status = excluded.status, detail = excluded.detail",
            (payment_id, channel_id, direction, asset, _amount_to_db(amount), status, detail, int(time.time())))

    def payment_of(self, payment_id: bytes) -> tuple[str, bytes, int] | None:
        """``(status, channel_id, amount)`` of an outgoing payment, or None if never recorded."""
        row = self._db.execute("SELECT status, channel_id, amount FROM payments WHERE payment_id = ?",
                               (payment_id,)).fetchone()
        return None if row is None else (row[0], bytes(row[1]), _amount_from_db(row[2]))

    def payment(self, payment_id: bytes) -> tuple[str, str] | None:
        row = self._db.execute("SELECT status, detail FROM payments WHERE payment_id = ?", (payment_id,)).fetchone()
        return (row[0], row[1]) if row else None

    def payment_totals(self) -> dict[tuple[str, str], int]:
        totals: dict[tuple[str, str], int] = {}
        for d, s, amount in self._db.execute("SELECT direction, status, amount FROM payments"):
            totals[(d, s)] = totals.get((d, s), 0) + _amount_from_db(amount)
        return totals

    # -- multi-hop records (``channels.forwarding``: forwards, invoices, payments, fee policies)
    def put_hop_record(self, kind: str, key: bytes, status: str, body: bytes, created: int) -> None:
        """Insert or update one record; the creation time of an existing record is kept."""
        self._db.execute(
            "INSERT INTO hop_records (kind, key, status, created, body) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (kind, key) DO UPDATE SET status = excluded.status, body = excluded.body",
            (kind, key, status, created, body))

    def delete_hop_record(self, kind: str, key: bytes) -> None:
        self._db.execute("DELETE FROM hop_records WHERE kind = ? AND key = ?", (kind, key))

    def hop_records(self, kind: str, *, status: str | None = None,
                    limit: int | None = None) -> list[tuple[bytes, str, int, bytes]]:
        """``(key, status, created, body)`` of one kind (optionally one status), newest first."""
        where, args = ("kind = ?", [kind]) if status is None else ("kind = ? AND status = ?", [kind, status])
        rows = self._db.execute(f"SELECT key, status, created, body FROM hop_records WHERE {where} "
                                "ORDER BY created DESC, rowid DESC LIMIT ?", (*args, -1 if limit is None else limit))
        return [(bytes(k), str(s), int(c), bytes(b)) for k, s, c, b in rows]

    def hop_record(self, kind: str, key: bytes) -> tuple[str, int, bytes] | None:
        row = self._db.execute("SELECT status, created, body FROM hop_records WHERE kind = ? AND key = ?",
                               (kind, key)).fetchone()
        return None if row is None else (str(row[0]), int(row[1]), bytes(row[2]))

    # -- the event log (``channels.node.events``)
    def append_events(self, rows: list[tuple[int, int, str, bytes]]) -> None:
        """Add ``(cursor, time, kind, body)`` rows in one statement (inside the step's transaction);
        the caller numbers them after the newest cursor ever given."""
        self._db.executemany("INSERT INTO events (cursor, time, kind, body) VALUES (?, ?, ?, ?)", rows)

    def events_after(self, cursor: int, *, limit: int) -> list[tuple[int, int, str, bytes]]:
        """``(cursor, time, kind, body)`` of the oldest ``limit`` events after ``cursor``, in order."""
        rows = self._db.execute("SELECT cursor, time, kind, body FROM events WHERE cursor > ? ORDER BY cursor "
                                "LIMIT ?", (cursor, limit)).fetchall()
        return [(int(c), int(t), str(k), bytes(b)) for c, t, k, b in rows]

    def last_event_cursor(self) -> int:
        """The newest cursor ever given (0: none), whether or not its event is still kept."""
        row = self._db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'events'").fetchone()
        return int(row[0]) if row else 0

    def count_events(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM events").fetchone()[0])

    def events_trimmed_through(self) -> int:
        """The newest cursor dropped by ``trim_events`` (0: none ever was)."""
        raw = self.get_meta("events_trimmed_through")
        return int.from_bytes(raw, "big") if raw else 0

    def trim_events(self, keep: int) -> int:
        """Keep only the newest ``keep`` events and remember the newest cursor dropped (so a
        reader resuming before it is told, not silently skipped); the number dropped."""
        row = self._db.execute("SELECT cursor FROM events ORDER BY cursor DESC LIMIT 1 OFFSET ?", (keep,)).fetchone()
        if row is None:
            return 0
        through = int(row[0])
        dropped = self._db.execute("DELETE FROM events WHERE cursor <= ?", (through,)).rowcount
        self.set_meta("events_trimmed_through", max(through, self.events_trimmed_through()).to_bytes(8, "big"))
        return int(dropped)

    def list_payments(self, limit: int | None = None) -> list[tuple[bytes, bytes, str, str, int, str, str, int]]:
        """``(payment_id, channel_id, direction, asset, amount, status, detail, created)``, newest
        first (by creation time, then insertion order; rows from before schema 4 have ``created`` 0
        and come last)."""
        rows = self._db.execute(
            "SELECT payment_id, channel_id, direction, asset, amount, status, detail, created FROM payments "
            "ORDER BY created DESC, rowid DESC LIMIT ?", (-1 if limit is None else limit,)).fetchall()
        return [(bytes(p), bytes(c), d, a, _amount_from_db(amt), s, detail, int(created))
                for p, c, d, a, amt, s, detail, created in rows]
