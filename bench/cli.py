"""CLI benchmark: `constellation apply`, `get` and start-up against their floors, in one run.

    .venv/bin/python bench/cli.py [--quick] [--output PATH]

Every figure runs the real console script (`.venv/bin/constellation --data-dir DIR ...`) as a
subprocess on a fresh embedded store in a temp dir, and is read against a floor measured in the
same run, interleaved with it so the machine's noise hits both alike:

- `apply -f` of a generated multi-document file (1,000 Instances with labels, env, resources,
  ports and probes, plus 100 Services), then the same apply again (all `unchanged`), then
  `get instances` as a table and as `-o json`: wall time and peak RSS, against a subprocess of
  the same Python that only parses the same file with ruamel.yaml (`YAML(typ="safe")`);
- `constellation version`: the median start-up against a one-command typer app run with
  `python -c`, and that typer floor against `python -c pass`.

Peak RSS is the `ru_maxrss` that `os.wait4` returns for that one child. It prints JSON to
stdout (also written to bench/results/cli.json) and a table to stderr; each figure carries the
Constellation value, the floor, the ratio constellation / floor, the target and whether it
was met. `--quick` (100 Instances + 10 Services, fewer runs) is a smoke test: the targets that
depend on the object count are not judged there.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from report import base_parser, publish, rounded, table

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUTPUT = ROOT / "bench" / "results" / "cli.json"
BIN = Path(sys.executable).parent  # the venv's bin: its python, and the console script
CONSTELLATION = BIN / "constellation"
MB = 1_000_000

PARSE_SCRIPT = """\
import sys
from ruamel.yaml import YAML
with open(sys.argv[1]) as f:
    docs = list(YAML(typ="safe").load_all(f))
print(len(docs))
"""
TYPER_SCRIPT = """\
import typer
app = typer.Typer()
@app.command()
def version() -> None:
    print("0.1.0")
app()
"""


@dataclass(frozen=True)
class Config:
    quick: bool
    instances: int
    services: int
    runs: int  # rounds of parse / apply / re-apply / get, each on a fresh data dir
    startup_runs: int  # runs of each start-up command, interleaved


FULL = Config(quick=False, instances=1_000, services=100, runs=5, startup_runs=21)
QUICK = Config(quick=True, instances=100, services=10, runs=3, startup_runs=5)


# -- the manifest --------------------------------------------------------------------------

TIERS = ("frontend", "backend", "worker", "cache")
TEAMS = ("shop", "search", "billing", "ops", "data")


def instance_doc(i: int) -> str:
    """One realistic Instance; fields vary with `i` so no two objects are the same."""
    name = f"app-{i:04d}"
    cpu, memory = 50 + 10 * (i % 20), 32 + 16 * (i % 8)
    return f"""\
apiVersion: constellation.dev/v1
kind: Instance
metadata:
  name: {name}
  labels:
    app: {name}
    tier: {TIERS[i % len(TIERS)]}
    team: {TEAMS[i % len(TEAMS)]}
  annotations:
    owner: team-{TEAMS[i % len(TEAMS)]}@example.com
spec:
  replicas: {1 + i % 4}
  command: ["python3", "-m", "http.server"]
  args: ["--bind", "127.0.0.1", "{8000 + i}"]
  env:
    - name: APP_NAME
      value: {name}
    - name: LOG_LEVEL
      value: {"debug" if i % 10 == 0 else "info"}
  workingDir: /srv/{name}
  resources:
    requests:
      cpu: {cpu}m
      memory: {memory}Mi
    limits:
      cpu: {2 * cpu}m
      memory: {2 * memory}Mi
      pids: 64
  ports:
    - name: http
      port: {8000 + i}
    - name: metrics
      protocol: TCP
  readinessProbe:
    httpGet:
      path: /healthz
      port: http
    periodSeconds: 5
  livenessProbe:
    tcpSocket:
      port: http
    failureThreshold: 3
  placement:
    strategy: {"BinPack" if i % 3 == 0 else "Spread"}
"""


def service_doc(i: int) -> str:
    """A Service in front of the Instance `app-{i}`."""
    name = f"app-{i:04d}"
    return f"""\
apiVersion: constellation.dev/v1
kind: Service
metadata:
  name: {name}
  labels:
    app: {name}
spec:
  selector:
    constellation.dev/instance: {name}
  ports:
    - name: http
      port: {18000 + i}
      targetPort: http
  loadBalancing:
    policy: {"LeastConnections" if i % 2 else "RoundRobin"}
