"""Where the CLI finds its store: `--store`, `$CONSTELLATION_STORE`, or the data dir's file."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from constellation.store import Store


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "constellation"


@dataclass
class CliContext:
    store_url: str | None
    data_dir: Path

    def url(self) -> str:
        from constellation.store import default_url

        return self.store_url or default_url(self.data_dir)

    def open_store(self) -> Store:
        # Imported here, not at start-up: `constellation version` never opens a store.
        from constellation.store import open_store

        return open_store(self.url())
