"""Every benchmark in one run, and one table: what `make bench` runs.

    .venv/bin/python bench/all.py [--quick] [--only NAME ...] [--budget SECONDS]
                                  [--results-dir DIR] [--output PATH] [--merge-only] [--markdown]

Each benchmark under bench/ runs as a subprocess, one after the other (they would skew each
other on a 2-core machine), within its own time budget and a total of 10 minutes; it writes
its own results file as when run alone. Their figures are merged, under `<benchmark>.<key>`,
into one report (bench/results/latest.json) with the same fields for every figure: the
project's value, its baseline as the benchmark defines it (measured in the same run, or a
published anchor where the benchmark says so), the ratio, the target and whether it is met.
The table goes to stdout, the benchmarks' own progress and tables to stderr.

`--quick` runs every benchmark in its quick mode and writes to a temp dir, not over the full
results. `--merge-only` runs nothing and merges the results already in --results-dir;
`--markdown` prints the table as docs/performance.md shows it. The exit status is 1 if any
benchmark failed, ran out of time or reported an error.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from report import cell, grid, met_cell

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
TOTAL_SECONDS = 600.0
MIN_START_SECONDS = 15.0  # a benchmark is not started with less than this left of the total
INTERRUPT_GRACE_SECONDS = 30.0  # after SIGINT, for a benchmark's own clean-up


@dataclass(frozen=True)
class Benchmark:
    name: str
    budget: float  # seconds, full mode: about twice its usual wall time
    options: tuple[str, ...] = ()


# In the order `make bench` ran them before; the wall times are those of the committed runs.
BENCHMARKS = (
    Benchmark("store", 240.0),  # about 160 s: the churn on each backend is most of it
    Benchmark("cli", 60.0),  # about 25 s
    Benchmark("scheduler", 120.0),  # about 50 s
    Benchmark("convert", 60.0),  # about 20 s
    Benchmark("gitops", 180.0),  # about 120 s under load, 60 s on a quiet machine
    Benchmark("runtime", 150.0),  # about 90 s
    Benchmark("scale", 120.0),  # about 50 s
)
NAMES = tuple(b.name for b in BENCHMARKS)


# -- running -------------------------------------------------------------------------------


@dataclass
class Outcome:
    """What one benchmark run left: its report (None if it printed none) and how it ended."""

    name: str
    report: dict[str, Any] | None
    exit_code: int | None
    wall_seconds: float | None  # None when read from a file, not run
    error: str | None


def command_for(bench: Benchmark, quick: bool, output: Path) -> list[str]:
    script = str(ROOT / "bench" / f"{bench.name}.py")
    quick_flag = ("--quick",) if quick else ()
    return [sys.executable, script, *quick_flag, *bench.options, "--output", str(output)]


def stop(process: subprocess.Popen[str]) -> None:
    """SIGINT first, so the benchmark's own clean-up runs (its cgroups, servers, temp dirs);
    SIGKILL to its process group only if it does not end in time."""
    process.send_signal(signal.SIGINT)
    try:
        process.communicate(timeout=INTERRUPT_GRACE_SECONDS)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):  # the group may be gone by now
            os.killpg(process.pid, signal.SIGKILL)
        process.communicate()


def run_one(bench: Benchmark, quick: bool, output: Path, budget: float) -> Outcome:
    print(f"bench all: {bench.name} (budget {budget:.0f} s) ...", file=sys.stderr, flush=True)
    started = time.monotonic()
    process = subprocess.Popen(
        command_for(bench, quick, output),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, so that a stuck run can be killed
    )
    try:
        out, _ = process.communicate(timeout=budget)
    except subprocess.TimeoutExpired:
        stop(process)
        wall = time.monotonic() - started
        return Outcome(bench.name, None, None, wall, f"stopped after its budget of {budget:.0f} s")
    wall = time.monotonic() - started
    try:
        report: dict[str, Any] | None = json.loads(out)
    except json.JSONDecodeError:
        report = None
    error = None
    if report is None:
        error = f"exited {process.returncode} without a report"
    elif process.returncode != 0 and not report.get("errors"):
        error = f"exited {process.returncode}"
    return Outcome(bench.name, report, process.returncode, wall, error)


def run_all(
    benches: Sequence[Benchmark], quick: bool, results: Path, budget: float | None
) -> list[Outcome]:
    """Each benchmark in turn, each within its budget and what is left of the total."""
    deadline = time.monotonic() + TOTAL_SECONDS
    outcomes = []
    for bench in benches:
        left = deadline - time.monotonic()
        if left < MIN_START_SECONDS:
            outcomes.append(Outcome(bench.name, None, None, 0.0, "not run: the total was spent"))
            continue
        own = budget if budget is not None else bench.budget
        outcomes.append(run_one(bench, quick, results / f"{bench.name}.json", min(own, left)))
    return outcomes


def read_results(benches: Sequence[Benchmark], results: Path) -> list[Outcome]:
    """The reports already on disk, as if just run (--merge-only)."""
    outcomes = []
    for bench in benches:
        path = results / f"{bench.name}.json"
        if path.exists():
            outcomes.append(Outcome(bench.name, json.loads(path.read_text()), 0, None, None))
        else:
            outcomes.append(Outcome(bench.name, None, None, None, f"no results file {path}"))
    return outcomes


# -- merging -------------------------------------------------------------------------------


def target_text(target: object, better: str | None, unit: str) -> str | None:
    """Targets as text: most benchmarks write them so, the scheduler gives a number."""
    if target is None or target == "-":
        return None
    if isinstance(target, int | float):
        return f"{'>=' if better == 'higher' else '<'} {target:,g} {unit}"
    return str(target)


def normalize(report: dict[str, Any], figure: dict[str, Any]) -> dict[str, Any]:
    """One figure in the common shape. The store compares its two backends (SQLite, the
    project's default, against etcd); the scheduler names a published anchor; the others
    name their baseline and say what it is."""
    if "sqlite" in figure:
        value, baseline, baseline_is = figure["sqlite"], figure["etcd"], "etcd backend"
    elif "anchor" in figure:
        value, baseline = figure["constellation"], figure["anchor"]
        baseline_is = figure["anchor_is"]
    else:
        value, baseline = figure["constellation"], figure.get("baseline")
        baseline_is = figure.get("baseline_is")
    return {
        "benchmark": report["benchmark"],
        "label": figure["label"],
        "unit": figure["unit"],
        "value": value,
        "baseline": baseline,
        "baseline_is": baseline_is if baseline is not None else None,
        "ratio": figure["ratio"],
        "target": target_text(figure.get("target"), figure.get("better"), figure["unit"]),
        "met": figure["met"],
    }


def merge(outcomes: Iterable[Outcome], quick: bool, started: str) -> dict[str, Any]:
    figures: dict[str, dict[str, Any]] = {}
    errors: dict[str, str] = {}
    runs: dict[str, dict[str, Any]] = {}
    for outcome in outcomes:
        report = outcome.report or {}
        for key, figure in report.get("figures", {}).items():
            figures[f"{outcome.name}.{key}"] = normalize(report, figure)
        for part, error in report.get("errors", {}).items():
            errors[f"{outcome.name}.{part}"] = error
        if outcome.error is not None:
            errors[outcome.name] = outcome.error
        wall = outcome.wall_seconds
        runs[outcome.name] = {
            "exit_code": outcome.exit_code,
            "wall_seconds": None if wall is None else round(wall, 1),
            "ratio": report.get("ratio"),
            "loadavg_at_end": report.get("machine", {}).get("loadavg_at_end"),
        }
    return {
        "benchmark": "all",
        "started": started,
        "quick": quick,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "total_seconds": round(sum(r["wall_seconds"] or 0.0 for r in runs.values()), 1),
        "runs": runs,
        "figures": figures,
        "errors": errors,
    }


# -- tables --------------------------------------------------------------------------------


def footnotes(report: dict[str, Any]) -> dict[str, int]:
    """A number for each distinct baseline, in order of first use."""
    numbers: dict[str, int] = {}
    for figure in report["figures"].values():
        what = figure["baseline_is"]
        if what is not None and what not in numbers:
            numbers[what] = len(numbers) + 1
    return numbers


def text_table(report: dict[str, Any]) -> str:
    """Aligned columns for a terminal; each baseline is a footnote, they are long."""
    numbers = footnotes(report)
    rows = [("benchmark", "figure", "unit", "value", "baseline", "ratio", "target", "met")]
    shown = None
    for figure in report["figures"].values():
        bench = figure["benchmark"] if figure["benchmark"] != shown else ""
        shown = figure["benchmark"]
        baseline = cell(figure["baseline"])
        if figure["baseline_is"] is not None:
            baseline += f" [{numbers[figure['baseline_is']]}]"
        rows.append(
            (
                bench,
                figure["label"],
                figure["unit"],
                cell(figure["value"]),
                baseline,
                cell(figure["ratio"]),
                figure["target"] or "-",
                met_cell(figure["met"]),
            )
        )
    notes = [f"[{number}] {what}" for what, number in numbers.items()]
    walls = [(name, run["wall_seconds"]) for name, run in report["runs"].items()]
    if any(wall is not None for _, wall in walls):
        runs = ", ".join(f"{name} {cell(wall)} s" for name, wall in walls)
        notes.append(f"wall time: {runs}; total {cell(report['total_seconds'])} s")
    else:
        notes.append("merged from the results files, not run")
    errors = [f"ERROR {name}: {error}" for name, error in report["errors"].items()]
    return "\n".join([*grid(rows), *notes, *errors])


def with_unit(value: float | None, unit: str) -> str:
    return "-" if value is None else f"{cell(value)} {unit}"


def markdown_table(report: dict[str, Any]) -> str:
    """The table as docs/performance.md shows it."""
    lines = [
        "| benchmark | figure | value | baseline | ratio | target | met |",
        "|---|---|---|---|---|---|---|",
    ]
    for figure in report["figures"].values():
        baseline = with_unit(figure["baseline"], figure["unit"])
        if figure["baseline_is"] is not None:
            baseline += f" ({figure['baseline_is']})"
        met = {True: "yes", False: "**no**", None: "-"}[figure["met"]]
        cells = (
            figure["benchmark"],
            figure["label"].strip(),
            with_unit(figure["value"], figure["unit"]),
            baseline,
            cell(figure["ratio"]),
            figure["target"] or "-",
            met,
        )
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines)


# -- entry point ---------------------------------------------------------------------------


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="every benchmark's quick mode")
    parser.add_argument("--only", action="append", choices=NAMES, help="run only these")
    parser.add_argument("--budget", type=float, help="seconds for each benchmark, overriding")
    parser.add_argument("--results-dir", type=Path, help="where each benchmark writes its JSON")
    parser.add_argument("--output", type=Path, help="the merged JSON")
    parser.add_argument("--merge-only", action="store_true", help="run nothing, merge results")
    parser.add_argument("--markdown", action="store_true", help="print the table as markdown")
    return parser.parse_args(argv)


def default_results(quick: bool) -> Path:
    """Quick runs go to a temp dir: they must not overwrite the full results."""
    return Path(tempfile.mkdtemp(prefix="constellation-bench-quick-")) if quick else RESULTS


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    benches = [b for b in BENCHMARKS if args.only is None or b.name in args.only]
    results = args.results_dir or default_results(args.quick and not args.merge_only)
    results.mkdir(parents=True, exist_ok=True)
    started = datetime.now(UTC).isoformat(timespec="seconds")
    if args.merge_only:
        outcomes = read_results(benches, results)
    else:
        outcomes = run_all(benches, args.quick, results, args.budget)
    report = merge(outcomes, args.quick, started)
    output = args.output or results / "latest.json"
    if not args.merge_only or args.output is not None:
        output.write_text(json.dumps(report, indent=2) + "\n")
    print(markdown_table(report) if args.markdown else text_table(report))
    return 1 if report["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
