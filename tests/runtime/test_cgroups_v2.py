"""The cgroup v2 driver against a directory laid out like a cgroup2 mount.

This machine is cgroup v1 (hybrid) and cannot mount a cgroup2 hierarchy with controllers, so
this is how v2 is tested: `FakeCgroup2` is a tmp dir with `cgroup.controllers`,
`cgroup.subtree_control` and the interface files as plain files, and it plays the kernel's part
where plain files cannot: mkdir fills in a new cgroup's files (only those of the controllers its
parent enabled), rmdir refuses a cgroup with processes or children, `+controller` writes to
subtree_control are merged, and (in the kill tests) a thread empties cgroup.procs once the
processes are dead. The processes killed are real children of the test."""

from __future__ import annotations

import errno
import os
import re
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from constellation.runtime.cgroups import (
    CgroupError,
    CgroupManager,
    Limits,
    Stats,
    detect,
    v2_manager,
)

REAL_MKDIR = os.mkdir
REAL_RMDIR = os.rmdir
CONTROLLER_FILES = {
    "cpu": {"cpu.max": "max 100000\n"},
    "memory": {
        "memory.current": "0\n",
        "memory.peak": "0\n",
        "memory.max": "max\n",
        "memory.swap.max": "max\n",
        "memory.events": "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\noom_group_kill 0\n",
    },
    "pids": {"pids.max": "max\n", "pids.current": "0\n"},
}
CORE_FILES = {
    "cgroup.procs": "",
    "cgroup.kill": "",
    "cgroup.subtree_control": "",
    "cpu.stat": "usage_usec 0\nuser_usec 0\nsystem_usec 0\n",
}


class FakeCgroup2:
    def __init__(self, root: Path, controllers: str = "cpu io memory pids") -> None:
        self.root = root
        self.subtree: dict[Path, set[str]] = {}  # what each subtree_control has enabled
        root.mkdir()
        (root / "cgroup.controllers").write_text(controllers + "\n")
        (root / "cgroup.subtree_control").write_text("")
        (root / "cgroup.procs").write_text("1\n")  # the root holds the host's processes

    def owns(self, path: str | os.PathLike[str]) -> bool:
        return Path(path).is_relative_to(self.root)

    def enabled(self, cgroup: Path) -> list[str]:
        """Apply the "+x"/"-x" tokens the driver wrote to what was enabled before, as the kernel
        would, and render the result as the kernel does."""
        file = cgroup / "cgroup.subtree_control"
        tokens = file.read_text().split()
        if not any(t[0] in "+-" for t in tokens):
            self.subtree[cgroup] = set(tokens)
        current = self.subtree.setdefault(cgroup, set())
        for token in tokens:
            if token.startswith("-"):
                current.discard(token[1:])
            else:
                current.add(token.removeprefix("+"))
        rendered = " ".join(sorted(current))
        if rendered != " ".join(tokens):
            file.write_text(rendered)
        return sorted(current)

    def mkdir(self, path: str, mode: int = 0o777, **kwargs: object) -> None:
        REAL_MKDIR(path, mode)
        if not self.owns(path):
            return
        new = Path(path)
        controllers = self.enabled(new.parent)
        (new / "cgroup.controllers").write_text(" ".join(controllers) + "\n")
        files = dict(CORE_FILES)
        for controller in controllers:
            files.update(CONTROLLER_FILES.get(controller, {}))
        for name, content in files.items():
            (new / name).write_text(content)

    def rmdir(self, path: str, **kwargs: object) -> None:
        cgroup = Path(path)
        if self.owns(path) and cgroup.is_dir():
            if any(p.is_dir() for p in cgroup.iterdir()) or (cgroup / "cgroup.procs").read_text():
                raise OSError(errno.EBUSY, os.strerror(errno.EBUSY), path)
            for file in cgroup.iterdir():
                file.unlink()
        REAL_RMDIR(path)

    def write(self, relative: str, content: str) -> None:
        path = self.root / relative
        path.write_text(content)
        if path.name == "cgroup.subtree_control":
            self.enabled(path.parent)

    def read(self, relative: str) -> str:
        return (self.root / relative).read_text()


@pytest.fixture
def fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeCgroup2:
    fake = FakeCgroup2(tmp_path / "cgroup2")
    monkeypatch.setattr(os, "mkdir", fake.mkdir)
    monkeypatch.setattr(os, "rmdir", fake.rmdir)
    return fake


@pytest.fixture
def parent() -> str:
    return f"constellation-test-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def manager(fake: FakeCgroup2, parent: str) -> CgroupManager:
    return v2_manager(parent, str(fake.root))


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen(["sleep", "100"])
    yield process
    process.kill()
    process.wait()


def test_detect_chooses_v2_on_a_cgroup2_root(fake: FakeCgroup2, parent: str) -> None:
    manager = detect(parent, str(fake.root))
    assert (manager.version, manager.parent) == ("v2", parent)


def test_a_root_without_cgroup_controllers_is_refused(tmp_path: Path) -> None:
    with pytest.raises(
        CgroupError, match=r"not a cgroup2 hierarchy: it has no cgroup\.controllers"
    ):
        v2_manager("constellation", str(tmp_path))


