"""`constellation controllers`: run the controller manager alone, in the foreground.

For a control plane split over processes or machines: start it in several places and one
leads while the others stand by. The all-in-one server embeds the same manager instead.
"""

from __future__ import annotations

from typing import Annotated

import typer

from constellation.cli.context import CliContext
from constellation.cli.daemon import LogLevelOption, configure_logging
from constellation.controllers.base import DEFAULT_NODE_GRACE_SECONDS


def controllers(
    ctx: typer.Context,
    node_grace_seconds: Annotated[
        float, typer.Option(help="How long a node may be NotReady before its replicas move.")
    ] = DEFAULT_NODE_GRACE_SECONDS,
    workers: Annotated[int, typer.Option(min=1, help="Worker threads per controller.")] = 2,
    lease_ttl: Annotated[
        int,
        typer.Option(
            min=2,
            help="Leader lease TTL in seconds: a dead leader's successor "
            "takes over within about this long.",
        ),
    ] = 3,
    reconcile_timeout: Annotated[
        float, typer.Option(help="Seconds one reconcile may run before it counts as timed out.")
    ] = 30.0,
    identity: Annotated[
        str | None, typer.Option(help="Name in the leader lease (default: hostname-pid-random).")
    ] = None,
    log_level: LogLevelOption = "INFO",
) -> None:
    """Run the controllers until SIGINT or SIGTERM (one active among several processes)."""
    # Imported here: the rest of the CLI must not pay for the controllers at start-up.
    from constellation.controllers.base import Settings
    from constellation.controllers.manager import ControllerManager

    configure_logging(log_level)
    settings = Settings(
        node_grace_seconds=node_grace_seconds, reconcile_timeout_seconds=reconcile_timeout
    )
    context: CliContext = ctx.find_root().obj
    store = context.open_store()
    try:
        manager = ControllerManager(
            store, settings, identity=identity, workers=workers, lease_ttl=lease_ttl
        )
        manager.run()
    finally:
        store.close()
