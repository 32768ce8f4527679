"""The cgroup v1 driver on this machine's real hierarchies, with real processes: limits read
back from the kernel's files, an OOM kill, a contained fork bomb, a CPU quota held."""

from __future__ import annotations

import glob
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from constellation.runtime.cgroups import (
    CgroupError,
    CgroupManager,
    Limits,
    detect,
    remove_all,
    v1_manager,
)
from tests.runtime.conftest import NEEDS_ROOT

ROOT = "/sys/fs/cgroup"
MiB = 1 << 20

pytestmark = [
    NEEDS_ROOT,
    pytest.mark.skipif(
        os.path.isfile(f"{ROOT}/cgroup.controllers"),
        reason="host is cgroup v2: the v1 driver needs v1 hierarchies",
    ),
]

Start = Callable[..., "subprocess.Popen[bytes]"]


def leftovers(parent: str) -> list[str]:
    """The parent's directories in every hierarchy, used by the driver or not."""
    return glob.glob(f"{ROOT}/*/{parent.split('/', maxsplit=1)[0]}")


@pytest.fixture
def manager() -> Iterator[CgroupManager]:
    manager = v1_manager(f"constellation-test-{uuid.uuid4().hex[:8]}")
    yield manager
    remove_all(manager)
    assert leftovers(manager.parent) == []


@pytest.fixture
def start() -> Iterator[Start]:
    """Starts child processes that wait on stdin; kills whatever is left of them afterwards."""
    started: list[subprocess.Popen[bytes]] = []

    def start(*argv: str) -> subprocess.Popen[bytes]:
        process = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
        )
        started.append(process)
        return process

    yield start
    for process in started:
        process.kill()
        process.wait()


def go(process: subprocess.Popen[bytes]) -> None:
    assert process.stdin is not None
    process.stdin.write(b"go\n")
    process.stdin.flush()


def python(code: str) -> tuple[str, ...]:
    return (sys.executable, "-c", f"import sys\nsys.stdin.readline()\n{code}")


def cgroup_file(manager: CgroupManager, controller: str, name: str, file: str) -> str:
    return Path(ROOT, controller, manager.parent, name, file).read_text().strip()


def test_detect_finds_the_v1_hierarchies_and_creates_nothing() -> None:
    parent = f"constellation-test-{uuid.uuid4().hex[:8]}"
    manager = detect(parent)
    assert manager.version == "v1"
    assert manager.names() == []
    assert leftovers(parent) == []


def test_create_writes_the_limits_to_the_kernel(manager: CgroupManager) -> None:
    manager.create("first", Limits())
    # A new memory cgroup inherits oom_kill_disable: with 1 it would pause at its limit.
    Path(ROOT, "memory", manager.parent, "memory.oom_control").write_text("1")
    cgroup = manager.create(
        "web-0.3f2a", Limits(cpu_millicores=250, memory_bytes=32 * MiB, pids=20)
    )

    def read(controller: str, file: str) -> str:
        return cgroup_file(manager, controller, "web-0.3f2a", file)

    assert read("cpu", "cpu.cfs_period_us") == "100000"
    assert read("cpu", "cpu.cfs_quota_us") == "25000"
    assert read("memory", "memory.limit_in_bytes") == str(32 * MiB)
    assert read("memory", "memory.memsw.limit_in_bytes") == str(32 * MiB)
    assert "oom_kill_disable 0" in read("memory", "memory.oom_control")
    assert read("pids", "pids.max") == "20"
    hierarchies = ("cpu", "cpuacct", "memory", "pids", "freezer")
    expected = [f"{ROOT}/{h}/{manager.parent}/web-0.3f2a/cgroup.procs" for h in hierarchies]
    assert cgroup.procs_files() == expected
    assert all(os.path.exists(path) for path in expected)


