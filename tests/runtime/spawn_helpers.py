"""Helpers for the tests that start real replicas: the test process becomes a child subreaper
(as the agent is), every replica is killed by its pidfd and reaped, and the host's mount table
must be the same afterwards."""

from __future__ import annotations

import contextlib
import os
import select
import shutil
import signal
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from constellation.runtime import linux, process
from constellation.runtime.process import ExitStatus
from constellation.runtime.spawn import Spawned, SpawnSpec, spawn

WAIT = 10.0


def mount_table() -> list[str]:
    with open("/proc/self/mountinfo") as f:
        return sorted(f.read().splitlines())


@pytest.fixture(scope="module", autouse=True)
def subreaper_without_leaked_mounts() -> Iterator[None]:
    before = mount_table()
    linux.set_child_subreaper()
    yield
    linux.set_child_subreaper(False)
    assert mount_table() == before, "a replica's mount leaked into the host"


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A directory nobody can reach, on the root filesystem (suid allowed, unlike many /tmp),
    outside /tmp (a replica gets its own)."""
    path = Path(tempfile.mkdtemp(prefix="constellation-test-", dir="/var/tmp"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path)


@pytest.fixture
def pids_cgroup() -> Iterator[Path]:
    """A v1 pids cgroup of our own: /sys/fs/cgroup/pids/constellation-test-<id>/x."""
    parent = Path(f"/sys/fs/cgroup/pids/constellation-test-{uuid.uuid4().hex[:8]}")
    child = parent / "x"
    child.mkdir(parents=True)
    yield child
    child.rmdir()
    parent.rmdir()


def spec(tmp_path: Path, *argv: str, **fields: Any) -> SpawnSpec:
    base = SpawnSpec(argv=argv, env={}, hostname="web-0", log_path=str(tmp_path / "replica.log"))
    return replace(base, **fields)


def wait_exit(pidfd: int, timeout: float = WAIT) -> ExitStatus | None:
    """Reap the process once it exits; None if it is still running after `timeout`."""
    poller = select.poll()
    poller.register(pidfd, select.POLLIN)
    if not poller.poll(timeout * 1000):
        return None
    return process.reap(pidfd)


@contextlib.contextmanager
def replica(replica_spec: SpawnSpec) -> Iterator[Spawned]:
    """A running replica, killed and reaped on the way out whatever happened."""
    spawned = spawn(replica_spec)
    try:
        yield spawned
    finally:
        process.signal_pidfd(spawned.pidfd, signal.SIGKILL)
        wait_exit(spawned.pidfd)
        os.close(spawned.pidfd)


def run(replica_spec: SpawnSpec) -> tuple[ExitStatus | None, str]:
    """Run a replica to its end: its exit status and what it added to its log."""
    log = Path(replica_spec.log_path)
    start = log.stat().st_size if log.exists() else 0
    with replica(replica_spec) as spawned:
        status = wait_exit(spawned.pidfd)
    return status, log.read_bytes()[start:].decode()


def sh(tmp_path: Path, script: str, **fields: Any) -> tuple[ExitStatus | None, str]:
    return run(spec(tmp_path, "/bin/sh", "-c", script, **fields))
