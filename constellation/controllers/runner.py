"""Runs one reconciler: informer events in, keys through the work queue, workers calling
`reconcile` with a deadline, outcomes turned into requeues and counted.

Reconcilers only decide what to do about one key; everything about when and how often they
run (merging bursts of events, backing off failures, delayed requeues, timeouts) lives here,
once, so that every controller behaves the same way under load and failure.

Batching (Kubernetes' Job controller, `syncJobBatchPeriod`): a reconciler whose key stands
for many objects (an Instance for its 1,000 Replicas) reads all of them on every pass, and a
burst of their changes would run pass after pass, each over the whole set. One that sets a
`BATCH_SECONDS` class attribute has the changes that only report progress queued that long
later, all merged into one pass: changes of the watched kinds, and of its own kind when only
the status moved (the generation is the one its status has observed). A new object, a spec
change and a deletion are reconciled at once.

Timeouts: a Python thread cannot be killed. Each worker hands its reconcile call to an
executor thread and waits up to `Settings.reconcile_timeout_seconds`. When the call overruns,
the worker counts a timeout, schedules the key again with backoff, and moves on with a fresh
executor; the overrunning call keeps running in its abandoned (daemon) thread until it
returns, and its result is discarded. The key stays marked as in progress until that
happens, so the retry never runs alongside it: one key is never reconciled twice at once.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from constellation.apis.meta import Resource
from constellation.controllers.base import (
    ControllerContext,
    Key,
    Mapper,
    Reconciler,
    Result,
    TerminalError,
)
from constellation.controllers.informer import EventHandler, Informer
from constellation.controllers.metrics import REGISTRY, Metrics, Outcome
from constellation.controllers.workqueue import WorkQueue

log = logging.getLogger(__name__)

Informers = Mapping[type[Resource], Informer[Any]]


class _Call:
    """One reconcile handed to an executor; whichever of finishing and abandoning happens
    first decides who owns the key's `done`."""

    def __init__(self, reconciler: Reconciler, key: Key) -> None:
        self.reconciler = reconciler
        self.key = key
        self.result: Result | None = None
        self.error: BaseException | None = None
        self._finished = threading.Event()
        self._lock = threading.Lock()
        self._abandoned = False

    def run(self) -> bool:
        """Run it; True if the caller gave up waiting meanwhile (the late result is ours)."""
        try:
            self.result = self.reconciler.reconcile(self.key)
        except BaseException as exc:  # reported to the worker, never raised in this thread
            self.error = exc
        with self._lock:
            self._finished.set()
            return self._abandoned

    def wait(self, timeout: float) -> bool:
        return self._finished.wait(timeout)

    def abandon(self) -> bool:
        """Give up on the call; False if it finished just now after all."""
        with self._lock:
            if self._finished.is_set():
                return False
            self._abandoned = True
            return True


class _Executor:
    """A thread that runs a worker's reconcile calls one after another until one of them is
    abandoned; then it finishes that call, reports it late and ends."""

    def __init__(self, name: str, on_late: Callable[[_Call], None]) -> None:
        self._inbox: queue.SimpleQueue[_Call | None] = queue.SimpleQueue()
        self._on_late = on_late
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, call: _Call) -> None:
        self._inbox.put(call)

    def close(self) -> None:
        self._inbox.put(None)

    def _run(self) -> None:
        while (call := self._inbox.get()) is not None:
            if call.run():
                self._on_late(call)
                return


def status_only(obj: Resource) -> bool:
    """Whether the object's spec is one its status says was already seen (observedGeneration
    is its generation): what changed since is progress, not a new wish."""
    status = getattr(obj, "status", None)
    observed = getattr(status, "observedGeneration", None)
    return observed is not None and observed == obj.metadata.generation


