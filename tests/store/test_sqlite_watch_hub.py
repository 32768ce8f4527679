"""A SQLite watch hub that fell behind a compaction fails only the watches that wanted the
history it skipped: a watch opened from after the compaction keeps going (an informer that
relisted after a compaction was failed again, and relisted twice)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from constellation.store import Compacted
from constellation.store.sqlite_watch import WatchHub
from constellation.store.types import Event, EventType, Record


@dataclass
class Log:
    """The store's log as the hub reads it; the test moves it forward."""

    compacted: int = 0
    events: list[Event] = field(default_factory=list)

    def read(self, after: int) -> tuple[list[Event], int]:
        return [e for e in self.events if e.revision > after], self.compacted


def test_a_hub_behind_compaction_fails_only_watches_that_wanted_the_lost_history(
    tmp_path: Path,
) -> None:
    wal = tmp_path / "state.db-wal"
    wal.write_bytes(b"")
    log = Log()

    hub = WatchHub(log.read, wal, start_revision=3)
    try:
        old, _ = hub.subscribe("/k/", 4)
        new, _ = hub.subscribe("/k/", 7)
        old.go_live()
        new.go_live()
        # Revisions 4-6 were written and compacted away before the hub read them.
        log.compacted = 6
        log.events = [Event(EventType.PUT, Record("/k/a", b"v", 7, 7, 1), None)]
        hub.notify()

        with pytest.raises(Compacted):
            old.watch.next_event(5)
        event = new.watch.next_event(5)
        assert event is not None and event.revision == 7
        assert not new.watch.closed
    finally:
        hub.stop()
