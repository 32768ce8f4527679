"""The embedded store: etcd's revision model in one SQLite file (WAL), after kine.

Layout: `log` holds one row per revision (create, update or delete, with the previous value so
watches never depend on history that compaction removed); `kv` holds each key's latest row so
reads are a primary-key lookup. The UNIQUE (key, prev_revision) index on `log` makes the
database itself refuse two writes that share a predecessor: compare-and-swap holds even if a
bug slipped past the checks made in the same transaction. Several processes may open one file.

Closing a connection that another thread is executing on crashes the process, so every use of
a connection is counted (`_enter`/`_leave`): `close` refuses new uses at once, and the
connections are closed when the last use in progress ends.
"""

from __future__ import annotations

import builtins
import contextlib
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from constellation.store.errors import (
    AlreadyExists,
    Compacted,
    Conflict,
    LeaseNotFound,
    NotFound,
    StoreError,
    StoreOpenError,
)
from constellation.store.sqlite_janitor import Janitor
from constellation.store.sqlite_watch import WatchHub
from constellation.store.types import Event, EventType, Record, Watch
from constellation.store.url import SqliteURL

SCHEMA_VERSION = 1
OP_CREATE, OP_UPDATE, OP_DELETE = 0, 1, 2
DEFAULT_RETAIN = 10_000
BUSY_TIMEOUT_MS = 60_000
# How long `close` waits for calls in progress: past a write's busy timeout, so that only a
# runaway read can outlast it (its connection is then closed when it ends, not by `close`).
CLOSE_WAIT_SECONDS = BUSY_TIMEOUT_MS / 1000 + 5
WATCH_BATCH = 1_000
# Each thread reads through its own connection, each with its own page cache (2 MB by
# default). A reader's cache is emptied whenever another connection commits (WAL mode), so
# in a busy store it rarely outlives one transaction: a small one lists 10,000 keys as fast
# and saves a controller manager megabytes.
READER_CACHE_KIB = 256
COMPACT_BATCH = 2_000

SCHEMA = """
CREATE TABLE IF NOT EXISTS log (
    revision INTEGER PRIMARY KEY AUTOINCREMENT,
    key BLOB NOT NULL,
    op INTEGER NOT NULL,
    create_revision INTEGER NOT NULL,
    prev_revision INTEGER NOT NULL,
    version INTEGER NOT NULL,
    lease INTEGER NOT NULL,
    value BLOB NOT NULL,
    prev_value BLOB
);
CREATE UNIQUE INDEX IF NOT EXISTS log_key_prev ON log (key, prev_revision);
CREATE TABLE IF NOT EXISTS kv (
    key BLOB PRIMARY KEY,
    value BLOB NOT NULL,
    create_revision INTEGER NOT NULL,
    mod_revision INTEGER NOT NULL,
    version INTEGER NOT NULL,
    lease INTEGER NOT NULL,
    deleted INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS kv_lease ON kv (lease) WHERE lease != 0;
CREATE TABLE IF NOT EXISTS lease (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ttl INTEGER NOT NULL,
    expires_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS lease_expiry ON lease (expires_at);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT OR IGNORE INTO meta VALUES ('schema_version', 1), ('compact_revision', 0),
    ('compact_cursor', 0)
"""

LOG_COLUMNS = "revision, key, op, create_revision, version, lease, value, prev_value"


def prefix_range(prefix: str) -> tuple[bytes, bytes | None]:
    """[start, end) of the keys under `prefix`, as etcd computes a prefix's range end."""
    start = prefix.encode()
    end = bytearray(start)
    while end and end[-1] == 0xFF:
        end.pop()
    if not end:
        return start, None
    end[-1] += 1
    return start, bytes(end)


def _range_sql(end: bytes | None) -> str:
    return "key >= ?" if end is None else "key >= ? AND key < ?"


def _range_args(start: bytes, end: bytes | None) -> tuple[bytes, ...]:
    return (start,) if end is None else (start, end)


def _record(row: Any) -> Record:
    key, value, create_revision, mod_revision, version, lease = row
    return Record(bytes(key).decode(), bytes(value), create_revision, mod_revision, version, lease)


def _event(row: Any) -> Event:
    revision, key, op, create_revision, version, lease, value, prev_value = row
    name = bytes(key).decode()
    prev = None if prev_value is None else bytes(prev_value)
    if op == OP_DELETE:
        return Event(EventType.DELETE, Record(name, b"", 0, revision, 0, 0), prev)
    record = Record(name, bytes(value), create_revision, revision, version, lease)
    return Event(EventType.PUT, record, prev)


