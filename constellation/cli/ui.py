"""All terminal rendering: rich on a terminal, plain text when piped. The only rich importer."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from rich.console import Console
from rich.table import Table

_out = Console(highlight=False, soft_wrap=True)
_err = Console(stderr=True, highlight=False, soft_wrap=True)


def error(message: str) -> None:
    """One line on stderr, no traceback: what every user-facing failure prints."""
    first_line = message.strip().splitlines()[0] if message.strip() else "unknown error"
    _err.print(f"error: {first_line}", markup=False)


def line(text: str) -> None:
    _out.print(text, markup=False)


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    if not sys.stdout.isatty():
        _plain_table(headers, rows)
        return
    grid = Table(box=None, pad_edge=False, header_style="bold")
    for header in headers:
        grid.add_column(header)
    for row in rows:
        grid.add_row(*row)
    _out.print(grid)


def _plain_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    widths = [
        max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=False)
    ]
    for row in [headers, *rows]:
        print(
            "   ".join(
                str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)
            ).rstrip()
        )