"""


def generate_manifest(cfg: Config) -> str:
    """All the Instances, then a Service for every (instances // services)-th of them."""
    step = max(1, cfg.instances // cfg.services)
    docs = [instance_doc(i) for i in range(cfg.instances)]
    docs += [service_doc(i) for i in range(0, cfg.instances, step)][: cfg.services]
    return "---\n".join(docs)


# -- one subprocess ------------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    seconds: float
    peak_rss_mb: float
    stdout: str


def run_process(argv: Sequence[str], workdir: Path) -> Run:
    """Run `argv` with stdout to a file (not a terminal, as when piped): wall time from spawn
    to reaping, and the child's own peak RSS from `os.wait4`."""
    out, err = workdir / "stdout", workdir / "stderr"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONSTELLATION_")}
    with out.open("wb") as stdout, err.open("wb") as stderr:
        started = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=stdout, stderr=stderr, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        message = err.read_text().strip().splitlines()[-1:] or ["(no stderr)"]
        raise RuntimeError(f"{' '.join(argv[:4])}... exited {proc.returncode}: {message[0]}")
    return Run(seconds, usage.ru_maxrss * 1024 / MB, out.read_text())


def cli(data_dir: Path, *args: str) -> list[str]:
    return [str(CONSTELLATION), "--data-dir", str(data_dir), *args]


def python(script: str, *args: str) -> list[str]:
    return [sys.executable, "-c", script, *args]


def expect(condition: bool, message: str) -> None:
    if not condition:
        raise RuntimeError(message)


# -- apply and get -------------------------------------------------------------------------


def expect_verbs(run: Run, verb: str, count: int, what: str) -> None:
    lines = run.stdout.splitlines()
    hits = sum(line.endswith(f" {verb}") for line in lines)
    expect(hits == count == len(lines), f"{what}: {hits} of {len(lines)} lines '{verb}'")


def measurerounded(manifest: Path, cfg: Config, tmp: Path) -> dict[str, Run]:
    """One round on a fresh data dir, each command checked for the output it must give."""
    data_dir = Path(tempfile.mkdtemp(prefix="data-", dir=tmp))
    total = cfg.instances + cfg.services
    runs = {"parse": run_process(python(PARSE_SCRIPT, str(manifest)), tmp)}
    expect(runs["parse"].stdout.strip() == str(total), "parse: wrong document count")
    runs["apply"] = run_process(cli(data_dir, "apply", "-f", str(manifest)), tmp)
    expect_verbs(runs["apply"], "created", total, "apply")
    runs["reapply"] = run_process(cli(data_dir, "apply", "-f", str(manifest)), tmp)
    expect_verbs(runs["reapply"], "unchanged", total, "re-apply")
    runs["get_table"] = run_process(cli(data_dir, "get", "instances"), tmp)
    rows = len(runs["get_table"].stdout.splitlines()) - 1  # the header
    expect(rows == cfg.instances, f"get: {rows} rows")
    runs["get_json"] = run_process(cli(data_dir, "get", "instances", "-o", "json"), tmp)
    items = len(json.loads(runs["get_json"].stdout)["items"])
    expect(items == cfg.instances, f"get -o json: {items} items")
    return runs


def measure_rounds(cfg: Config, tmp: Path) -> dict[str, list[Run]]:
    manifest = tmp / "objects.yaml"
    manifest.write_text(generate_manifest(cfg))
    samples: dict[str, list[Run]] = {}
    for number in range(cfg.runs):
        print(f"bench cli: round {number + 1}/{cfg.runs} ...", file=sys.stderr, flush=True)
        for name, run in measurerounded(manifest, cfg, tmp).items():
            samples.setdefault(name, []).append(run)
    return samples


# -- start-up ------------------------------------------------------------------------------


def measure_startup(cfg: Config, tmp: Path) -> dict[str, list[Run]]:
    """`constellation version`, the typer floor and `python -c pass`, interleaved, after one
    warm-up run of each (bytecode compiled, files in the page cache)."""
    commands = {
        "version": cli(tmp / "startup-data", "version"),
        "typer": python(TYPER_SCRIPT),
        "python": python("pass"),
    }
    samples: dict[str, list[Run]] = {name: [] for name in commands}
    for number in range(cfg.startup_runs + 1):
        for name, argv in commands.items():
            run = run_process(argv, tmp)
            if number:
                samples[name].append(run)
    expect(samples["version"][0].stdout.strip() != "", "version printed nothing")
    return samples


# -- report --------------------------------------------------------------------------------

Check = Callable[[float], bool]


@dataclass(frozen=True)
class Figure:
    key: str
    label: str
    unit: str
    project: str  # sample name
    baseline: str  # sample name of its floor
    measure: str  # "seconds", "ms" or "peak_rss_mb"
    target: str | None = None
    check: Check | None = None
    scales: bool = True  # depends on the object count: not judged in --quick


PARSE = "parse"
FIGURES = (
    Figure(
        "apply_seconds",
        "apply -f N objects, wall",
        "s",
        "apply",
        PARSE,
        "seconds",
        "< 3 s (1,000 objects)",
        lambda s: s < 3.0,
    ),
    Figure(
        "apply_peak_rss_mb", "apply -f N objects, peak RSS", "MB", "apply", PARSE, "peak_rss_mb"
    ),
    Figure("reapply_seconds", "re-apply (all unchanged), wall", "s", "reapply", PARSE, "seconds"),
    Figure("get_table_seconds", "get instances (table), wall", "s", "get_table", PARSE, "seconds"),
    Figure(
        "get_table_peak_rss_mb",
        "get instances (table), peak RSS",
        "MB",
        "get_table",
        PARSE,
        "peak_rss_mb",
    ),
    Figure("get_json_seconds", "get instances -o json, wall", "s", "get_json", PARSE, "seconds"),
    Figure(
        "get_json_peak_rss_mb",
        "get instances -o json, peak RSS",
        "MB",
        "get_json",
        PARSE,
        "peak_rss_mb",
    ),
    Figure(
        "version_ms",
        "constellation version, median",
        "ms",
        "version",
        "typer",
        "ms",
        "< 150 ms",
        lambda ms: ms < 150,
        scales=False,
    ),
    Figure("typer_floor_ms", "typer floor (1-command app), median", "ms", "typer", "python", "ms"),
)
BASELINES = {
    "parse": "subprocess parsing the same file with ruamel.yaml YAML(typ='safe')",
    "typer": "python -c: a typer app with one command",
    "python": "python -c pass",
}


def sample_value(run: Run, measure: str) -> float:
    if measure == "ms":
        return run.seconds * 1000
    return float(getattr(run, measure))


def median(samples: dict[str, list[Run]], name: str, measure: str) -> float | None:
    runs = samples.get(name)
    return statistics.median(sample_value(r, measure) for r in runs) if runs else None


def figure_entry(figure: Figure, samples: dict[str, list[Run]], cfg: Config) -> dict[str, Any]:
    value = median(samples, figure.project, figure.measure)
    floor = median(samples, figure.baseline, figure.measure)
    met = None
    if figure.check is not None and value is not None and not (cfg.quick and figure.scales):
        met = figure.check(value)
    return {
        "label": figure.label.replace("N objects", f"{cfg.instances + cfg.services:,} objects"),
        "unit": figure.unit,
        "better": "lower",
        "constellation": rounded(value),
        "baseline": rounded(floor),
        "baseline_is": BASELINES[figure.baseline],
        "ratio": rounded(value / floor if value is not None and floor else None),
        "target": figure.target,
        "met": met,
    }


def sample_details(samples: dict[str, list[Run]]) -> dict[str, Any]:
    """Every sample, so a reader can see the spread behind each median."""
    return {
        name: {
            "seconds": [round(r.seconds, 4) for r in runs],
            "peak_rss_mb": [round(r.peak_rss_mb, 1) for r in runs],
        }
        for name, runs in samples.items()
    }


def build_report(
    cfg: Config, samples: dict[str, list[Run]], details: dict[str, Any], errors: dict[str, str]
) -> dict[str, Any]:
    return {
        "benchmark": "cli",
        "ratio": "constellation / floor",
        "config": asdict(cfg),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "loadavg_at_end": [round(x, 2) for x in os.getloadavg()],
        },
        "peak_rss_method": "ru_maxrss of os.wait4() for that one child process",
        "figures": {f.key: figure_entry(f, samples, cfg) for f in FIGURES},
        "details": details | {"samples": sample_details(samples)},
        "errors": errors,
    }


def render_table(report: dict[str, Any]) -> str:
    notes = [f"floor {name}: {what}" for name, what in BASELINES.items()]
    notes.append(f"peak RSS: {report['peak_rss_method']}")
    headers = ("constellation", "floor", "ratio", "target")
    return table(report, headers, ("constellation", "baseline", "ratio", "target"), notes)


# -- entry points --------------------------------------------------------------------------


def run(cfg: Config) -> dict[str, Any]:
    samples: dict[str, list[Run]] = {}
    errors: dict[str, str] = {}
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bench-cli-") as name:
        tmp = Path(name)
        for part, measure in (("startup", measure_startup), ("apply_get", measure_rounds)):
            print(f"bench cli: {part} ...", file=sys.stderr, flush=True)
            try:
                samples |= measure(cfg, tmp)
            except Exception as error:
                traceback.print_exc()
                errors[part] = f"{type(error).__name__}: {error}"
    details = {"wall_seconds": round(time.monotonic() - started, 1)}
    return build_report(cfg, samples, details, errors)


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    return base_parser(__doc__, DEFAULT_OUTPUT).parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    report = run(QUICK if args.quick else FULL)
    return publish(report, args.output, render_table(report))


if __name__ == "__main__":
    sys.exit(main())
