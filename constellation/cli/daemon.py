"""What the long-running commands (`server`, `agent`, `controllers`) share: logging set-up,
waiting for SIGTERM or SIGINT, and the agent's options."""

from __future__ import annotations

import logging
import signal
import socket
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from constellation.agent.agent import AgentConfig

LogLevelOption = Annotated[str, typer.Option(help="DEBUG, INFO, WARNING or ERROR.")]
NodeNameOption = Annotated[
    str | None, typer.Option(help="This node's name (default: the hostname).")
]
CgroupParentOption = Annotated[
    str | None,
    typer.Option(
        help="The cgroup under which replicas' cgroups are made (default: constellation/NODE)."
    ),
]
ListenOption = Annotated[
    str, typer.Option(help="Address of the agent's logs and stats endpoint (no authentication).")
]
PortOption = Annotated[int, typer.Option(help="Port of that endpoint (0: any free port).")]
LabelOption = Annotated[
    list[str] | None, typer.Option("--label", help="A node label KEY=VALUE (repeatable).")
]
ReserveCpuOption = Annotated[
    str | None, typer.Option(help="CPU kept from replicas for the system, e.g. 500m.")
]
ReserveMemoryOption = Annotated[
    str | None, typer.Option(help="Memory kept from replicas for the system, e.g. 512Mi.")
]
HeartbeatOption = Annotated[
    int,
    typer.Option(
        min=1, help="Heartbeat lease TTL in seconds: a dead agent's node goes NotReady within it."
    ),
]


def configure_logging(log_level: str) -> None:
    level = logging.getLevelName(log_level.upper())
    if not isinstance(level, int):
        raise typer.BadParameter(f"unknown log level {log_level!r}", param_hint="--log-level")
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def wait_for_signal() -> None:
    """Block the main thread until SIGTERM or SIGINT."""
    done = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: done.set())
    while not done.wait(1.0):
        pass


def agent_config(
    data_dir: Path,
    node_name: str | None,
    labels: list[str] | None,
    cgroup_parent: str | None,
    listen: str,
    port: int,
    heartbeat_ttl: int,
    reserve_cpu: str | None,
    reserve_memory: str | None,
) -> AgentConfig:
    from constellation.agent.agent import AgentConfig
    from constellation.agent.node import NodeConfig
    from constellation.apis.quantity import cpu_millicores, memory_bytes
    from constellation.runtime.spawn import default_init

    name = node_name or socket.gethostname()
    _check_quantity(reserve_cpu, cpu_millicores, "--reserve-cpu")
    _check_quantity(reserve_memory, memory_bytes, "--reserve-memory")
    node = NodeConfig(
        name=name,
        labels=_labels(labels or []),
        reserved_cpu=reserve_cpu,
        reserved_memory=reserve_memory,
    )
    return AgentConfig(
        node=node,
        state_dir=data_dir / "agent" / name,
        cgroup_parent=cgroup_parent or f"constellation/{name}",
        init=default_init(),
        heartbeat_ttl=heartbeat_ttl,
        listen=listen,
        port=port,
    )


def _check_quantity(value: str | None, measure: Callable[[str], int], option: str) -> None:
    try:
        if value is not None:
            measure(value)
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint=option) from None


def _labels(pairs: list[str]) -> dict[str, str]:
    labels = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"{pair!r} is not KEY=VALUE", param_hint="--label")
        labels[key] = value
    return labels
