"""Store benchmark: the embedded SQLite backend against a real etcd server, in one run.

    .venv/bin/python bench/store.py [--quick] [--only sqlite|etcd] [--output PATH]

For each backend it measures compare-and-swap put rates (1 and 8 threads), the time to list
10,000 keys, watch delivery latency (same process and across processes) and the database size
after churn. It prints JSON to stdout (also written to bench/results/store.json) and a table
to stderr. Each figure carries both values, the ratio sqlite / etcd, the target and whether it
was met: these machines are shared and noisy, so the ratio matters more than absolute times.

SQLite runs on a temp file with synchronous=NORMAL; etcd is a real server started on free
loopback ports in a temp dir (tests/etcd_server.py) and stopped afterwards.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TypeVar

from report import base_parser, publish, rounded, table

from constellation.store import Record, Store, Watch, open_store

T = TypeVar("T")

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUTPUT = ROOT / "bench" / "results" / "store.json"
BACKENDS = ("sqlite", "etcd")
KEYS = 1_000
THREADS = 8
VALUE_SIZE = 100
WATCH_WARMUP = 10  # first deliveries dropped: connection and thread start-up, not latency
ETCD_RETAIN = 10_000  # revisions etcd keeps in the churn, as SQLite's default `retain`
MB = 1_000_000


@dataclass(frozen=True)
class Config:
    quick: bool
    put_seconds: float  # per put figure
    list_keys: int
    list_runs: int
    watch_samples: int  # per watch figure, after the warm-up
    watch_interval: float  # seconds between paced writes
    churn_updates: int
    churn_seconds: dict[str, float]  # per backend: stop early (and say so) past this budget


FULL = Config(
    quick=False,
    put_seconds=2.5,
    list_keys=10_000,
    list_runs=7,
    watch_samples=1_000,
    watch_interval=0.003,
    churn_updates=1_000_000,
    churn_seconds={"sqlite": 150.0, "etcd": 75.0},
)
QUICK = Config(
    quick=True,
    put_seconds=0.4,
    list_keys=10_000,
    list_runs=3,
    watch_samples=150,
    watch_interval=0.002,
    churn_updates=20_000,
    churn_seconds={"sqlite": 5.0, "etcd": 3.0},
)


# -- backends ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Backend:
    name: str
    url: str
    db_size: Callable[[], int]  # bytes on disk
    describe: Callable[[], dict[str, Any]]  # what the backend itself says about its size
    user_compacts: bool  # etcd compacts only when asked; SQLite compacts on its own


def _file_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


@contextlib.contextmanager
def sqlite_backend(root: Path) -> Iterator[Backend]:
    path = root / "state.db"
    wal = Path(f"{path}-wal")

    def describe() -> dict[str, Any]:
        return {"db_bytes": _file_size(path), "wal_bytes": _file_size(wal), **_sqlite_pages(path)}

    yield Backend(
        name="sqlite",
        url=f"sqlite://{path}?synchronous=normal",
        db_size=lambda: _file_size(path) + _file_size(wal),
        describe=describe,
        user_compacts=False,
    )


def _sqlite_pages(path: Path) -> dict[str, int]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        free = conn.execute("PRAGMA freelist_count").fetchone()[0]
        rows = conn.execute("SELECT count(*) FROM log").fetchone()[0]
    finally:
        conn.close()
    return {"page_count": pages, "freelist_pages": free, "log_rows": rows}


@contextlib.contextmanager
def etcd_backend(root: Path) -> Iterator[Backend]:
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from tests.etcd_server import EtcdServer

    root.mkdir(parents=True, exist_ok=True)
    with EtcdServer(root) as server:
        db = server.data_dir / "member" / "snap" / "db"

        def describe() -> dict[str, Any]:
            status = json.loads(server.etcdctl("endpoint", "status", "-w", "json"))[0]
            fields = ("version", "dbSize", "dbSizeInUse")
            return {name: status["Status"].get(name) for name in fields}

        yield Backend("etcd", server.url, lambda: _file_size(db), describe, user_compacts=True)


BACKEND_FACTORIES: dict[str, Callable[[Path], contextlib.AbstractContextManager[Backend]]] = {
    "sqlite": sqlite_backend,
    "etcd": etcd_backend,
}


# -- helpers -------------------------------------------------------------------------------


def payload(tag: str = "") -> bytes:
    return tag.encode().ljust(VALUE_SIZE, b".")


def stamp() -> bytes:
    """A value carrying the system-wide monotonic time it was written at."""
    return payload(f"{time.monotonic():.9f} ")


def run_threads(work: Callable[[int], T], count: int) -> tuple[list[T], float]:
    """Run `work(i)` on `count` threads released together; results and wall seconds."""
    barrier = threading.Barrier(count + 1)

    def task(index: int) -> T:
        barrier.wait()
        return work(index)

    with ThreadPoolExecutor(count) as pool:
        futures = [pool.submit(task, i) for i in range(count)]
        barrier.wait()
        start = time.perf_counter()
        results = [future.result() for future in futures]
    return results, time.perf_counter() - start


def create_keys(store: Store, prefix: str, count: int) -> list[Record]:
    """`count` keys with ~100-byte values, created on THREADS threads; in key order."""

    def create(part: int) -> list[Record]:
        return [store.create(f"{prefix}{i:06d}", payload()) for i in range(part, count, THREADS)]

    parts, _ = run_threads(create, THREADS)
    return sorted((record for part in parts for record in part), key=lambda r: r.key)


def update_loop(store: Store, revisions: dict[str, int], stop: Callable[[int], bool]) -> int:
    """Compare-and-swap updates round-robin over the keys of `revisions` (key -> mod_revision,
    kept current) until `stop(done)`; returns how many were done."""
    keys = list(revisions)
    value = payload("update")
    done = 0
    while not stop(done):
        key = keys[done % len(keys)]
        revisions[key] = store.update(key, value, revisions[key]).mod_revision
        done += 1
    return done


def shards(records: Sequence[Record], count: int) -> list[dict[str, int]]:
    """`count` disjoint key -> mod_revision maps, one per writer thread."""
    return [{r.key: r.mod_revision for r in records[i::count]} for i in range(count)]


def until(deadline: float, limit: int | None = None) -> Callable[[int], bool]:
    return lambda done: (limit is not None and done >= limit) or time.monotonic() >= deadline


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


# -- figures -------------------------------------------------------------------------------


def measure_puts(store: Store, cfg: Config) -> dict[str, float]:
    (revisions,) = shards(create_keys(store, "/bench/put/", KEYS), 1)
    update_loop(store, revisions, until(time.monotonic() + 0.2))  # warm-up
    start = time.perf_counter()
    single = update_loop(store, revisions, until(time.monotonic() + cfg.put_seconds))
    single_rate = single / (time.perf_counter() - start)
    parts = [dict(list(revisions.items())[i::THREADS]) for i in range(THREADS)]
    deadline = time.monotonic() + cfg.put_seconds
    counts, seconds = run_threads(lambda i: update_loop(store, parts[i], until(deadline)), THREADS)
    return {"put_single_ops_per_s": single_rate, "put_8threads_ops_per_s": sum(counts) / seconds}


def measure_list(store: Store, cfg: Config) -> dict[str, float]:
    prefix = "/bench/list/"
    create_keys(store, prefix, cfg.list_keys)
    timings = []
    for _ in range(cfg.list_runs):
        start = time.perf_counter()
        records, _ = store.list(prefix)
        timings.append(time.perf_counter() - start)
        if len(records) != cfg.list_keys:
            raise RuntimeError(f"listed {len(records)} keys, expected {cfg.list_keys}")
    return {
        "list_10k_best_ms": min(timings) * 1000,
        "list_10k_median_ms": statistics.median(timings) * 1000,
    }


def paced_writer(store: Store, key: str, count: int, interval: float) -> None:
    """`count` stamped writes to `key` (a create, then updates), at least `interval` apart."""
    record: Record | None = None
    for _ in range(count):
        started = time.monotonic()
        if record is None:
            record = store.create(key, stamp())
        else:
            record = store.update(key, stamp(), record.mod_revision)
        time.sleep(max(0.0, started + interval - time.monotonic()))


def collect_latencies(watch: Watch, count: int) -> list[float]:
    """Milliseconds from each write's stamp to its event's arrival, for `count` events."""
    latencies: list[float] = []
    while len(latencies) < count:
        event = watch.next_event(timeout=30)
        if event is None:
            raise RuntimeError(f"watch stalled after {len(latencies)} of {count} events")
        sent = float(event.record.value.split(b" ", 1)[0])
        latencies.append((time.monotonic() - sent) * 1000)
    return latencies


def latency_figures(name: str, latencies: list[float]) -> dict[str, float]:
    samples = latencies[WATCH_WARMUP:]
    return {f"{name}_p50_ms": percentile(samples, 50), f"{name}_p99_ms": percentile(samples, 99)}


def measure_watch_local(store: Store, cfg: Config) -> dict[str, float]:
    prefix = "/bench/watch-local/"
    total = cfg.watch_samples + WATCH_WARMUP
    with store.watch(prefix) as watch:
        writer = threading.Thread(
            target=paced_writer, args=(store, f"{prefix}k", total, cfg.watch_interval)
        )
        writer.start()
        try:
            latencies = collect_latencies(watch, total)
        finally:
            writer.join()
    return latency_figures("watch_same_process", latencies)


def spawn_child(*args: str) -> subprocess.Popen[str]:
    command = [sys.executable, str(Path(__file__).resolve()), "_child", *args]
    return subprocess.Popen(command, stdout=subprocess.PIPE, text=True)


def measure_watch_remote(url: str, cfg: Config) -> dict[str, float]:
    prefix = "/bench/watch-remote/"
    total = str(cfg.watch_samples + WATCH_WARMUP)
    watcher = spawn_child("watcher", url, prefix, total)
    try:
        assert watcher.stdout is not None
        if watcher.stdout.readline().strip() != "ready":
            raise RuntimeError(f"watcher process failed (exit {watcher.wait()})")
        writer = spawn_child("writer", url, prefix, total, str(cfg.watch_interval))
        if writer.wait(timeout=300) != 0:
            raise RuntimeError(f"writer process failed (exit {writer.returncode})")
        out, _ = watcher.communicate(timeout=60)
        if watcher.returncode != 0:
            raise RuntimeError(f"watcher process failed (exit {watcher.returncode})")
    finally:
        if watcher.poll() is None:
            watcher.kill()
            watcher.wait()
    return latency_figures("watch_cross_process", json.loads(out))


def measure_churn(backend: Backend, cfg: Config) -> tuple[dict[str, float], dict[str, Any]]:
    store = open_store(backend.url)
    try:
        parts = shards(create_keys(store, "/bench/churn/", KEYS), THREADS)
        peak = SizeSampler(backend.db_size)
        compactor = Compactor(store) if backend.user_compacts else None
        deadline = time.monotonic() + cfg.churn_seconds[backend.name]
        share = cfg.churn_updates // THREADS
        with peak, compactor or contextlib.nullcontext():
            counts, seconds = run_threads(
                lambda i: update_loop(store, parts[i], until(deadline, share)), THREADS
            )
        if compactor is not None:
            compactor.compact_now()
        size = backend.db_size()
        described = backend.describe()
    finally:
        store.close()
    details = {
        "updates": sum(counts),
        "updates_planned": share * THREADS,
        "seconds": round(seconds, 1),
        "updates_per_s": round(sum(counts) / seconds),
        "size_mb_midway": round(peak.midway / MB, 2),
        "peak_size_mb": round(peak.peak / MB, 2),
        **described,
    }
    return {"churn_db_size_mb": size / MB}, details


class SizeSampler:
    """Samples a size in the background: the peak, and the size midway shows whether it is
    bounded (a plateau) or still growing with the churn."""

    def __init__(self, size: Callable[[], int], every: float = 0.25) -> None:
        self._size = size
        self._every = every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.samples: list[int] = []

    @property
    def peak(self) -> int:
        return max(self.samples, default=0)

    @property
    def midway(self) -> int:
        return self.samples[len(self.samples) // 2] if self.samples else 0

    def _run(self) -> None:
        while not self._stop.wait(self._every):
            self.samples.append(self._size())

    def __enter__(self) -> SizeSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.samples.append(self._size())


class Compactor:
    """What an etcd user does: compact to (current - ETCD_RETAIN) every second."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._compacted = 0

    def compact_now(self) -> None:
        target = self._store.current_revision() - ETCD_RETAIN
        if target > self._compacted:
            self._store.compact(target)
            self._compacted = target

    def _run(self) -> None:
        while not self._stop.wait(1.0):
            self.compact_now()

    def __enter__(self) -> Compactor:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def run_backend(name: str, cfg: Config) -> tuple[dict[str, float], dict[str, Any]]:
    """Every figure for one backend; the churn gets a fresh database of its own."""
    factory = BACKEND_FACTORIES[name]
    values: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix=f"bench-store-{name}-") as tmp:
        with factory(Path(tmp) / "perf") as backend:
            store = open_store(backend.url)
            try:
                values |= measure_puts(store, cfg)
                values |= measure_list(store, cfg)
                values |= measure_watch_local(store, cfg)
            finally:
                store.close()
            values |= measure_watch_remote(backend.url, cfg)
        with factory(Path(tmp) / "churn") as backend:
            churn, details = measure_churn(backend, cfg)
    return values | churn, {"churn": details}