def test_create_again_reapplies_changed_limits(manager: CgroupManager) -> None:
    def read(controller: str, file: str) -> str:
        return cgroup_file(manager, controller, "web-0", file)

    manager.create("web-0", Limits(cpu_millicores=250, memory_bytes=32 * MiB, pids=20))
    manager.create("web-0", Limits(cpu_millicores=1500, memory_bytes=64 * MiB))
    assert read("cpu", "cpu.cfs_quota_us") == "150000"
    assert read("memory", "memory.limit_in_bytes") == str(64 * MiB)
    assert read("memory", "memory.memsw.limit_in_bytes") == str(64 * MiB)
    assert read("pids", "pids.max") == "max"
    manager.create("web-0", Limits(memory_bytes=16 * MiB))  # shrinking: memory before memsw
    assert read("cpu", "cpu.cfs_quota_us") == "-1"
    assert read("memory", "memory.limit_in_bytes") == str(16 * MiB)
    assert read("memory", "memory.memsw.limit_in_bytes") == str(16 * MiB)
    manager.create("web-0", Limits())
    assert int(read("memory", "memory.limit_in_bytes")) > 1 << 60
    assert int(read("memory", "memory.memsw.limit_in_bytes")) > 1 << 60
    assert manager.names() == ["web-0"]


def test_join_pids_and_stats_that_change(manager: CgroupManager, start: Start) -> None:
    cgroup = manager.create("web-0", Limits())
    child = start(
        *python(
            "b = bytearray(24 << 20)\n"
            "sum(range(3_000_000))\n"
            "print('done', flush=True)\n"
            "sys.stdin.readline()"
        )
    )
    cgroup.join(child.pid)
    assert cgroup.pids() == [child.pid]
    before = cgroup.stats()
    go(child)
    assert child.stdout is not None
    assert child.stdout.readline() == b"done\n"
    after = cgroup.stats()
    assert (before.pids, after.pids) == (1, 1)
    assert after.cpu_usage_ns > before.cpu_usage_ns + 10_000_000  # sum(range(3e6)) takes > 10 ms
    assert after.memory_current >= before.memory_current + 24 * MiB
    assert after.memory_peak >= after.memory_current > 0
    assert after.oom_kills == 0


def test_memory_limit_oom_kills_and_is_counted(manager: CgroupManager, start: Start) -> None:
    cgroup = manager.create("web-0", Limits(memory_bytes=32 * MiB))
    child = start(*python("b = bytearray(100 << 20)\nprint('survived', flush=True)"))
    cgroup.join(child.pid)
    go(child)
    assert child.wait(30) == -signal.SIGKILL
    stats = cgroup.stats()
    assert stats.oom_kills == 1
    assert stats.memory_peak <= 32 * MiB


def test_pids_limit_contains_a_fork_bomb_and_kill_empties_it(
    manager: CgroupManager, start: Start
) -> None:
    cgroup = manager.create("bomb-0", Limits(pids=20))
    # Parent and child both go on forking, and a failed fork is retried: it never lets up
    # (a dash loop would not do: dash exits on its first failed fork).
    bomb = start(
        *python(
            "import os, time\n"
            "while True:\n"
            "    try:\n"
            "        os.fork()\n"
            "    except BlockingIOError:\n"
            "        time.sleep(0.001)"
        )
    )
    cgroup.join(bomb.pid)
    go(bomb)
    seen = []
    for _ in range(20):
        time.sleep(0.05)
        seen.append(cgroup.stats().pids)
    assert max(seen) <= 20
    assert max(seen) >= 15, seen  # the bomb really ran into the limit
    fork_failures = int(cgroup_file(manager, "pids", "bomb-0", "pids.events").split()[1])
    assert fork_failures > 0
    assert len(cgroup.pids()) >= 15  # still bombing when the kill starts
    cgroup.kill(timeout=5)
    assert cgroup.pids() == []
    assert bomb.wait(5) == -signal.SIGKILL