class Controller:
    """Wires `reconciler` to informers and runs `workers` threads over one work queue.

    Construct it before the informers start, so their initial list queues every key.
    """

    def __init__(
        self,
        reconciler: Reconciler,
        ctx: ControllerContext,
        informers: Informers,
        workers: int = 1,
        *,
        queue: WorkQueue | None = None,
        metrics: Metrics = REGISTRY,
    ) -> None:
        self.reconciler = reconciler
        self.name = reconciler.NAME
        self.ctx = ctx
        self.queue = queue if queue is not None else WorkQueue()  # an empty queue is falsy
        self.workers = max(1, workers)
        self.batch_seconds: float = getattr(reconciler, "BATCH_SECONDS", 0.0)
        self.metrics = metrics
        self._threads: list[threading.Thread] = []
        self.metrics.track_queue(self.name, lambda: len(self.queue))
        self._wire(informers)

    def _wire(self, informers: Informers) -> None:
        informers[self.reconciler.KIND].add_handler(self._on_primary)
        for kind, mapper in self.reconciler.watches().items():
            informers[kind].add_handler(self._mapped(mapper))

    def _on_primary(self, obj: Resource, deleted: bool) -> None:
        if deleted or not self.batch_seconds or not status_only(obj):
            self.queue.add(Key.of(obj))
        else:
            self.queue.add_after(Key.of(obj), self.batch_seconds)

    def _mapped(self, mapper: Mapper) -> EventHandler:
        def handler(obj: Resource, deleted: bool) -> None:
            keys: Iterable[Key] = mapper(obj)
            for key in keys:
                self.queue.add_after(key, self.batch_seconds)

        return handler

    # -- lifecycle -----------------------------------------------------------------------

    def start(self) -> Controller:
        for index in range(self.workers):
            thread = threading.Thread(
                target=self._work, name=f"{self.name}-worker-{index}", daemon=True
            )
            thread.start()
            self._threads.append(thread)
        return self

    def halt(self) -> None:
        """Hand out no more keys (does not wait): what losing leadership needs at once."""
        self.queue.shutdown()

    def stop(self, timeout: float | None = None) -> None:
        """Halt, then wait for the workers to finish their current reconcile (each at most
        the reconcile timeout, after which it is abandoned as described above)."""
        self.halt()
        limit = self.ctx.settings.reconcile_timeout_seconds + 1 if timeout is None else timeout
        deadline = time.monotonic() + limit
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    @property
    def alive_workers(self) -> int:
        return sum(thread.is_alive() for thread in self._threads)

    # -- workers --------------------------------------------------------------------------

    def _work(self) -> None:
        executor = self._new_executor()
        try:
            while (key := self.queue.get()) is not None:
                if not self._process(key, executor):
                    executor = self._new_executor()
        finally:
            executor.close()

    def _new_executor(self) -> _Executor:
        return _Executor(f"{self.name}-reconcile", self._late)

    def _process(self, key: Key, executor: _Executor) -> bool:
        """Reconcile `key` once; False if the call overran and took `executor` with it."""
        call = _Call(self.reconciler, key)
        started = time.monotonic()
        executor.submit(call)
        timeout = self.ctx.settings.reconcile_timeout_seconds
        if not call.wait(timeout) and call.abandon():
            self.metrics.reconciled(self.name, "timeout", time.monotonic() - started)
            log.warning(
                "%s: reconcile of %s overran %.1fs; retrying later", self.name, key, timeout
            )
            # The key is still in progress (the late call owns `done`): this retry waits.
            self.queue.add_rate_limited(key)
            return False
        outcome = self._settle(call)
        self.metrics.reconciled(self.name, outcome, time.monotonic() - started)
        self.queue.done(key)
        return True

    def _settle(self, call: _Call) -> Outcome:
        """Turn a finished call into requeues; returns its outcome."""
        key, error = call.key, call.error
        if isinstance(error, TerminalError):
            self.queue.forget(key)
            log.warning("%s: %s failed for good, not retrying: %s", self.name, key, error)
            return "terminal"
        if error is not None:
            self.queue.add_rate_limited(key)
            log.error("%s: reconcile of %s failed; retrying", self.name, key, exc_info=error)
            return "error"
        self.queue.forget(key)
        if call.result is not None and call.result.requeue_after is not None:
            self.queue.add_after(key, call.result.requeue_after)
            return "requeue"
        return "success"

    def _late(self, call: _Call) -> None:
        """An abandoned call returned: release its key (its retry is already scheduled)."""
        if call.error is not None:
            log.warning(
                "%s: overrun reconcile of %s ended with: %r", self.name, call.key, call.error
            )
        else:
            log.info("%s: overrun reconcile of %s ended; result discarded", self.name, call.key)
        self.queue.done(call.key)
