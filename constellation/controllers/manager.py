"""The controller manager: every controller in one process, active only while it leads.

Controllers share what is expensive (one informer per kind, one client, one event recorder)
and must all stop together when leadership is lost, so one object owns their lifecycle.
`constellation controllers` runs it alone; the all-in-one server embeds it.

Each leadership term starts from scratch (fresh informers, reconcilers and queues) rather
than resuming the last one: a manager that lost its lease may have missed anything, and a
fresh list is the one state that is certainly right.

Only the kinds some controller watches get an informer: a cache holds every object of its
kind for the whole term, and decodes every change to one. A kind nobody watches (Event) is
read from the store in the rare case a controller asks. Cached replicas share equal
templates (sharing.py).
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import signal
import threading
from collections.abc import Callable, Iterator, Sequence
from types import FrameType
from typing import Any

from constellation.apis.meta import Resource
from constellation.apis.registry import ALL_KINDS
from constellation.apis.replica import Replica
from constellation.client.client import Client
from constellation.controllers.base import (
    ControllerContext,
    DirectLister,
    KeySource,
    Lister,
    Reconciler,
    Settings,
)
from constellation.controllers.events import StoreEventRecorder
from constellation.controllers.indexes import indexes_for
from constellation.controllers.informer import DEFAULT_RESYNC_SECONDS, Informer, all_listed
from constellation.controllers.leader import DEFAULT_TTL, LeaderElector
from constellation.controllers.metrics import REGISTRY, Metrics
from constellation.controllers.runner import Controller
from constellation.controllers.sharing import TemplateSharing
from constellation.store import Store

log = logging.getLogger(__name__)

ReconcilerClass = Callable[[ControllerContext], Reconciler]
"""A reconciler class: constructed with the context (the Reconciler protocol cannot say so)."""

# (module, class) of the first wave of controllers, imported by name so that the manager
# does not depend on every controller at import time.
DEFAULT_RECONCILERS = (
    ("constellation.controllers.replicas", "ReplicasReconciler"),
    ("constellation.controllers.scheduler", "Scheduler"),
    ("constellation.controllers.nodelifecycle", "NodeLifecycle"),
    ("constellation.controllers.gc", "GarbageCollector"),
)
SYNC_TIMEOUT_SECONDS = 60.0
COMPONENT = "controller-manager"


def default_reconcilers() -> list[ReconcilerClass]:
    """The reconciler classes of the modules that exist; a missing module is skipped."""
    classes: list[ReconcilerClass] = []
    for module_name, class_name in DEFAULT_RECONCILERS:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise  # the module exists but imports something missing: a real bug
            log.warning("controller module %s not found; skipping it", module_name)
            continue
        classes.append(getattr(module, class_name))
    return classes


class _Term:
    """What runs while this manager leads: informers and controllers."""

    def __init__(self, manager: ControllerManager) -> None:
        client = Client(manager.store)
        # Filled in once the reconcilers say what they watch; none reads it before.
        listers: dict[type[Resource], Lister[Resource]] = {}
        recorder = StoreEventRecorder(client, COMPONENT, manager.settings.event_ttl_seconds)
        self.context = ControllerContext(client, listers, recorder, manager.settings)
        reconcilers = [cls(self.context) for cls in manager.reconciler_classes]
        self.informers: dict[type[Resource], Informer[Any]] = {
            kind: Informer(
                client,
                kind,
                manager.resync_seconds,
                metrics=manager.metrics,
                transform=TemplateSharing() if kind is Replica else None,
                indexes=indexes_for(kind),
            )
            for kind in watched_kinds(reconcilers)
        }
        listers.update({kind: DirectLister(client, kind) for kind in ALL_KINDS})
        listers.update(self.informers)
        self.controllers = [
            Controller(
                reconciler,
                self.context,
                self.informers,
                max(manager.workers, getattr(reconciler, "MIN_WORKERS", 1)),
                metrics=manager.metrics,
            )
            for reconciler in reconcilers
        ]
        self.sources: list[KeySource] = []

    def start(self, wanted: Callable[[], bool]) -> bool:
        """Start informers, wait for their caches, then the controllers; False if the term
        stopped being `wanted` first."""
        for informer in self.informers.values():
            informer.start()
        while not all_listed(list(self.informers.values()), 0.5):
            if not wanted():
                return False
        if not wanted():
            return False
        for controller in self.controllers:
            controller.start()
            for source in _sources(controller.reconciler):
                source.start(controller.queue.add)
                self.sources.append(source)
        return True

    def halt(self) -> None:
        """Stop handing out work now, without waiting (safe from any thread)."""
        for controller in self.controllers:
            controller.halt()

    def stop(self) -> None:
        self.halt()
        for source in self.sources:
            source.stop()
        for controller in self.controllers:
            controller.stop()
            # Held-back work (e.g. the scheduler's queued events) is written while the store
            # is still open: a late write on a closed etcd client must never happen.
            stop = getattr(controller.reconciler, "stop", None)
            if callable(stop):
                stop()
        for informer in self.informers.values():
            informer.stop()


def watched_kinds(reconcilers: Sequence[Reconciler]) -> list[type[Resource]]:
    """The kinds `reconcilers` reconcile or watch, each once."""
    return list(dict.fromkeys(kind for r in reconcilers for kind in (r.KIND, *r.watches())))


def _sources(reconciler: object) -> Sequence[KeySource]:
    """The reconciler's extra key sources (optional, see base.KeySource)."""
    sources = getattr(reconciler, "sources", None)
    return list(sources()) if callable(sources) else []