def test_kill_reaches_processes_that_are_not_our_children(
    manager: CgroupManager, start: Start
) -> None:
    cgroup = manager.create("web-0", Limits())
    parent = start("sh", "-c", "read x; sleep 100 & sleep 100 & echo started")
    cgroup.join(parent.pid)
    go(parent)
    assert parent.wait(5) == 0  # the two sleeps are now orphans, children of init
    orphans = cgroup.pids()
    assert len(orphans) == 2
    cgroup.kill(timeout=5)
    assert cgroup.pids() == []
    for pid in orphans:
        state = (
            Path(f"/proc/{pid}/stat").read_text().split()[2]
            if os.path.exists(f"/proc/{pid}")
            else "gone"
        )
        assert state in ("Z", "gone"), (pid, state)


def test_cpu_limit_holds_a_busy_loop_near_a_quarter_core(
    manager: CgroupManager, start: Start
) -> None:
    cgroup = manager.create("web-0", Limits(cpu_millicores=250))
    child = start(*python("while True: pass"))
    cgroup.join(child.pid)
    go(child)
    time.sleep(0.2)
    used, began = cgroup.stats().cpu_usage_ns, time.monotonic()
    time.sleep(1.5)
    cores = (cgroup.stats().cpu_usage_ns - used) / ((time.monotonic() - began) * 1e9)
    assert 0.15 <= cores <= 0.35


def test_remove_kills_deletes_every_directory_and_is_idempotent(
    manager: CgroupManager, start: Start
) -> None:
    cgroup = manager.create("web-0", Limits(memory_bytes=64 * MiB))
    child = start("sleep", "100")
    cgroup.join(child.pid)
    cgroup.remove()
    assert child.wait(5) == -signal.SIGKILL
    assert glob.glob(f"{ROOT}/*/{manager.parent}/web-0") == []
    assert manager.open("web-0") is None
    assert manager.names() == []
    cgroup.remove()


def test_remove_parent_removes_a_node_parent_but_keeps_a_shared_top() -> None:
    top = f"constellation-test-{uuid.uuid4().hex[:8]}"
    node_a, node_b = v1_manager(f"{top}/node-a"), v1_manager(f"{top}/node-b")
    try:
        node_a.create("web-0", Limits()).remove()
        node_b.create("web-0", Limits())
        node_a.remove_parent()
        assert glob.glob(f"{ROOT}/*/{top}/node-a") == []
        assert len(glob.glob(f"{ROOT}/*/{top}/node-b/web-0")) == 5
        node_b.remove_parent()  # node-b still has web-0: nothing goes
        assert node_b.names() == ["web-0"]
    finally:
        for manager in (node_a, node_b):
            for name in manager.names():
                cgroup = manager.open(name)
                if cgroup is not None:
                    cgroup.remove()
            manager.remove_parent()
    assert leftovers(top) == []


def test_open_reads_back_a_cgroup_another_manager_made(
    manager: CgroupManager, start: Start
) -> None:
    child = start("sleep", "100")
    manager.create("web-0", Limits()).join(child.pid)
    again = v1_manager(manager.parent)  # the agent after a restart
    assert again.names() == ["web-0"]
    adopted = again.open("web-0")
    assert adopted is not None
    assert adopted.pids() == [child.pid]
    assert adopted.stats().pids == 1


def test_errors_name_the_file_and_the_reason(manager: CgroupManager) -> None:
    cgroup = manager.create("web-0", Limits())
    gone = subprocess.Popen(["true"])
    gone.wait()
    with pytest.raises(
        CgroupError, match=rf"cannot write '{gone.pid}' to .*/web-0/cgroup\.procs: ESRCH"
    ):
        cgroup.join(gone.pid)
    with pytest.raises(CgroupError, match=r"cpu\.cfs_quota_us: EINVAL"):
        manager.create("web-0", Limits(cpu_millicores=1))  # 100 us: below the kernel's 1 ms