def test_create_writes_the_limits(fake: FakeCgroup2, manager: CgroupManager, parent: str) -> None:
    manager.create("web-0.3f2a", Limits(cpu_millicores=250, memory_bytes=64 << 20, pids=20))
    leaf = f"{parent}/web-0.3f2a"
    assert fake.read(f"{leaf}/cpu.max") == "25000 100000"
    assert fake.read(f"{leaf}/memory.max") == str(64 << 20)
    assert fake.read(f"{leaf}/memory.swap.max") == "0"
    assert fake.read(f"{leaf}/pids.max") == "20"


def test_create_again_reapplies_limits_and_lifts_removed_ones(
    fake: FakeCgroup2, manager: CgroupManager, parent: str
) -> None:
    manager.create("web-0", Limits(cpu_millicores=250, memory_bytes=64 << 20, pids=20))
    manager.create("web-0", Limits(cpu_millicores=1500))
    leaf = f"{parent}/web-0"
    assert fake.read(f"{leaf}/cpu.max") == "150000 100000"
    assert fake.read(f"{leaf}/memory.max") == "max"
    assert fake.read(f"{leaf}/memory.swap.max") == "max"
    assert fake.read(f"{leaf}/pids.max") == "max"


def test_controllers_are_enabled_down_the_parent_chain(fake: FakeCgroup2) -> None:
    top = f"constellation-test-{uuid.uuid4().hex[:8]}"
    manager = v2_manager(f"{top}/node-a", str(fake.root))
    cgroup = manager.create("web-0", Limits(pids=5))
    for cgroup_dir in (fake.root, fake.root / top, fake.root / top / "node-a"):
        assert fake.enabled(cgroup_dir) == ["cpu", "memory", "pids"], cgroup_dir
    assert cgroup.procs_files() == [str(fake.root / top / "node-a" / "web-0" / "cgroup.procs")]


def test_a_root_that_already_delegates_is_not_written(fake: FakeCgroup2, parent: str) -> None:
    fake.write("cgroup.subtree_control", "cpu io memory pids")
    before = os.stat(fake.root / "cgroup.subtree_control").st_mtime_ns
    time.sleep(0.01)
    v2_manager(parent, str(fake.root)).create("web-0", Limits())
    assert os.stat(fake.root / "cgroup.subtree_control").st_mtime_ns == before
    assert fake.read("cgroup.subtree_control") == "cpu io memory pids"


def test_only_the_missing_controller_is_added_to_the_root(fake: FakeCgroup2, parent: str) -> None:
    fake.write("cgroup.subtree_control", "cpu memory")
    v2_manager(parent, str(fake.root)).create("web-0", Limits())
    # "+pids" alone: a plain "pids" would have replaced what the root had enabled
    assert fake.enabled(fake.root) == ["cpu", "memory", "pids"]


def test_a_controller_the_root_lacks_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = FakeCgroup2(tmp_path / "cgroup2", controllers="cpu io memory")
    monkeypatch.setattr(os, "mkdir", fake.mkdir)
    manager = v2_manager("constellation-test", str(fake.root))
    with pytest.raises(
        CgroupError, match=rf"controller pids not available in {re.escape(str(fake.root))} "
    ):
        manager.create("web-0", Limits())


def test_stats_parse_the_interface_files(fake: FakeCgroup2, manager: CgroupManager) -> None:
    cgroup = manager.create("web-0", Limits())
    leaf = f"{manager.parent}/web-0"
    fake.write(f"{leaf}/cpu.stat", "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\n")
    fake.write(f"{leaf}/memory.current", "1048576\n")
    fake.write(f"{leaf}/memory.peak", "2097152\n")
    fake.write(f"{leaf}/memory.events", "low 0\nhigh 0\nmax 7\noom 2\noom_kill 1\n")
    fake.write(f"{leaf}/pids.current", "3\n")
    assert cgroup.stats() == Stats(
        cpu_usage_ns=1_500_000, memory_current=1048576, memory_peak=2097152, pids=3, oom_kills=1
    )


def test_memory_peak_is_zero_on_kernels_without_it(
    fake: FakeCgroup2, manager: CgroupManager
) -> None:
    cgroup = manager.create("web-0", Limits())
    (fake.root / manager.parent / "web-0" / "memory.peak").unlink()
    fake.write(f"{manager.parent}/web-0/memory.current", "4096\n")
    assert (cgroup.stats().memory_current, cgroup.stats().memory_peak) == (4096, 0)


def test_join_pids_names_and_open(fake: FakeCgroup2, manager: CgroupManager) -> None:
    web = manager.create("web-0", Limits())
    manager.create("db-0", Limits())
    web.join(4242)
    assert fake.read(f"{manager.parent}/web-0/cgroup.procs") == "4242"
    assert web.pids() == [4242]
    assert manager.names() == ["db-0", "web-0"]
    reopened = manager.open("web-0")
    assert reopened is not None
    assert reopened.pids() == [4242]
    assert manager.open("api-0") is None


