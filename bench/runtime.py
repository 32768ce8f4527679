"""Runtime benchmark: starting replicas, and what running them costs, against baselines.

    .venv/bin/python bench/runtime.py [--quick] [--output PATH]      (as root)

1. Spawn latency, "agent decision to exec": `spawn()` of /bin/true with the agent's defaults
   (pid, mount, uts and ipc namespaces, tini as pid 1 when installed, user nobody, a private
   /tmp) joining a real cgroup, timed in this process, which has the agent's modules loaded
   (fork's cost grows with the parent's memory) and is a child subreaper as the agent is.
   Baselines in the same run, one sample of each in turn: posix_spawn of /bin/true,
   `unshare --pid --mount --uts --ipc --fork /bin/true` and `runc run` of a minimal bundle
   (/bin/true and its two libraries, the same four namespaces), each until it has exited.
2. Apply to Running on a real `constellation server` (embedded store): apply one Instance of
   one `sleep` replica, wait on a store watch (not a poll) for its Replica to be Running,
   delete it and wait until its processes and cgroup are gone; repeated.
3. `constellation controllers` and `constellation agent` as two processes on one store, so
   the agent's figures are its own: one Instance of N `sleep` replicas, apply to all Running.
4. With those N running: the agent's idle CPU and RSS, and resident memory per replica
   outside the workload: the helpers in the replicas' cgroups (tini) and the agent's growth.
5. Everything is deleted and stopped, and the cgroup parent removed.

Every cgroup is made under `constellation-bench-<random>`, which is removed at the end. JSON
goes to stdout and bench/results/runtime.json, a table to stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import itertools
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
import uuid
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psutil
from report import base_parser, cpu_seconds, idle_cpu_percent, publish, rounded, table
from spawn_timing import (
    UNSHARE,
    sample_in_turn,
    summary_ms,
    time_posix_spawn,
    time_spawn,
)

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# The agent's modules, loaded as in a real agent: their memory is what spawn's fork copies.
import constellation.agent.agent  # noqa: E402, F401
from constellation.apis.instance import Instance  # noqa: E402
from constellation.apis.node import Node  # noqa: E402
from constellation.apis.replica import Replica  # noqa: E402
from constellation.client.apply import apply  # noqa: E402
from constellation.client.client import Client, ObjectWatch, WatchEventType  # noqa: E402
from constellation.runtime import linux  # noqa: E402
from constellation.runtime.cgroups import CgroupManager, Limits, detect  # noqa: E402
from constellation.runtime.spawn import DEFAULT_PATH, SpawnSpec, default_init  # noqa: E402
from constellation.runtime.spawner import Spawner  # noqa: E402
from constellation.store import Conflict, NotFound, Store, default_url, open_store  # noqa: E402

DEFAULT_OUTPUT = ROOT / "bench" / "results" / "runtime.json"
CLI = str(Path(sys.executable).parent / "constellation")
RUNC = shutil.which("runc") or "/usr/sbin/runc"
CGROUP_ROOT = Path("/sys/fs/cgroup")
NODE = "bench-node"
KB, MB = 1000, 1000**2
RUNC_EARLIER_MS = 15.5  # DESIGN.md: runc measured on this kind of machine before
KUBERNETES_SLO_MS = 5000.0  # pod start-up SLO, p99 (Kubernetes scalability SLOs)
SHIM_KB = 5000.0  # containerd-shim per container: 5-11 MB; the low end


@dataclass(frozen=True)
class Config:
    quick: bool
    spawn_samples: int  # of each way to start /bin/true
    warmup: int
    apply_samples: int
    apply_warmup: int
    replicas: int
    settle_seconds: float  # after all are Running, before idle is measured
    idle_seconds: float
    timeout: float  # for any one wait


FULL = Config(False, 300, 10, 50, 2, 1000, 3.0, 10.0, 90.0)
QUICK = Config(True, 30, 3, 5, 1, 50, 1.0, 2.0, 30.0)


# -- 1. spawn latency ----------------------------------------------------------------------


def spawn_latency(cfg: Config, work: Path, parent: str) -> dict[str, dict[str, float]]:
    """p50/p99 in ms of each way to start /bin/true, and of creating a replica's cgroup."""
    cgroups = detect(parent)
    cgroup = cgroups.create("spawn", Limits())
    state = work / "runc-state"
    try:
        spec = SpawnSpec(
            argv=["/bin/true"],
            env={"PATH": DEFAULT_PATH},
            hostname="bench-0",
            log_path=str(work / "spawn.log"),
            cgroup_procs=cgroup.procs_files(),
            init=default_init(),
        )
        runc = runc_runner(runc_bundle(work / "bundle", f"/{parent}/runc"), state)
        spawner = Spawner()  # the agent's way: a small process forks the replicas
        samples = sample_in_turn(
            {
                "spawn": lambda: time_spawn(spec, spawner=spawner.spawn),
                "spawn_until_exit": lambda: time_spawn(
                    spec, until_exit=True, spawner=spawner.spawn
                ),
                "spawn_in_agent_process": lambda: time_spawn(spec),
                "posix_spawn": lambda: time_posix_spawn(["/bin/true"]),
                "unshare": lambda: time_posix_spawn(UNSHARE),
                "runc": runc,
            },
            cfg.spawn_samples,
            cfg.warmup,
        )
        samples["cgroup_create"] = sample_in_turn(
            {"cgroup_create": cgroup_creator(cgroups)}, cfg.spawn_samples, cfg.warmup
        )["cgroup_create"]
    finally:
        spawner.close()
        delete_runc_containers(state)
        cgroup.remove()
    return {name: summary_ms(values) for name, values in samples.items()}


