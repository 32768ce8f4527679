"""How the v1 driver finds its hierarchies on layouts other than this machine's: a combined
"cpu,cpuacct" mount (most v1 distributions), no freezer, a missing controller. The directories
are stand-ins (a v1 hierarchy is recognised by its `tasks` file); nothing is written to them."""

from __future__ import annotations

from pathlib import Path

import pytest

from constellation.runtime.cgroups import CgroupError, v1_manager
from constellation.runtime.cgroups.v1 import V1Manager


def hierarchies(root: Path, *names: str) -> Path:
    for name in names:
        (root / name).mkdir(parents=True)
        (root / name / "tasks").write_text("")
    return root


def test_a_combined_cpu_cpuacct_mount_and_its_symlinks_are_one_hierarchy(tmp_path: Path) -> None:
    root = hierarchies(tmp_path, "cpu,cpuacct", "memory", "pids", "freezer", "net_cls,net_prio")
    (root / "cpu").symlink_to("cpu,cpuacct")
    (root / "cpuacct").symlink_to("cpu,cpuacct")
    manager = V1Manager("constellation", str(root))
    assert manager.controllers == {
        "cpu": str(root / "cpu,cpuacct"),
        "cpuacct": str(root / "cpu,cpuacct"),
        "memory": str(root / "memory"),
        "pids": str(root / "pids"),
        "freezer": str(root / "freezer"),
    }
    for hierarchy in ("cpu,cpuacct", "memory", "pids", "freezer"):
        (root / hierarchy / "constellation" / "web-0").mkdir(parents=True)
    cgroup = manager.open("web-0")
    assert cgroup is not None
    assert cgroup.procs_files() == [
        str(root / hierarchy / "constellation" / "web-0" / "cgroup.procs")
        for hierarchy in ("cpu,cpuacct", "memory", "pids", "freezer")
    ]
    assert manager.names() == ["web-0"]


def test_freezer_is_optional(tmp_path: Path) -> None:
    root = hierarchies(tmp_path, "cpu", "cpuacct", "memory", "pids")
    assert "freezer" not in V1Manager("constellation", str(root)).controllers


def test_a_missing_controller_is_named(tmp_path: Path) -> None:
    root = hierarchies(tmp_path, "cpu", "memory", "freezer")
    (root / "pids").mkdir()  # a directory, but not a mounted hierarchy: no `tasks`
    with pytest.raises(CgroupError, match=r"cgroup v1 controller cpuacct, pids not mounted under"):
        v1_manager("constellation", str(root))


def test_a_missing_root_is_a_cgroup_error(tmp_path: Path) -> None:
    with pytest.raises(CgroupError, match=r"cannot list cgroup v1 hierarchies in .*/nowhere"):
        v1_manager("constellation", str(tmp_path / "nowhere"))


def test_names_is_the_union_over_hierarchies(tmp_path: Path) -> None:
    """A create cut short between hierarchies still shows up, so it can be removed."""
    root = hierarchies(tmp_path, "cpu", "cpuacct", "memory", "pids")
    (root / "cpu" / "constellation" / "web-0").mkdir(parents=True)
    (root / "memory" / "constellation" / "db-0").mkdir(parents=True)
    (root / "memory" / "constellation" / "not-a-cgroup").write_text("")
    manager = v1_manager("constellation", str(root))
    assert manager.names() == ["db-0", "web-0"]
    assert manager.open("db-0") is not None
