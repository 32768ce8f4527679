"""Start-up stays cheap: a command imports its own module and nothing of the others.

Timing is the benchmark's job (bench/cli.py, against a typer floor in the same run); these
tests guard what the timing depends on: which modules the CLI's entry point loads.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import typer
from typer.core import TyperGroup

from constellation.cli.main import Commands, app

# The console script's own lines, and a print of sys.modules on the way out.
PROBE = """\
import atexit, sys
atexit.register(lambda: print(*sys.modules, file=sys.stderr))
sys.argv[0] = "constellation"
from constellation.cli.main import main
main()
"""

# What `constellation version` needs: the entry point, the lazy command table, the global
# options' context, error reporting and plain output.
VERSION_NEEDS = {
    "constellation",
    "constellation.cli",
    "constellation.cli.main",
    "constellation.cli.lazy",
    "constellation.cli.context",
    "constellation.cli.errors",
    "constellation.cli.ui",
}
HEAVY = ("rich", "ruamel", "etcd3", "grpc", "psutil", "yaml", "logging", "concurrent")


def imported_by(data_dir: Path, *args: str) -> tuple[str, set[str]]:
    """Run the CLI's entry point in a fresh interpreter: its stdout and every module loaded
    when it exits (sys.modules, since `-X importtime` misses `importlib.import_module`)."""
    result = subprocess.run(
        [sys.executable, "-c", PROBE, "--data-dir", str(data_dir), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "COLUMNS": "100"},
    )
    assert result.returncode == 0, result.stderr
    return result.stdout, set(result.stderr.split())


def test_version_imports_no_command_module_and_nothing_heavy(tmp_path: Path) -> None:
    out, modules = imported_by(tmp_path, "version")
    assert out.strip() == "0.1.0"
    assert {m for m in modules if m.startswith("constellation")} == VERSION_NEEDS
    assert sorted(m for m in modules if m.split(".")[0] in HEAVY) == []


def test_a_command_imports_its_own_module_and_not_the_others(tmp_path: Path) -> None:
    out, modules = imported_by(tmp_path, "get", "--help")
    assert "Show objects of one kind." in out
    assert "constellation.cli.get_cmd" in modules
    # `version` lives in main itself, which every command imports.
    others = {t.split(":")[0] for n, t in Commands.targets.items() if n not in ("get", "version")}
    assert sorted(others & modules) == []


def test_root_help_lists_every_command_in_table_order(tmp_path: Path) -> None:
    out, _ = imported_by(tmp_path, "--help")
    listed = [line.split()[1] for line in out.splitlines() if line.startswith("│ ")]
    commands = [name for name in listed if name in Commands.targets]
    assert commands == list(Commands.targets)


def test_every_target_builds_a_command_of_its_name() -> None:
    group = typer.main.get_group(app)
    assert list(group.commands) == list(Commands.targets)
    built = {name: command.name for name, command in group.commands.items()}
    assert built == {name: name for name in Commands.targets}
    for sub_app in ("store", "gitops"):
        command = group.commands[sub_app]
        assert isinstance(command, TyperGroup) and len(command.commands) > 1, sub_app
