"""`constellation agent`: the node agent alone, for a machine that joins a cluster whose store
(etcd) and controllers run elsewhere."""

from __future__ import annotations

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


def agent(
    ctx: typer.Context,
    node_name: NodeNameOption = None,
    label: LabelOption = None,
    cgroup_parent: CgroupParentOption = None,
    listen: ListenOption = "127.0.0.1",
    port: PortOption = 0,
    heartbeat_ttl: HeartbeatOption = 3,
    reserve_cpu: ReserveCpuOption = None,
    reserve_memory: ReserveMemoryOption = None,
    log_level: LogLevelOption = "INFO",
) -> None:
    """Run this node's agent until SIGINT or SIGTERM; its replicas keep running after it."""
    from constellation.agent.agent import Agent

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
    try:
        running = Agent(store, config).start()
        try:
            wait_for_signal()
        finally:
            running.stop()
    finally:
        store.close()
