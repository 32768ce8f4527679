"""`constellation top`: cpu and memory in use by replicas or nodes, asked of each node's agent
(cpu is a rate over a short window the agent measures)."""

from __future__ import annotations

import enum
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Annotated, Any

import typer

from constellation.cli import ui
from constellation.cli.agent_client import fetch_json
from constellation.cli.errors import CommandError
from constellation.cli.get_cmd import AllNamespacesOption, NamespaceOption
from constellation.cli.resources import open_client

if TYPE_CHECKING:
    from constellation.apis.node import Node

WINDOW_SECONDS = 0.5


class What(enum.StrEnum):
    replicas = "replicas"
    nodes = "nodes"


def top(
    ctx: typer.Context,
    what: Annotated[What, typer.Argument(help="replicas or nodes.")],
    namespace: NamespaceOption = "default",
    all_namespaces: AllNamespacesOption = False,
) -> None:
    """Show cpu (millicores) and memory in use, per replica or per node."""
    from constellation.apis.node import Node

    client = open_client(ctx)
    try:
        nodes = [n for n in client.list(Node)[0] if n.ready() == "True"]
    finally:
        client.store.close()
    if not nodes:
        raise CommandError("no Ready node to ask")
    stats = _gather(nodes)
    if what is What.nodes:
        ui.table(["NAME", "CPU(m)", "MEMORY", "MEMORY%", "REPLICAS"], _node_rows(stats))
        return
    wanted = None if all_namespaces else namespace
    rows = _replica_rows(stats, wanted)
    headers = ["NAMESPACE", "NAME", "NODE", "CPU(m)", "MEMORY", "PEAK", "PIDS", "OOM"]
    ui.table(
        headers if all_namespaces else headers[1:], [r[0 if all_namespaces else 1 :] for r in rows]
    )


def _gather(nodes: list[Node]) -> dict[str, Any]:
    def ask(node: Node) -> Any:
        return fetch_json(node, f"/stats?window={WINDOW_SECONDS}")

    with ThreadPoolExecutor(max(1, min(16, len(nodes)))) as pool:
        return dict(zip((n.metadata.name for n in nodes), pool.map(ask, nodes), strict=True))


def _node_rows(stats: dict[str, Any]) -> list[list[str]]:
    rows = []
    for name, answer in sorted(stats.items()):
        node = answer["node"]
        percent = 100 * node["memoryBytes"] / max(1, node["memoryTotalBytes"])
        rows.append(
            [
                name,
                str(node["cpuMillicores"]),
                _mib(node["memoryBytes"]),
                f"{percent:.0f}%",
                str(node["replicas"]),
            ]
        )
    return rows


def _replica_rows(stats: dict[str, Any], namespace: str | None) -> list[list[str]]:
    rows = []
    for node_name, answer in stats.items():
        for ref, usage in answer["replicas"].items():
            ns, name = ref.split("/", 1)
            if namespace is not None and ns != namespace:
                continue
            rows.append(
                [
                    ns,
                    name,
                    node_name,
                    str(usage["cpuMillicores"]),
                    _mib(usage["memoryBytes"]),
                    _mib(usage["memoryPeakBytes"]),
                    str(usage["pids"]),
                    str(usage["oomKills"]),
                ]
            )
    return sorted(rows)


def _mib(count: int) -> str:
    return f"{count / 2**20:.1f}Mi"
