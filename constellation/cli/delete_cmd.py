"""`constellation delete`: by manifest, by name or by selector; `--wait` until gone;
`--cascade` says what happens to the objects' dependents (kubectl's flag and values)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Annotated

import typer

from constellation.cli import ui
from constellation.cli.errors import CommandError
from constellation.cli.get_cmd import NamespaceOption, SelectorOption
from constellation.cli.resources import load_manifests, open_client

if TYPE_CHECKING:
    from constellation.apis.meta import Resource
    from constellation.client.client import Client, Propagation

Target = tuple["type[Resource]", str | None, str]

CASCADES: dict[str, Propagation] = {
    "background": "Background",
    "foreground": "Foreground",
    "orphan": "Orphan",
}


def delete(
    ctx: typer.Context,
    args: Annotated[
        list[str] | None, typer.Argument(help="KIND NAME... or KIND -l SELECTOR.")
    ] = None,
    filename: Annotated[
        list[str] | None, typer.Option("-f", "--filename", help="Delete what these manifests name.")
    ] = None,
    recursive: Annotated[bool, typer.Option("-R", "--recursive")] = False,
    namespace: NamespaceOption = "default",
    selector: SelectorOption = None,
    wait: Annotated[
        bool, typer.Option("--wait", help="Return only when the objects are gone.")
    ] = False,
    timeout: Annotated[float, typer.Option(help="Seconds --wait waits at most.")] = 60.0,
    ignore_not_found: Annotated[bool, typer.Option("--ignore-not-found")] = False,
    cascade: Annotated[
        str,
        typer.Option(
            help="background: delete now, dependents after; foreground: dependents first; "
            "orphan: keep the dependents."
        ),
    ] = "background",
) -> None:
    """Delete objects. Objects with finalizers are marked and go when their finalizers do."""
    if cascade not in CASCADES:
        raise CommandError(f"unknown cascade {cascade!r}: use {', '.join(CASCADES)}")
    targets_of = _targets_from_files if filename else _targets_from_args
    client = open_client(ctx)
    try:
        targets = targets_of(client, filename or args or [], recursive, namespace, selector)
        propagation = CASCADES[cascade]
        gone = [t for t in targets if _delete_one(client, t, ignore_not_found, propagation)]
        if wait:
            _wait_until_gone(client, gone, timeout)
    finally:
        client.store.close()


def _targets_from_files(
    client: Client, paths: list[str], recursive: bool, namespace: str, selector: str | None
) -> list[Target]:
    return [
        (type(o), o.metadata.namespace, o.metadata.name) for o in load_manifests(paths, recursive)
    ]


def _targets_from_args(
    client: Client, args: list[str], recursive: bool, namespace: str, selector: str | None
) -> list[Target]:
    from constellation.apis.registry import lookup
    from constellation.client.selector import parse_selector

    if not args:
        raise CommandError("name what to delete: -f FILE, KIND NAME..., or KIND -l SELECTOR")
    model, names = lookup(args[0]), args[1:]
    if bool(names) == bool(selector):
        raise CommandError("give either names or -l SELECTOR after the kind, not both or neither")
    if selector:
        objects, _ = client.list(model, namespace, parse_selector(selector))
        return [(model, o.metadata.namespace, o.metadata.name) for o in objects]
    return [(model, namespace, name) for name in names]


def _delete_one(
    client: Client, target: Target, ignore_not_found: bool, propagation: Propagation
) -> bool:
    from constellation.store import NotFound

    model, namespace, name = target
    try:
        marked = client.delete(model, name, namespace, propagation=propagation)
    except NotFound:
        if ignore_not_found:
            return False
        raise
    waiting = ", ".join(marked.metadata.finalizers) if marked else ""
    state = f"marked for deletion (waiting for finalizers: {waiting})" if marked else "deleted"
    ui.line(f"{model.KIND.lower()}/{name} {state}")
    return True


def _wait_until_gone(client: Client, targets: list[Target], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    remaining = list(targets)
    while remaining:
        remaining = [t for t in remaining if client.find(t[0], t[2], t[1]) is not None]
        if remaining and time.monotonic() > deadline:
            names = ", ".join(f"{t[0].KIND.lower()}/{t[2]}" for t in remaining)
            raise CommandError(f"timed out after {timeout:g}s waiting for {names} to go")
        if remaining:
            time.sleep(0.1)
