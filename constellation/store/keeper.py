"""Keep a store lease alive from a background thread.

`Store.keepalive` renews a lease once (python3-etcd3's keepalive is a single request, and the
SQLite backend has no stream at all), so anything that holds a lease for longer than its TTL,
such as a node heartbeat or leader election, needs a refresher. This one works with any
backend, rides out a store that is briefly unreachable, and says when the lease is gone so the
holder can stop acting as its owner.
"""

from __future__ import annotations

import logging
import threading
from types import TracebackType

from constellation.store.errors import LeaseNotFound, StoreError
from constellation.store.protocol import Store

log = logging.getLogger(__name__)


class LeaseKeeper:
    """Renews `lease` every `ttl / 3` seconds until stopped or until the lease is lost.

    Three renewals per TTL leave two chances to recover from a failed one before the lease
    expires. After a failure it retries sooner, but never faster than `retry_interval`.
    """

    def __init__(self, store: Store, lease: int, ttl: int, *, retry_interval: float = 0.2):
        self.store = store
        self.lease = lease
        self.interval = max(ttl / 3, 0.05)
        self.retry_interval = min(retry_interval, self.interval)
        self._stop = threading.Event()
        self._lost = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_error: StoreError | None = None
        self.renewals = 0

    @property
    def lost(self) -> bool:
        """True once the store said the lease no longer exists (expired or revoked)."""
        return self._lost.is_set()

    def wait_lost(self, timeout: float | None = None) -> bool:
        return self._lost.wait(timeout)

    def start(self) -> LeaseKeeper:
        if self._thread is not None:
            raise RuntimeError("LeaseKeeper already started")
        self._thread = threading.Thread(
            target=self._run, name=f"lease-keeper-{self.lease:x}", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop renewing (the lease then expires on its own unless revoked)."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()

    def _run(self) -> None:
        delay = self.interval
        while not self._stop.wait(delay):
            delay = self._renew()
            if self._lost.is_set():
                return

    def _renew(self) -> float:
        """One renewal; returns how long to wait before the next."""
        try:
            self.store.keepalive(self.lease)
        except LeaseNotFound as exc:
            self.last_error = exc
            self._lost.set()
            log.warning("lease %x lost: %s", self.lease, exc)
            return 0.0
        except StoreError as exc:
            # Unavailable and friends: the lease may still be alive server-side; keep trying.
            self.last_error = exc
            log.info("lease %x renewal failed, retrying: %s", self.lease, exc)
            return self.retry_interval
        self.renewals += 1
        self.last_error = None
        return self.interval

    def __enter__(self) -> LeaseKeeper:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
