"""Watch fan-out for the SQLite store: one reader thread per store, many watches.

The hub tails the log table from the last revision it delivered and hands each new row to the
watches whose prefix matches. It wakes on a local commit (eventfd) or on another process's
commit (inotify on the WAL file), so delivery across processes takes milliseconds, not a poll
interval. A new watch subscribes first, then replays history up to the hub's position, then
goes live: nothing is missed and nothing is delivered twice.

Under a stream of commits the hub reads in batches: after delivering, it waits a millisecond
before reading again. Reading after every commit took the GIL from the writers at each of
their SQLite calls: with one watch open a write took three times as long (45 -> 150 us), and
the scheduler placed half as many replicas per second. A commit to an idle store is still
read at once.
"""

from __future__ import annotations

import contextlib
import os
import select
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from constellation.store.errors import Compacted, StoreError
from constellation.store.inotify import Inotify
from constellation.store.types import Event, Watch

# Safety net only: inotify and the local eventfd wake the hub on every commit.
FALLBACK_POLL_SECONDS = 1.0
# How long commits gather after a delivery before the hub reads again (see the docstring).
BATCH_LINGER_SECONDS = 0.001

ReadLog = Callable[[int], tuple[list[Event], int]]
"""Reads events after a revision: returns (events in order, compact revision)."""


@dataclass
class _Subscriber:
    prefix: str
    min_revision: int
    watch: Watch = field(init=False)
    lock: threading.Lock = field(default_factory=threading.Lock)
    backlog: list[Event] | None = field(default_factory=list)

    def offer(self, event: Event) -> None:
        if event.revision < self.min_revision or not event.key.startswith(self.prefix):
            return
        with self.lock:
            if self.backlog is not None:
                self.backlog.append(event)
            else:
                self.watch.push(event)

    def go_live(self) -> None:
        with self.lock:
            for event in self.backlog or ():
                self.watch.push(event)
            self.backlog = None


class WatchHub:
    """Tails the log for every watch of one store."""

    def __init__(self, read_log: ReadLog, wal_path: Path, start_revision: int) -> None:
        self._read_log = read_log
        self._wal_path = wal_path
        self._position = start_revision
        self._subscribers: list[_Subscriber] = []
        self._lock = threading.Lock()
        self._wake_fd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="store-watch-hub", daemon=True)
        self._thread.start()

    def subscribe(self, prefix: str, start_revision: int) -> tuple[_Subscriber, int]:
        """Register a watch held back until `go_live`; returns it and the revision that the
        caller's history replay must reach before going live."""
        with self._lock:
            position = self._position
            sub = _Subscriber(prefix, start_revision or position + 1)
            sub.watch = Watch(on_close=self._remover(sub))
            self._subscribers.append(sub)
        return sub, position

    def notify(self) -> None:
        """Wake the hub: a commit happened in this process."""
        os.eventfd_write(self._wake_fd, 1)

    def stop(self) -> None:
        self._stopping = True
        self.notify()
        self._thread.join(timeout=5)
        os.close(self._wake_fd)
        with self._lock:
            subscribers, self._subscribers = self._subscribers, []
        for sub in subscribers:
            sub.watch.close()

    def _remover(self, sub: _Subscriber) -> Callable[[], None]:
        def remove() -> None:
            with self._lock, contextlib.suppress(ValueError):
                self._subscribers.remove(sub)

        return remove

    def _run(self) -> None:
        inotify = self._open_inotify()
        poller = select.poll()
        poller.register(self._wake_fd, select.POLLIN)
        if inotify is not None:
            poller.register(inotify.fd, select.POLLIN)
        try:
            while not self._stopping:
                self._dispatch_new()
                poller.poll(FALLBACK_POLL_SECONDS * 1000)
                with contextlib.suppress(BlockingIOError):
                    os.eventfd_read(self._wake_fd)
                if inotify is not None:
                    inotify.drain()
        finally:
            if inotify is not None:
                inotify.close()

    def _open_inotify(self) -> Inotify | None:
        try:
            return Inotify(self._wal_path)
        except OSError:
            return None  # e.g. a filesystem without inotify: the fallback poll still delivers

    def _dispatch_new(self) -> None:
        while not self._stopping:
            try:
                events, compact_revision = self._read_log(self._position)
            except StoreError as error:
                self._fail_all(error)
                return
            if compact_revision > self._position + 1:
                # This hub fell behind compaction: the watches that wanted what it skipped
                # may have missed events. Not those starting later (e.g. one just opened
                # from after the compaction).
                behind = Compacted(self._position + 1, compact_revision)
                self._fail_all(behind, wanting_before=compact_revision)
                self._position = compact_revision - 1
            if not events:
                return
            with self._lock:
                for event in events:
                    for sub in self._subscribers:
                        sub.offer(event)
                self._position = events[-1].revision
            time.sleep(BATCH_LINGER_SECONDS)  # let the next commits gather

    def _fail_all(self, error: StoreError, wanting_before: int | None = None) -> None:
        """Fail every watch, or only those that want a revision before `wanting_before`."""
        failing: list[_Subscriber] = []
        keep: list[_Subscriber] = []
        with self._lock:
            for sub in self._subscribers:
                spared = wanting_before is not None and sub.min_revision >= wanting_before
                (keep if spared else failing).append(sub)
            self._subscribers = keep
        for sub in failing:
            sub.watch.fail(error)
