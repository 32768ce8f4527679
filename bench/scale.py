"""Scale benchmark: 1,000 replicas across 3 agents on the etcd backend, and one agent lost.

    .venv/bin/python bench/scale.py [--quick] [--output PATH]      (as root)

Each agent is a separate host: its own network namespace (`constellation-bench-<id>-<i>`),
joined to the others by a bridge in a namespace of its own (`constellation-bench-<id>-br`,
one veth pair per agent, made from inside that namespace), and its own cgroup parent
(`constellation-bench-<id>/node-<i>`). The host's own network namespace is never changed: no
link, address or route is added to it. This process moves itself into the bridge namespace
(setns, before any thread starts) and runs there what a control-plane host would: etcd,
listening on the bridge, and `constellation controllers` with default settings; the agents
run with default settings too (heartbeat TTL 3 s, node grace 1 s) and reach etcd over the
bridge.

1. Apply an Instance of 1,000 `sleep` replicas; time until a store watch has seen all of them
   Running at once.
2. SIGKILL one agent together with its replicas (its spawner and every process in its cgroup
   parent); time until all 1,000 are Running again, the lost ones on the two other agents.
   Target (issue 8): under 10 s. Published anchors: Nomad reschedules in about 20 s,
   Kubernetes evicts after about 5 min 50 s (40 s node-monitor grace + 5 min toleration).

Every namespace, cgroup and process it made is removed at the end. JSON goes to stdout and
bench/results/scale.json, a table to stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
import traceback
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psutil
from report import base_parser, publish, rounded, table
from runtime import reap_orphans, remove_cgroup_tree, sleep_instance, stop_processes, wait_until

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from constellation.apis.node import Node  # noqa: E402
from constellation.apis.replica import Replica  # noqa: E402
from constellation.client.apply import apply  # noqa: E402
from constellation.client.client import Client  # noqa: E402
from constellation.client.codec import Envelope, kind_prefix  # noqa: E402
from constellation.controllers.base import DEFAULT_NODE_GRACE_SECONDS  # noqa: E402
from constellation.runtime import linux  # noqa: E402
from constellation.store import Watch, open_store  # noqa: E402
from constellation.store.types import EventType  # noqa: E402
from tests.etcd_server import EtcdServer  # noqa: E402

DEFAULT_OUTPUT = ROOT / "bench" / "results" / "scale.json"
DEFAULTS = f"heartbeat ttl 3 s, node grace {DEFAULT_NODE_GRACE_SECONDS:g} s"
CLI = str(Path(sys.executable).parent / "constellation")
NETNS_DIR = "/run/netns"  # where `ip netns` keeps its named namespaces
SUBNET = "10.77.0"  # only ever inside the benchmark's own namespaces
BRIDGE_IP = f"{SUBNET}.1"
ETCD_CLIENT_PORT, ETCD_PEER_PORT = 2379, 2380
INSTANCE = "scale"
NOMAD_S = 20.0  # Nomad: a lost client's allocations rescheduled in about 20 s
KUBERNETES_S = 350.0  # Kubernetes: 40 s node-monitor grace + 300 s not-ready toleration


@dataclass(frozen=True)
class Config:
    quick: bool
    replicas: int
    agents: int
    timeout: float  # for any one wait


FULL = Config(False, 1000, 3, 120.0)
QUICK = Config(True, 60, 3, 60.0)


# -- the hosts -----------------------------------------------------------------------------


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


def netns_dir_mounted() -> bool:
    """Whether NETNS_DIR is a mount point. Not os.path.ismount: a bind mount of a directory
    on itself keeps its device number, and ismount goes by that."""
    with open("/proc/self/mountinfo") as mountinfo:
        return any(line.split()[4] == NETNS_DIR for line in mountinfo)


@dataclass
class Network:
    """Namespaces named after the benchmark's id: one per agent and one for the bridge."""

    prefix: str
    agents: int
    made: list[str] = field(default_factory=list)
    # `ip netns add` bind-mounts /run/netns on itself the first time it is used on a host;
    # remove() takes that mount back down if it was not there before and is empty again.
    mounted_before: bool = field(default_factory=netns_dir_mounted)

    @property
    def bridge(self) -> str:
        return f"{self.prefix}-br"

    def host(self, index: int) -> str:
        return f"{self.prefix}-{index}"

    def address(self, index: int) -> str:
        return f"{SUBNET}.{10 + index}"

    def create(self) -> None:
        for name in [self.bridge, *map(self.host, range(self.agents))]:
            ip("netns", "add", name)
            self.made.append(name)
            ip("-n", name, "link", "set", "lo", "up")
        ip("-n", self.bridge, "link", "add", "br0", "type", "bridge")
        ip("-n", self.bridge, "addr", "add", f"{BRIDGE_IP}/24", "dev", "br0")
        ip("-n", self.bridge, "link", "set", "br0", "up")
        for index in range(self.agents):
            self.join(index)

    def join(self, index: int) -> None:
        """A veth pair made inside the bridge namespace, its peer moved straight into the
        agent's: neither end ever exists in the host's namespace."""
        port, host = f"veth{index}", self.host(index)
        ip("-n", self.bridge, "link", "add", port, "type", "veth", "peer", "eth0", "netns", host)
        ip("-n", self.bridge, "link", "set", port, "master", "br0", "up")
        ip("-n", host, "addr", "add", f"{self.address(index)}/24", "dev", "eth0")
        ip("-n", host, "link", "set", "eth0", "up")

    def enter_bridge(self) -> None:
        """Move this process (its one thread: call before any other starts) into the bridge
        namespace; the processes it starts from now on are born there."""
        fd = os.open(f"{NETNS_DIR}/{self.bridge}", os.O_RDONLY)
        try:
            linux.setns(fd, linux.CLONE_NEWNET)
        finally:
            os.close(fd)

    def remove(self) -> list[str]:
        """Delete every namespace made (their links go with them); what would not go."""
        left = []
        for name in reversed(self.made):
            result = subprocess.run(["ip", "netns", "del", name], capture_output=True, text=True)
            if result.returncode != 0:
                left.append(f"netns {name}: {result.stderr.strip()}")
        self.made.clear()
        if not self.mounted_before and netns_dir_mounted() and not os.listdir(NETNS_DIR):
            result = subprocess.run(["umount", NETNS_DIR], capture_output=True, text=True)
            if result.returncode != 0:
                left.append(f"mount {NETNS_DIR}: {result.stderr.strip()}")
        return left