# -- report --------------------------------------------------------------------------------

Check = Callable[[float, float | None], bool | None]


@dataclass(frozen=True)
class Figure:
    key: str
    label: str
    unit: str
    higher_is_better: bool
    target: str | None = None
    checks: tuple[Check, ...] = ()


FIGURES = (
    Figure(
        "put_single_ops_per_s",
        "puts/s, 1 thread (CAS, 1,000 keys)",
        "ops/s",
        True,
        ">= 5000/s and >= 50% of etcd",
        (lambda s, e: s >= 5000, lambda s, e: None if e is None else s >= 0.5 * e),
    ),
    Figure("put_8threads_ops_per_s", "puts/s, 8 threads (own keys)", "ops/s", True),
    Figure("list_10k_best_ms", "list 10,000 keys, best", "ms", False),
    Figure("list_10k_median_ms", "list 10,000 keys, median", "ms", False),
    Figure("watch_same_process_p50_ms", "watch latency same process p50", "ms", False),
    Figure("watch_same_process_p99_ms", "watch latency same process p99", "ms", False),
    Figure("watch_cross_process_p50_ms", "watch latency across processes p50", "ms", False),
    Figure(
        "watch_cross_process_p99_ms",
        "watch latency across processes p99",
        "ms",
        False,
        "< 20 ms",
        (lambda s, e: s < 20,),
    ),
    Figure(
        "churn_db_size_mb",
        "DB size after churn",
        "MB",
        False,
        "< 100 MB",
        (lambda s, e: s < 100,),
    ),
)


