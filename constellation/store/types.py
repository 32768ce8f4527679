"""Values the store hands out: key records, watch events and the watch handle.

Records mirror etcd's KeyValue so that both backends report the same revision bookkeeping.
"""

from __future__ import annotations

import enum
import queue
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Generic, Self, TypeVar

from constellation.store.errors import StoreError


@dataclass(frozen=True, slots=True)
class Record:
    """One key at one revision."""

    key: str
    value: bytes
    create_revision: int
    mod_revision: int
    version: int
    lease: int = 0


class EventType(enum.Enum):
    PUT = "PUT"
    DELETE = "DELETE"


@dataclass(frozen=True, slots=True)
class Event:
    """A change to one key. For DELETE, `record.value` is empty and `record.mod_revision` is the
    revision of the deletion; `prev_value` is the value before the change (None on create)."""

    type: EventType
    record: Record
    prev_value: bytes | None

    @property
    def revision(self) -> int:
        return self.record.mod_revision

    @property
    def key(self) -> str:
        return self.record.key


T = TypeVar("T")


class Stream(ABC, Generic[T]):
    """A closeable stream of items: poll with `next_event(timeout)`, or iterate (blocking)
    until it is closed. Every watch-like handle in Constellation is one."""

    @abstractmethod
    def next_event(self, timeout: float | None = None) -> T | None:
        """The next item, or None when `timeout` passes first or the stream is closed."""

    @abstractmethod
    def close(self) -> None: ...

    def __iter__(self) -> Iterator[T]:
        while (item := self.next_event()) is not None:
            yield item

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Closed:
    """Sentinel queued by `Watch.close` to wake a blocked reader."""


class Watch(Stream[Event]):
    """An open watch: iterate it (blocking) or poll it with `next_event(timeout)`; close it.

    Backends feed it from their own threads with `push` and end it with `fail`. Iteration ends
    after `close()`; a backend failure is raised to the reader once every earlier event has been
    read, so a caller that re-watches from its last revision + 1 loses nothing.
    """

    def __init__(self, on_close: Callable[[], None] | None = None) -> None:
        self._queue: queue.SimpleQueue[Event | StoreError | _Closed] = queue.SimpleQueue()
        self._on_close = on_close
        self._closed = threading.Event()
        self._failed: StoreError | None = None

    def push(self, event: Event) -> None:
        self._queue.put(event)

    def fail(self, error: StoreError) -> None:
        self._queue.put(error)

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    def next_event(self, timeout: float | None = None) -> Event | None:
        """The next event, or None when `timeout` passes first or the watch is closed."""
        if self._failed is not None:
            raise self._failed
        if self._closed.is_set() and self._queue.empty():
            return None
        try:
            item = self._queue.get(timeout=timeout)
        except queue.Empty:
            return None
        if isinstance(item, StoreError):
            self._failed = item
            raise item
        if isinstance(item, _Closed):
            return None
        return item

    def close(self) -> None:
        if self._closed.is_set():
            return
        self._closed.set()
        if self._on_close is not None:
            self._on_close()
        self._queue.put(_Closed())
