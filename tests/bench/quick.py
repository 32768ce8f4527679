"""Running one benchmark in --quick mode, as the smoke tests do: it must exit 0, report no
errors, and write to --output exactly the JSON it prints."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def run_quick(name: str, tmp_path: Path, *extra: str, timeout: float = 110) -> dict[str, Any]:
    output = tmp_path / f"{name}.json"
    command = [sys.executable, str(ROOT / "bench" / f"{name}.py"), "--quick", *extra]
    result = subprocess.run(
        [*command, "--output", str(output)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    report: dict[str, Any] = json.loads(result.stdout)
    assert json.loads(output.read_text()) == report
    assert report["errors"] == {}
    return report
