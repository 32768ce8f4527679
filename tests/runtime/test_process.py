"""Supervision on pidfds for real: reaping, re-adoption by (pid, start time), exec probes."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import time
from pathlib import Path

import pytest

from constellation.runtime import process
from constellation.runtime.process import ExitStatus, adopt, exec_in, reap, signal_pidfd
from constellation.runtime.spawn import SpawnError
from tests.runtime.conftest import NEEDS_ROOT
from tests.runtime.spawn_helpers import (
    pids_cgroup,
    replica,
    spec,
    subreaper_without_leaked_mounts,
    wait_exit,
)

pytestmark = NEEDS_ROOT
__all__ = ["pids_cgroup", "subreaper_without_leaked_mounts"]


def readable(fd: int, timeout: float) -> bool:
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    return bool(poller.poll(timeout * 1000))


def sleeper(tmp_path: Path, **fields: object):  # type: ignore[no-untyped-def]
    return replica(spec(tmp_path, "/bin/sleep", "30", **fields))


def test_adopt_checks_the_start_time(tmp_path: Path) -> None:
    with sleeper(tmp_path) as spawned:
        assert adopt(spawned.pid, spawned.start_time + 1) is None
        pidfd = adopt(spawned.pid, spawned.start_time)
        assert pidfd is not None
        try:
            assert not readable(pidfd, 0)
            signal_pidfd(pidfd, signal.SIGKILL)
            assert readable(pidfd, 5)
            assert reap(pidfd) == ExitStatus(None, signal.SIGKILL)  # still our child
        finally:
            os.close(pidfd)


def test_adopt_of_a_gone_process_is_none(tmp_path: Path) -> None:
    with sleeper(tmp_path) as spawned:
        pid, started = spawned.pid, spawned.start_time
        signal_pidfd(spawned.pidfd, signal.SIGKILL)
        wait_exit(spawned.pidfd)
    assert process.start_time(pid) is None
    assert adopt(pid, started) is None


def test_reap_of_a_process_that_is_not_our_child() -> None:
    """After an agent restart its replicas belong to someone else: exit is seen, the status is
    not."""
    shell = subprocess.Popen(
        ["/bin/sh", "-c", "sleep 30 & echo $!; wait"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert shell.stdout is not None
        grandchild = int(shell.stdout.readline())
        started = process.start_time(grandchild)
        assert started is not None
        pidfd = adopt(grandchild, started)
        assert pidfd is not None
        try:
            assert reap(pidfd) is None
            signal_pidfd(pidfd, signal.SIGKILL)
            assert readable(pidfd, 5)
            assert reap(pidfd) == ExitStatus(None, None)
        finally:
            os.close(pidfd)
    finally:
        shell.kill()
        shell.wait()


def test_signal_to_an_exited_process_is_no_error(tmp_path: Path) -> None:
    with sleeper(tmp_path) as spawned:
        signal_pidfd(spawned.pidfd, signal.SIGKILL)
        assert wait_exit(spawned.pidfd) == ExitStatus(None, signal.SIGKILL)
        signal_pidfd(spawned.pidfd, signal.SIGTERM)


def test_exec_in_runs_in_the_replica_namespaces(tmp_path: Path) -> None:
    with sleeper(tmp_path, hostname="probe-0") as spawned:
        assert exec_in(
            spawned.pid, ["hostname"], user="nobody", cgroup_procs=[], network_ns=False, timeout=5
        ) == (0, b"probe-0\n")
        code, output = exec_in(
            spawned.pid,
            ["sh", "-c", "echo $$; id -u; grep NoNewPrivs /proc/self/status; exit 3"],
            user="nobody",
            cgroup_procs=[],
            network_ns=False,
            timeout=5,
        )
    assert code == 3
    pid, uid, no_new_privs = output.decode().splitlines()
    assert int(pid) < 10  # inside the replica's pid namespace
    assert (uid, no_new_privs) == ("65534", "NoNewPrivs:\t1")


def test_exec_in_enters_the_network_namespace(tmp_path: Path) -> None:
    with sleeper(tmp_path, network="none") as spawned:
        code, output = exec_in(
            spawned.pid,
            ["sh", "-c", "tail -n +3 /proc/net/dev | cut -d: -f1"],
            user="nobody",
            cgroup_procs=[],
            network_ns=True,
            timeout=5,
        )
    assert (code, output.split()) == (0, [b"lo"])


def test_exec_in_joins_the_cgroups(tmp_path: Path, pids_cgroup: Path) -> None:
    procs = str(pids_cgroup / "cgroup.procs")
    with sleeper(tmp_path, cgroup_procs=[procs]) as spawned:
        code, output = exec_in(
            spawned.pid,
            ["cat", "/proc/self/cgroup"],
            user="nobody",
            cgroup_procs=[procs],
            network_ns=False,
            timeout=5,
        )
    relative = pids_cgroup.relative_to("/sys/fs/cgroup/pids")
    assert code == 0
    assert f":pids:/{relative}\n".encode() in output


def probe_processes(marker: str) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    if marker.encode() in f.read():
                        found.append(int(entry))
            except (FileNotFoundError, ProcessLookupError):
                continue
    return found


def test_exec_in_timeout_kills_the_probe_and_its_children(tmp_path: Path) -> None:
    with sleeper(tmp_path) as spawned:
        start = time.monotonic()
        code, output = exec_in(
            spawned.pid,
            ["sh", "-c", "echo started; sleep 31.25; echo never"],
            user="nobody",
            cgroup_procs=[],
            network_ns=False,
            timeout=0.5,
        )
        elapsed = time.monotonic() - start
    assert (code, output) == (None, b"started\n")
    assert 0.5 <= elapsed < 2
    assert probe_processes("31.25") == []


def test_exec_in_keeps_the_first_4_kib_and_drains_the_rest(tmp_path: Path) -> None:
    with sleeper(tmp_path) as spawned:
        code, output = exec_in(
            spawned.pid,
            ["sh", "-c", "head -c 1000000 /dev/zero; echo done >&2"],
            user="nobody",
            cgroup_procs=[],
            network_ns=False,
            timeout=5,
        )
    assert (code, output) == (0, bytes(4096))


def test_exec_in_reports_a_missing_program(tmp_path: Path) -> None:
    with sleeper(tmp_path) as spawned, pytest.raises(SpawnError, match=r'^exec "nope": No such'):
        exec_in(spawned.pid, ["nope"], user="nobody", cgroup_procs=[], network_ns=False, timeout=5)


def test_exec_in_a_gone_replica_fails_clearly(tmp_path: Path) -> None:
    with sleeper(tmp_path) as spawned:
        pid = spawned.pid
    with pytest.raises(SpawnError, match=f"replica {pid}: ipc namespace"):
        exec_in(pid, ["true"], user="nobody", cgroup_procs=[], network_ns=False, timeout=5)
