"""An informer: one kind's objects, listed once, then kept current by a watch (client-go's).

Reconcilers read every object they need on every call; reading the store each time would
cost a round trip per read and load the store with every controller's every read. The
informer keeps a local cache instead, and tells handlers what changed so keys get queued.

It watches from the revision it listed at, so nothing between the list and the watch is
missed. A broken watch (`Unavailable`: store restarted, failover) resumes from the last
revision seen, so nothing is lost or delivered twice. When that history is gone (`Compacted`)
it relists and diffs against the cache, synthesizing the adds, updates and deletes it missed.
A periodic resync re-delivers every cached object, as a safety net for lost work.

A `transform` (client-go's SetTransform) may rewrite each object before it is cached, e.g.
to share parts that many objects hold equal (see sharing.py). `indexes` (client-go's
Indexers, see indexes.py) are kept current with the cache. A `scope` (see scope.py) keeps
only the objects a process needs.
"""

from __future__ import annotations

import builtins
import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

from constellation.apis.meta import Resource
from constellation.client.client import Client, ObjectWatch, WatchEventType
from constellation.client.codec import Envelope, kind_prefix, to_object
from constellation.client.selector import Selector
from constellation.controllers.base import Key
from constellation.controllers.indexes import Index
from constellation.controllers.metrics import REGISTRY, InformerCounter, Metrics
from constellation.controllers.scope import Scope, ScopedWatch
from constellation.store import Compacted, StoreError, Unavailable

log = logging.getLogger(__name__)

R = TypeVar("R", bound=Resource)

EventHandler = Callable[[Resource, bool], None]
"""Called with (object, deleted) for every add, update, delete and resync of an object."""

Transform = Callable[[R], R]
"""Rewrites an object as it arrives, before it is cached or handed to handlers."""

DEFAULT_RESYNC_SECONDS = 300.0
# A quiet watch wakes this often at most (stop closes the watch, which wakes it at once):
# an idle manager has seven informers, and waking each twice a second cost 0.2% of a core.
MAX_WAIT_SECONDS = 5.0


