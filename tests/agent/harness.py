"""A real `constellation server` (or agent, or controllers) process on a temp data dir, under a
cgroup parent of its own, for end-to-end tests; and the checks those tests make on the host."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from constellation.apis.node import Node
from constellation.apis.replica import Replica
from constellation.client.client import Client
from constellation.runtime.cgroups import detect, remove_all
from constellation.runtime.spawn import default_init
from constellation.store import Store, default_url, open_store

CLI = str(Path(sys.executable).parent / "constellation")
# A replica whose workload starts no children: its pid 1 (tini, when installed) and the workload.
PROCESSES_PER_REPLICA = 2 if default_init() else 1
T = TypeVar("T")


def wait_for(what: str, probe: Callable[[], T | None], timeout: float = 30.0) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(0.05)


class Cluster:
    """Processes of one test cluster sharing a data dir, store and cgroup parent."""

    def __init__(self, root: Path, store_url: str | None = None) -> None:
        self.data_dir = root / "data"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.url = store_url or default_url(self.data_dir)
        self.parent = f"constellation-test-{uuid.uuid4().hex[:8]}"
        self.nodes: set[str] = set()  # each node's agent has the cgroup parent <parent>/<node>
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.logs: dict[str, Path] = {}
        self._store: Store | None = None

    @property
    def client(self) -> Client:
        if self._store is None:
            self._store = open_store(self.url)
        return Client(self._store)

    # -- processes ----------------------------------------------------------------------------

    def start(self, role: str, *args: str, name: str | None = None) -> subprocess.Popen[bytes]:
        """Run `constellation <role> ARGS` in the background (role: server, agent, controllers)."""
        name = name or role
        log_path = self.data_dir / f"{name}.log"
        command = [CLI, "--data-dir", str(self.data_dir), "--store", self.url, role, *args]
        if role in ("server", "agent"):
            node = args[args.index("--node-name") + 1]
            self.nodes.add(node)
            command += ["--cgroup-parent", f"{self.parent}/{node}"]
        with log_path.open("ab") as log:
            process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        self.processes[name], self.logs[name] = process, log_path
        return process

    def server(self, node: str = "node-a", *args: str) -> subprocess.Popen[bytes]:
        process = self.start("server", "--node-name", node, *args)
        self.wait_node_ready(node)
        return process

    def check_alive(self) -> None:
        for name, process in self.processes.items():
            if process.poll() is not None:
                tail = self.log_text(name)[-2000:]
                raise AssertionError(f"{name} exited with {process.returncode}:\n{tail}")

    def kill9(self, name: str) -> None:
        process = self.processes.pop(name)
        process.send_signal(signal.SIGKILL)
        process.wait(10)

    def stop(self, name: str) -> None:
        process = self.processes.pop(name)
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def log_text(self, name: str) -> str:
        return self.logs[name].read_text(errors="replace")

    def close(self) -> None:
        for name in list(self.processes):
            self.stop(name)
        if self._store is not None:
            self._store.close()
        for node in self.nodes:
            remove_all(detect(f"{self.parent}/{node}"))

    # -- the store --------------------------------------------------------------------------------

    def apply_text(self, text: str) -> None:
        manifest = self.data_dir / f"manifest-{uuid.uuid4().hex[:6]}.yaml"
        manifest.write_text(text)
        self.cli("apply", "-f", str(manifest))

    def wait_node_ready(self, node: str, timeout: float = 30.0) -> Node:
        def ready() -> Node | None:
            self.check_alive()
            found = self.client.find(Node, node, None)
            return found if found is not None and found.ready() == "True" else None

        return wait_for(f"node {node} Ready", ready, timeout)

    def replica(self, name: str) -> Replica | None:
        return self.client.find(Replica, name)

    def wait_replica(
        self, name: str, test: Callable[[Replica], bool], what: str, timeout: float = 30.0
    ) -> Replica:
        def probe() -> Replica | None:
            found = self.replica(name)
            return found if found is not None and test(found) else None

        return wait_for(f"replica {name}: {what}", probe, timeout)

    # -- the host ---------------------------------------------------------------------------------

    def cgroup_pids(self, node: str | None = None) -> dict[str, list[int]]:
        """Every replica cgroup of `node` (None: of every node), with the processes in it."""
        found = {}
        for each in [node] if node else sorted(self.nodes):
            cgroups = detect(f"{self.parent}/{each}")
            for unit in cgroups.names():
                cgroup = cgroups.open(unit)
                if cgroup is not None:
                    found[unit] = cgroup.pids()
        return found

    def cli(
        self, *args: str, check: bool = True, timeout: float = 30
    ) -> subprocess.CompletedProcess[str]:
        command = [CLI, "--data-dir", str(self.data_dir), "--store", self.url, *args]
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
        if check:
            assert result.returncode == 0, f"{' '.join(args)}: {result.stderr}"
        return result


def ready(replica: Replica) -> bool:
    return any(c.type == "Ready" and c.status == "True" for c in replica.status.conditions)


def running(replica: Replica) -> bool:
    return replica.status.phase == "Running" and replica.status.pid is not None


def instance(name: str, replicas: int, command: str, **template: Any) -> str:
    """An Instance manifest running `sh -c command` (extra template fields as YAML text)."""
    extra = "".join(f"  {key}: {value}\n" for key, value in template.items())
    return (
        "apiVersion: constellation.dev/v1\nkind: Instance\n"
        f"metadata:\n  name: {name}\nspec:\n  replicas: {replicas}\n"
        f'  command: ["sh", "-c", {json.dumps(command)}]\n{extra}'
    )


def process_uid(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("Uid:"):
                return int(line.split()[1])
    raise AssertionError(f"no Uid line for {pid}")


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
