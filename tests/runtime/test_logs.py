"""Replica logs: copytruncate rotation under a writer that holds an O_APPEND descriptor, the
previous run, tails, and following across rotations."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from constellation.runtime.logs import ReplicaLogs


@pytest.fixture
def logs(tmp_path: Path) -> ReplicaLogs:
    return ReplicaLogs(tmp_path / "web-0", max_bytes=100, backups=2)


@pytest.fixture
def writer(logs: ReplicaLogs) -> Iterator[int]:
    """The replica's side: an O_APPEND descriptor opened once, as spawn() opens it."""
    fd = os.open(logs.new_run(), os.O_WRONLY | os.O_APPEND)
    yield fd
    os.close(fd)


def write_lines(fd: int, first: int, count: int) -> bytes:
    data = b"".join(b"line %03d\n" % n for n in range(first, first + count))
    os.write(fd, data)
    return data


def test_new_run_creates_an_empty_current_log(logs: ReplicaLogs) -> None:
    path = logs.new_run()
    assert path == str(logs.current)
    assert logs.current.read_bytes() == b""
    assert logs.current.stat().st_mode & 0o777 == 0o640
    assert not logs.previous.exists()
    assert logs.read() == b""
    assert logs.read(previous=True) == b""


def test_no_rotation_under_the_limit(logs: ReplicaLogs, writer: int) -> None:
    write_lines(writer, 0, 10)  # 90 bytes
    assert not logs.rotate_if_needed()
    assert sorted(p.name for p in logs.directory.iterdir()) == ["current.log"]


def test_rotation_copies_then_truncates_and_the_writer_goes_on(
    logs: ReplicaLogs, writer: int
) -> None:
    first = write_lines(writer, 0, 12)
    assert logs.rotate_if_needed()
    assert logs.current.stat().st_size == 0
    assert (logs.directory / "current.log.1").read_bytes() == first
    second = write_lines(writer, 12, 3)
    assert logs.current.read_bytes() == second  # appended at the new end: no hole
    assert logs.read() == first + second


def test_rotation_keeps_only_the_configured_backups(logs: ReplicaLogs, writer: int) -> None:
    written = []
    for round_ in range(4):
        written.append(write_lines(writer, round_ * 12, 12))
        assert logs.rotate_if_needed()
    names = sorted(p.name for p in logs.directory.iterdir())
    assert names == ["current.log", "current.log.1", "current.log.2"]
    assert logs.read() == written[2] + written[3]


def test_tail_reads_across_pieces(logs: ReplicaLogs, writer: int) -> None:
    write_lines(writer, 0, 12)
    logs.rotate_if_needed()
    write_lines(writer, 12, 2)
    assert logs.read(tail=3) == b"line 011\nline 012\nline 013\n"
    assert logs.read(tail=0) == b""
    assert logs.read(tail=100) == logs.read()


def test_new_run_moves_the_last_run_to_previous(logs: ReplicaLogs, writer: int) -> None:
    first = write_lines(writer, 0, 12)
    logs.rotate_if_needed()
    second = write_lines(writer, 12, 2)
    logs.new_run()
    assert logs.read(previous=True) == first + second
    assert logs.read() == b""
    assert sorted(p.name for p in logs.directory.iterdir()) == ["current.log", "previous.log"]
    assert logs.read(previous=True, tail=1) == b"line 013\n"


def test_only_one_previous_run_is_kept(logs: ReplicaLogs) -> None:
    for run in (b"run 1\n", b"run 2\n", b"run 3\n"):
        logs.current.parent.mkdir(exist_ok=True)
        Path(logs.new_run()).write_bytes(run)
    assert logs.read(previous=True) == b"run 2\n"
    assert logs.read() == b"run 3\n"


def collect(logs: ReplicaLogs, stop: threading.Event) -> tuple[threading.Thread, list[bytes]]:
    received: list[bytes] = []

    def follow() -> None:
        received.extend(logs.follow(stop.is_set, poll=0.01))

    thread = threading.Thread(target=follow)
    thread.start()
    time.sleep(0.05)  # the follower has taken its starting position
    return thread, received


def wait_for(received: list[bytes], expected: bytes) -> None:
    deadline = time.monotonic() + 5
    while b"".join(received) != expected and time.monotonic() < deadline:
        time.sleep(0.01)


def test_follow_yields_new_data_across_a_rotation(logs: ReplicaLogs, writer: int) -> None:
    before = write_lines(writer, 0, 2)
    stop = threading.Event()
    thread, received = collect(logs, stop)
    try:
        first = write_lines(writer, 2, 10)
        wait_for(received, first)
        unseen = write_lines(writer, 12, 2)  # written and rotated before the follower looks
        logs.rotate_if_needed()
        after = write_lines(writer, 14, 2)
        wait_for(received, first + unseen + after)
    finally:
        stop.set()
        thread.join(5)
    assert not thread.is_alive()
    assert before not in b"".join(received)
    assert b"".join(received) == first + unseen + after


def test_follow_moves_to_the_next_run(logs: ReplicaLogs, writer: int) -> None:
    stop = threading.Event()
    thread, received = collect(logs, stop)
    try:
        first = write_lines(writer, 0, 2)
        wait_for(received, first)
        with open(logs.new_run(), "ab") as next_run:
            next_run.write(b"next run\n")
        wait_for(received, first + b"next run\n")
    finally:
        stop.set()
        thread.join(5)
    assert b"".join(received) == first + b"next run\n"


def test_remove_deletes_everything(logs: ReplicaLogs, writer: int) -> None:
    write_lines(writer, 0, 12)
    logs.rotate_if_needed()
    logs.remove()
    assert not logs.directory.exists()
