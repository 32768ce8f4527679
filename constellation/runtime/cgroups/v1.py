"""The cgroup v1 driver: one directory per controller hierarchy (cpu, cpuacct, memory, pids and,
when mounted, freezer). This is the layout of the project's development machines (hybrid v1)."""

from __future__ import annotations

import os
import time

from constellation.runtime.cgroups.base import (
    CgroupError,
    DirCgroup,
    DirManager,
    Limits,
    Stats,
    read_int,
    read_key,
    read_text,
    signal_all,
    write_text,
)

REQUIRED = ("cpu", "cpuacct", "memory", "pids")
OPTIONAL = ("freezer",)
CFS_PERIOD_US = 100_000
# A task in uninterruptible sleep can hold a freeze in FREEZING; kill what is there meanwhile.
FREEZE_WAIT_SECONDS = 0.5


def find_hierarchies(root: str) -> dict[str, str]:
    """Controller -> hierarchy directory, by probing `root`: a v1 hierarchy is a directory with
    a `tasks` file, named after its controllers ("memory", or a combined "cpu,cpuacct")."""
    found: dict[str, str] = {}
    try:
        entries = sorted(os.listdir(root))
    except OSError as err:
        raise CgroupError(f"cannot list cgroup v1 hierarchies in {root}: {err.strerror}") from None
    for entry in entries:
        path = os.path.realpath(os.path.join(root, entry))
        if os.path.isfile(os.path.join(path, "tasks")):
            for controller in entry.split(","):
                found.setdefault(controller, path)
    missing = [c for c in REQUIRED if c not in found]
    if missing:
        raise CgroupError(
            f"cgroup v1 controller {', '.join(missing)} not mounted under {root} "
            f"(found hierarchies: {', '.join(sorted(found)) or 'none'})"
        )
    return {c: found[c] for c in REQUIRED + OPTIONAL if c in found}


class V1Cgroup(DirCgroup):
    def __init__(self, name: str, paths: dict[str, str]) -> None:
        super().__init__(name, list(paths.values()))
        self.paths = paths  # controller -> this cgroup's directory in its hierarchy

    def file(self, controller: str, name: str) -> str:
        return os.path.join(self.paths[controller], name)

    def stats(self) -> Stats:
        return Stats(
            cpu_usage_ns=read_int(self.file("cpuacct", "cpuacct.usage")),
            memory_current=read_int(self.file("memory", "memory.usage_in_bytes")),
            memory_peak=read_int(self.file("memory", "memory.max_usage_in_bytes")),
            pids=read_int(self.file("pids", "pids.current")),
            oom_kills=read_key(self.file("memory", "memory.oom_control"), "oom_kill"),
        )

    def kill_round(self, pids: list[int]) -> None:
        """Freeze, kill, thaw (as runc does): a frozen process cannot fork, so the list read
        while frozen is complete, and the SIGKILLs land when it thaws."""
        if "freezer" not in self.paths:
            signal_all(pids)
            return
        state = self.file("freezer", "freezer.state")
        write_text(state, "FROZEN")
        try:
            wait_frozen(state)
            signal_all(self.pids())
        finally:
            write_text(state, "THAWED")


def wait_frozen(state: str) -> None:
    until = time.monotonic() + FREEZE_WAIT_SECONDS
    while read_text(state).strip() != "FROZEN" and time.monotonic() < until:
        time.sleep(0.001)


class V1Manager(DirManager[V1Cgroup]):
    def __init__(self, parent: str, root: str = "/sys/fs/cgroup") -> None:
        self.controllers = find_hierarchies(root)  # controller -> hierarchy directory
        super().__init__("v1", parent, list(self.controllers.values()))

    def cgroup(self, name: str) -> V1Cgroup:
        return V1Cgroup(
            name, {c: os.path.join(h, self.parent, name) for c, h in self.controllers.items()}
        )

    def apply(self, cgroup: V1Cgroup, limits: Limits) -> None:
        cpu = cgroup.paths["cpu"]
        write_text(os.path.join(cpu, "cpu.cfs_period_us"), str(CFS_PERIOD_US))
        quota = -1 if limits.cpu_millicores is None else limits.cpu_millicores * 100
        write_text(os.path.join(cpu, "cpu.cfs_quota_us"), str(quota))
        set_memory_limit(cgroup.paths["memory"], limits.memory_bytes)
        # An inherited oom_kill_disable=1 would pause the replica at its limit instead.
        write_text(os.path.join(cgroup.paths["memory"], "memory.oom_control"), "0")
        pids_max = "max" if limits.pids is None else str(limits.pids)
        write_text(os.path.join(cgroup.paths["pids"], "pids.max"), pids_max)


def set_memory_limit(path: str, limit: int | None) -> None:
    """memory.limit_in_bytes, and memory.memsw.limit_in_bytes to the same value when swap is
    accounted, so the limit cannot be escaped into swap. The kernel requires memsw >= memory at
    every step: raise memsw first when growing, lower memory first when shrinking."""
    memory = os.path.join(path, "memory.limit_in_bytes")
    memsw = os.path.join(path, "memory.memsw.limit_in_bytes")
    value = "-1" if limit is None else str(limit)
    if not os.path.exists(memsw):
        write_text(memory, value)
        return
    growing = limit is None or limit >= read_int(memory)
    for file in (memsw, memory) if growing else (memory, memsw):
        write_text(file, value)
