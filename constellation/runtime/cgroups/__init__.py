"""cgroups for replicas, modelled on runc's libcontainer/cgroups: one manager interface, a v1
driver (one directory per controller hierarchy) and a v2 driver (the unified hierarchy), chosen
once by `detect`. Each manager owns one parent (`constellation/` or `constellation/<node>/`) and
creates, re-adopts and removes the replica cgroups below it; it never writes elsewhere, except
enabling controllers on the v2 parent chain (see `V2Manager.prepare_parent`)."""

from __future__ import annotations

import os

from constellation.runtime.cgroups.base import Cgroup, CgroupError, CgroupManager, Limits, Stats
from constellation.runtime.cgroups.v1 import V1Manager
from constellation.runtime.cgroups.v2 import V2Manager

__all__ = [
    "Cgroup",
    "CgroupError",
    "CgroupManager",
    "Limits",
    "Stats",
    "detect",
    "remove_all",
    "v1_manager",
    "v2_manager",
]


def detect(parent: str = "constellation", root: str = "/sys/fs/cgroup") -> CgroupManager:
    """v2 when `root` is a cgroup2 mount (it has cgroup.controllers), else v1 from the
    hierarchies under it. A hybrid host's empty cgroup2 at root/unified is not used."""
    if os.path.isfile(os.path.join(root, "cgroup.controllers")):
        return v2_manager(parent, root)
    return v1_manager(parent, root)


def v1_manager(parent: str, root: str = "/sys/fs/cgroup") -> CgroupManager:
    return V1Manager(parent, root)


def v2_manager(parent: str, root: str) -> CgroupManager:
    return V2Manager(parent, root)


def remove_all(manager: CgroupManager) -> int:
    """Kill and remove every cgroup under the manager's parent, then the parent itself: how a
    node's replicas are cleared for good (tests, the demo). Returns how many there were."""
    names = manager.names()
    for name in names:
        cgroup = manager.open(name)
        if cgroup is not None:
            cgroup.remove()
    manager.remove_parent()
    return len(names)
