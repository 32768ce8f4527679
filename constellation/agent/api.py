"""The agent's small HTTP endpoint: replica logs and resource usage, read where they live.

Logs and cgroup counters are on the node, not in the store (writing them there would cost a
store write per line or per sample), so `constellation logs` and `top` ask the agent, at the
`status.agentEndpoint` its Node advertises, as kubectl asks the kubelet. Routes:

    GET /logs/<namespace>/<name>?tail=N&previous=1&follow=1   text, streamed when following
    GET /stats?window=SECONDS    JSON: node and per-replica usage, cpu as a rate over the window

It serves on loopback unless told otherwise, and has no authentication: bind it to an
address only the cluster's operators reach.
"""

from __future__ import annotations

import json
import logging
import socketserver
import threading
import time
from collections.abc import Callable
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, urlsplit

import psutil

from constellation.agent.units import key_of
from constellation.controllers.base import Key
from constellation.runtime.cgroups import Stats
from constellation.runtime.supervisor import Supervisor

log = logging.getLogger(__name__)

MAX_WINDOW_SECONDS = 5.0
MAX_LINE = 8192
TEXT = "text/plain; charset=utf-8"


class AgentAPI:
    """Serves `supervisor`'s logs and stats on `host:port` (port 0: any free port)."""

    def __init__(
        self,
        supervisor: Supervisor,
        current_unit: Callable[[Key], str | None],
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.supervisor = supervisor
        self.current_unit = current_unit
        self._closed = threading.Event()
        handler = type("Handler", (_Handler,), {"api": self})
        self.server = _Server((host, port), handler)
        self._thread = threading.Thread(target=self.server.serve_forever, name="agent-api")

    @property
    def endpoint(self) -> str:
        host, port = self.server.server_address[:2]
        return f"{host!s}:{port}"

    def start(self) -> AgentAPI:
        self._thread.start()
        return self

    def close(self) -> None:
        self._closed.set()
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(5)

    def stats(self, window: float) -> dict[str, Any]:
        before, cpu_before = self._sample(), time.monotonic()
        psutil.cpu_percent()
        time.sleep(window)
        after, elapsed = self._sample(), time.monotonic() - cpu_before
        replicas = {
            f"{key_of(unit).namespace}/{key_of(unit).name}": _usage(before.get(unit), now, elapsed)
            for unit, now in after.items()
        }
        memory = psutil.virtual_memory()
        return {
            "node": {
                "cpuMillicores": round(psutil.cpu_percent() * 10 * (psutil.cpu_count() or 1)),
                "memoryBytes": memory.total - memory.available,
                "memoryTotalBytes": memory.total,
                "replicas": len(replicas),
            },
            "replicas": replicas,
        }

    def _sample(self) -> dict[str, Stats]:
        samples = {}
        for unit in self.supervisor.unit_ids():
            stats = self.supervisor.stats(unit)
            if stats is not None:
                samples[unit] = stats
        return samples


def _usage(before: Stats | None, now: Stats, elapsed: float) -> dict[str, int]:
    used_ns = now.cpu_usage_ns - before.cpu_usage_ns if before else 0
    return {
        "cpuMillicores": round(used_ns / 1e6 / elapsed) if elapsed > 0 else 0,
        "memoryBytes": now.memory_current,
        "memoryPeakBytes": now.memory_peak,
        "pids": now.pids,
        "oomKills": now.oom_kills,
    }


class _Handler(socketserver.StreamRequestHandler):
    """HTTP/1.1 GET only, one request per connection. Written on socketserver rather than
    http.server, which imports http.client and with it ssl and email: 6.5 MB of the agent's
    resident memory for two routes."""

    api: AgentAPI

    def handle(self) -> None:
        request = self.rfile.readline(MAX_LINE).decode("latin-1").split()
        while self.rfile.readline(MAX_LINE).strip():
            pass  # headers: no route needs one
        if len(request) != 3 or request[0] != "GET":
            self._send(HTTPStatus.METHOD_NOT_ALLOWED, b"only GET\n")
            return
        url = urlsplit(request[1])
        query = {name: values[-1] for name, values in parse_qs(url.query).items()}
        parts = [part for part in url.path.split("/") if part]
        if parts[:1] == ["logs"] and len(parts) == 3:
            self._logs(Key(parts[1], parts[2]), query)
        elif parts == ["stats"]:
            window = min(float(query.get("window", "0.5")), MAX_WINDOW_SECONDS)
            self._send(HTTPStatus.OK, json.dumps(self.api.stats(window)).encode(), "json")
        else:
            self._send(HTTPStatus.NOT_FOUND, b"no such route\n")

    def _logs(self, key: Key, query: dict[str, str]) -> None:
        unit = self.api.current_unit(key)
        if unit is None:
            self._send(HTTPStatus.NOT_FOUND, f"no replica {key} on this node\n".encode())
            return
        logs = self.api.supervisor.logs(unit)
        tail = int(query["tail"]) if "tail" in query else None
        data = logs.read(previous=query.get("previous") == "1", tail=tail)
        if query.get("follow") != "1":
            self._send(HTTPStatus.OK, data)
            return
        self._head(HTTPStatus.OK, {"Content-Type": TEXT, "Transfer-Encoding": "chunked"})
        try:
            self._chunk(data)
            gone = self.api._closed.is_set
            for chunk in logs.follow(lambda: gone() or self.api.current_unit(key) != unit):
                self._chunk(chunk)
            self.wfile.write(b"0\r\n\r\n")  # the last chunk: this replica's run is over
        except (BrokenPipeError, ConnectionResetError):
            return  # the reader went away

    def _chunk(self, data: bytes) -> None:
        if data:  # an empty chunk would end the response
            self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            self.wfile.flush()

    def _send(self, status: HTTPStatus, body: bytes, kind: str = "plain") -> None:
        content = "application/json" if kind == "json" else TEXT
        self._head(status, {"Content-Type": content, "Content-Length": str(len(body))})
        self.wfile.write(body)

    def _head(self, status: HTTPStatus, headers: dict[str, str]) -> None:
        lines = [f"HTTP/1.1 {status.value} {status.phrase}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        lines += ["Connection: close", "", ""]
        self.wfile.write("\r\n".join(lines).encode("latin-1"))


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
