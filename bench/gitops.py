"""GitOps benchmark: a folder of 1,000 manifests, first sync, a one-file change, and latency.

    .venv/bin/python bench/gitops.py [--quick] [--output PATH]

Everything runs the real console script on a fresh embedded store in a temp dir, against
`constellation apply -f` of the same folder (the same objects, applied by hand) as the floor:

- first sync: `gitops sync DIR --once` of N manifest files (one Instance each), wall time,
  against `apply -f DIR` of the same files into another fresh store;
- one-file change: one file edited, then `gitops sync DIR --once` again (every file read,
  1 object configured, N - 1 unchanged), against `apply -f DIR` doing the same;
- write -> applied: `gitops sync DIR` runs in the background on the N files; the benchmark
  edits one file at a time and times from just before the write to the moment its own store
  watch sees the new spec (target: p50 < 500 ms, p99 < 1 s); the floor is `apply -f FILE`
  of the same one-file change, from spawn to the watch seeing it. Also the background sync's
  RSS once it is idle.

JSON goes to stdout and bench/results/gitops.json, a table to stderr. `--quick` (50 files,
fewer samples) is a smoke test: the targets are not judged there.
"""

from __future__ import annotations

import argparse
import functools
import os
import platform
import signal
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

from cli import instance_doc
from report import base_parser, publish, rounded, table

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from constellation.apis.instance import Instance  # noqa: E402
from constellation.client.client import Client, WatchEventType  # noqa: E402
from constellation.store import default_url, open_store  # noqa: E402

DEFAULT_OUTPUT = ROOT / "bench" / "results" / "gitops.json"
CONSTELLATION = Path(sys.executable).parent / "constellation"
MB = 1_000_000


@dataclass(frozen=True)
class Config:
    quick: bool
    files: int
    runs: int  # first sync / change rounds, each on fresh data dirs
    latency_samples: int


FULL = Config(quick=False, files=1_000, runs=3, latency_samples=40)
QUICK = Config(quick=True, files=50, runs=1, latency_samples=5)


def cli(data_dir: Path, *args: str) -> list[str]:
    return [str(CONSTELLATION), "--data-dir", str(data_dir), *args]


def timed(argv: list[str]) -> float:
    started = time.perf_counter()
    result = subprocess.run(argv, capture_output=True, text=True, timeout=600)
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[3:6])}... exited {result.returncode}: {result.stderr}")
    return seconds


def write_folder(folder: Path, count: int) -> None:
    folder.mkdir()
    for number in range(count):
        (folder / f"app-{number:04d}.yaml").write_text(instance_doc(number))


def changed_doc(number: int, replicas: int) -> str:
    """app-NNNN's manifest with `replicas` instead of its own count (1 to 4)."""
    text = instance_doc(number)
    original = f"  replicas: {1 + number % 4}\n"
    assert original in text
    return text.replace(original, f"  replicas: {replicas}\n")


def edit(folder: Path, number: int, replicas: int) -> str:
    """Change one file of the folder; returns the name of its object."""
    (folder / f"app-{number:04d}.yaml").write_text(changed_doc(number, replicas))
    return f"app-{number:04d}"


# -- first sync and one-file change ------------------------------------------------------------


def measure_rounds(cfg: Config, tmp: Path) -> dict[str, list[float]]:
    samples: dict[str, list[float]] = {}
    for number in range(cfg.runs):
        print(f"bench gitops: round {number + 1}/{cfg.runs} ...", file=sys.stderr, flush=True)
        folder = tmp / f"round-{number}"
        write_folder(folder, cfg.files)
        synced, applied = tmp / f"gitops-data-{number}", tmp / f"apply-data-{number}"
        once = ("gitops", "sync", str(folder), "--name", "bench", "--once")
        for name, argv in (
            ("first_sync", cli(synced, *once)),
            ("first_apply", cli(applied, "apply", "-f", str(folder))),
        ):
            samples.setdefault(name, []).append(timed(argv))
        edit(folder, 7, 9)
        for name, argv in (
            ("change_sync", cli(synced, *once)),
            ("change_apply", cli(applied, "apply", "-f", str(folder))),
        ):
            samples.setdefault(name, []).append(timed(argv))
        check_applied(synced, cfg.files)
    return samples


def check_applied(data_dir: Path, count: int) -> None:
    store = open_store(default_url(data_dir))
    try:
        found, _ = Client(store).list(Instance)
        assert len(found) == count, f"{len(found)} instances, not {count}"
        changed = next(obj for obj in found if obj.metadata.name == "app-0007")
        assert changed.spec.replicas == 9, "the one-file change was not applied"
    finally:
        store.close()


# -- write -> applied ------------------------------------------------------------------------


def measure_latency(cfg: Config, tmp: Path) -> tuple[dict[str, list[float]], dict[str, Any]]:
    folder, data_dir = tmp / "latency", tmp / "latency-data"
    write_folder(folder, cfg.files)
    log = (tmp / "sync.log").open("w")
    process = subprocess.Popen(
        cli(data_dir, "gitops", "sync", str(folder), "--interval", "600"), stdout=log, stderr=log
    )
    try:
        store = open_store(default_url(data_dir))
        client = Client(store)
        wait_until(lambda: len(client.list(Instance)[0]) == cfg.files, 300)
        time.sleep(1.0)  # idle: the first sync's watch echoes are over
        rss = rss_mb(process.pid)
        sync_ms, apply_ms = [], []
        for sample in range(cfg.latency_samples):
            number = (sample * 37) % cfg.files
            replicas = 5 + sample % 3  # never a file's own count (1 to 4): always a change
            by_sync = functools.partial(edit, folder, number, replicas)
            sync_ms.append(1000 * time_to_applied(client, by_sync))
            time.sleep(0.3)
            by_hand = functools.partial(apply_file, data_dir, tmp / "by-hand.yaml", number)
            apply_ms.append(1000 * time_to_applied(client, by_hand))
            time.sleep(0.3)  # the sync restores the file's own spec from the folder
        store.close()
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
        log.close()
    return {"sync_latency": sync_ms, "apply_latency": apply_ms}, {"sync_idle_rss_mb": rss}


