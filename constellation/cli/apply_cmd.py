"""`constellation apply`: make the store match manifests, as `kubectl apply` does."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from constellation.cli import ui
from constellation.cli.errors import CommandError
from constellation.cli.resources import load_manifests, open_client, ref

if TYPE_CHECKING:
    from constellation.apis.meta import Resource
    from constellation.client.selector import Selector

FileOption = Annotated[
    list[str],
    typer.Option("-f", "--filename", help="A manifest file, a directory of them, or - for stdin."),
]


def apply(
    ctx: typer.Context,
    filename: FileOption,
    recursive: Annotated[
        bool, typer.Option("-R", "--recursive", help="Read directories recursively.")
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Report what would change; write nothing.")
    ] = False,
    prune: Annotated[
        bool,
        typer.Option(
            "--prune",
            help="Delete objects an earlier apply with the same -l selector created "
            "that the manifests no longer list.",
        ),
    ] = False,
    selector: Annotated[
        str | None, typer.Option("-l", "--selector", help="The apply set, for --prune.")
    ] = None,
) -> None:
    """Create or update objects from manifests (three-way merge with the last apply)."""
    from constellation.apis.registry import USER_KINDS
    from constellation.client.apply import apply as apply_object
    from constellation.client.apply import prune as prune_objects
    from constellation.client.selector import parse_selector

    if prune and not selector:
        raise CommandError("--prune needs -l SELECTOR naming the apply set")
    apply_set = parse_selector(selector) if selector else None
    objects = load_manifests(filename, recursive)
    if apply_set is not None:
        _check_in_set(objects, apply_set)
    client = open_client(ctx)
    suffix = " (dry run)" if dry_run else ""
    try:
        for obj in objects:
            result = apply_object(client, obj, dry_run=dry_run, apply_set=apply_set)
            ui.line(f"{ref(obj)} {result.outcome.value}{suffix}")
        if prune and apply_set is not None:
            keep = {obj.key_parts() for obj in objects}
            for gone in prune_objects(client, list(USER_KINDS), apply_set, keep, dry_run=dry_run):
                ui.line(f"{gone.kind.KIND.lower()}/{gone.name} pruned{suffix}")
    finally:
        client.store.close()


def _check_in_set(objects: list[Resource], apply_set: Selector) -> None:
    """Every object applied with -l must carry the labels that select it, or a later prune
    with the same selector could never find it again."""
    outside = [ref(obj) for obj in objects if not apply_set.matches(obj.metadata.labels)]
    if outside:
        raise CommandError(
            f"{', '.join(outside)} not selected by -l {apply_set.text}: "
            "label them or leave them out of this apply set"
        )