class SqliteStore:
    """The `Store` protocol on one SQLite file."""

    def __init__(self, path: Path, retain: int, synchronous: str) -> None:
        self.path = path
        self.retain = retain
        self._synchronous = synchronous
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._connections_lock = threading.Lock()
        # One writer per process at a time: SQLite allows one anyway, and waiting on a Python
        # lock is far cheaper than SQLite's sleeping busy handler.
        self._write_lock = threading.Lock()
        self._writer = self._connect()
        self._hub: WatchHub | None = None
        self._hub_lock = threading.Lock()
        # The use gate: `_gate` guards `_uses` and `_closed`. A plain Lock, as entering it is
        # cheaper than entering a Condition; `_unused` waits on it.
        self._gate = threading.Lock()
        self._unused = threading.Condition(self._gate)
        self._uses = 0
        self._closed = False
        self._janitor = Janitor(self)

    @classmethod
    def open(cls, url: SqliteURL) -> SqliteStore:
        retain = int(url.options.get("retain", DEFAULT_RETAIN))
        synchronous = url.options.get("synchronous", "normal").upper()
        path = url.path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise StoreOpenError(
                f"cannot create data directory {path.parent}: {error.strerror}"
            ) from None
        if path.exists() and not path.is_file():
            raise StoreOpenError(f"cannot open store {path}: not a regular file")
        try:
            store = cls(path, retain, synchronous)
        except sqlite3.Error as error:
            raise StoreOpenError(f"cannot open store {path}: {_describe(error, path)}") from None
        store._janitor.start()
        return store

    # -- connections ---------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self.path, isolation_level=None, check_same_thread=False, timeout=BUSY_TIMEOUT_MS / 1000
        )
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        if conn.execute("PRAGMA journal_mode = WAL").fetchone()[0] != "wal":
            raise sqlite3.OperationalError("cannot switch to WAL mode")
        conn.execute(f"PRAGMA synchronous = {self._synchronous}")
        # Bound the WAL file after checkpoints; the data itself is bounded by compaction.
        conn.execute("PRAGMA journal_size_limit = 67108864")
        if not self._connections:
            self._init_schema(conn)
        with self._connections_lock:
            self._connections.append(conn)
        return conn

    def _init_schema(self, conn: sqlite3.Connection) -> None:
        conn.execute("BEGIN IMMEDIATE")
        try:
            # Statement by statement: executescript would commit the open transaction.
            for statement in SCHEMA.split(";"):
                conn.execute(statement)
            version = conn.execute(
                "SELECT value FROM meta WHERE name = 'schema_version'"
            ).fetchone()
            if version[0] != SCHEMA_VERSION:
                raise sqlite3.DatabaseError(f"unsupported schema version {version[0]}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def _reader(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            conn.execute(f"PRAGMA cache_size = -{READER_CACHE_KIB}")
            self._local.conn = conn
        return conn

    @contextlib.contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """A consistent snapshot: every statement inside sees the same revision."""
        self._enter()
        try:
            conn = self._reader()
            conn.execute("BEGIN")
            try:
                yield conn
            finally:
                if conn.in_transaction:
                    conn.execute("COMMIT")
        except sqlite3.Error as error:
            raise StoreError(f"store {self.path}: {error}") from None
        finally:
            self._leave()

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        self._enter()
        try:
            with self._write_lock:
                if self._closed:  # closed while this call queued: do not start a write
                    raise self._closed_error()
                conn = self._writer
                conn.execute("BEGIN IMMEDIATE")
                try:
                    yield conn
                    conn.execute("COMMIT")
                except BaseException:
                    # SQLite rolls some failures back itself; a second ROLLBACK would raise.
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
            # Inside the use: after close the hub's eventfd is gone.
            if self._hub is not None:
                self._hub.notify()
        except sqlite3.IntegrityError:
            raise Conflict("concurrent write to the same key revision") from None
        except sqlite3.Error as error:
            raise StoreError(f"store {self.path}: {error}") from None
        finally:
            self._leave()

    def _enter(self) -> None:
        """Count a use of the connections; after close, raise the closed error instead."""
        with self._gate:
            if self._closed:
                raise self._closed_error()
            self._uses += 1

    def _leave(self) -> None:
        with self._gate:
            self._uses -= 1
            if self._closed and not self._uses:
                self._close_connections()
                self._unused.notify_all()

    def _closed_error(self) -> StoreError:
        return StoreError(f"store {self.path} is closed")

    # -- reads -------------------------------------------------------------------------------

    def get(self, key: str) -> Record | None:
        with self._read() as conn:
            row = conn.execute(
                "SELECT key, value, create_revision, mod_revision, version, lease FROM kv"
                " WHERE key = ? AND deleted = 0",
                (key.encode(),),
            ).fetchone()
        return None if row is None else _record(row)

    def list(self, prefix: str, revision: int = 0, limit: int = 0) -> tuple[list[Record], int]:
        start, end = prefix_range(prefix)
        with self._read() as conn:
            current = _current_revision(conn)
            if revision > current:
                raise StoreError(f"revision {revision} is a future revision (current {current})")
            if revision and revision < current:
                self._check_not_compacted(conn, revision)
                rows = conn.execute(*_list_at_sql(start, end, revision, limit)).fetchall()
                return [_record(row) for row in rows], revision
            rows = conn.execute(
                "SELECT key, value, create_revision, mod_revision, version, lease FROM kv"
                f" WHERE {_range_sql(end)} AND deleted = 0 ORDER BY key LIMIT ?",
                (*_range_args(start, end), limit or -1),
            ).fetchall()
            return [_record(row) for row in rows], current

    def current_revision(self) -> int:
        with self._read() as conn:
            return _current_revision(conn)

    def compact_revision(self) -> int:
        with self._read() as conn:
            return _meta(conn, "compact_revision")

    def _check_not_compacted(self, conn: sqlite3.Connection, revision: int) -> None:
        compacted = _meta(conn, "compact_revision")
        if revision < compacted:
            raise Compacted(revision, compacted)

    # -- writes ------------------------------------------------------------------------------

    def create(self, key: str, value: bytes, lease: int | None = None) -> Record:
        name = key.encode()
        with self._write() as conn:
            row = conn.execute(
                "SELECT mod_revision, deleted FROM kv WHERE key = ?", (name,)
            ).fetchone()
            if row is not None and not row[1]:
                raise AlreadyExists(f"key {key!r} already exists")
            if lease and not conn.execute("SELECT 1 FROM lease WHERE id = ?", (lease,)).fetchone():
                raise LeaseNotFound(f"lease {lease} not found")
            revision = _current_revision(conn) + 1
            prev_revision = 0 if row is None else row[0]
            record = Record(key, value, revision, revision, 1, lease or 0)
            _append(conn, record, OP_CREATE, prev_revision, None)
        return record

    def update(self, key: str, value: bytes, expected_mod_revision: int) -> Record:
        with self._write() as conn:
            live = _live(conn, key)
            if live.mod_revision != expected_mod_revision:
                raise Conflict(
                    f"key {key!r} is at revision {live.mod_revision}, not {expected_mod_revision}"
                )
            revision = _current_revision(conn) + 1
            record = Record(
                key, value, live.create_revision, revision, live.version + 1, live.lease
            )
            _append(conn, record, OP_UPDATE, live.mod_revision, live.value)
        return record

    def delete(self, key: str, expected_mod_revision: int | None = None) -> int:
        with self._write() as conn:
            live = _live(conn, key)
            if expected_mod_revision is not None and live.mod_revision != expected_mod_revision:
                raise Conflict(
                    f"key {key!r} is at revision {live.mod_revision}, not {expected_mod_revision}"
                )
            return _append_delete(conn, live)

    # -- leases ------------------------------------------------------------------------------

    def grant_lease(self, ttl: int) -> int:
        if ttl <= 0:
            raise ValueError("lease TTL must be positive")
        with self._write() as conn:
            cursor = conn.execute(
                "INSERT INTO lease (ttl, expires_at) VALUES (?, ?)", (ttl, time.time() + ttl)
            )
            return int(cursor.lastrowid or 0)

    def keepalive(self, lease: int) -> int:
        # A keepalive touches only the lease row: it never adds a revision to the log.
        with self._write() as conn:
            row = conn.execute(
                "SELECT ttl FROM lease WHERE id = ? AND expires_at > ?", (lease, time.time())
            ).fetchone()
            if row is None:
                raise LeaseNotFound(f"lease {lease} not found or expired")
            conn.execute(
                "UPDATE lease SET expires_at = ? WHERE id = ?", (time.time() + row[0], lease)
            )
            return int(row[0])

    def revoke(self, lease: int) -> None:
        with self._write() as conn:
            if not _revoke(conn, lease):
                raise LeaseNotFound(f"lease {lease} not found")

    def expire_leases(self) -> int:
        """Revoke every lease past its expiry; returns how many. Run by the janitor."""
        with self._read() as conn:
            expired = [
                row[0]
                for row in conn.execute(
                    "SELECT id FROM lease WHERE expires_at <= ?", (time.time(),)
                )
            ]
        for lease in expired:
            with self._write() as conn:
                # Re-checked under the write lock: a keepalive may have won the race.
                still = conn.execute(
                    "SELECT 1 FROM lease WHERE id = ? AND expires_at <= ?", (lease, time.time())
                ).fetchone()
                if still:
                    _revoke(conn, lease)
        return len(expired)

    # -- compaction --------------------------------------------------------------------------

    def compact(self, revision: int) -> None:
        with self._write() as conn:
            current = _current_revision(conn)
            if revision > current:
                raise StoreError(f"revision {revision} is a future revision (current {current})")
            compacted = _meta(conn, "compact_revision")
            if revision <= compacted:
                raise Compacted(revision, compacted)
            conn.execute("UPDATE meta SET value = ? WHERE name = 'compact_revision'", (revision,))
        while self.compact_step():
            pass

    def compact_step(self) -> bool:
        """Physically drop one batch of compacted history; False when nothing is left.

        Batches go in revision order (a cursor kept in the database) so that concurrent
        compactors in other processes never skip or reorder rows, and each batch is its own
        short transaction so writers are never held up for long.
        """
        with self._write() as conn:
            target = _meta(conn, "compact_revision")
            low = _meta(conn, "compact_cursor")
            if low >= target:
                return False
            high = min(target, low + COMPACT_BATCH)
            _drop_history(conn, low, high)
            conn.execute("UPDATE meta SET value = ? WHERE name = 'compact_cursor'", (high,))
            return high < target

    def auto_compact(self) -> None:
        """Keep the last `retain` revisions; compact in slices so no one waits long."""
        with self._read() as conn:
            current = _current_revision(conn)
            compacted = _meta(conn, "compact_revision")
        if current - compacted > self.retain + max(self.retain // 10, 1):
            with contextlib.suppress(Compacted):
                self.compact(current - self.retain)

    def checkpoint(self) -> None:
        """Fold the WAL back into the database without waiting for readers or writers."""
        self._enter()
        try:
            with self._write_lock:
                self._writer.execute("PRAGMA wal_checkpoint(PASSIVE)")
        except sqlite3.Error as error:
            raise StoreError(f"store {self.path}: {error}") from None
        finally:
            self._leave()

    # -- watch -------------------------------------------------------------------------------

    def watch(self, prefix: str, start_revision: int = 0) -> Watch:
        # One use throughout: `close` stops the hub once no watch is being set up, so every
        # watch it returned is ended by close.
        self._enter()
        try:
            hub = self._watch_hub()
            sub, position = hub.subscribe(prefix, start_revision)
            try:
                if start_revision and start_revision <= position:
                    for event in self._history(prefix, start_revision, position):
                        sub.watch.push(event)
            except BaseException:
                sub.watch.close()
                raise
            sub.go_live()
            return sub.watch
        finally:
            self._leave()

    def _watch_hub(self) -> WatchHub:
        with self._hub_lock:
            if self._hub is None:
                self._hub = WatchHub(
                    self._read_log, Path(f"{self.path}-wal"), self.current_revision()
                )
            return self._hub

    def _history(self, prefix: str, start: int, end: int) -> Iterator[Event]:
        low, high = prefix_range(prefix)
        with self._read() as conn:
            self._check_not_compacted(conn, start)
            rows = conn.execute(
                f"SELECT {LOG_COLUMNS} FROM log WHERE revision >= ? AND revision <= ?"
                f" AND {_range_sql(high)} ORDER BY revision",
                (start, end, *_range_args(low, high)),
            ).fetchall()
        return (_event(row) for row in rows)

    def _read_log(self, after: int) -> tuple[builtins.list[Event], int]:
        try:
            with self._read() as conn:
                rows = conn.execute(
                    f"SELECT {LOG_COLUMNS} FROM log WHERE revision > ? ORDER BY revision LIMIT ?",
                    (after, WATCH_BATCH),
                ).fetchall()
                return [_event(row) for row in rows], _meta(conn, "compact_revision")
        except StoreError:
            if self._closed:
                # Nothing more for the hub to deliver: `close` stops it next, which ends its
                # watches. Failing them instead would end them with an error.
                return [], 0
            raise

    # -- lifecycle ---------------------------------------------------------------------------

    def close(self) -> None:
        """Refuse new calls, wait for those in progress, stop the janitor and end every watch.

        Every call after close raises the same StoreError. If a call outlasts the wait, its
        connections are closed when it ends.
        """
        with self._gate:
            if self._closed:
                return
            self._closed = True
            if not self._uses:
                self._close_connections()
            self._unused.wait_for(lambda: not self._uses, CLOSE_WAIT_SECONDS)
        # The janitor's and the hub's calls are refused now, and no watch is being set up, so
        # `_hub` is final.
        self._janitor.stop()
        if self._hub is not None:
            self._hub.stop()

    def _close_connections(self) -> None:
        with self._connections_lock:
            for conn in self._connections:
                conn.close()
            self._connections.clear()

    def __enter__(self) -> SqliteStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _current_revision(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'log'").fetchone()
    return 0 if row is None else int(row[0])


def _meta(conn: sqlite3.Connection, name: str) -> int:
    return int(conn.execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()[0])


def _live(conn: sqlite3.Connection, key: str) -> Record:
    row = conn.execute(
        "SELECT key, value, create_revision, mod_revision, version, lease FROM kv"
        " WHERE key = ? AND deleted = 0",
        (key.encode(),),
    ).fetchone()
    if row is None:
        raise NotFound(f"key {key!r} not found")
    return _record(row)


def _append(
    conn: sqlite3.Connection, record: Record, op: int, prev_revision: int, prev_value: bytes | None
) -> None:
    name = record.key.encode()
    conn.execute(
        "INSERT INTO log (revision, key, op, create_revision, prev_revision, version, lease,"
        " value, prev_value) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            record.mod_revision,
            name,
            op,
            record.create_revision,
            prev_revision,
            record.version,
            record.lease,
            record.value,
            prev_value,
        ),
    )
    conn.execute(
        "INSERT OR REPLACE INTO kv VALUES (?, ?, ?, ?, ?, ?, 0)",
        (
            name,
            record.value,
            record.create_revision,
            record.mod_revision,
            record.version,
            record.lease,
        ),
    )


def _append_delete(conn: sqlite3.Connection, live: Record) -> int:
    revision = _current_revision(conn) + 1
    name = live.key.encode()
    conn.execute(
        "INSERT INTO log (revision, key, op, create_revision, prev_revision, version, lease,"
        " value, prev_value) VALUES (?, ?, ?, 0, ?, 0, 0, x'', ?)",
        (revision, name, OP_DELETE, live.mod_revision, live.value),
    )
    # The tombstone stays in kv until compaction drops it: the next create chains onto it.
    conn.execute(
        "UPDATE kv SET deleted = 1, value = x'', mod_revision = ?, lease = 0 WHERE key = ?",
        (revision, name),
    )
    return revision


def _revoke(conn: sqlite3.Connection, lease: int) -> bool:
    if conn.execute("DELETE FROM lease WHERE id = ?", (lease,)).rowcount == 0:
        return False
    rows = conn.execute(
        "SELECT key, value, create_revision, mod_revision, version, lease FROM kv"
        " WHERE lease = ? AND deleted = 0 ORDER BY key",
        (lease,),
    ).fetchall()
    for row in rows:
        _append_delete(conn, _record(row))
    return True


def _list_at_sql(
    start: bytes, end: bytes | None, revision: int, limit: int
) -> tuple[str, tuple[object, ...]]:
    """Each key's latest row at `revision`: a row no successor at or before it supersedes."""
    sql = (
        "SELECT key, value, create_revision, revision, version, lease FROM log AS l"
        f" WHERE {_range_sql(end)} AND revision <= ? AND op != {OP_DELETE}"
        " AND NOT EXISTS (SELECT 1 FROM log AS s WHERE s.key = l.key"
        " AND s.prev_revision = l.revision AND s.revision <= ?)"
        " ORDER BY key LIMIT ?"
    )
    return sql, (*_range_args(start, end), revision, revision, limit or -1)


def _drop_history(conn: sqlite3.Connection, low: int, high: int) -> None:
    """Drop what no read at or after the compaction point can see, for one window.

    Each row in (low, high] deletes the row it superseded (as kine does): walking from the
    newer row means every superseded row is found exactly once, whatever order the windows
    run in. Tombstones in [low, high) go too; the row at the compaction point always stays.
    """
    conn.execute(
        "DELETE FROM log WHERE revision IN (SELECT prev_revision FROM log"
        " WHERE revision > ? AND revision <= ? AND prev_revision != 0)",
        (low, high),
    )
    conn.execute(
        f"DELETE FROM log WHERE revision >= ? AND revision < ? AND op = {OP_DELETE}", (low, high)
    )
    conn.execute(
        "DELETE FROM kv WHERE deleted = 1 AND mod_revision >= ? AND mod_revision < ?", (low, high)
    )


def _describe(error: sqlite3.Error, path: Path) -> str:
    if not os.access(path.parent, os.W_OK):
        return f"data directory {path.parent} is read-only"
    return str(error)
