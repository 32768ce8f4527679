"""`constellation diff`: what `apply` would change, as a unified diff of YAML.

Exit status as `diff(1)` and `kubectl diff`: 0 no difference, 1 differences, 2 an error.
"""

from __future__ import annotations

import difflib
from typing import TYPE_CHECKING, Annotated, Any

import typer

from constellation.cli import ui
from constellation.cli.apply_cmd import FileOption
from constellation.cli.errors import report_user_error
from constellation.cli.resources import load_manifests, open_client, ref, to_yaml

if TYPE_CHECKING:
    from constellation.apis.meta import Resource


def diff(
    ctx: typer.Context,
    filename: FileOption,
    recursive: Annotated[bool, typer.Option("-R", "--recursive")] = False,
) -> None:
    """Show what applying the manifests would change; exit 1 when anything would."""
    try:
        changed = _diff_all(ctx, filename, recursive)
    except Exception as error:
        if not report_user_error(error):
            raise
        raise typer.Exit(2) from None
    raise typer.Exit(1 if changed else 0)


def _diff_all(ctx: typer.Context, paths: list[str], recursive: bool) -> bool:
    from constellation.client.apply import apply

    objects = load_manifests(paths, recursive)
    client = open_client(ctx)
    changed = False
    try:
        for obj in objects:
            result = apply(client, obj, dry_run=True)
            before = _shown(result.live) if result.live is not None else []
            text = _unified(ref(obj), before, _shown(result.object))
            if text:
                ui.line(text.rstrip())
                changed = True
    finally:
        client.store.close()
    return changed


def _shown(obj: Resource) -> list[str]:
    """The object as YAML lines, without what changes on every write."""
    document: dict[str, Any] = obj.to_dict()
    for field in ("resourceVersion", "generation"):
        document["metadata"].pop(field, None)
    return to_yaml([document]).splitlines(keepends=True)


def _unified(name: str, before: list[str], after: list[str]) -> str:
    return "".join(difflib.unified_diff(before, after, f"live/{name}", f"applied/{name}"))
