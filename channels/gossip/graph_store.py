"""The public channel graph on disk: its own SQLite file, apart from the node's store.

The graph is a cache of what the network said, signatures included, so it can be thrown
away and re-synced; it never shares a transaction with channel state (ARCHITECTURE section 6
is about our money, this is about other people's announcements). Rows hold the messages'
canonical bytes; on load they are decoded strictly again and an unreadable row is skipped.
WAL without fsync per write: losing the last second of gossip on a crash costs nothing.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

from .errors import GraphStoreError

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS channels (channel_id BLOB PRIMARY KEY, message BLOB NOT NULL,
                                     received_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS updates (channel_id BLOB NOT NULL, direction INTEGER NOT NULL, message BLOB NOT NULL,
                                    PRIMARY KEY (channel_id, direction));
CREATE TABLE IF NOT EXISTS nodes (node_key BLOB PRIMARY KEY, message BLOB NOT NULL);
"""


class GraphStore:
    """``GraphStore(path)`` opens (or creates) the graph file; ``close()`` when done."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        try:
            self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            version = self._version()
            if version is None:
                with self._tx():
                    for stmt in _SCHEMA.strip().split(";"):
                        if stmt.strip():
                            self._db.execute(stmt)
                    self._db.execute("INSERT INTO meta VALUES ('schema_version', ?)", (SCHEMA_VERSION,))
            elif version > SCHEMA_VERSION:
                raise GraphStoreError(f"{self.path} has graph schema {version}, newer than this version's "
                                      f"{SCHEMA_VERSION}: upgrade, or delete the file to re-sync the graph")
        except sqlite3.DatabaseError as exc:
            raise GraphStoreError(f"cannot open the graph file {self.path}: {exc}; delete it to re-sync the graph"
                                  ) from None

    def _version(self) -> int | None:
        has_meta = self._db.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='meta'").fetchone()
        if not has_meta:
            return None
        row = self._db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        if row is None:
            raise GraphStoreError(f"{self.path} has no graph schema version; delete it to re-sync the graph")
        return int(row[0])

    def _tx(self) -> _Transaction:
        return _Transaction(self._db)

    @property
    def schema_version(self) -> int:
        version = self._version()
        assert version is not None
        return version

    def put_channel(self, channel_id: bytes, message: bytes, received_at: int) -> None:
        with self._tx():
            self._db.execute("INSERT OR REPLACE INTO channels VALUES (?, ?, ?)", (channel_id, message, received_at))

    def put_update(self, channel_id: bytes, direction: int, message: bytes) -> None:
        with self._tx():
            self._db.execute("INSERT OR REPLACE INTO updates VALUES (?, ?, ?)", (channel_id, direction, message))

    def put_node(self, node_key: bytes, message: bytes) -> None:
        with self._tx():
            self._db.execute("INSERT OR REPLACE INTO nodes VALUES (?, ?)", (node_key, message))

    def delete_channels(self, channel_ids: list[bytes]) -> None:
        with self._tx():
            for cid in channel_ids:
                self._db.execute("DELETE FROM channels WHERE channel_id = ?", (cid,))
                self._db.execute("DELETE FROM updates WHERE channel_id = ?", (cid,))

    def delete_nodes(self, node_keys: list[bytes]) -> None:
        with self._tx():
            for key in node_keys:
                self._db.execute("DELETE FROM nodes WHERE node_key = ?", (key,))

    def channels(self) -> Iterator[tuple[bytes, int]]:
        """(message, received_at) of every stored channel announcement."""
        for message, received_at in self._db.execute("SELECT message, received_at FROM channels"):
            yield bytes(message), int(received_at)

    def updates(self) -> Iterator[bytes]:
        for (message,) in self._db.execute("SELECT message FROM updates"):
            yield bytes(message)

    def nodes(self) -> Iterator[bytes]:
        for (message,) in self._db.execute("SELECT message FROM nodes"):
            yield bytes(message)

    def close(self) -> None:
        self._db.close()


class _Transaction:
    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, kind: object, exc: object, tb: object) -> None:
        self._db.execute("COMMIT" if kind is None else "ROLLBACK")
