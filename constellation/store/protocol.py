"""The Store protocol: etcd v3's data model, which every backend implements exactly.

Callers depend on this and nothing backend-specific; the conformance suite in tests/store/
runs the same tests against every implementation.
"""

from __future__ import annotations

from typing import Protocol

from constellation.store.types import Record, Watch


class Store(Protocol):
    """A revisioned key-value store.

    Every write bumps one global revision. `update`/`delete` take the mod_revision the caller
    last saw and raise `Conflict` when the key has moved on. Keys attached to a lease vanish
    (with a DELETE event) when the lease expires; keepalives are not writes.
    """

    def get(self, key: str) -> Record | None:
        """The key's current record, or None."""
        ...

    def list(self, prefix: str, revision: int = 0, limit: int = 0) -> tuple[list[Record], int]:
        """Records under `prefix` in key order at `revision` (0: now), at most `limit` (0: all),
        and the revision the list was read at. Raises `Compacted` for a compacted revision."""
        ...

    def create(self, key: str, value: bytes, lease: int | None = None) -> Record:
        """Create the key; raises `AlreadyExists` if present."""
        ...

    def update(self, key: str, value: bytes, expected_mod_revision: int) -> Record:
        """Replace the value if the key's mod_revision is `expected_mod_revision`.
        Raises `NotFound` if absent, `Conflict` if it moved on. The lease is kept."""
        ...

    def delete(self, key: str, expected_mod_revision: int | None = None) -> int:
        """Delete the key (only at `expected_mod_revision`, if given); returns the revision of
        the deletion. Raises `NotFound` if absent, `Conflict` on a mismatch."""
        ...

    def watch(self, prefix: str, start_revision: int = 0) -> Watch:
        """Events under `prefix` from `start_revision` (0: from now on), in revision order, each
        once. Raises `Compacted` when `start_revision` is older than the compaction point."""
        ...

    def grant_lease(self, ttl: int) -> int:
        """A new lease of `ttl` seconds; returns its id."""
        ...

    def keepalive(self, lease: int) -> int:
        """Renew the lease to its full TTL; returns the TTL. Raises `LeaseNotFound`."""
        ...

    def revoke(self, lease: int) -> None:
        """End the lease now, deleting its keys. Raises `LeaseNotFound`."""
        ...

    def compact(self, revision: int) -> None:
        """Drop history before `revision`; reads and watches below it raise `Compacted`."""
        ...

    def current_revision(self) -> int:
        """The store's latest revision."""
        ...

    def close(self) -> None:
        """Release connections and background threads; open watches end."""
        ...