def judge(figure: Figure, sqlite: float | None, etcd: float | None) -> bool | None:
    """False if any check fails, None if one cannot be judged (a value missing), else True."""
    if sqlite is None or not figure.checks:
        return None
    results = [check(sqlite, etcd) for check in figure.checks]
    if False in results:
        return False
    return None if None in results else True


def figure_entry(figure: Figure, values: dict[str, dict[str, float]]) -> dict[str, Any]:
    sqlite = values.get("sqlite", {}).get(figure.key)
    etcd = values.get("etcd", {}).get(figure.key)
    ratio = sqlite / etcd if sqlite is not None and etcd else None
    return {
        "label": figure.label,
        "unit": figure.unit,
        "better": "higher" if figure.higher_is_better else "lower",
        "sqlite": rounded(sqlite),
        "etcd": rounded(etcd),
        "ratio": rounded(ratio),
        "target": figure.target,
        "met": judge(figure, sqlite, etcd),
    }


def build_report(
    cfg: Config,
    values: dict[str, dict[str, float]],
    details: dict[str, dict[str, Any]],
    errors: dict[str, str],
) -> dict[str, Any]:
    return {
        "benchmark": "store",
        "ratio": "sqlite / etcd",
        "config": asdict(cfg),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "sqlite": sqlite3.sqlite_version,
            "loadavg_at_end": [round(x, 2) for x in os.getloadavg()],
        },
        "figures": {figure.key: figure_entry(figure, values) for figure in FIGURES},
        "details": details,
        "errors": errors,
    }