def runc_bundle(bundle: Path, cgroups_path: str) -> Path:
    """A bundle whose rootfs holds /bin/true and the libraries it loads, and a config.json
    from `runc spec` that runs it without a terminal in our cgroup parent, with the same four
    namespaces as a replica (pid, mount, uts, ipc: no network namespace)."""
    rootfs = bundle / "rootfs"
    true = os.path.realpath("/bin/true")
    for source, inside in [(true, "/bin/true"), *((lib, lib) for lib in libraries(true))]:
        target = rootfs / inside.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)
    subprocess.run([RUNC, "spec", "--bundle", str(bundle)], check=True, capture_output=True)
    config_path = bundle / "config.json"
    config = json.loads(config_path.read_text())
    config["process"].update(terminal=False, args=["/bin/true"])
    linux_config = config["linux"]
    linux_config["cgroupsPath"] = cgroups_path
    linux_config["namespaces"] = [
        ns for ns in linux_config["namespaces"] if ns["type"] != "network"
    ]
    config_path.write_text(json.dumps(config))
    return bundle


def libraries(binary: str) -> list[str]:
    """The shared libraries `binary` loads (and the loader), as ldd names them."""
    listed = subprocess.run(["ldd", binary], check=True, capture_output=True, text=True).stdout
    paths = [word for line in listed.splitlines() for word in line.split() if word[0] == "/"]
    return list(dict.fromkeys(paths))


def runc_runner(bundle: Path, state: Path) -> Callable[[], float]:
    """Times `runc run` of the bundle until it exits (runc deletes the container then); one
    untimed run first with its output captured, so a broken bundle fails with runc's words."""
    names = (f"bench-{n}" for n in itertools.count())
    command = [RUNC, "--root", str(state), "run", "--bundle", str(bundle)]
    check = subprocess.run(
        [*command, next(names)], capture_output=True, text=True, stdin=subprocess.DEVNULL
    )
    if check.returncode != 0:
        raise RuntimeError(f"runc run failed ({check.returncode}): {check.stderr.strip()}")
    return lambda: time_posix_spawn([*command, next(names)])


def delete_runc_containers(state: Path) -> None:
    """Containers a failed `runc run` may have left (a successful one deletes its own)."""
    if not state.is_dir():
        return
    listed = subprocess.run(
        [RUNC, "--root", str(state), "list", "-q"], capture_output=True, text=True
    )
    for name in listed.stdout.split():
        subprocess.run([RUNC, "--root", str(state), "delete", "--force", name], check=False)