class ControllerManager:
    """Runs `reconciler_classes` (default: `default_reconcilers()`) while leading."""

    def __init__(
        self,
        store: Store,
        settings: Settings | None = None,
        reconciler_classes: Sequence[ReconcilerClass] | None = None,
        identity: str | None = None,
        *,
        workers: int = 2,
        lease_ttl: int = DEFAULT_TTL,
        resync_seconds: float = DEFAULT_RESYNC_SECONDS,
        metrics: Metrics = REGISTRY,
    ) -> None:
        self.store = store
        self.settings = settings or Settings()
        self.reconciler_classes = (
            list(reconciler_classes) if reconciler_classes is not None else default_reconcilers()
        )
        self.workers = workers
        self.resync_seconds = resync_seconds
        self.metrics = metrics
        self._stop = threading.Event()
        self._changed = threading.Condition()
        self._term: _Term | None = None
        self.elector = LeaderElector(
            store,
            identity,
            ttl=lease_ttl,
            on_started_leading=self._started_leading,
            on_stopped_leading=self._stopped_leading,
        )

    @property
    def identity(self) -> str:
        return self.elector.identity

    @property
    def is_leader(self) -> bool:
        return self.elector.is_leader

    @property
    def controllers(self) -> list[Controller]:
        term = self._term
        return list(term.controllers) if term else []

    def stop(self) -> None:
        """Make `run` return (from any thread or a signal handler)."""
        self._stop.set()
        with self._changed:
            self._changed.notify_all()

    def run(self) -> None:
        """Campaign and run controllers while leading, until `stop()` or SIGTERM/SIGINT."""
        with _signals_stop(self.stop):
            self.elector.start()
            try:
                while not self._stop.is_set():
                    self._serve_one_term()
            finally:
                self.elector.stop()
                log.info("controller manager %s stopped", self.identity)

    def _serve_one_term(self) -> None:
        with self._changed:
            self._changed.wait_for(lambda: self.is_leader or self._stop.is_set())
        if self._stop.is_set():
            return
        term = _Term(self)
        self._term = term
        try:
            if term.start(self._wanted):
                log.info("controllers running: %s", ", ".join(c.name for c in term.controllers))
                with self._changed:
                    self._changed.wait_for(lambda: not self.is_leader or self._stop.is_set())
        finally:
            term.stop()
            self._term = None

    def _wanted(self) -> bool:
        return self.is_leader and not self._stop.is_set()

    # Elector callbacks: they run in the elector's thread.

    def _started_leading(self) -> None:
        with self._changed:
            self._changed.notify_all()

    def _stopped_leading(self) -> None:
        # Before anything else: no reconcile may start once the lease is in doubt.
        term = self._term
        if term is not None:
            term.halt()
        with self._changed:
            self._changed.notify_all()


@contextlib.contextmanager
def _signals_stop(stop: Callable[[], None]) -> Iterator[None]:
    """SIGTERM and SIGINT call `stop` while inside (only possible in the main thread)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        stop()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
