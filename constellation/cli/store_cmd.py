"""`constellation store`: look at and repair the raw key-value store, as etcdctl does for etcd.

The object verbs (apply, get, describe) work on typed resources; this is the level below,
for operators and for checking what a backend holds.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from constellation.cli import ui
from constellation.cli.context import CliContext

if TYPE_CHECKING:
    from constellation.store import Record, Store

app = typer.Typer(help="Inspect the raw key-value store.", no_args_is_help=True)


def _store(ctx: typer.Context) -> Store:
    context: CliContext = ctx.find_root().obj
    return context.open_store()


def _row(record: Record) -> list[str]:
    return [
        record.key,
        str(record.mod_revision),
        str(record.version),
        str(record.lease or ""),
        record.value.decode(errors="replace"),
    ]


HEADERS = ["KEY", "REVISION", "VERSION", "LEASE", "VALUE"]


@app.command()
def status(ctx: typer.Context) -> None:
    """Show the store URL and its current revision."""
    context: CliContext = ctx.find_root().obj
    store = _store(ctx)
    try:
        ui.table(["STORE", "REVISION"], [[context.url(), str(store.current_revision())]])
    finally:
        store.close()


@app.command()
def put(ctx: typer.Context, key: str, value: str) -> None:
    """Create KEY or replace its value (compare-and-swap, retried on conflict)."""
    from constellation.store import Conflict

    store = _store(ctx)
    try:
        while True:
            current = store.get(key)
            try:
                if current is None:
                    record = store.create(key, value.encode())
                else:
                    record = store.update(key, value.encode(), current.mod_revision)
                break
            except Conflict:
                continue
        ui.line(f"{key} written at revision {record.mod_revision}")
    finally:
        store.close()


@app.command()
def get(ctx: typer.Context, key: str) -> None:
    """Show one key."""
    from constellation.store import NotFound

    store = _store(ctx)
    try:
        record = store.get(key)
        if record is None:
            raise NotFound(f"key {key!r} not found")
        ui.table(HEADERS, [_row(record)])
    finally:
        store.close()


@app.command("list")
def list_(
    ctx: typer.Context,
    prefix: Annotated[str, typer.Argument()] = "",
    revision: Annotated[int, typer.Option("--revision", "-r", help="Read at this revision.")] = 0,
    limit: Annotated[int, typer.Option(help="At most this many keys (0: all).")] = 0,
) -> None:
    """List the keys under PREFIX."""
    store = _store(ctx)
    try:
        records, _ = store.list(prefix, revision=revision, limit=limit)
        ui.table(HEADERS, [_row(record) for record in records])
    finally:
        store.close()


@app.command()
def delete(ctx: typer.Context, key: str) -> None:
    """Delete one key."""
    store = _store(ctx)
    try:
        ui.line(f"{key} deleted at revision {store.delete(key)}")
    finally:
        store.close()


@app.command()
def watch(
    ctx: typer.Context,
    prefix: Annotated[str, typer.Argument()] = "",
    start: Annotated[int, typer.Option("--from", help="Replay from this revision.")] = 0,
    count: Annotated[int, typer.Option(help="Exit after this many events (0: never).")] = 0,
) -> None:
    """Print changes under PREFIX as they happen."""
    store = _store(ctx)
    try:
        with store.watch(prefix, start) as events:
            for seen, event in enumerate(events, 1):
                value = event.record.value.decode(errors="replace")
                ui.line(f"{event.revision} {event.type.value} {event.key} {value}".rstrip())
                if seen == count:
                    break
    finally:
        store.close()


@app.command()
def compact(ctx: typer.Context, revision: int) -> None:
    """Drop the history before REVISION."""
    store = _store(ctx)
    try:
        store.compact(revision)
        ui.line(f"compacted to revision {revision}")
    finally:
        store.close()