class Informer(Generic[R]):
    """A cache of every `kind` object, also a `Lister` over it.

    `get` returns a copy (callers change what they get, then write it); `peek` and `list`
    return the cached objects themselves for speed (copying 10,000 objects per call costs
    0.6 s): treat them as read-only and `model_copy(deep=True)` one before changing it.
    """

    def __init__(
        self,
        client: Client,
        kind: type[R],
        resync_seconds: float = DEFAULT_RESYNC_SECONDS,
        *,
        metrics: Metrics = REGISTRY,
        min_backoff: float = 0.05,
        max_backoff: float = 2.0,
        transform: Transform[R] | None = None,
        indexes: Sequence[Index] = (),
        scope: Scope | None = None,
    ) -> None:
        self.client = client
        self.kind = kind
        self.resync_seconds = resync_seconds
        self._metrics = metrics
        self._min_backoff = min_backoff
        self._max_backoff = max_backoff
        self._transform = transform
        self._scope = scope
        self._lock = threading.Lock()
        self._cache: dict[Key, R] = {}
        # index name -> value -> the objects found under it
        self._indexes = {index.name: index for index in indexes}
        self._indexed: dict[str, dict[str, dict[Key, R]]] = {name: {} for name in self._indexes}
        self._handlers: list[EventHandler] = []
        self._revision = 0  # last revision the cache reflects
        self._listed = False  # False: (re)list before watching
        self._synced = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._watch: ObjectWatch[R] | None = None

    # -- lifecycle -----------------------------------------------------------------------

    def add_handler(self, handler: EventHandler) -> None:
        """Register before `start` to see the initial list; later ones see later changes."""
        with self._lock:
            self._handlers.append(handler)

    def start(self) -> Informer[R]:
        """Run in a daemon thread. After `stop`, starting again resumes from the last
        revision with the cache kept (relisting only if that history is gone)."""
        if self._thread is not None and self._thread.is_alive():
            raise RuntimeError(f"informer for {self.kind.KIND} already running")
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._run, name=f"informer-{self.kind.KIND}", daemon=True
        )
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        with self._lock:
            watch = self._watch
        if watch is not None:
            watch.close()  # wakes the thread blocked in next_event
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def has_synced(self) -> bool:
        return self._synced.is_set()

    def wait_for_sync(self, timeout: float | None = None) -> bool:
        return self._synced.wait(timeout)

    @property
    def revision(self) -> int:
        """The store revision the cache reflects."""
        return self._revision

    # -- Lister ---------------------------------------------------------------------------

    def get(self, name: str, namespace: str | None = "default") -> R | None:
        obj = self.peek(name, namespace)
        return obj.model_copy(deep=True) if obj is not None else None

    def peek(self, name: str, namespace: str | None = "default") -> R | None:
        """The cached object itself, not a copy: read-only (see the class docstring)."""
        key = Key(namespace if self.kind.NAMESPACED else None, name)
        with self._lock:
            return self._cache.get(key)

    def list(self, namespace: str | None = None, selector: Selector | None = None) -> list[R]:
        with self._lock:
            objects = list(self._cache.values())
        if namespace is not None and self.kind.NAMESPACED:
            objects = [obj for obj in objects if obj.metadata.namespace == namespace]
        if selector is not None:
            objects = [obj for obj in objects if selector.matches(obj.metadata.labels)]
        return objects

    def by_index(self, index: Index, value: str) -> builtins.list[R]:
        """The cached objects found under `value` in `index` (read-only, as `peek`'s); a
        scan if this informer does not keep that index."""
        if index.name not in self._indexes:
            return [obj for obj in self.list() if value in index.values(obj)]
        with self._lock:
            return list(self._indexed[index.name].get(value, {}).values())

    def keys(self) -> builtins.list[Key]:
        with self._lock:
            return list(self._cache)

    # -- the loop -------------------------------------------------------------------------

    def _run(self) -> None:
        backoff = self._min_backoff
        next_resync = time.monotonic() + self.resync_seconds
        while not self._stop.is_set():
            try:
                if not self._listed:
                    self._relist()
                next_resync = self._watch_until_broken(next_resync)
                backoff = self._min_backoff
            except Compacted:
                log.info("%s watch history compacted; relisting", self.kind.KIND)
                self._listed = False
            except Exception as exc:
                # The store is down or the watch broke: keep the cache and the revision and
                # retry after a pause. Unavailable is the expected case; anything else is
                # logged louder but handled the same way, so the cache never dies silently.
                self._log_failure(exc, backoff)
                self._count("watch_restarts")
                self._stop.wait(backoff)
                backoff = min(backoff * 2, self._max_backoff)

    def _log_failure(self, exc: Exception, backoff: float) -> None:
        kind = self.kind.KIND
        if isinstance(exc, Unavailable):
            log.info("%s watch broke, resuming in %.2fs: %s", kind, backoff, exc)
        elif isinstance(exc, StoreError):
            log.warning("%s watch failed, retrying in %.2fs: %s", kind, backoff, exc)
        else:
            log.exception("%s informer failed, retrying in %.2fs", kind, backoff)

    def _relist(self) -> None:
        """List everything and deliver the difference from the cache."""
        objects, revision = self._list()
        if self._transform is not None:
            objects = [self._transform(obj) for obj in objects]
        fresh = {Key.of(obj): obj for obj in objects}
        with self._lock:
            old = self._cache
            self._cache = fresh
            self._reindex()
            self._revision = revision
            self._listed = True
        self._count("relists")
        for key, obj in fresh.items():
            previous = old.get(key)
            if (
                previous is None
                or previous.metadata.resourceVersion != obj.metadata.resourceVersion
            ):
                self._deliver(obj, deleted=False)
        for key, obj in old.items():
            if key not in fresh:
                self._deliver(obj, deleted=True)
        self._synced.set()

    def _list(self) -> tuple[builtins.list[R], int]:
        if self._scope is None:
            return self.client.list(self.kind)
        records, revision = self.client.store.list(kind_prefix(self.kind, None))
        documents = ((Envelope.decode(r.value).object, r.mod_revision) for r in records)
        scope = self._scope
        return [to_object(self.kind, d, rev) for d, rev in documents if scope(d)], revision

    def _watch_until_broken(self, next_resync: float) -> float:
        """Apply watch events until stopped; raises what broke the watch. Returns when the
        next resync is due, which survives watch restarts."""
        watch = self._open_watch()
        with self._lock:
            self._watch = watch
        try:
            while not self._stop.is_set():
                wait = min(MAX_WAIT_SECONDS, max(0.0, next_resync - time.monotonic()))
                event = watch.next_event(wait)
                if event is not None:
                    self._apply(event.type, event.object)
                elif _closed_under_us(watch) and not self._stop.is_set():
                    # The store was closed: a closed watch answers None at once, forever.
                    raise Unavailable(f"{self.kind.KIND} watch closed by the store")
                if time.monotonic() >= next_resync:
                    self._resync()
                    next_resync = time.monotonic() + self.resync_seconds
            return next_resync
        finally:
            with self._lock:
                self._watch = None
            watch.close()

    def _open_watch(self) -> ObjectWatch[R]:
        # Not `client.watch`: its resource_version 0 means "from now on", but a list of a
        # store never written to is at revision 0 and must be followed from revision 1, or
        # a write between the list and the watch is lost.
        watch = self.client.store.watch(kind_prefix(self.kind, None), self._revision + 1)
        if self._scope is not None:
            watch = ScopedWatch(watch, self._scope, self._holds, self._skipped)
        return ObjectWatch(self.kind, watch, None)

    def _holds(self, namespace: str | None, name: str) -> bool:
        with self._lock:
            return Key(namespace if self.kind.NAMESPACED else None, name) in self._cache

    def _skipped(self, revision: int) -> None:
        """An event outside the scope: the cache reflects its revision all the same."""
        with self._lock:
            self._revision = max(self._revision, revision)

    def _apply(self, type_: WatchEventType, obj: R) -> None:
        if self._transform is not None:
            obj = self._transform(obj)
        key = Key.of(obj)
        deleted = type_ is WatchEventType.DELETED
        with self._lock:
            self._unindex(key, self._cache.get(key))
            if deleted:
                self._cache.pop(key, None)
            else:
                self._cache[key] = obj
                self._index(key, obj)
            self._revision = int(obj.metadata.resourceVersion or self._revision)
        self._count("events")
        self._deliver(obj, deleted)

    # -- indexes (under the lock) ---------------------------------------------------------

    def _reindex(self) -> None:
        self._indexed = {name: {} for name in self._indexes}
        for key, obj in self._cache.items():
            self._index(key, obj)

    def _index(self, key: Key, obj: R) -> None:
        for name, index in self._indexes.items():
            for value in index.values(obj):
                self._indexed[name].setdefault(value, {})[key] = obj

    def _unindex(self, key: Key, obj: R | None) -> None:
        if obj is None:
            return
        for name, index in self._indexes.items():
            found = self._indexed[name]
            for value in index.values(obj):
                objects = found.get(value)
                if objects is not None:
                    objects.pop(key, None)
                    if not objects:
                        del found[value]

    def _resync(self) -> None:
        with self._lock:
            objects = list(self._cache.values())
        self._count("resyncs")
        for obj in objects:
            self._deliver(obj, deleted=False)

    def _deliver(self, obj: Resource, deleted: bool) -> None:
        with self._lock:
            handlers = list(self._handlers)
        for handler in handlers:
            try:
                handler(obj, deleted)
            except Exception:
                # One broken handler must not stop the cache, nor the other handlers.
                log.exception("%s handler failed on %s", self.kind.KIND, Key.of(obj))

    def _count(self, counter: InformerCounter) -> None:
        self._metrics.informer(self.kind.KIND, counter)


def _closed_under_us(watch: ObjectWatch[R]) -> bool:
    # ObjectWatch does not say whether its store watch ended; the store's Watch does.
    return bool(watch._watch.closed)


def all_listed(informers: Sequence[Informer[Resource]], timeout: float) -> bool:
    """Wait until every informer has synced, at most `timeout` seconds in all."""
    deadline = time.monotonic() + timeout
    return all(inf.wait_for_sync(max(0.0, deadline - time.monotonic())) for inf in informers)
