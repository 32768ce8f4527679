"""The controllers' counters, kept in one place.

A metrics endpoint comes in a later issue; until then every number the machinery counts goes
through this registry, so that endpoint (and tests, and the benchmarks) read one `snapshot()`
instead of poking at private fields all over the package.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

Outcome = Literal["success", "error", "requeue", "terminal", "timeout"]
OUTCOMES: tuple[Outcome, ...] = ("success", "error", "requeue", "terminal", "timeout")

InformerCounter = Literal["events", "relists", "watch_restarts", "resyncs"]


@dataclass
class _ControllerStats:
    outcomes: dict[str, int] = field(default_factory=lambda: dict.fromkeys(OUTCOMES, 0))
    duration_sum: float = 0.0
    duration_count: int = 0
    duration_max: float = 0.0


class Metrics:
    """Thread-safe counters per controller and per informer, and gauges read on demand."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._controllers: dict[str, _ControllerStats] = {}
        self._informers: dict[str, dict[str, int]] = {}
        self._queue_depth: dict[str, Callable[[], int]] = {}

    def reconciled(self, controller: str, outcome: Outcome, seconds: float) -> None:
        """One reconcile call ended with `outcome` after `seconds`."""
        with self._lock:
            stats = self._controllers.setdefault(controller, _ControllerStats())
            stats.outcomes[outcome] += 1
            stats.duration_sum += seconds
            stats.duration_count += 1
            stats.duration_max = max(stats.duration_max, seconds)

    def informer(self, kind: str, counter: InformerCounter, amount: int = 1) -> None:
        with self._lock:
            counters = self._informers.setdefault(kind, _informer_counters())
            counters[counter] += amount

    def track_queue(self, controller: str, depth: Callable[[], int]) -> None:
        """Read `depth()` for `controller`'s queue depth at every snapshot (a gauge: counting
        adds and gets would double-count merged keys)."""
        with self._lock:
            self._queue_depth[controller] = depth
            self._controllers.setdefault(controller, _ControllerStats())

    def outcomes(self, controller: str) -> dict[str, int]:
        with self._lock:
            stats = self._controllers.get(controller)
            return dict(stats.outcomes) if stats else dict.fromkeys(OUTCOMES, 0)

    def snapshot(self) -> dict[str, Any]:
        """Every counter as plain data: {"controllers": {name: {...}}, "informers": {...}}."""
        with self._lock:
            depths = dict(self._queue_depth)
            controllers = {name: _as_dict(stats) for name, stats in self._controllers.items()}
            informers = {kind: dict(counters) for kind, counters in self._informers.items()}
        for name, depth in depths.items():
            controllers[name]["queue_depth"] = depth()
        return {"controllers": controllers, "informers": informers}


def _informer_counters() -> dict[str, int]:
    return {"events": 0, "relists": 0, "watch_restarts": 0, "resyncs": 0}


def _as_dict(stats: _ControllerStats) -> dict[str, Any]:
    return {
        "reconciles": dict(stats.outcomes),
        "duration_seconds_sum": stats.duration_sum,
        "duration_seconds_count": stats.duration_count,
        "duration_seconds_max": stats.duration_max,
        "queue_depth": 0,
    }


REGISTRY = Metrics()
"""The process's registry; components take another one in tests that count from zero."""