def render_table(report: dict[str, Any]) -> str:
    details = [f"{name}: {json.dumps(detail)}" for name, detail in report["details"].items()]
    keys = ("sqlite", "etcd", "ratio", "target")
    return table(report, keys, keys, details)


# -- entry points --------------------------------------------------------------------------


def run(cfg: Config, backends: Sequence[str]) -> dict[str, Any]:
    values: dict[str, dict[str, float]] = {}
    details: dict[str, dict[str, Any]] = {}
    errors: dict[str, str] = {}
    for name in backends:
        print(f"bench store: {name} ...", file=sys.stderr, flush=True)
        started = time.monotonic()
        try:
            values[name], details[name] = run_backend(name, cfg)
        except Exception as error:
            traceback.print_exc()
            errors[name] = f"{type(error).__name__}: {error}"
        details.setdefault(name, {})["wall_seconds"] = round(time.monotonic() - started, 1)
    return build_report(cfg, values, details, errors)


def child_main(args: Sequence[str]) -> int:
    """The watcher and writer processes of the cross-process watch figure."""
    role, url, prefix, count = args[:4]
    store = open_store(url)
    try:
        if role == "writer":
            paced_writer(store, f"{prefix}k", int(count), float(args[4]))
            return 0
        with store.watch(prefix) as watch:
            print("ready", flush=True)
            latencies = collect_latencies(watch, int(count))
    finally:
        store.close()
    print(json.dumps(latencies), flush=True)
    return 0


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = base_parser(__doc__, DEFAULT_OUTPUT)
    parser.add_argument("--only", choices=BACKENDS, help="run one backend")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "_child":
        return child_main(argv[1:])
    args = parse_args(argv)
    cfg = QUICK if args.quick else FULL
    report = run(cfg, [args.only] if args.only else BACKENDS)
    return publish(report, args.output, render_table(report))


if __name__ == "__main__":
    sys.exit(main())