class BridgeEtcd(EtcdServer):
    """tests/etcd_server.py's etcd, listening for clients on the bridge's address."""

    @property
    def endpoint(self) -> str:
        return f"{BRIDGE_IP}:{self.client_port}"

    @property
    def peer_url(self) -> str:
        return f"http://127.0.0.1:{self.peer_port}"


class Daemons:
    """The controllers (here, in the bridge namespace) and one agent in each host's
    namespace (entered with nsenter, which execs: the pid is the agent's), each logging to
    its own file."""

    def __init__(self, work: Path, url: str, network: Network, parent: str) -> None:
        self.work, self.url, self.network, self.parent = work, url, network, parent
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    def node(self, index: int) -> str:
        return f"node-{index}"

    def start(self, name: str, args: Sequence[str], prefix: Sequence[str] = ()) -> None:
        data_dir = self.work / name
        data_dir.mkdir()
        command = [*prefix, CLI, "--data-dir", str(data_dir), "--store", self.url, *args]
        with (self.work / f"{name}.log").open("ab") as log:
            process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        self.processes[name] = process

    def start_all(self) -> None:
        self.start("controllers", ["controllers"])
        for index in range(self.network.agents):
            node = self.node(index)
            netns = f"--net={NETNS_DIR}/{self.network.host(index)}"
            args = ["agent", "--node-name", node, "--cgroup-parent", f"{self.parent}/{node}"]
            self.start(node, args, prefix=["nsenter", netns, "--"])

    def check_alive(self) -> None:
        for name, process in self.processes.items():
            if process.poll() is not None:
                tail = (self.work / f"{name}.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"{name} exited with {process.returncode}:\n{tail}")

    def kill_agent(self, index: int) -> None:
        """SIGKILL the agent and its spawner, then every process of its replicas (found
        through its cgroup parent, which goes too): a host lost at once."""
        process = self.processes.pop(self.node(index))
        children = psutil.Process(process.pid).children()
        process.kill()
        for child in children:
            with contextlib.suppress(psutil.NoSuchProcess):
                child.kill()
        process.wait(10)
        remove_cgroup_tree(f"{self.parent}/{self.node(index)}")

    def stop_all(self) -> None:
        stop_processes(self.processes.values())
        self.processes.clear()


# -- following the replicas ------------------------------------------------------------------


@dataclass(frozen=True)
class Seen:
    """What the benchmark reads of a Replica, from the stored JSON without validating it: on
    2 cores a validating watch of every change took 6% of the machine from the system under
    test."""

    name: str
    uid: str | None
    instance: str | None
    node: str | None
    phase: str | None

    @classmethod
    def of(cls, value: bytes) -> Seen:
        document = Envelope.decode(value).object
        spec, status = document.get("spec", {}), document.get("status", {})
        metadata = document["metadata"]
        return cls(
            metadata["name"],
            metadata.get("uid"),
            spec.get("instanceName"),
            spec.get("nodeName"),
            status.get("phase"),
        )


def watch_replicas(client: Client) -> Watch:
    return client.store.watch(kind_prefix(Replica, "default"))


def list_replicas(client: Client) -> list[Seen]:
    return [Seen.of(r.value) for r in client.store.list(kind_prefix(Replica, "default"))[0]]


@dataclass
class Replicas:
    """Each replica of the Instance as the watch last showed it: its node and phase."""

    seen: dict[str, tuple[str | None, str | None]] = field(default_factory=dict)

    def record(self, replica: Seen) -> None:
        if replica.instance == INSTANCE:
            self.seen[replica.name] = (replica.node, replica.phase)

    def update(self, watch: Watch, deadline: float) -> Seen | None:
        event = watch.next_event(max(0.0, deadline - time.monotonic()))
        if event is None:
            raise TimeoutError(f"{self.running()} replicas Running when time ran out")
        if event.type is EventType.DELETE:
            assert event.prev_value is not None
            self.seen.pop(Seen.of(event.prev_value).name, None)
            return None
        replica = Seen.of(event.record.value)
        self.record(replica)
        return replica

    def running(self, exclude: str | None = None) -> int:
        return sum(1 for n, p in self.seen.values() if p == "Running" and n != exclude)

    def per_node(self) -> dict[str, int]:
        nodes: dict[str, int] = {}
        for node, phase in self.seen.values():
            if phase == "Running" and node is not None:
                nodes[node] = nodes.get(node, 0) + 1
        return dict(sorted(nodes.items()))


def apply_until_running(client: Client, cfg: Config) -> tuple[float, Replicas]:
    replicas = Replicas()
    with watch_replicas(client) as watch:
        start = time.monotonic()
        apply(client, sleep_instance(INSTANCE, cfg.replicas, "100000"))
        while replicas.running() < cfg.replicas:
            replicas.update(watch, start + cfg.timeout)
        return time.monotonic() - start, replicas


@dataclass
class Replacement:
    """When the lost replicas were all failed, and when their replacements (replicas with a
    uid not seen before the kill) were last created, bound and Running: where the time went."""

    start: float
    lost: set[str]
    known_uids: set[str | None]
    failed: set[str] = field(default_factory=set)
    stages: dict[str, float] = field(default_factory=dict)
    firsts: dict[str, dict[str | None, float]] = field(default_factory=dict)  # stage -> uid -> s

    def see(self, replica: Seen) -> None:
        now = time.monotonic() - self.start
        name, phase = replica.name, replica.phase
        if name in self.lost and phase == "Failed":
            self.stages.setdefault("first_failed_s", now)
            self.failed.add(name)
            if self.failed == self.lost:
                self.stages.setdefault("all_failed_s", now)
        uid = replica.uid
        if uid not in self.known_uids:
            reached = ("created", True), ("bound", bool(replica.node))
            for stage, done in (*reached, ("running", phase == "Running")):
                if done:
                    self.firsts.setdefault(stage, {}).setdefault(uid, now)
                    last = max(self.firsts[stage].values())
                    self.stages[f"last_replacement_{stage}_s"] = last


def failover(client: Client, daemons: Daemons, cfg: Config) -> dict[str, float]:
    """Kill agent 0 with its replicas; seconds until its replicas were failed (NodeLost) and
    until all are Running again on the other agents."""
    lost_node = daemons.node(0)
    replicas = Replicas()
    with watch_replicas(client) as watch:
        listed = list_replicas(client)
        for seen in listed:
            replicas.record(seen)
        lost = {name for name, (node, _) in replicas.seen.items() if node == lost_node}
        start = time.monotonic()
        stages = Replacement(start, lost, {r.uid for r in listed})
        daemons.kill_agent(0)
        killed = time.monotonic() - start
        while replicas.running(exclude=lost_node) < cfg.replicas:
            replica = replicas.update(watch, start + cfg.timeout)
            if replica is not None:
                stages.see(replica)
        elapsed = time.monotonic() - start
    return {
        "replicas_lost": float(len(lost)),
        "kill_seconds": killed,
        "first_failed_s": elapsed,  # unless seen, below
        **stages.stages,
        "all_running_again_s": elapsed,
        **{f"running_on_{node}": float(n) for node, n in replicas.per_node().items()},
    }


# -- the run ---------------------------------------------------------------------------------


@contextlib.contextmanager
def cluster(cfg: Config, work: Path, ident: str, errors: dict[str, str]) -> Iterator[Daemons]:
    """The namespaces, etcd and the daemons; all of it removed on the way out, and anything
    that would not go reported as an error."""
    network = Network(f"constellation-bench-{ident}", cfg.agents)
    parent = f"constellation-bench-{ident}"
    etcd: BridgeEtcd | None = None
    daemons: Daemons | None = None
    try:
        network.create()
        network.enter_bridge()
        etcd = BridgeEtcd(work, client_port=ETCD_CLIENT_PORT, peer_port=ETCD_PEER_PORT)
        etcd.start()
        daemons = Daemons(work, etcd.url, network, parent)
        daemons.start_all()
        yield daemons
    finally:
        if daemons is not None:
            daemons.stop_all()
        if left := remove_cgroup_tree(parent):
            errors["cleanup_cgroups"] = f"could not remove {', '.join(left)}"
        reap_orphans()
        if etcd is not None:
            etcd.stop()
        if left := network.remove():
            errors["cleanup_netns"] = "; ".join(left)


def nodes_ready(client: Client, daemons: Daemons, count: int) -> bool:
    daemons.check_alive()
    nodes = [client.find(Node, daemons.node(i), None) for i in range(count)]
    return all(node is not None and node.ready() == "True" for node in nodes)


def measure(cfg: Config, daemons: Daemons) -> dict[str, float]:
    store = open_store(daemons.url)
    try:
        client = Client(store)
        ready = wait_until("nodes Ready", lambda: nodes_ready(client, daemons, cfg.agents), 60)
        all_running, replicas = apply_until_running(client, cfg)
        spread = {f"before_on_{node}": float(n) for node, n in replicas.per_node().items()}
        lost = failover(client, daemons, cfg)
    finally:
        store.close()
    return {"nodes_ready_s": ready, "all_running_s": all_running, **spread, **lost}


@dataclass(frozen=True)
class Figure:
    key: str
    label: str
    target: float | None = None  # seconds; the value must be below it
    baseline: float | None = None
    baseline_is: str | None = None


def figures(cfg: Config) -> list[Figure]:
    n, agents = f"{cfg.replicas:,}", cfg.agents
    lost = f"agent killed -> all {n} Running again"
    return [
        Figure("all_running_s", f"apply {n} replicas on {agents} agents (etcd) -> all Running"),
        Figure("first_failed_s", "agent killed -> its first replica failed (NodeLost)"),
        Figure("failover_s", lost, 10.0, NOMAD_S, "Nomad, published"),
        Figure("failover_vs_kubernetes_s", lost, None, KUBERNETES_S, "Kubernetes, published"),
    ]


def entry(figure: Figure, value: float | None, cfg: Config) -> dict[str, Any]:
    """The target is set for 1,000 replicas: a quick run does not judge it."""
    ratio = value / figure.baseline if value is not None and figure.baseline else None
    judged = value is not None and figure.target is not None and not cfg.quick
    met = value < figure.target if judged else None
    return {
        "label": figure.label,
        "unit": "s",
        "better": "lower",
        "constellation": rounded(value),
        "baseline": figure.baseline,
        "baseline_is": figure.baseline_is,
        "ratio": rounded(ratio),
        "target": None if figure.target is None else f"< {figure.target:g} s",
        "met": met,
    }


def run(cfg: Config) -> dict[str, Any]:
    ident = uuid.uuid4().hex[:8]
    errors: dict[str, str] = {}
    values: dict[str, float] = {}
    linux.set_child_subreaper()  # a killed agent's replicas are re-parented here, and reaped
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        try:
            with cluster(cfg, Path(tmp), ident, errors) as daemons:
                values = measure(cfg, daemons)
        except Exception as error:
            traceback.print_exc()
            errors["run"] = f"{type(error).__name__}: {error}"
    values["failover_s"] = values["failover_vs_kubernetes_s"] = values.get("all_running_again_s")
    shown = {f.key: entry(f, values.get(f.key), cfg) for f in figures(cfg)}
    return {
        "benchmark": "scale",
        "ratio": "constellation / published anchor (Nomad, Kubernetes)",
        "config": {**asdict(cfg), "id": ident, "store": "etcd", "defaults": DEFAULTS},
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "loadavg_at_end": [round(x, 2) for x in os.getloadavg()],
        },
        "figures": shown,
        "details": {k: rounded(v) for k, v in values.items() if v is not None},
        "errors": errors,
    }


def render_table(report: dict[str, Any]) -> str:
    headers = ("value", "baseline", "ratio", "target")
    notes = [f"details: {report['details']}"]
    return table(report, headers, ("constellation", "baseline", "ratio", "target"), notes)


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    return base_parser(__doc__, DEFAULT_OUTPUT, "60 replicas, a smoke test").parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if os.geteuid() != 0:
        print("bench scale: needs root (namespaces, cgroups)", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # clean up as on SIGINT
    report = run(QUICK if args.quick else FULL)
    return publish(report, args.output, render_table(report))


if __name__ == "__main__":
    sys.exit(main())