def cgroup_creator(cgroups: CgroupManager) -> Callable[[], float]:
    """Times creating a replica cgroup (every hierarchy, limits written); removal untimed."""
    names = (f"create-{n}" for n in itertools.count())

    def create() -> float:
        start = time.perf_counter()
        cgroup = cgroups.create(next(names), Limits())
        elapsed = time.perf_counter() - start
        cgroup.remove()
        return elapsed

    return create


# -- the processes -------------------------------------------------------------------------


class Daemons:
    """`constellation` server, agent or controllers processes on one data dir and store, each
    logging to a file there; replicas go under `parent`."""

    def __init__(self, data_dir: Path, parent: str) -> None:
        self.data_dir = data_dir
        self.parent = parent
        self.url = default_url(data_dir)
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, role: str, *args: str) -> None:
        command = [CLI, "--data-dir", str(self.data_dir), "--store", self.url, role, *args]
        if role in ("server", "agent"):
            command += ["--node-name", NODE, "--cgroup-parent", self.parent]
        with (self.data_dir / f"{role}.log").open("ab") as log:
            process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        self.processes[role] = process

    def check_alive(self) -> None:
        for role, process in self.processes.items():
            if process.poll() is not None:
                tail = (self.data_dir / f"{role}.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"{role} exited with {process.returncode}:\n{tail}")

    def stop_all(self) -> None:
        stop_processes(self.processes.values())
        self.processes.clear()


def stop_processes(processes: Collection[subprocess.Popen[bytes]], grace: float = 20.0) -> None:
    """SIGTERM them all at once, then SIGKILL whichever is still there after `grace`."""
    for process in processes:
        process.terminate()
    for process in processes:
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextlib.contextmanager
def running(daemons: Daemons, *roles: str) -> Iterator[Client]:
    """The roles started, a client on their store once the node is Ready; on the way out,
    every Instance deleted and its replicas gone, then the processes stopped."""
    store: Store | None = None
    try:
        for role in roles:
            daemons.start(role)
        store = open_store(daemons.url)
        client = Client(store)
        wait_until("node Ready", lambda: node_ready(client, daemons), 30.0)
        yield client
        delete_all(client, daemons, 120.0)
    finally:
        if store is not None:
            store.close()
        daemons.stop_all()


def node_ready(client: Client, daemons: Daemons) -> bool:
    daemons.check_alive()
    node = client.find(Node, NODE, None)
    return node is not None and node.ready() == "True"


def wait_until(what: str, test: Callable[[], bool], timeout: float) -> float:
    """Seconds until `test()` held, polled every 10 ms."""
    start = time.monotonic()
    while not test():
        if time.monotonic() - start > timeout:
            raise TimeoutError(f"{what}: not within {timeout:g} s")
        time.sleep(0.01)
    return time.monotonic() - start


def sleep_instance(name: str, replicas: int, seconds: str) -> Instance:
    return Instance.model_validate(
        {
            "metadata": {"name": name},
            "spec": {"replicas": replicas, "command": ["sleep", seconds]},
        }
    )


@dataclass
class Timeline:
    """Seconds after apply began at which each replica was first seen created, bound to the
    node and Running; and when all of them were Running at once."""

    created: dict[str, float] = field(default_factory=dict)
    bound: dict[str, float] = field(default_factory=dict)
    running: dict[str, float] = field(default_factory=dict)
    all_running: float = 0.0

    def last(self) -> dict[str, float]:
        """When the last replica reached each stage: where the time went."""
        stages = {"created": self.created, "bound": self.bound, "running": self.running}
        return {f"last_{name}_s": max(times.values()) for name, times in stages.items()}


def apply_until_running(client: Client, name: str, replicas: int, timeout: float) -> Timeline:
    """Apply an Instance of `replicas` sleeps and follow its Replicas on a store watch until
    all are Running at once."""
    with client.watch(Replica, "default") as watch:
        start = time.perf_counter()
        apply(client, sleep_instance(name, replicas, "100000"))
        return follow(watch, name, replicas, start, timeout)


def follow(
    watch: ObjectWatch[Replica], instance: str, count: int, start: float, timeout: float
) -> Timeline:
    timeline = Timeline()
    running_now: set[str] = set()
    while len(running_now) < count:
        event = watch.next_event(max(0.0, start + timeout - time.perf_counter()))
        now = time.perf_counter() - start
        if event is None:
            raise TimeoutError(
                f"{instance}: {len(running_now)} of {count} replicas Running after {timeout:g} s"
            )
        replica, name = event.object, event.object.metadata.name
        if replica.spec.instanceName != instance:
            continue
        timeline.created.setdefault(name, now)
        if replica.spec.nodeName:
            timeline.bound.setdefault(name, now)
        if event.type is not WatchEventType.DELETED and replica.status.phase == "Running":
            timeline.running.setdefault(name, now)
            running_now.add(name)
        else:
            running_now.discard(name)
    timeline.all_running = time.perf_counter() - start
    return timeline


def delete_all(client: Client, daemons: Daemons, timeout: float) -> float:
    """Delete every Instance; seconds until no Replica is left and the agent has removed
    every replica cgroup (so their processes have ended)."""
    start = time.monotonic()
    for instance in client.list(Instance)[0]:
        delete(client, instance.metadata.name)
    cgroups = detect(daemons.parent)

    def gone() -> bool:
        daemons.check_alive()
        return not client.list(Replica)[0] and not cgroups.names()

    wait_until("every replica deleted and stopped", gone, timeout)
    return time.monotonic() - start


def delete(client: Client, name: str) -> None:
    """Delete the Instance, again if a controller's status write came between the read and
    the delete."""
    for _ in range(20):
        try:
            client.delete(Instance, name)
            return
        except Conflict:
            continue
        except NotFound:
            return
    raise RuntimeError(f"instance {name}: deleting it kept conflicting")


# -- 2. apply to Running ---------------------------------------------------------------------


def apply_latency(cfg: Config, work: Path, parent: str) -> dict[str, float]:
    """p50/p99 of apply -> Running, and the p50 of each stage on the way (the Replica
    created by the controllers, bound by the scheduler, Running as the agent reports it)."""
    daemons = Daemons(fresh_dir(work / "server"), parent)
    timelines, deletes = [], []
    with running(daemons, "server") as client:
        for index in range(cfg.apply_warmup + cfg.apply_samples):
            timeline = apply_until_running(client, f"lat-{index}", 1, cfg.timeout)
            deletes.append(delete_all(client, daemons, cfg.timeout))
            if index >= cfg.apply_warmup:
                timelines.append(timeline)
    stages = {
        f"{stage.removeprefix('last_').removesuffix('_s')}_p50_ms": summary_ms(
            [t.last()[stage] for t in timelines]
        )["p50_ms"]
        for stage in timelines[0].last()
    }
    return {
        **summary_ms([t.all_running for t in timelines]),
        **stages,
        "samples": float(len(timelines)),
        "delete_until_stopped_p50_ms": summary_ms(deletes)["p50_ms"],
    }


def fresh_dir(path: Path) -> Path:
    path.mkdir(parents=True)
    return path


# -- 3 and 4. many replicas on an agent of its own --------------------------------------------


def many_replicas(cfg: Config, work: Path, parent: str) -> dict[str, float]:
    daemons = Daemons(fresh_dir(work / "agent"), parent)
    with running(daemons, "controllers", "agent") as client:
        agent = psutil.Process(daemons.processes["agent"].pid)
        controllers = daemons.processes["controllers"].pid
        time.sleep(cfg.settle_seconds)
        rss_before = agent.memory_info().rss
        controllers_before = cpu_seconds(controllers)
        timeline = apply_until_running(client, "many", cfg.replicas, cfg.timeout)
        time.sleep(cfg.settle_seconds)  # status writes and events settle: idle means idle
        controllers_cpu = cpu_seconds(controllers) - controllers_before
        cpu = idle_cpu_percent(agent.pid, cfg.idle_seconds)
        rss_after = agent.memory_info().rss
        spawners = [c for c in agent.children() if "constellation.runtime.spawner" in c.cmdline()]
        spawner = spawners[0].memory_full_info() if spawners else None
        helpers = helper_memory(detect(parent), cfg.replicas)
        growth = max(0, rss_after - rss_before)
        figures = {
            "all_running_s": timeline.all_running,
            **timeline.last(),
            "agent_idle_cpu_percent": cpu,
            # The whole start, its status writes and events included: what the control
            # plane takes from the agent's two cores.
            "controllers_cpu_s": controllers_cpu,
            "agent_rss_mb": rss_after / MB,
            "agent_rss_before_mb": rss_before / MB,
            "agent_growth_per_replica_kb": growth / cfg.replicas / KB,
            # The agent's one spawner process (not per replica): its PSS shares the
            # interpreter's pages with the agent.
            "spawner_rss_mb": spawner.rss / MB if spawner else 0.0,
            "spawner_pss_mb": spawner.pss / MB if spawner else 0.0,
            **helpers,
        }
        # PSS: the pages of tini's binary, shared by every copy, are counted once in all.
        figures["outside_workload_per_replica_kb"] = (
            figures["helper_pss_per_replica_kb"] + figures["agent_growth_per_replica_kb"]
        )
        figures["delete_all_s"] = delete_all(client, daemons, cfg.timeout * 2)
    return figures


def helper_memory(cgroups: CgroupManager, replicas: int) -> dict[str, float]:
    """Every process in the replicas' cgroups: the ones running the init (tini) are helpers,
    the rest workload. A helper's USS is what it alone holds; its RSS also counts the pages of
    the binary, which every copy shares (one copy in the page cache); its PSS counts those
    shared pages divided among the processes sharing them: what the copies cost in all."""
    init = default_init()
    helpers = workloads = uss = rss = pss = 0
    units = cgroups.names()
    for unit in units:
        cgroup = cgroups.open(unit)
        for pid in cgroup.pids() if cgroup else []:
            process = psutil.Process(pid)
            if init is not None and process.cmdline()[:1] == [init]:
                helpers += 1
                memory = process.memory_full_info()
                uss, rss, pss = uss + memory.uss, rss + memory.rss, pss + memory.pss
            else:
                workloads += 1
    if len(units) != replicas or workloads != replicas:
        raise RuntimeError(
            f"expected {replicas} replica cgroups of one workload each: found {len(units)} "
            f"cgroups, {workloads} workload and {helpers} helper processes"
        )
    return {
        "replica_cgroups": float(len(units)),
        "helper_processes": float(helpers),
        "helper_uss_per_replica_kb": uss / replicas / KB,
        "helper_rss_per_replica_kb": rss / replicas / KB,
        "helper_pss_per_replica_kb": pss / replicas / KB,
    }


# -- 5. clean-up -----------------------------------------------------------------------------


def remove_cgroup_tree(parent: str) -> list[str]:
    """Remove `parent` from every hierarchy, deepest first, killing what is still inside
    (only processes this benchmark started can be there). Returns what could not go."""
    left = []
    for hierarchy in sorted(CGROUP_ROOT.iterdir()):
        top = hierarchy / parent
        if not top.is_dir():
            continue
        for directory in sorted(top.rglob("*"), key=lambda p: len(p.parts), reverse=True):
            if directory.is_dir():
                left += empty_and_remove(directory)
        left += empty_and_remove(top)
    return left


def empty_and_remove(directory: Path) -> list[str]:
    procs = directory / "cgroup.procs"
    for _ in range(100):
        pids = [int(p) for p in procs.read_text().split()] if procs.exists() else []
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        try:
            directory.rmdir()
            return []
        except OSError as error:
            if error.errno not in (errno.EBUSY, errno.ENOTEMPTY):
                raise
        time.sleep(0.02)
    return [str(directory)]


def reap_orphans() -> None:
    """Replicas whose agent died before them were re-parented to this process: reap them."""
    with contextlib.suppress(ChildProcessError):
        while os.waitpid(-1, os.WNOHANG)[0] > 0:
            pass


# -- report ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Figure:
    key: str
    label: str
    unit: str
    target: float | None = None  # the value must be below it
    target_ratio: float | None = None  # and the ratio below this
    baseline_is: str | None = None


def figures(cfg: Config) -> list[Figure]:
    n = f"{cfg.replicas:,}"
    return [
        Figure("spawn_p50_ms", "spawn(), p50", "ms", 5.0, 2.5, "unshare(1), p50"),
        Figure("spawn_p99_ms", "spawn(), p99", "ms", None, None, "unshare(1), p99"),
        Figure("spawn_p50_vs_runc_ms", "spawn(), p50", "ms", None, None, "runc run, p50"),
        Figure("spawn_p99_vs_runc_ms", "spawn(), p99", "ms", None, None, "runc run, p99"),
        Figure("spawn_p50_vs_posix_spawn_ms", "spawn(), p50", "ms", None, None, "posix_spawn"),
        Figure("apply_to_running_p50_ms", "apply -> Running, p50", "ms", 100.0),
        Figure(
            "apply_to_running_p99_ms",
            "apply -> Running, p99",
            "ms",
            300.0,
            None,
            "Kubernetes SLO, p99",
        ),
        Figure("all_running_s", f"apply {n} replicas -> all Running", "s", 15.0),
        Figure(
            "outside_workload_per_replica_kb",
            "memory per replica outside workload",
            "KB",
            100.0,
            None,
            "containerd shim",
        ),
        Figure("helper_pss_per_replica_kb", "  of which tini, PSS", "KB"),
        Figure("helper_uss_per_replica_kb", "  tini, USS", "KB"),
        Figure("helper_rss_per_replica_kb", "  tini, RSS (shared pages counted per copy)", "KB"),
        Figure("agent_growth_per_replica_kb", "  of which agent growth", "KB"),
        Figure("agent_rss_mb", f"agent RSS, {n} replicas", "MB", 60.0),
        Figure("agent_idle_cpu_percent", f"agent idle CPU, {n} replicas", "% core", 2.0),
        Figure("controllers_cpu_s", f"controllers CPU, start of {n} replicas", "s"),
        Figure("spawner_rss_mb", "agent's spawner process, RSS", "MB"),
        Figure("spawner_pss_mb", "agent's spawner process, PSS", "MB"),
    ]


def baselines(spawn: dict[str, dict[str, float]]) -> dict[str, tuple[float, float]]:
    """Figure key -> (its value, the baseline it is read against), for the spawn rows."""
    ours = spawn["spawn"]
    pairs = {
        "spawn_p50_ms": ("p50_ms", "unshare"),
        "spawn_p99_ms": ("p99_ms", "unshare"),
        "spawn_p50_vs_runc_ms": ("p50_ms", "runc"),
        "spawn_p99_vs_runc_ms": ("p99_ms", "runc"),
        "spawn_p50_vs_posix_spawn_ms": ("p50_ms", "posix_spawn"),
    }
    return {key: (ours[stat], spawn[way][stat]) for key, (stat, way) in pairs.items()}


def entry(figure: Figure, value: float | None, baseline: float | None) -> dict[str, Any]:
    ratio = value / baseline if value is not None and baseline else None
    met = None
    if value is not None and figure.target is not None:
        met = value < figure.target
        if figure.target_ratio is not None:
            met = met and ratio is not None and ratio < figure.target_ratio
    return {
        "label": figure.label,
        "unit": figure.unit,
        "constellation": rounded(value),
        "baseline": rounded(baseline),
        "baseline_is": figure.baseline_is if baseline is not None else None,
        "ratio": rounded(ratio),
        "target": target_text(figure),
        "met": met,
    }


def target_text(figure: Figure) -> str | None:
    if figure.target is None:
        return None
    text = f"< {figure.target:g} {figure.unit}"
    return text + (f", ratio < {figure.target_ratio:g}" if figure.target_ratio else "")


def render_table(report: dict[str, Any]) -> str:
    rows = dict(report["figures"])
    for entry_ in rows.values():
        entry_["vs"] = entry_["baseline_is"]
    notes = [f"{name}: {json.dumps(d)}" for name, d in report["details"].items()]
    headers = ("value", "baseline", "baseline is", "ratio", "target")
    keys = ("constellation", "baseline", "vs", "ratio", "target")
    return table({**report, "figures": rows}, headers, keys, notes)


# -- entry points ----------------------------------------------------------------------------


def run(cfg: Config) -> dict[str, Any]:
    parent = f"constellation-bench-{uuid.uuid4().hex[:8]}"
    values: dict[str, float] = {}
    against: dict[str, float] = {}
    details: dict[str, dict[str, Any]] = {}
    errors: dict[str, str] = {}
    linux.set_child_subreaper()  # as the agent is: spawn() needs it
    try:
        with tempfile.TemporaryDirectory(prefix="bench-runtime-") as tmp:
            work = Path(tmp)
            if spawn := attempt("spawn", errors, lambda: spawn_latency(cfg, work, parent)):
                for key, (value, baseline) in baselines(spawn).items():
                    values[key], against[key] = value, baseline
                details["spawn"] = spawn
                details["spawn_process_rss_mb"] = {"rss": rounded(rss_mb(os.getpid()))}
            leftovers(errors, "spawn", parent)
            if latency := attempt("apply", errors, lambda: apply_latency(cfg, work, parent)):
                values["apply_to_running_p50_ms"] = latency["p50_ms"]
                values["apply_to_running_p99_ms"] = latency["p99_ms"]
                against["apply_to_running_p99_ms"] = KUBERNETES_SLO_MS
                details["apply"] = {k: rounded(v) for k, v in latency.items()}
            leftovers(errors, "apply", parent)
            if many := attempt("replicas", errors, lambda: many_replicas(cfg, work, parent)):
                values.update(many)
                against["outside_workload_per_replica_kb"] = SHIM_KB
                details["replicas"] = {k: rounded(v) for k, v in many.items()}
    finally:
        reap_orphans()
        leftovers(errors, "end", parent)
        reap_orphans()
    return {
        "benchmark": "runtime",
        "ratio": "constellation / baseline (same run; the Kubernetes SLO and shim are published)",
        "config": {**asdict(cfg), "cgroup_parent": parent, "init": default_init()},
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "kernel": platform.release(),
            "loadavg_at_end": [round(x, 2) for x in os.getloadavg()],
        },
        "figures": {f.key: entry(f, values.get(f.key), against.get(f.key)) for f in figures(cfg)},
        "details": {**details, "runc_earlier": {"p50_ms": RUNC_EARLIER_MS}},
        "errors": errors,
    }


def rss_mb(pid: int) -> float:
    return float(psutil.Process(pid).memory_info().rss) / MB


def leftovers(errors: dict[str, str], step: str, parent: str) -> None:
    """Remove the cgroup parent; anything that would not go is an error of `step`."""
    if left := remove_cgroup_tree(parent):
        errors[f"cleanup_{step}"] = f"could not remove {', '.join(left)}"


def attempt(name: str, errors: dict[str, str], work: Any) -> Any:
    print(f"bench runtime: {name} ...", file=sys.stderr, flush=True)
    try:
        return work()
    except Exception as error:
        traceback.print_exc()
        errors[name] = f"{type(error).__name__}: {error}"
        return None


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    return base_parser(__doc__, DEFAULT_OUTPUT).parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if os.geteuid() != 0:
        print("bench runtime: needs root (namespaces, cgroups)", file=sys.stderr)
        return 2
    report = run(QUICK if args.quick else FULL)
    return publish(report, args.output, render_table(report))


if __name__ == "__main__":
    sys.exit(main())
