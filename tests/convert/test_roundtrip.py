"""Round trip: a Compose file and a Kubernetes Deployment whose programs are on the host,
converted, applied to a real `constellation server`, and Ready (their readiness probes, which
came from the healthcheck and the readinessProbe, pass)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.agent.harness import Cluster, ready
from tests.runtime.conftest import NEEDS_ROOT

pytestmark = NEEDS_ROOT

COMPOSE = """\
name: roundtrip
services:
  web:
    image: python:3
    command: /usr/bin/python3 -m http.server {web} --bind 127.0.0.1
    ports:
      - "{web}:{web}"
    healthcheck:
      test: ["CMD", "/usr/bin/python3", "-c", "import urllib.request as u; u.urlopen('http://127.0.0.1:{web}/')"]
      interval: 1s
      timeout: 1s
      retries: 3
    restart: always
"""
DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: api
spec:
  replicas: 1
  selector:
    matchLabels: {{app: api}}
  template:
    metadata:
      labels: {{app: api}}
    spec:
      containers:
        - name: api
          image: python:3-slim
          command: ["/usr/bin/python3", "-m", "http.server", "{api}", "--bind", "127.0.0.1"]
          ports:
            - name: http
              containerPort: {api}
          readinessProbe:
            httpGet: {{path: /, port: http}}
            periodSeconds: 1
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    running = Cluster(tmp_path)
    try:
        running.server()
        yield running
    finally:
        running.close()


def test_converted_examples_run_and_become_ready(cluster: Cluster, tmp_path: Path) -> None:
    sources = tmp_path / "sources"
    sources.mkdir()
    (sources / "compose.yaml").write_text(COMPOSE.format(web=free_port()))
    (sources / "deployment.yaml").write_text(DEPLOYMENT.format(api=free_port()))
    converted = tmp_path / "converted.yaml"
    result = cluster.cli("convert", "-f", str(sources), "-o", str(converted))
    assert "[approximated]" in result.stderr  # image: the program runs from the host
    cluster.cli("apply", "-f", str(converted))
    for replica in ("web-0", "api-0"):
        found = cluster.wait_replica(replica, ready, "Ready", timeout=60)
        assert found.status.pid is not None
