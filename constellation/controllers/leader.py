"""Leader election on a store lease: several controller processes, one active.

Two active controller managers would fight: both scale, both schedule, and compare-and-swap
only turns that into a storm of conflicts. So a manager reconciles only while it holds
`/leases/controller-manager`, a key attached to a short store lease (TTL 3 s by default) and
holding its identity. The leader renews the lease every ttl/3; if it dies, the lease expires
and the store deletes the key. Standbys watch the key and try to create it the moment it is
deleted (the DELETE event of the expiry), with a periodic retry as a safety net: takeover
happens within the TTL plus the store's expiry granularity.

Never two leaders: the leader steps down as soon as the store says its lease is gone or the
key holds someone else, and also when it has not had a renewal confirmed for `renew_deadline`
(2/3 of the TTL). A renewal sent at time t keeps the lease alive until at least t + ttl, so a
leader cut off from the store stops before its lease can expire and a standby can take over.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable

from constellation.store import AlreadyExists, EventType, LeaseNotFound, Store, StoreError

log = logging.getLogger(__name__)

LEASE_KEY = "/leases/controller-manager"
DEFAULT_TTL = 3

Callback = Callable[[], None]


def default_identity() -> str:
    """hostname-pid-random: unique even for a restarted process that got the same pid."""
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(4)}"


class _Term:
    """One period of leadership: renews the lease in its own thread, so that a slow
    callback or a store call that hangs never delays the step-down decision."""

    def __init__(
        self, store: Store, key: str, identity: str, lease: int, ttl: int, wake: threading.Event
    ) -> None:
        self.store, self.key, self.identity, self.lease = store, key, identity, lease
        self.wake = wake  # set when the lease is lost, so the leader reacts at once
        self.interval = ttl / 3
        self.renew_deadline = ttl * 2 / 3
        self.confirmed_at = time.monotonic()  # the create just now renewed it
        self.lost = threading.Event()
        self.ended = threading.Event()
        self.thread = threading.Thread(target=self._renew_loop, name="leader-renew", daemon=True)
        self.thread.start()

    def valid(self) -> bool:
        overdue = time.monotonic() - self.confirmed_at > self.renew_deadline
        return not self.lost.is_set() and not overdue

    def time_left(self) -> float:
        return max(0.0, self.confirmed_at + self.renew_deadline - time.monotonic())

    def _renew_loop(self) -> None:
        while not self.ended.wait(self.interval) and not self.lost.is_set():
            self._renew_once()

    def _renew_once(self) -> None:
        sent = time.monotonic()
        try:
            self.store.keepalive(self.lease)
            record = self.store.get(self.key)
        except LeaseNotFound:
            log.warning("leader lease %x expired", self.lease)
            self._lose()
            return
        except StoreError as exc:
            log.info("leader lease renewal failed, retrying: %s", exc)
            return
        if record is None or record.lease != self.lease or record.value != self.identity.encode():
            log.warning("leader key %s no longer ours", self.key)
            self._lose()
            return
        self.confirmed_at = sent

    def _lose(self) -> None:
        self.lost.set()
        self.wake.set()

    def end(self, release: bool) -> None:
        """Stop renewing; `release`: revoke the lease so a standby takes over at once."""
        self.ended.set()
        if release:
            with contextlib.suppress(StoreError):
                self.store.revoke(self.lease)


class LeaderElector:
    """Campaigns for `key` until stopped; calls `on_started_leading` when it wins and
    `on_stopped_leading` when it loses or stops (callbacks run in the elector's thread and
    should return quickly)."""

    def __init__(
        self,
        store: Store,
        identity: str | None = None,
        *,
        key: str = LEASE_KEY,
        ttl: int = DEFAULT_TTL,
        retry_seconds: float = 2.0,
        on_started_leading: Callback | None = None,
        on_stopped_leading: Callback | None = None,
    ) -> None:
        self.store = store
        self.identity = identity or default_identity()
        self.key = key
        self.ttl = ttl
        self.retry_seconds = retry_seconds
        self._on_started = on_started_leading
        self._on_stopped = on_stopped_leading
        self._stop = threading.Event()
        self._wake = threading.Event()  # stop or a lost lease: the leader loop looks again
        self._leading = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def is_leader(self) -> bool:
        return self._leading.is_set()

    def start(self) -> LeaderElector:
        self._thread = threading.Thread(target=self.run, name="leader-elector", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop campaigning; a leader steps down and releases the lease."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def run(self) -> None:
        """Campaign until `stop`, in the calling thread."""
        while not self._stop.is_set():
            lease = self._try_acquire()
            if lease is not None:
                self._lead(lease)

    # -- campaigning ----------------------------------------------------------------------

    def _try_acquire(self) -> int | None:
        """Create the key if nobody holds it; otherwise wait for it to go. Returns our lease
        if we now lead."""
        try:
            record = self.store.get(self.key)
            if record is not None:
                self._wait_for_vacancy(record.mod_revision)
                return None
            return self._create()
        except StoreError as exc:
            log.info("leader election: store unavailable, retrying: %s", exc)
            self._stop.wait(min(self.retry_seconds, 1.0))
            return None

    def _create(self) -> int | None:
        lease = self.store.grant_lease(self.ttl)
        try:
            self.store.create(self.key, self.identity.encode(), lease=lease)
        except AlreadyExists:
            with contextlib.suppress(StoreError):
                self.store.revoke(lease)  # lost the race: don't leave a lease to expire
            return None
        except BaseException:
            with contextlib.suppress(StoreError):
                self.store.revoke(lease)
            raise
        return lease

    def _wait_for_vacancy(self, seen_revision: int) -> None:
        """Until the key is deleted after `seen_revision` (lease expiry, a leader stepping
        down), at most `retry_seconds`, or until stopped."""
        deadline = time.monotonic() + self.retry_seconds
        with self.store.watch(self.key, seen_revision + 1) as watch:
            while not self._stop.is_set() and (left := deadline - time.monotonic()) > 0:
                event = watch.next_event(min(left, 0.5))
                if event is not None and event.key == self.key and event.type is EventType.DELETE:
                    return

    # -- leading ---------------------------------------------------------------------------

    def _lead(self, lease: int) -> None:
        self._wake.clear()
        term = _Term(self.store, self.key, self.identity, lease, self.ttl, self._wake)
        log.info("%s is now the leader (lease %x)", self.identity, lease)
        self._leading.set()
        try:
            self._call(self._on_started)
            while not self._stop.is_set() and term.valid():
                # Sleeps until the renewal deadline, which each confirmed renewal pushes on.
                self._wake.wait(term.time_left() + 0.001)
        finally:
            self._leading.clear()
            log.info("%s stops leading (%s)", self.identity, _why(term, self._stop))
            self._call(self._on_stopped)
            term.end(release=self._stop.is_set() and not term.lost.is_set())

    def _call(self, callback: Callback | None) -> None:
        if callback is None:
            return
        try:
            callback()
        except Exception:
            log.exception("leader election callback failed")


def _why(term: _Term, stop: threading.Event) -> str:
    if stop.is_set():
        return "stopped"
    return "lease lost" if term.lost.is_set() else "renewals overdue"
