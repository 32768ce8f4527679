"""Scheduler benchmark: placements per second, and the controller manager end to end.

    .venv/bin/python bench/scheduler.py [--quick] [--output PATH]

1. Placements/s: N Node objects (100, then 1,000) and 10,000 unbound Replicas (100
   Instances of 100) on the embedded SQLite store; then the Scheduler, reading through real
   informers, reconciles every replica key once and binds them all. The time is split into
   the lister read (the informer's cached object, not a copy), the decision proper (filter,
   score, bookkeeping), the bind (the CAS store write) and handing the Scheduled event over,
   so the figure says where it goes. The events are written by a background thread while
   binds go on (held back at most 5 s); `events_written_after_s` says when the last was.
2. The manager (every default controller, in a child process, against the same kind of
   store, 1,000 nodes with live heartbeats): time from creating an Instance with
   `replicas: 1000` to all 1,000 replicas bound; then, once idle, its CPU (% of one core
   over 10 s) and RSS.

The published anchor is kube-scheduler's ~100 pods/s at 5,000 nodes (Kubernetes
scalability SLOs); these machines are shared and noisy, so the ratio to it is given too.
JSON goes to stdout and bench/results/scheduler.json, a table to stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from report import base_parser, idle_cpu_percent, publish, rounded, table

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from constellation.apis.event import Event  # noqa: E402
from constellation.apis.instance import Instance  # noqa: E402
from constellation.apis.meta import Resource  # noqa: E402
from constellation.apis.node import Node, heartbeat_key  # noqa: E402
from constellation.apis.replica import Replica  # noqa: E402
from constellation.client.client import Client  # noqa: E402
from constellation.controllers.base import ControllerContext, Lister  # noqa: E402
from constellation.controllers.events import StoreEventRecorder  # noqa: E402
from constellation.controllers.informer import Informer  # noqa: E402
from constellation.controllers.scheduler import Scheduler  # noqa: E402
from constellation.controllers.sharing import TemplateSharing  # noqa: E402
from constellation.store import Store, open_store  # noqa: E402

DEFAULT_OUTPUT = ROOT / "bench" / "results" / "scheduler.json"
KUBE_SCHEDULER_PODS_PER_S = 100.0  # published, at 5,000 nodes
HEARTBEAT_TTL = 10


@dataclass(frozen=True)
class Config:
    quick: bool
    node_counts: tuple[int, ...]
    replicas: int
    instances: int
    manager_nodes: int
    manager_replicas: int
    idle_seconds: float
    bind_timeout: float


FULL = Config(False, (100, 1_000), 10_000, 100, 1_000, 1_000, 10.0, 120.0)
QUICK = Config(True, (20, 100), 600, 6, 100, 100, 2.0, 60.0)


# -- objects -------------------------------------------------------------------------------


def node_object(name: str, lease: int | None = None) -> Node:
    return Node.model_validate(
        {
            "metadata": {"name": name, "labels": {"zone": f"z{hash(name) % 3}"}},
            "spec": {"leaseId": lease},
            "status": {
                "capacity": {"cpu": "64", "memory": "256Gi", "pids": 100_000},
                "allocatable": {"cpu": "64", "memory": "256Gi", "pids": 100_000},
                "conditions": [{"type": "Ready", "status": "True"}],
            },
        }
    )


def create_nodes(client: Client, count: int, lease: int | None = None) -> None:
    for index in range(count):
        name = f"node-{index:04d}"
        if lease is not None:
            client.store.create(heartbeat_key(name), name.encode(), lease=lease)
        node = client.create(node_object(name, lease))
        node.status = node_object(name).status
        client.update_status(node)


def instance_object(name: str, replicas: int, strategy: str = "Spread") -> Instance:
    return Instance.model_validate(
        {
            "metadata": {"name": name},
            "spec": {
                "command": ["sleep", "infinity"],
                "replicas": replicas,
                "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}},
                "placement": {"strategy": strategy},
            },
        }
    )


def create_replicas(client: Client, replicas: int, instances: int) -> None:
    """Instances and their unbound replicas, as the replicas controller writes them (half
    the Instances spread, half bin-pack)."""
    per = replicas // instances
    for i in range(instances):
        strategy = "BinPack" if i % 2 else "Spread"
        instance = client.create(instance_object(f"app{i:03d}", per, strategy))
        template = instance.spec.template().model_dump()
        for ordinal in range(per):
            client.create(replica_object(instance, ordinal, template))


def replica_object(instance: Instance, ordinal: int, template: dict[str, Any]) -> Replica:
    name = instance.metadata.name
    return Replica.model_validate(
        {
            "metadata": {"name": f"{name}-{ordinal}"},
            "spec": {
                "instanceName": name,
                "ordinal": ordinal,
                "template": template,
                "templateHash": f"h-{name}",
            },
        }
    )


# -- 1. placements/s -----------------------------------------------------------------------


@contextlib.contextmanager
def informers(client: Client, kinds: Sequence[type[Resource]]) -> Iterator[dict[Any, Any]]:
    """Informers as the manager makes them (cached replicas share their template)."""
    started = {
        kind: Informer(client, kind, transform=TemplateSharing() if kind is Replica else None)
        for kind in kinds
    }
    try:
        yield started
    finally:
        for informer in started.values():
            informer.stop()


def placements(cfg: Config, nodes: int, root: Path) -> dict[str, float]:
    store = open_store(f"sqlite://{root / f'placements-{nodes}.db'}?synchronous=normal")
    try:
        client = Client(store)
        create_nodes(client, nodes)
        create_replicas(client, cfg.replicas, cfg.instances)
        return time_placements(client, cfg.replicas)
    finally:
        store.close()


def time_placements(client: Client, expected: int) -> dict[str, float]:
    with informers(client, (Node, Replica, Instance)) as cache:
        listers: dict[type[Resource], Lister[Resource]] = dict(cache)
        recorder = StoreEventRecorder(client, "bench")
        scheduler = Scheduler(ControllerContext(client, listers, recorder))
        for kind, mapper in scheduler.watches().items():
            # What the runner does with a mapper, minus the queue: the keys are driven below.
            cache[kind].add_handler(lambda obj, _deleted, m=mapper: m(obj))
        for informer in cache.values():
            informer.start()
            assert informer.wait_for_sync(60)
        keys = sorted(cache[Replica].keys())
        started = time.perf_counter()
        for key in keys:
            scheduler.reconcile(key)
        elapsed = time.perf_counter() - started
        assert scheduler.events.flush(120)
        events_done = time.perf_counter() - started
    bound = sum(1 for r in client.list(Replica)[0] if r.spec.nodeName)
    if bound != expected:
        raise RuntimeError(f"bound {bound} of {expected} replicas")
    t = scheduler.timings
    per = 1e6 / max(1, t.placements)
    return {
        "placements_per_s": t.placements / elapsed,
        "seconds": elapsed,
        "lister_read_us": t.read_seconds * per,
        "decide_us": t.decide_seconds * per,
        "bind_write_us": t.bind_seconds * per,
        "event_handoff_us": t.event_seconds * per,
        "events_written_after_s": events_done,
        "events_dropped": float(scheduler.events.dropped),
        "decisions_per_s": t.placements / max(t.decide_seconds, 1e-9),
    }


# -- 2. the manager ------------------------------------------------------------------------


def manager_figures(cfg: Config, root: Path) -> dict[str, float]:
    url = f"sqlite://{root / 'manager.db'}?synchronous=normal"
    store = open_store(url)
    client = Client(store)
    lease = store.grant_lease(HEARTBEAT_TTL)
    stop = threading.Event()
    beat = threading.Thread(target=keep_alive, args=(store, lease, stop), daemon=True)
    beat.start()
    child = None
    try:
        create_nodes(client, cfg.manager_nodes, lease)
        child = start_manager(url)
        started = time.monotonic()
        client.create(instance_object("web", cfg.manager_replicas))
        bind_seconds = wait_bound(client, cfg.manager_replicas, started, cfg.bind_timeout)
        time.sleep(3.0)  # let status writes and event merges settle: idle means idle
        cpu, rss = idle_usage(child.pid, cfg.idle_seconds)
        objects = sum(len(client.list(kind)[0]) for kind in (Node, Replica, Instance, Event))
        return {
            "bind_seconds": bind_seconds,
            "idle_cpu_percent": cpu,
            "rss_mb": rss,
            "objects": float(objects),
        }
    finally:
        stop.set()
        if child is not None:
            child.terminate()
            child.wait(30)
        store.close()


def keep_alive(store: Store, lease: int, stop: threading.Event) -> None:
    """The agents' heartbeats: one lease for every simulated node, renewed like an agent's."""
    while not stop.wait(HEARTBEAT_TTL / 4):
        with contextlib.suppress(Exception):
            store.keepalive(lease)


def start_manager(url: str) -> subprocess.Popen[str]:
    child = subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve()), "_manager", url],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    assert child.stdout is not None
    line = child.stdout.readline()  # bounded: the child gives up after 30 s
    if line.strip() != "ready":
        child.kill()
        raise RuntimeError(f"manager did not start: {line!r}")
    return child


def wait_bound(client: Client, count: int, started: float, timeout: float) -> float:
    while time.monotonic() - started < timeout:
        replicas = client.list(Replica)[0]
        if len(replicas) == count and all(r.spec.nodeName for r in replicas):
            return time.monotonic() - started
        time.sleep(0.1)
    raise RuntimeError(f"{count} replicas not all bound within {timeout}s")


def idle_usage(pid: int, seconds: float) -> tuple[float, float]:
    """CPU as % of one core over `seconds`, and RSS in MB, from /proc."""
    cpu = idle_cpu_percent(pid, seconds)
    status = Path(f"/proc/{pid}/status").read_text()
    rss_kb = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS"))
    return cpu, rss_kb / 1000


def manager_child(url: str) -> int:
    """The manager process: every default controller; says "ready" once it leads."""
    from constellation.controllers.manager import ControllerManager

    store = open_store(url)
    manager = ControllerManager(store)
    thread = threading.Thread(target=manager.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not (manager.is_leader and manager.controllers) and time.monotonic() < deadline:
        time.sleep(0.05)
    print("ready" if manager.is_leader else "not leading", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        while thread.is_alive():
            thread.join(0.5)
    return 0


# -- report --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Figure:
    key: str
    label: str
    unit: str
    higher_is_better: bool
    target: float | None
    anchor: float | None = None  # the published figure the ratio is taken against


def figures(cfg: Config) -> list[Figure]:
    out = [
        Figure(
            f"placements_per_s_{n}_nodes",
            f"placements/s, {n:,} nodes, {cfg.replicas:,} replicas",
            "1/s",
            True,
            1000.0,
            KUBE_SCHEDULER_PODS_PER_S,
        )
        for n in cfg.node_counts
    ]
    return [
        *out,
        Figure(
            "manager_bind_seconds",
            f"Instance create -> {cfg.manager_replicas:,} bound",
            "s",
            False,
            None,
        ),
        Figure("manager_idle_cpu_percent", "manager idle CPU", "% core", False, 1.0),
        Figure("manager_rss_mb", "manager RSS, idle", "MB", False, 80.0),
    ]


def entry(figure: Figure, value: float | None) -> dict[str, Any]:
    met = None
    if value is not None and figure.target is not None:
        met = value >= figure.target if figure.higher_is_better else value < figure.target
    ratio = value / figure.anchor if value is not None and figure.anchor else None
    return {
        "label": figure.label,
        "unit": figure.unit,
        "better": "higher" if figure.higher_is_better else "lower",
        "constellation": rounded(value),
        "anchor": figure.anchor,
        "anchor_is": "kube-scheduler, published, 5,000 nodes" if figure.anchor else None,
        "ratio": rounded(ratio),
        "target": figure.target,
        "met": met,
    }


def render_table(report: dict[str, Any]) -> str:
    details = [f"{name}: {json.dumps(d)}" for name, d in report["details"].items()]
    headers = ("value", "vs anchor", "target")
    return table(report, headers, ("constellation", "ratio", "target"), details)


def where_time_goes(detail: dict[str, float]) -> str:
    keys = ("lister_read_us", "decide_us", "bind_write_us", "event_handoff_us")
    parts = {k: detail[k] for k in keys}
    return max(parts, key=parts.__getitem__).removesuffix("_us")


# -- entry points --------------------------------------------------------------------------


def run(cfg: Config) -> dict[str, Any]:
    values: dict[str, float] = {}
    details: dict[str, dict[str, Any]] = {}
    errors: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="bench-scheduler-") as tmp:
        root = Path(tmp)
        for n in cfg.node_counts:
            name = f"placements_{n}_nodes"
            if measured := attempt(name, errors, lambda n=n: placements(cfg, n, root)):
                values[f"placements_per_s_{n}_nodes"] = measured["placements_per_s"]
                details[name] = {k: rounded(v) for k, v in measured.items()}
                details[name]["time_mostly_in"] = where_time_goes(measured)
        if manager := attempt("manager", errors, lambda: manager_figures(cfg, root)):
            values.update({f"manager_{k}": v for k, v in manager.items()})
            details["manager"] = {k: rounded(v) for k, v in manager.items()}
    return {
        "benchmark": "scheduler",
        "ratio": "constellation / kube-scheduler's published placements/s",
        "config": asdict(cfg),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "loadavg_at_end": [round(x, 2) for x in os.getloadavg()],
        },
        "figures": {f.key: entry(f, values.get(f.key)) for f in figures(cfg)},
        "details": details,
        "errors": errors,
    }


def attempt(name: str, errors: dict[str, str], work: Any) -> dict[str, float] | None:
    print(f"bench scheduler: {name} ...", file=sys.stderr, flush=True)
    try:
        result: dict[str, float] = work()
    except Exception as error:
        traceback.print_exc()
        errors[name] = f"{type(error).__name__}: {error}"
        return None
    return result


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    return base_parser(__doc__, DEFAULT_OUTPUT).parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "_manager":
        return manager_child(argv[1])
    args = parse_args(argv)
    report = run(QUICK if args.quick else FULL)
    return publish(report, args.output, render_table(report))


if __name__ == "__main__":
    sys.exit(main())
