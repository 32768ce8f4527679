"""`constellation server`: everything one machine needs in one process: the embedded store
(or an etcd cluster), the controllers and this node's agent."""

from __future__ import annotations

import threading
from typing import Annotated

import typer

from constellation.cli.context import CliContext
from constellation.cli.daemon import (
    CgroupParentOption,
    HeartbeatOption,
    LabelOption,
    ListenOption,
    LogLevelOption,
    NodeNameOption,
    PortOption,
    ReserveCpuOption,
    ReserveMemoryOption,
    agent_config,
    configure_logging,
    wait_for_signal,
)
from constellation.controllers.base import DEFAULT_NODE_GRACE_SECONDS


def server(
    ctx: typer.Context,
    node_name: NodeNameOption = None,
    label: LabelOption = None,
    cgroup_parent: CgroupParentOption = None,
    listen: ListenOption = "127.0.0.1",
    port: PortOption = 0,
    heartbeat_ttl: HeartbeatOption = 3,
    reserve_cpu: ReserveCpuOption = None,
    reserve_memory: ReserveMemoryOption = None,
    node_grace_seconds: Annotated[
        float, typer.Option(help="How long a node may be NotReady before its replicas move.")
    ] = DEFAULT_NODE_GRACE_SECONDS,
    log_level: LogLevelOption = "INFO",
) -> None:
    """Run store, controllers and agent until SIGINT or SIGTERM; replicas keep running after
    it and are adopted by the next start."""
    from constellation.agent.agent import Agent
    from constellation.controllers.base import Settings
    from constellation.controllers.manager import ControllerManager

    configure_logging(log_level)
    context: CliContext = ctx.find_root().obj
    config = agent_config(
        context.data_dir,
        node_name,
        label,
        cgroup_parent,
        listen,
        port,
        heartbeat_ttl,
        reserve_cpu,
        reserve_memory,
    )
    store = context.open_store()
    manager = ControllerManager(store, Settings(node_grace_seconds=node_grace_seconds))
    controllers = threading.Thread(target=manager.run, name="controller-manager", daemon=True)
    try:
        running = Agent(store, config).start()
        controllers.start()
        try:
            wait_for_signal()
        finally:
            manager.stop()
            running.stop()
            controllers.join(10)
    finally:
        store.close()
