"""`constellation get`: list objects as tables, YAML, JSON or names; `-w` follows changes."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from constellation.cli import ui
from constellation.cli.errors import CommandError
from constellation.cli.resources import age, as_list, open_client, ref, to_json, to_yaml

if TYPE_CHECKING:
    from constellation.apis.meta import Resource
    from constellation.client.client import Client
    from constellation.client.selector import Selector

OUTPUTS = ("table", "wide", "yaml", "json", "name")

NamespaceOption = Annotated[
    str, typer.Option("-n", "--namespace", help="The namespace to look in.")
]
AllNamespacesOption = Annotated[
    bool, typer.Option("-A", "--all-namespaces", help="Look in every namespace.")
]
SelectorOption = Annotated[
    str | None, typer.Option("-l", "--selector", help="Label selector, e.g. app=web,tier!=db.")
]


def get(
    ctx: typer.Context,
    kind: Annotated[str, typer.Argument(help="instance|service|scalepolicy|alert|replica|...")],
    name: Annotated[str | None, typer.Argument(help="One object's name.")] = None,
    namespace: NamespaceOption = "default",
    all_namespaces: AllNamespacesOption = False,
    selector: SelectorOption = None,
    output: Annotated[
        str, typer.Option("-o", "--output", help="table, wide, yaml, json or name.")
    ] = "table",
    watch: Annotated[
        bool, typer.Option("-w", "--watch", help="After listing, print changes as they happen.")
    ] = False,
) -> None:
    """Show objects of one kind."""
    from constellation.apis.registry import lookup
    from constellation.client.selector import parse_selector

    if output not in OUTPUTS:
        raise CommandError(f"unknown output format {output!r}: use {', '.join(OUTPUTS)}")
    model = lookup(kind)
    scope = None if all_namespaces else namespace
    chosen = parse_selector(selector) if selector else None
    client = open_client(ctx)
    try:
        objects, revision = _read(client, model, name, scope, chosen)
        printer = _Printer(output, show_namespace=all_namespaces and model.NAMESPACED)
        printer.print_all(objects, single=name is not None)
        if watch:
            _follow(client, model, name, scope, chosen, revision, printer)
    finally:
        client.store.close()


def _read(
    client: Client,
    model: type[Resource],
    name: str | None,
    scope: str | None,
    selector: Selector | None,
) -> tuple[list[Resource], int]:
    if name is None:
        objects, revision = client.list(model, scope, selector)
        return sorted(
            objects, key=lambda o: (o.metadata.namespace or "", o.metadata.name)
        ), revision
    obj = client.get(model, name, scope or "default")
    return [obj], int(obj.metadata.resourceVersion or 0)


def _follow(
    client: Client,
    model: type[Resource],
    name: str | None,
    scope: str | None,
    selector: Selector | None,
    revision: int,
    printer: _Printer,
) -> None:
    with client.watch(model, scope, revision, selector) as events:
        for event in events:
            if name is None or event.object.metadata.name == name:
                printer.print_change(event.object, deleted=event.type.value == "DELETED")


class _Printer:
    """Renders objects in one output format; tables keep their columns across a watch."""

    def __init__(self, output: str, show_namespace: bool) -> None:
        self.output = output
        self.show_namespace = show_namespace

    def print_all(self, objects: list[Resource], single: bool) -> None:
        if self.output in ("table", "wide"):
            if objects:
                ui.table(self._headers(type(objects[0])), [self._row(o) for o in objects])
            else:
                ui.line("No resources found.")
        elif self.output == "json":
            ui.line(to_json(objects[0].to_dict() if single else as_list(objects)))
        elif self.output == "yaml":
            if objects:
                ui.line(to_yaml([o.to_dict() for o in objects]).rstrip())
        else:
            for obj in objects:
                ui.line(ref(obj))

    def print_change(self, obj: Resource, deleted: bool) -> None:
        if self.output in ("table", "wide"):
            row = self._row(obj)
            ui.line("   ".join(row + (["(deleted)"] if deleted else [])))
        elif self.output == "name":
            ui.line(ref(obj) + (" deleted" if deleted else ""))
        else:
            self.print_all([obj], single=True)

    def _headers(self, model: type[Resource]) -> list[str]:
        from constellation.apis.registry import columns

        wide = self.output == "wide"
        headers = ["NAME", *(c.header for c in columns(model, wide)), "AGE"]
        return ["NAMESPACE", *headers] if self.show_namespace else headers

    def _row(self, obj: Resource) -> list[str]:
        from constellation.apis.registry import row

        cells = [
            obj.metadata.name,
            *row(obj, self.output == "wide"),
            age(obj.metadata.creationTimestamp),
        ]
        return [obj.metadata.namespace or "", *cells] if self.show_namespace else cells