def apply_file(data_dir: Path, path: Path, number: int) -> str:
    """`apply -f` of one changed manifest, by hand: the floor of a one-file change."""
    path.write_text(changed_doc(number, 20))
    subprocess.run(cli(data_dir, "apply", "-f", str(path)), check=True, capture_output=True)
    return f"app-{number:04d}"


def time_to_applied(client: Client, change: Callable[[], str]) -> float:
    """Seconds from just before `change()` to our watch seeing that object's spec change."""
    _, revision = client.list(Instance)
    with client.watch(Instance, resource_version=revision) as watch:
        started = time.perf_counter()
        name = change()
        deadline = started + 30
        while time.perf_counter() < deadline:
            event = watch.next_event(timeout=1.0)
            if (
                event is not None
                and event.type is WatchEventType.MODIFIED
                and event.object.metadata.name == name
            ):
                return time.perf_counter() - started
    raise RuntimeError(f"{name}: change not applied within 30 s")


def wait_until(check: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"not within {timeout} s")
        time.sleep(0.1)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024 / MB
    raise RuntimeError("no VmRSS")


# -- report --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Figure:
    key: str
    label: str
    unit: str
    project: str
    baseline: str
    statistic: Callable[[list[float]], float]
    target: str | None = None
    check: Callable[[float], bool] | None = None


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


median = statistics.median
FIGURES = (
    Figure(
        "first_sync_seconds",
        "first sync of N files, wall",
        "s",
        "first_sync",
        "first_apply",
        median,
    ),
    Figure(
        "change_sync_seconds",
        "one-file change, --once, wall",
        "s",
        "change_sync",
        "change_apply",
        median,
    ),
    Figure(
        "latency_p50_ms",
        "write -> applied, p50",
        "ms",
        "sync_latency",
        "apply_latency",
        median,
        "< 500 ms",
        lambda ms: ms < 500,
    ),
    Figure(
        "latency_p99_ms",
        "write -> applied, p99",
        "ms",
        "sync_latency",
        "apply_latency",
        lambda v: percentile(v, 0.99),
        "< 1,000 ms",
        lambda ms: ms < 1000,
    ),
)
BASELINES = {
    "first_apply": "constellation apply -f DIR of the same files, fresh store",
    "change_apply": "constellation apply -f DIR after the same one-file change",
    "apply_latency": "constellation apply -f FILE of a one-file change, spawn to watch event",
}


def figure_entry(figure: Figure, samples: dict[str, list[float]], cfg: Config) -> dict[str, Any]:
    values, floors = samples.get(figure.project), samples.get(figure.baseline)
    value = figure.statistic(values) if values else None
    floor = figure.statistic(floors) if floors else None
    met = None
    if figure.check is not None and value is not None and not cfg.quick:
        met = figure.check(value)
    return {
        "label": figure.label.replace("N files", f"{cfg.files:,} files"),
        "unit": figure.unit,
        "better": "lower",
        "constellation": rounded(value),
        "baseline": rounded(floor),
        "baseline_is": BASELINES[figure.baseline],
        "ratio": rounded(value / floor if value is not None and floor else None),
        "target": figure.target,
        "met": met,
    }


def run(cfg: Config) -> dict[str, Any]:
    samples: dict[str, list[float]] = {}
    details: dict[str, Any] = {}
    errors: dict[str, str] = {}
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bench-gitops-") as name:
        tmp = Path(name)
        try:
            samples |= measure_rounds(cfg, tmp)
        except Exception as error:
            traceback.print_exc()
            errors["rounds"] = f"{type(error).__name__}: {error}"
        print("bench gitops: write -> applied ...", file=sys.stderr, flush=True)
        try:
            latency, extra = measure_latency(cfg, tmp)
            samples |= latency
            details |= extra
        except Exception as error:
            traceback.print_exc()
            errors["latency"] = f"{type(error).__name__}: {error}"
    details["wall_seconds"] = round(time.monotonic() - started, 1)
    details["samples"] = {k: [round(v, 4) for v in values] for k, values in samples.items()}
    return {
        "benchmark": "gitops",
        "ratio": "constellation / floor",
        "config": asdict(cfg),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "loadavg_at_end": [round(x, 2) for x in os.getloadavg()],
        },
        "figures": {f.key: figure_entry(f, samples, cfg) for f in FIGURES},
        "details": details,
        "errors": errors,
    }


def render_table(report: dict[str, Any]) -> str:
    notes = [f"floor {name}: {what}" for name, what in BASELINES.items()]
    rss = report["details"].get("sync_idle_rss_mb")
    if rss is not None:
        notes.append(f"gitops sync RSS when idle: {rss:.1f} MB")
    headers = ("constellation", "floor", "ratio", "target")
    return table(report, headers, ("constellation", "baseline", "ratio", "target"), notes)


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    return base_parser(__doc__, DEFAULT_OUTPUT).parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    report = run(QUICK if args.quick else FULL)
    return publish(report, args.output, render_table(report))


if __name__ == "__main__":
    sys.exit(main())
