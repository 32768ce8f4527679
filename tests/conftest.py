"""Session-wide host hygiene: the suite must leave no process, cgroup or mount behind.

At the start the session notes the host's mounts and its own cgroups; at the end any new
mount, any cgroup directory named `constellation*` that was not there before, and any process
still descending from pytest fail the run (exit status 1), with what was found.
"""

from __future__ import annotations

import os
from pathlib import Path

import psutil
import pytest

CGROUP_ROOT = Path("/sys/fs/cgroup")
_before: dict[str, set[str]] = {}


def _our_cgroups() -> set[str]:
    """Every `constellation*` directory in every hierarchy, at any depth below the root's
    own children (the project only creates them under such a parent)."""
    found: set[str] = set()
    if not CGROUP_ROOT.is_dir():
        return found
    for hierarchy in CGROUP_ROOT.iterdir():
        if not hierarchy.is_dir():
            continue
        for parent in hierarchy.glob("constellation*"):
            # os.walk ignores a directory that vanishes under it (another test's clean-up).
            found.update(root for root, _dirs, _files in os.walk(parent))
    return found


def _mounts() -> set[str]:
    with open("/proc/self/mountinfo") as mountinfo:
        return {" ".join(line.split()[3:5]) for line in mountinfo}


def pytest_sessionstart(session: pytest.Session) -> None:
    _before["cgroups"] = _our_cgroups()
    _before["mounts"] = _mounts()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if not _before:
        return
    leaks = _leaks()
    if leaks:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        for leak in leaks:
            if reporter is not None:
                reporter.write_line(f"LEFT BEHIND: {leak}", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def _leaks() -> list[str]:
    leaks = [f"cgroup {path}" for path in sorted(_our_cgroups() - _before["cgroups"])]
    leaks += [f"mount {mount}" for mount in sorted(_mounts() - _before["mounts"])]
    me = psutil.Process(os.getpid())
    for child in me.children(recursive=True):
        try:
            leaks.append(f"process {child.pid} {' '.join(child.cmdline())[:120]}")
        except psutil.NoSuchProcess:
            continue
    return leaks
