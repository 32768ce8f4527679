"""Functions run in child processes by the store tests (importable under the spawn method)."""

from __future__ import annotations

from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier

from constellation.store import Conflict, open_store


def cas_once(
    url: str, key: str, expected: int, value: bytes, barrier: Barrier, results: Queue[bool]
) -> None:
    """Open the store, wait for every racer, try one compare-and-swap; report if it won."""
    store = open_store(url)
    try:
        barrier.wait(timeout=30)
        try:
            store.update(key, value, expected)
        except Conflict:
            results.put(False)
            return
        results.put(True)
    finally:
        store.close()


def increment(url: str, key: str, times: int) -> int:
    """Increment a counter `times` times with compare-and-swap retries; returns conflicts seen."""
    store = open_store(url)
    conflicts = 0
    try:
        done = 0
        while done < times:
            record = store.get(key)
            assert record is not None
            try:
                store.update(key, str(int(record.value) + 1).encode(), record.mod_revision)
                done += 1
            except Conflict:
                conflicts += 1
        return conflicts
    finally:
        store.close()
