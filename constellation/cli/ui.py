"""All terminal rendering: rich on a terminal, plain text when piped. The only rich importer.

rich is imported on first use, not at start-up: `constellation version` must not pay for it.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console


@functools.cache
def _console() -> Console:
    from rich.console import Console

    return Console(highlight=False, soft_wrap=True)


def error(message: str) -> None:
    """One line on stderr, no traceback: what every user-facing failure prints."""
    first_line = message.strip().splitlines()[0] if message.strip() else "unknown error"
    print(f"error: {first_line}", file=sys.stderr)


def line(text: str) -> None:
    print(text)


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    if not sys.stdout.isatty():
        _plain_table(headers, rows)
        return
    from rich.table import Table

    grid = Table(box=None, pad_edge=False, header_style="bold")
    for header in headers:
        grid.add_column(header)
    for row in rows:
        grid.add_row(*row)
    _console().print(grid)


def _plain_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    print(grid(headers, rows))


def grid(headers: Sequence[str], rows: Sequence[Sequence[str]], indent: str = "") -> str:
    """Aligned plain-text columns: what tables look like when piped, and in `describe`."""
    columns = zip(headers, *rows, strict=False)
    widths = [max(len(str(cell)) for cell in column) for column in columns]
    return "\n".join(
        indent + "   ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
        for row in [headers, *rows]
    )
