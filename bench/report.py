"""What every benchmark shares: its options, its JSON report (stdout and disk) and its table."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process `pid` so far, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def idle_cpu_percent(pid: int, seconds: float) -> float:
    """CPU of process `pid` as % of one core over the next `seconds`."""
    before = cpu_seconds(pid)
    time.sleep(seconds)
    return (cpu_seconds(pid) - before) / seconds * 100


def rounded(value: float | None) -> float | None:
    """Three decimals for small figures, one for large: enough to read, not noise."""
    if value is None:
        return None
    return round(value, 3 if abs(value) < 100 else 1)


def cell(value: float | str | None) -> str:
    """A figure as the table shows it: thousands separated, "-" when absent."""
    if value is None:
        return "-"
    return value if isinstance(value, str) else f"{value:,}"


def met_cell(met: bool | None) -> str:
    return {True: "yes", False: "NO", None: "-"}[met]


def grid(rows: Sequence[Sequence[str]]) -> list[str]:
    """Aligned columns with a rule under the header row."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return lines


def table(
    report: dict[str, Any], headers: Sequence[str], keys: Sequence[str], notes: Sequence[str]
) -> str:
    """Label, unit, the figure fields named by `keys`, met; then `notes` and any errors."""
    rows = [("figure", "unit", *headers, "met")]
    for entry in report["figures"].values():
        shown = tuple(cell(entry[key]) for key in keys)
        rows.append((entry["label"], entry["unit"], *shown, met_cell(entry["met"])))
    errors = [f"ERROR {name}: {error}" for name, error in report["errors"].items()]
    return "\n".join([*grid(rows), *notes, *errors])


def publish(report: dict[str, Any], output: Path, table: str) -> int:
    """Write the report (JSON) to `output` and stdout, the table to stderr; the exit status
    says whether any part failed."""
    text = json.dumps(report, indent=2)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text + "\n")
    print(text)
    print(table, file=sys.stderr)
    return 1 if report["errors"] else 0


def base_parser(
    doc: str | None, default_output: Path, quick_help: str = "small counts, a smoke test"
) -> argparse.ArgumentParser:
    """The options every benchmark takes: `--quick` and `--output`."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0] if doc else None)
    parser.add_argument("--quick", action="store_true", help=quick_help)
    parser.add_argument("--output", type=Path, default=default_output, help="JSON file")
    return parser
