"""`constellation logs`: a replica's output, read from its node's agent."""

from __future__ import annotations

import sys
from typing import Annotated
from urllib.parse import urlencode

import typer

from constellation.cli.agent_client import stream
from constellation.cli.errors import CommandError
from constellation.cli.get_cmd import NamespaceOption
from constellation.cli.resources import open_client


def logs(
    ctx: typer.Context,
    replica: Annotated[str, typer.Argument(help="The replica's name, e.g. web-0.")],
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing new output.")
    ] = False,
    tail: Annotated[
        int | None, typer.Option(min=0, help="Only the last N lines (then new ones with -f).")
    ] = None,
    previous: Annotated[
        bool, typer.Option("--previous", "-p", help="The output of the run before the current one.")
    ] = False,
    namespace: NamespaceOption = "default",
) -> None:
    """Print a replica's stdout and stderr (one combined log per run)."""
    from constellation.apis.node import Node
    from constellation.apis.replica import Replica

    client = open_client(ctx)
    try:
        found = client.get(Replica, replica, namespace)
        node_name = found.spec.nodeName
        if node_name is None:
            raise CommandError(f"replica {replica} is not scheduled to a node yet")
        node = client.get(Node, node_name, None)
    finally:
        client.store.close()
    query = {"previous": "1"} if previous else {}
    query |= {"follow": "1"} if follow and not previous else {}
    query |= {"tail": str(tail)} if tail is not None else {}
    path = f"/logs/{namespace}/{replica}?{urlencode(query)}"
    out = sys.stdout.buffer
    for chunk in stream(node, path, timeout=None if follow else 10.0):
        out.write(chunk)
        out.flush()
