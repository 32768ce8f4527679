"""Store errors: one small hierarchy every backend raises, so callers never see backend types.

Each message is one line a user can act on; the CLI prints it as is.
"""


class StoreError(Exception):
    """Base of every error a store raises."""


class NotFound(StoreError):
    """The key does not exist (or was deleted)."""


class AlreadyExists(StoreError):
    """`create` found the key already present."""


class Conflict(StoreError):
    """Compare-and-swap failed: the key's mod_revision is not the one expected."""


class Compacted(StoreError):
    """The revision asked for is older than the store's compaction point."""

    def __init__(self, requested: int, compact_revision: int = 0) -> None:
        oldest = f" (oldest available: {compact_revision})" if compact_revision else ""
        super().__init__(f"revision {requested} has been compacted{oldest}")
        self.requested = requested
        self.compact_revision = compact_revision


class LeaseNotFound(StoreError):
    """The lease does not exist or has expired."""


class Unavailable(StoreError):
    """The store cannot be reached, or the connection to it broke."""


class InvalidStoreURL(StoreError):
    """A store URL that cannot be parsed or names an unknown backend."""


class StoreOpenError(StoreError):
    """The store could not be opened: unreadable, not a database, read-only, ..."""
