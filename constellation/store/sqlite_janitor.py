"""Background upkeep of a SQLite store: lease expiry, automatic compaction, WAL checkpoints.

etcd does these inside its server; the embedded store has no server, so every process that
opens the file runs a janitor. Each step is idempotent and short, so several janitors on one
file cooperate instead of fighting.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from constellation.store.errors import StoreError

if TYPE_CHECKING:
    from constellation.store.sqlite import SqliteStore

LEASE_TICK_SECONDS = 0.25
CHECKPOINT_EVERY_TICKS = 20


class Janitor:
    def __init__(self, store: SqliteStore) -> None:
        self._store = store
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="store-janitor", daemon=True)
        self.last_error: StoreError | None = None

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def _run(self) -> None:
        tick = 0
        while not self._stop.is_set():
            try:
                self._store.expire_leases()
                self._store.auto_compact()
                if tick % CHECKPOINT_EVERY_TICKS == 0:
                    self._store.checkpoint()
                self.last_error = None
            except StoreError as error:
                # Transient (busy, closing): the next tick retries; the error stays visible.
                self.last_error = error
            tick += 1
            self._stop.wait(LEASE_TICK_SECONDS)
