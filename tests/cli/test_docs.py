"""docs/cli.md documents exactly the options each command's --help shows."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CLI = str(Path(sys.executable).parent / "constellation")
OPTION = re.compile(r"(?<![\w-])(-{1,2}[a-zA-Z][a-zA-Z-]*)")
HEADING = re.compile(r"^#{3,4} `constellation ([a-z ]+)`$", re.MULTILINE)


def documented() -> dict[str, set[str]]:
    """Command -> the options in its section's table rows."""
    text = (ROOT / "docs" / "cli.md").read_text()
    sections = HEADING.split(text)[1:]
    result = {}
    for command, body in zip(sections[::2], sections[1::2], strict=True):
        rows = [line.split("|")[1] for line in body.splitlines() if line.startswith("| `-")]
        result[command] = {option for row in rows for option in OPTION.findall(row)}
    return result


def from_help(command: str) -> set[str]:
    result = subprocess.run(
        [CLI, *command.split(), "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr
    options = {o for o in OPTION.findall(result.stdout) if o != "--help"}
    return {o for o in options if not o.startswith("--no-")}


DOCUMENTED = documented()


def test_every_command_is_documented() -> None:
    commands = {"apply", "get", "describe", "delete", "diff", "crds", "version", "logs", "top"}
    assert set(DOCUMENTED) >= commands | {"server", "agent", "controllers", "convert"} | {
        "gitops sync",
        "gitops status",
    }


@pytest.mark.parametrize("command", sorted(DOCUMENTED))
def test_documented_options_match_help(command: str) -> None:
    assert DOCUMENTED[command] == from_help(command)
