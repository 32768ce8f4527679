"""The sync loop: when to run a pass, and the lock that keeps one process per sync.

A full pass runs at start, every `interval`, and, for a folder, as soon as writes to it settle
(watchfiles, which batches changes until none came for `SETTLE_MS`). Between passes a store
watch sees changes to the objects the sync manages and restores a drifted one at once, so
drift lasts milliseconds rather than an interval; the interval pass is the safety net for
anything a watch could miss. Our own writes are recognised by their revision and skipped.

Only one process syncs a name at a time: it holds `/gitops/<name>/lock`, a key on a short
store lease (leader election, as the controller manager does). A second process waits; one
killed with -9 releases it when its lease expires, within `LOCK_TTL` seconds.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable
from pathlib import Path

from constellation.controllers.leader import LeaderElector
from constellation.gitops.inventory import lock_key
from constellation.gitops.sync import PassReport, Syncer
from constellation.store import Compacted, StoreError

log = logging.getLogger(__name__)

LOCK_TTL = 3
# Writes to a folder count as settled when none came for this long.
SETTLE_MS = 50
# A folder written to without pause is still applied this often.
MAX_BATCH_MS = 1000
# How long the folder watch waits quietly before it says it is in place (and again after).
WATCH_READY_MS = 200
WATCH_PREFIX = "/registry/"

Reporter = Callable[[PassReport], None]


class LockTimeout(Exception):
    """Another process holds the sync's lock."""


class _SourceChanged:
    """A trigger: the folder changed."""


SOURCE_CHANGED = _SourceChanged()
Trigger = _SourceChanged | str  # or the store key of a managed object that changed


class SyncLoop:
    def __init__(
        self, syncer: Syncer, interval: float, report: Reporter, folder: Path | None = None
    ) -> None:
        self.syncer = syncer
        self.interval = interval
        self.report = report
        self.folder = folder
        self.stop = threading.Event()
        self._triggers: queue.SimpleQueue[Trigger] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self.folder_watched = threading.Event()

    def run(self) -> None:
        """Sync until `stop` is set. The store watch starts after the first pass, from the
        revision that pass read: earlier history is the pass's business."""
        if self.folder is not None:
            self._start(self._watch_folder, "gitops-folder-watch")
            # A write between the first pass and the watch being in place would be missed.
            self.folder_watched.wait(timeout=5)
        try:
            while not self.stop.is_set():
                self.report(self.syncer.sync())
                if not any(t.name == "gitops-store-watch" for t in self._threads):
                    self._start(self._watch_store, "gitops-store-watch")
                self._until_next_pass()
        finally:
            self.stop.set()
            for thread in self._threads:
                thread.join(timeout=5)

    def _until_next_pass(self) -> None:
        """Handle object changes until the interval ends or the source changes."""
        deadline = time.monotonic() + self.interval
        while not self.stop.is_set() and (left := deadline - time.monotonic()) > 0:
            try:
                trigger = self._triggers.get(timeout=min(left, 0.5))
            except queue.Empty:
                continue
            if isinstance(trigger, _SourceChanged):
                return
            self._correct(trigger)

    def _correct(self, key: str) -> None:
        try:
            report = self.syncer.correct(key)
        except StoreError as error:
            report = PassReport(self.syncer.inventory.revision, errors=[f"store: {error}"])
        if report is not None:
            self.report(report)

    def _start(self, target: Callable[[], None], name: str) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    # -- what triggers work ------------------------------------------------------------------

    def _watch_folder(self) -> None:
        """Queue a pass whenever writes to the folder settle. watchfiles yields an empty set
        when `rust_timeout` passes quietly; the first one says the watch is in place."""
        import watchfiles

        assert self.folder is not None
        while not self.stop.is_set():
            try:
                for changes in watchfiles.watch(
                    self.folder,
                    step=SETTLE_MS,
                    debounce=MAX_BATCH_MS,
                    stop_event=self.stop,
                    rust_timeout=WATCH_READY_MS,
                    yield_on_timeout=True,
                ):
                    self.folder_watched.set()
                    if changes:
                        self._triggers.put(SOURCE_CHANGED)
            except (OSError, RuntimeError) as error:
                # The folder itself went away: the interval pass reports it; look again later.
                log.info("watching %s: %s", self.folder, error)
                self.folder_watched.set()
                self.stop.wait(1.0)

    def _watch_store(self) -> None:
        """Managed objects' changes, from the revision the last pass covered."""
        store = self.syncer.client.store
        while not self.stop.is_set():
            try:
                with store.watch(WATCH_PREFIX, self.syncer.covered_revision + 1) as watch:
                    while not self.stop.is_set():
                        event = watch.next_event(0.5)
                        if event is not None and self._foreign(event.key, event.revision):
                            self._triggers.put(event.key)
            except Compacted:
                self._triggers.put(SOURCE_CHANGED)  # missed changes: a full pass sees them
            except StoreError as error:
                log.info("store watch failed, watching again: %s", error)
                self.stop.wait(1.0)

    def _foreign(self, key: str, revision: int) -> bool:
        """A change to a managed object that neither the last pass saw nor the sync made."""
        syncer = self.syncer
        if key not in syncer.managed_keys or revision <= syncer.covered_revision:
            return False
        return revision not in syncer.own_writes


def hold_lock(
    syncer: Syncer, wait: float | None, on_lost: Callable[[], None] | None = None
) -> LeaderElector:
    """Take the sync's lock, waiting at most `wait` seconds (None: as long as it takes);
    `LockTimeout` if another process still holds it then. `on_lost` runs if the lock is
    lost later (or released)."""
    elector = LeaderElector(
        syncer.client.store,
        key=lock_key(syncer.name),
        ttl=LOCK_TTL,
        retry_seconds=0.5,
        on_stopped_leading=on_lost,
    ).start()
    deadline = None if wait is None else time.monotonic() + wait
    while not elector.is_leader:
        if deadline is not None and time.monotonic() > deadline:
            elector.stop()
            raise LockTimeout(
                f"gitops sync {syncer.name} is running in another process (it holds "
                f"{lock_key(syncer.name)}); stop it first"
            )
        time.sleep(0.05)
    return elector


def release_lock(elector: LeaderElector) -> None:
    with contextlib.suppress(StoreError):
        elector.stop()
