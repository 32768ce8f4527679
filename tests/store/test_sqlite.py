"""What only the embedded SQLite backend must show: many processes on one file, crash safety,
automatic compaction, and clear errors for files it cannot use."""

from __future__ import annotations

import itertools
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from constellation.store import (
    Compacted,
    SqliteURL,
    StoreError,
    StoreOpenError,
    open_store,
    parse_store_url,
)
from constellation.store.sqlite import SqliteStore
from constellation.store.sqlite_watch import BATCH_LINGER_SECONDS

ROOT = Path(__file__).resolve().parents[2]


def sqlite_store(url: str) -> SqliteStore:
    parsed = parse_store_url(url)
    assert isinstance(parsed, SqliteURL)
    return SqliteStore.open(parsed)


def spawn(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.store.sqlite_processes", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )


@pytest.fixture
def children() -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for child in started:
        if child.poll() is None:
            child.kill()
        child.wait(timeout=10)


def read_line(child: subprocess.Popen[str]) -> str:
    assert child.stdout is not None
    line = child.stdout.readline()
    assert line, f"child exited with {child.wait()}"
    return line.strip()


def test_watcher_process_sees_every_write_of_a_writer_process(
    tmp_path: Path, children: list[subprocess.Popen[str]]
) -> None:
    url = f"sqlite://{tmp_path / 'state.db'}"
    store = open_store(url)
    start = store.current_revision() + 1
    watcher = spawn("watcher", url, "/w/", str(start), "300")
    children.append(watcher)
    assert read_line(watcher) == "ready"
    record = store.create("/w/k", b"0")
    expected = [f"{record.mod_revision} PUT /w/k 0"]
    for i in range(1, 299):
        record = store.update("/w/k", str(i).encode(), record.mod_revision)
        expected.append(f"{record.mod_revision} PUT /w/k {i}")
    revision = store.delete("/w/k")
    expected.append(f"{revision} DELETE /w/k ")
    got = [read_line(watcher) for _ in expected]
    assert [line.rstrip() for line in got] == [line.rstrip() for line in expected]
    assert watcher.wait(timeout=10) == 0
    store.close()


def check_consistent(path: Path) -> None:
    """The database is sound and its two tables agree: kv holds each key's latest log row."""
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    mismatches = db.execute(
        "SELECT kv.key FROM kv WHERE kv.mod_revision !="
        " (SELECT MAX(revision) FROM log WHERE log.key = kv.key)"
    ).fetchall()
    assert mismatches == []
    (sequence,) = db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'log'").fetchone()
    assert sequence == db.execute("SELECT MAX(revision) FROM log").fetchone()[0]
    db.close()


def test_writer_killed_mid_transaction_leaves_a_consistent_database(
    tmp_path: Path, children: list[subprocess.Popen[str]]
) -> None:
    path = tmp_path / "state.db"
    url = f"sqlite://{path}"
    for round_ in range(5):
        writer = spawn("writer", url, f"/r{round_}/")
        children.append(writer)
        acked = [int(read_line(writer).split()[1]) for _ in range(3 + round_ * 2)]
        time.sleep(0.01 * round_)
        os.kill(writer.pid, signal.SIGKILL)
        writer.wait(timeout=10)
        check_consistent(path)
        with sqlite_store(url) as store:
            assert store.current_revision() >= acked[-1]
            counter = store.get(f"/r{round_}/counter")
            assert counter is not None and counter.mod_revision >= acked[-1]
            records, _ = store.list(f"/r{round_}/g")
        # A revocation is one transaction: a group's keys are all deleted together or none
        # are, and only the group being written when the kill came may still have live keys.
        tombstones = _per_group(path, f"/r{round_}/g", "op = 2")
        assert set(tombstones.values()) <= {50}
        live_groups = {record.key.split("/")[2] for record in records}
        assert len(live_groups) <= 1
        assert not live_groups & set(tombstones)


def _per_group(path: Path, prefix: str, condition: str) -> dict[str, int]:
    db = sqlite3.connect(path)
    rows = db.execute(
        f"SELECT key FROM log WHERE {condition} AND key >= ? AND key < ?",
        (prefix.encode(), prefix.encode() + b"\xff"),
    ).fetchall()
    db.close()
    groups: dict[str, int] = {}
    for (key,) in rows:
        group = bytes(key).decode().split("/")[2]
        groups[group] = groups.get(group, 0) + 1
    return groups


def test_automatic_compaction_keeps_the_configured_number_of_revisions(tmp_path: Path) -> None:
    with sqlite_store(f"sqlite://{tmp_path / 'state.db'}?retain=100") as store:
        records = {key: store.create(key, b"0") for key in (f"/k{i}" for i in range(50))}
        for i in range(40):  # 2,000 updates: twenty times the retained history
            for key, record in records.items():
                records[key] = store.update(key, str(i).encode(), record.mod_revision)
        current = store.current_revision()
        deadline = time.monotonic() + 10
        while store.compact_revision() < current - 110 and time.monotonic() < deadline:
            time.sleep(0.05)
        compacted = store.compact_revision()
        assert current - 110 <= compacted <= current - 100
        with pytest.raises(Compacted):
            store.list("/", revision=compacted - 1)
        # Every key once, at its value as of the compaction point.
        at_compaction, _ = store.list("/", revision=compacted)
        assert sorted(r.key for r in at_compaction) == sorted(records)
        db = sqlite3.connect(store.path)
        rows = db.execute("SELECT COUNT(*) FROM log").fetchone()[0]
        db.close()
        # History since the compaction point, plus at most one older row per key.
        assert rows <= current - compacted + 1 + len(records)


def test_compaction_in_another_process_never_fails_writers(
    tmp_path: Path, children: list[subprocess.Popen[str]]
) -> None:
    url = f"sqlite://{tmp_path / 'state.db'}"
    with sqlite_store(url) as store:
        record = store.create("/c", b"0")
        compactor = spawn("compactor", url)
        children.append(compactor)
        for i in range(3000):  # any "database is locked" here raises and fails the test
            record = store.update("/c", str(i).encode(), record.mod_revision)
        assert read_line(compactor).startswith("compacted")
        compactor.kill()
        assert store.compact_revision() > 0
    check_consistent(tmp_path / "state.db")


def test_a_file_that_is_not_a_database_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    path.write_bytes(b"this is not a database, just text " * 200)
    with pytest.raises(StoreOpenError, match="file is not a database"):
        open_store(f"sqlite://{path}")


def test_a_corrupt_database_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    with sqlite_store(f"sqlite://{path}") as store:
        for i in range(200):
            store.create(f"/k{i}", b"x" * 500)
    data = bytearray(path.read_bytes())
    data[4096:] = b"\xff" * (len(data) - 4096)  # every page but the schema page is garbage
    path.write_bytes(bytes(data))
    for suffix in ("-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    with pytest.raises(StoreError, match=r"malformed|not a database"):
        store = open_store(f"sqlite://{path}")
        store.list("/")
        store.close()


def test_a_directory_in_place_of_the_file_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "state.db").mkdir()
    with pytest.raises(StoreOpenError, match="not a regular file"):
        open_store(f"sqlite://{tmp_path / 'state.db'}")


def test_after_a_delivery_the_hub_lets_commits_gather_before_reading_again(
    tmp_path: Path,
) -> None:
    # Reading the log after every commit took the GIL from the writer at each of its SQLite
    # calls and tripled the cost of a write; the hub reads a stream of commits in batches.
    store = sqlite_store(f"sqlite://{tmp_path / 'state.db'}")
    reads: list[tuple[float, int]] = []  # (when, how many events it found)
    read_log = store._read_log

    def timed(after: int) -> Any:
        started = time.monotonic()
        events, compacted = read_log(after)
        reads.append((started, len(events)))
        return events, compacted

    store._read_log = timed  # type: ignore[method-assign]
    try:
        watch = store.watch("/k/")
        record = store.create("/k/a", b"0")
        for n in range(1, 100):
            time.sleep(0.0002)  # a writer with other work between its writes
            record = store.update("/k/a", str(n).encode(), record.mod_revision)
        values = []
        while len(values) < 100 and (event := watch.next_event(timeout=10)) is not None:
            values.append(event.record.value)
        assert values == [str(n).encode() for n in range(100)]  # each once, in order
        gaps = [
            later - earlier for (earlier, found), (later, _) in itertools.pairwise(reads) if found
        ]
        assert len(gaps) >= 5
        assert min(gaps) >= BATCH_LINGER_SECONDS
        assert len(reads) <= 150  # a read per commit and an empty one after it: 200
    finally:
        store.close()
