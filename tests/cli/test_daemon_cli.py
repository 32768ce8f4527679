"""`server` and `agent` refuse to start with one clear line, not a traceback, when they cannot
run here."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

CLI = str(Path(sys.executable).parent / "constellation")


def run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, timeout=60)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to get past the root check")
def test_an_invalid_cgroup_parent_is_one_line(tmp_path: Path) -> None:
    result = run(CLI, "--data-dir", str(tmp_path), "server", "--cgroup-parent", "../escape")
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "error: invalid cgroup name '..': one path component, not '.' or '..'"
    )


@pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("setpriv") is None, reason="needs root to drop to nobody"
)
def test_the_agent_as_a_non_root_user_is_one_line() -> None:
    data_dir = Path(tempfile.mkdtemp(prefix="constellation-nobody-"))  # pytest's tmp is 0700
    data_dir.chmod(0o777)
    drop = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    try:
        result = run(*drop, CLI, "--data-dir", str(data_dir), "agent")
    finally:
        shutil.rmtree(data_dir)
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "error: the agent must run as root: it makes namespaces and cgroups"
    )
