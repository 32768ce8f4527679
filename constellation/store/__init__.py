"""The store: etcd v3's data model with an embedded SQLite backend and an etcd backend.

`open_store(url)` is the only way the rest of Constellation gets one; see `protocol.Store`.
"""

from __future__ import annotations

from constellation.store.errors import (
    AlreadyExists,
    Compacted,
    Conflict,
    InvalidStoreURL,
    LeaseNotFound,
    NotFound,
    StoreError,
    StoreOpenError,
    Unavailable,
)
from constellation.store.protocol import Store
from constellation.store.types import Event, EventType, Record, Watch
from constellation.store.url import EtcdURL, SqliteURL, default_url, parse_store_url

__all__ = [
    "AlreadyExists",
    "Compacted",
    "Conflict",
    "EtcdURL",
    "Event",
    "EventType",
    "InvalidStoreURL",
    "LeaseNotFound",
    "NotFound",
    "Record",
    "SqliteURL",
    "Store",
    "StoreError",
    "StoreOpenError",
    "Unavailable",
    "Watch",
    "default_url",
    "open_store",
    "parse_store_url",
]


def open_store(url: str) -> Store:
    """Open the backend `url` names. Raises `InvalidStoreURL`, `StoreOpenError`, `Unavailable`."""
    parsed = parse_store_url(url)
    if isinstance(parsed, SqliteURL):
        from constellation.store.sqlite import SqliteStore

        return SqliteStore.open(parsed)
    assert isinstance(parsed, EtcdURL)
    from constellation.store.etcd import EtcdStore

    return EtcdStore.open(parsed)
