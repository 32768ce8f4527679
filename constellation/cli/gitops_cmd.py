"""`constellation gitops`: keep a folder or a git branch applied; show how each sync is doing."""

from __future__ import annotations

import json
import re
import signal
import sys
import threading
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from constellation.cli import ui
from constellation.cli.context import CliContext
from constellation.cli.errors import CommandError

if TYPE_CHECKING:
    from constellation.client.client import Client
    from constellation.gitops.inventory import Inventory
    from constellation.gitops.sources import Source
    from constellation.gitops.sync import PassReport, Syncer

app = typer.Typer(
    help="Keep a folder or a git repository applied, with safe prune and drift correction.",
    no_args_is_help=True,
)

# How long `--once` waits for a sync of the same name killed with -9 to release its lock.
ONCE_LOCK_WAIT_SECONDS = 5.0


@app.command()
def sync(
    ctx: typer.Context,
    source: Annotated[
        str, typer.Argument(help="A folder, or a git URL (file://, https://, ssh://, user@host:).")
    ],
    name: Annotated[
        str | None,
        typer.Option(help="The sync's name, which keys its inventory (default: from SOURCE)."),
    ] = None,
    path: Annotated[str, typer.Option(help="Only this folder inside the source.")] = "",
    branch: Annotated[
        str | None,
        typer.Option(help="The git branch to follow (default: the remote's default branch)."),
    ] = None,
    interval: Annotated[
        float,
        typer.Option(
            min=0.1, help="Seconds between full passes: git polling and drift correction."
        ),
    ] = 30.0,
    prune: Annotated[
        bool,
        typer.Option("--prune/--no-prune", help="Delete managed objects that left the source."),
    ] = True,
    allow_empty: Annotated[
        bool,
        typer.Option(
            "--allow-empty", help="Let a source with no objects prune everything it managed."
        ),
    ] = False,
    once: Annotated[
        bool, typer.Option("--once", help="Apply once and exit (non-zero if anything failed).")
    ] = False,
) -> None:
    """Apply SOURCE and keep the store equal to it."""
    from constellation.client.client import Client
    from constellation.gitops.runner import SyncLoop, hold_lock, release_lock
    from constellation.gitops.sync import Syncer

    context: CliContext = ctx.find_root().obj
    sync_name = _checked_name(name or _name_from(source))
    if branch is not None and not _is_git(source):
        raise CommandError("--branch applies to a git URL, not a folder")
    client = Client(context.open_store())
    try:
        syncer = Syncer(
            client,
            _source(source, sync_name, branch, path, context.data_dir),
            sync_name,
            prune=prune,
            allow_empty=allow_empty,
        )
        if once:
            _sync_once(syncer)
            return
        sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
        folder = None if _is_git(source) else Path(source)
        loop = SyncLoop(syncer, interval, _report, folder)
        lost = threading.Event()
        elector = hold_lock(syncer, wait=None, on_lost=lambda: _lost(loop.stop, lost))
        ui.line(f"gitops sync {sync_name}: following {syncer.source.description}")
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: loop.stop.set())
        try:
            loop.run()
        finally:
            loop.stop.set()
            release_lock(elector)
        if lost.is_set():
            raise CommandError(f"gitops sync {sync_name}: lost its lock in the store; stopped")
    finally:
        client.store.close()


def _sync_once(syncer: Syncer) -> None:
    from constellation.gitops.runner import hold_lock, release_lock

    elector = hold_lock(syncer, wait=ONCE_LOCK_WAIT_SECONDS)
    try:
        report = syncer.sync()
    finally:
        release_lock(elector)
    _report(report, always=True)
    if not report.ok:
        raise typer.Exit(1)


def _lost(stop: threading.Event, lost: threading.Event) -> None:
    if not stop.is_set():
        lost.set()
        stop.set()


def _report(report: PassReport, always: bool = False) -> None:
    for change in report.changes:
        ui.line(change)
    for problem in report.errors:
        ui.error(problem)
    if report.ok and (report.changes or always):
        ui.line(f"synced {_short(report.revision)}: {report.objects} objects")


def _source(source: str, name: str, branch: str | None, path: str, data_dir: Path) -> Source:
    from constellation.gitops.sources import FolderSource, GitSource

    if _is_git(source):
        return GitSource(source, data_dir / "gitops" / name, branch, path)
    if not Path(source).is_dir():
        raise CommandError(f"{source}: not a folder or a git URL (file://, https://, ssh://)")
    return FolderSource(Path(source), path)


def _is_git(source: str) -> bool:
    from constellation.gitops.sources import is_git_url

    return is_git_url(source)


def _name_from(source: str) -> str:
    """`manifests` for ./manifests, `app` for https://host/team/app.git."""
    last = source.rstrip("/").rsplit("/", 1)[-1].rsplit(":", 1)[-1].removesuffix(".git")
    cleaned = re.sub(r"[^a-z0-9-]+", "-", last.lower()).strip("-")
    return cleaned or "default"


def _checked_name(name: str) -> str:
    if not re.fullmatch(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?", name):
        raise CommandError(
            f"invalid sync name {name!r}: use at most 63 lowercase letters, digits and '-' "
            "(pass --name)"
        )
    return name


@app.command()
def status(
    ctx: typer.Context,
    name: Annotated[str | None, typer.Argument(help="One sync (default: every sync).")] = None,
    output: Annotated[str, typer.Option("-o", "--output", help="table or json.")] = "table",
) -> None:
    """Show each sync's source, revision applied, objects managed, drift and last error."""
    from constellation.gitops import inventory

    if output not in ("table", "json"):
        raise CommandError(f"-o {output}: use table or json")
    client = _client(ctx)
    try:
        found = inventory.load_all(client.store)
    finally:
        client.store.close()
    if name is not None:
        found = [item for item in found if item.name == name]
        if not found:
            raise CommandError(f"no gitops sync named {name}")
    if output == "json":
        ui.line(json.dumps([_as_json(item) for item in found], indent=2))
        return
    headers = ["NAME", "SOURCE", "REVISION", "APPLIED", "OBJECTS", "DRIFT", "LAST ERROR"]
    ui.table(headers, [_row(item) for item in found])


def _client(ctx: typer.Context) -> Client:
    from constellation.client.client import Client

    context: CliContext = ctx.find_root().obj
    return Client(context.open_store())


def _as_json(item: Inventory) -> dict[str, object]:
    return {
        "name": item.name,
        "source": item.source,
        "revision": item.revision,
        "appliedAt": item.applied_at,
        "objects": len(item.objects),
        "driftCorrected": item.drift_corrected,
        "lastError": item.last_error,
        "lastErrorAt": item.last_error_at,
        "managed": [
            {"kind": o.kind, "namespace": o.namespace, "name": o.name, "uid": o.uid}
            for o in item.objects
        ],
    }


def _row(item: Inventory) -> list[str]:
    from constellation.cli.resources import age

    applied = age(datetime.fromisoformat(item.applied_at)) if item.applied_at else "<never>"
    error = item.last_error[0] if item.last_error else "<none>"
    more = f" (+{len(item.last_error) - 1} more)" if len(item.last_error) > 1 else ""
    return [
        item.name,
        item.source,
        _short(item.revision),
        applied,
        str(len(item.objects)),
        str(item.drift_corrected),
        error + more,
    ]


def _short(revision: str | None) -> str:
    if revision is None:
        return "<none>"
    return revision.removeprefix("sha256:")[:12]