def kernel_empties_procs_once_dead(leaf: Path, process: subprocess.Popen[bytes]) -> None:
    """The kernel's side of a kill: cgroup.procs empties once the process in it is dead."""

    def empty_once_dead() -> None:
        process.wait()
        (leaf / "cgroup.procs").write_text("")

    threading.Thread(target=empty_once_dead, daemon=True).start()


def kernel_kills_on_cgroup_kill(leaf: Path, process: subprocess.Popen[bytes]) -> None:
    """The kernel's side of cgroup.kill: writing "1" kills what is in the cgroup."""

    def kill_once_written() -> None:
        deadline = time.monotonic() + 10
        while (leaf / "cgroup.kill").read_text() != "1" and time.monotonic() < deadline:
            time.sleep(0.001)
        process.kill()

    threading.Thread(target=kill_once_written, daemon=True).start()


def test_kill_writes_cgroup_kill(
    fake: FakeCgroup2, manager: CgroupManager, sleeper: subprocess.Popen[bytes]
) -> None:
    cgroup = manager.create("web-0", Limits())
    cgroup.join(sleeper.pid)
    leaf = fake.root / manager.parent / "web-0"
    kernel_kills_on_cgroup_kill(leaf, sleeper)
    kernel_empties_procs_once_dead(leaf, sleeper)
    started = time.monotonic()
    cgroup.kill(timeout=5)
    assert time.monotonic() - started < 5  # the kernel's kill, not the deadline, ended it
    assert (leaf / "cgroup.kill").read_text() == "1"
    assert sleeper.wait(5) == -signal.SIGKILL


def test_kill_without_cgroup_kill_signals_each_process(
    fake: FakeCgroup2, manager: CgroupManager, sleeper: subprocess.Popen[bytes]
) -> None:
    cgroup = manager.create("web-0", Limits())
    leaf = fake.root / manager.parent / "web-0"
    (leaf / "cgroup.kill").unlink()  # Linux < 5.14
    cgroup.join(sleeper.pid)
    kernel_empties_procs_once_dead(leaf, sleeper)
    cgroup.kill(timeout=5)
    assert sleeper.wait(5) == -signal.SIGKILL
    assert not (leaf / "cgroup.kill").exists()


def test_kill_fails_clearly_when_the_cgroup_does_not_empty(
    fake: FakeCgroup2, manager: CgroupManager, sleeper: subprocess.Popen[bytes]
) -> None:
    cgroup = manager.create("web-0", Limits())
    cgroup.join(sleeper.pid)  # nothing plays the kernel here: cgroup.procs never empties
    started = time.monotonic()
    with pytest.raises(
        CgroupError, match=r"cannot kill cgroup web-0: 1 processes still in .*0\.3 s"
    ):
        cgroup.kill(timeout=0.3)
    assert 0.3 <= time.monotonic() - started < 1.5


def test_remove_is_idempotent_and_remove_parent_stops_at_the_root(
    fake: FakeCgroup2, manager: CgroupManager
) -> None:
    cgroup = manager.create("web-0", Limits())
    cgroup.remove()
    cgroup.remove()
    assert manager.names() == []
    assert manager.open("web-0") is None
    manager.remove_parent()
    assert not (fake.root / manager.parent).exists()
    assert (fake.root / "cgroup.controllers").exists()


def test_remove_kills_what_is_left_first(
    fake: FakeCgroup2, manager: CgroupManager, sleeper: subprocess.Popen[bytes]
) -> None:
    cgroup = manager.create("web-0", Limits())
    cgroup.join(sleeper.pid)
    leaf = fake.root / manager.parent / "web-0"
    kernel_kills_on_cgroup_kill(leaf, sleeper)
    kernel_empties_procs_once_dead(leaf, sleeper)
    cgroup.remove()
    assert sleeper.wait(5) == -signal.SIGKILL
    assert not leaf.exists()


def test_remove_parent_keeps_a_parent_that_has_children(
    fake: FakeCgroup2, manager: CgroupManager
) -> None:
    manager.create("web-0", Limits())
    manager.remove_parent()
    assert manager.names() == ["web-0"]


@pytest.mark.parametrize("name", ["", ".", "..", "a/b", "/abs", "nul\0"])
def test_invalid_names_are_refused(manager: CgroupManager, name: str) -> None:
    with pytest.raises(CgroupError, match="invalid cgroup name"):
        manager.create(name, Limits())
    with pytest.raises(CgroupError, match="invalid cgroup name"):
        manager.open(name)
    assert manager.names() == []


@pytest.mark.parametrize("parent", ["", "/constellation", "constellation/../etc", "a//b"])
def test_invalid_parents_are_refused(fake: FakeCgroup2, parent: str) -> None:
    with pytest.raises(CgroupError, match="invalid cgroup name"):
        v2_manager(parent, str(fake.root))


@pytest.mark.parametrize("field", ["cpu_millicores", "memory_bytes", "pids"])
def test_limits_must_be_positive(field: str) -> None:
    with pytest.raises(ValueError, match=f"Limits.{field} must be positive"):
        Limits(**{field: 0})
