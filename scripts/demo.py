"""`make demo`: the example app on a real all-in-one server, from start to a clean stop.

Starts `constellation server` on a fresh data dir with the embedded store, applies
manifests/examples/app.yaml (an HTTP app with 3 replicas), waits until all are ready, shows
`get`, `top` and `logs`, fetches a page from one replica's port, deletes the app, stops the
server, and checks that no replica process or cgroup is left. Exits non-zero if any step fails.

    python scripts/demo.py DATA_DIR
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

from constellation.apis.instance import Instance
from constellation.apis.node import Node
from constellation.apis.replica import Replica
from constellation.client.client import Client
from constellation.runtime.cgroups import detect, remove_all
from constellation.store import default_url, open_store

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "manifests" / "examples" / "app.yaml"
CLI = str(Path(sys.executable).with_name("constellation"))
NODE = "demo"
READY_TIMEOUT = 90.0


def main(data_dir: Path) -> int:
    shutil.rmtree(data_dir, ignore_errors=True)
    data_dir.mkdir(parents=True)
    parent = f"constellation-demo-{os.getpid()}"
    server = start_server(data_dir, parent)
    store = open_store(default_url(data_dir))
    client = Client(store)
    try:
        wait_for("the node to be Ready", lambda: node_ready(client), server)
        cli(data_dir, "apply", "-f", str(APP))
        wait_for("3 ready replicas of web", lambda: ready_replicas(client) == 3, server)
        cli(data_dir, "get", "instances")
        cli(data_dir, "get", "replicas", "-o", "wide")
        cli(data_dir, "top", "replicas")
        cli(data_dir, "top", "nodes")
        fetch_page(client)
        cli(data_dir, "logs", "web-0", "--tail", "2")
        cli(data_dir, "delete", "-f", str(APP), "--cascade", "foreground", "--wait")
        wait_for("the replicas' processes to end", lambda: not detect(parent).names(), server)
    finally:
        store.close()
        stop_server(server)
        left = clean_up(parent)
    if left:
        print(f"demo: {left} cgroup(s) were left behind and had to be removed", file=sys.stderr)
        return 1
    print("demo: done; no process or cgroup left behind")
    return 0


def start_server(data_dir: Path, parent: str) -> subprocess.Popen[bytes]:
    command = [CLI, "--data-dir", str(data_dir), "server", "--node-name", NODE]
    command += ["--cgroup-parent", parent, "--log-level", "WARNING"]
    print("$", " ".join(command[1:]), "&", flush=True)
    return subprocess.Popen(command)


def cli(data_dir: Path, *args: str) -> None:
    print("\n$ constellation", " ".join(args), flush=True)
    subprocess.run([CLI, "--data-dir", str(data_dir), *args], check=True)


def wait_for(what: str, done: Callable[[], bool], server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while not done():
        if server.poll() is not None:
            raise SystemExit(f"demo: the server exited ({server.returncode}) waiting for {what}")
        if time.monotonic() > deadline:
            raise SystemExit(f"demo: gave up after {READY_TIMEOUT:g}s waiting for {what}")
        time.sleep(0.1)


def node_ready(client: Client) -> bool:
    node = client.find(Node, NODE, None)
    return node is not None and node.ready() == "True"


def ready_replicas(client: Client) -> int:
    instance = client.find(Instance, "web")
    return instance.status.readyReplicas if instance else 0


def fetch_page(client: Client) -> None:
    replica = client.get(Replica, "web-0")
    url = f"http://127.0.0.1:{replica.status.ports['http']}/"
    with urllib.request.urlopen(url, timeout=5) as response:
        body = response.read()
    print(f"\n$ curl {url}\nHTTP {response.status}, {len(body)} bytes from web-0", flush=True)


def stop_server(server: subprocess.Popen[bytes]) -> None:
    server.terminate()
    try:
        server.wait(20)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


def clean_up(parent: str) -> int:
    """Remove whatever a failed run left under the demo's own cgroup parent."""
    return remove_all(detect(parent))


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
