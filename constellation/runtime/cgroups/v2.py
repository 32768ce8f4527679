"""The cgroup v2 driver: one directory per cgroup in the unified hierarchy, controllers enabled
down the parent chain through `cgroup.subtree_control`. Most production Linux is v2.

The development machines are v1 and cannot mount a cgroup2 hierarchy with controllers, so this
driver is tested against a directory laid out like cgroup2 (tests/runtime/test_cgroups_v2.py:
plain files standing in for the interface files, a stand-in for the kernel's mkdir, rmdir and
cgroup.kill), and for real wherever a v2 machine runs the suite."""

from __future__ import annotations

import os

from constellation.runtime.cgroups.base import (
    CgroupError,
    DirCgroup,
    DirManager,
    Limits,
    Stats,
    make_dirs,
    read_int,
    read_key,
    read_text,
    signal_all,
    write_text,
)

CONTROLLERS = ("cpu", "memory", "pids")
CFS_PERIOD_US = 100_000


class V2Cgroup(DirCgroup):
    def __init__(self, name: str, path: str) -> None:
        super().__init__(name, [path])
        self.path = path

    def file(self, name: str) -> str:
        return os.path.join(self.path, name)

    def stats(self) -> Stats:
        return Stats(
            cpu_usage_ns=read_key(self.file("cpu.stat"), "usage_usec") * 1000,
            memory_current=read_int(self.file("memory.current")),
            memory_peak=read_int(self.file("memory.peak"), missing=0),  # Linux >= 5.19
            pids=read_int(self.file("pids.current")),
            oom_kills=read_key(self.file("memory.events"), "oom_kill"),
        )

    def kill_round(self, pids: list[int]) -> None:
        # cgroup.kill (Linux >= 5.14) kills the whole cgroup atomically, forks included.
        if os.path.exists(self.file("cgroup.kill")):
            write_text(self.file("cgroup.kill"), "1")
        else:
            signal_all(pids)


class V2Manager(DirManager[V2Cgroup]):
    def __init__(self, parent: str, root: str) -> None:
        if not os.path.isfile(os.path.join(root, "cgroup.controllers")):
            raise CgroupError(f"{root} is not a cgroup2 hierarchy: it has no cgroup.controllers")
        super().__init__("v2", parent, [root])
        self.root = root

    def cgroup(self, name: str) -> V2Cgroup:
        return V2Cgroup(name, os.path.join(self.root, self.parent, name))

    def prepare_parent(self) -> None:
        """Enable cpu, memory and pids in `cgroup.subtree_control` of every directory from the
        root down to the parent, so each child gets them. Only a missing controller is written;
        the root's file is thus written only on a host where nothing (systemd) delegated them
        yet, and no directory outside the root-to-parent chain is ever written."""
        parts = self.parent.split("/")
        for depth in range(len(parts) + 1):
            path = os.path.join(self.root, *parts[:depth])
            make_dirs(path)
            enable_controllers(path)

    def apply(self, cgroup: V2Cgroup, limits: Limits) -> None:
        quota = "max" if limits.cpu_millicores is None else str(limits.cpu_millicores * 100)
        write_text(cgroup.file("cpu.max"), f"{quota} {CFS_PERIOD_US}")
        memory = limits.memory_bytes
        write_text(cgroup.file("memory.max"), "max" if memory is None else str(memory))
        # No swap escape; absent when the kernel does not account swap (then none to escape to).
        if os.path.exists(cgroup.file("memory.swap.max")):
            write_text(cgroup.file("memory.swap.max"), "max" if memory is None else "0")
        write_text(cgroup.file("pids.max"), "max" if limits.pids is None else str(limits.pids))


def enable_controllers(path: str) -> None:
    available = read_text(os.path.join(path, "cgroup.controllers")).split()
    missing = [c for c in CONTROLLERS if c not in available]
    if missing:
        raise CgroupError(
            f"cgroup v2 controller {', '.join(missing)} not available in {path} "
            f"(cgroup.controllers: {' '.join(available) or 'empty'})"
        )
    subtree_control = os.path.join(path, "cgroup.subtree_control")
    enabled = read_text(subtree_control).split()
    wanted = [f"+{c}" for c in CONTROLLERS if c not in enabled]
    if wanted:
        write_text(subtree_control, " ".join(wanted))
