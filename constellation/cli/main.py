"""Entry point: global options, the command tree, and the one place user errors become a
single line on stderr with a non-zero exit instead of a traceback."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, ClassVar

import typer

from constellation import __version__
from constellation.cli import ui
from constellation.cli.context import CliContext, default_data_dir
from constellation.cli.errors import report_user_error
from constellation.cli.lazy import LazyGroup


class Commands(LazyGroup):
    """Every command, in the order `--help` lists them; each module is imported when its
    command runs (or `--help` lists it), so `constellation version` imports none of them."""

    targets: ClassVar[Mapping[str, str]] = {
        "apply": "constellation.cli.apply_cmd:apply",
        "get": "constellation.cli.get_cmd:get",
        "describe": "constellation.cli.describe_cmd:describe",
        "delete": "constellation.cli.delete_cmd:delete",
        "diff": "constellation.cli.diff_cmd:diff",
        "crds": "constellation.cli.crds_cmd:crds",
        "convert": "constellation.cli.convert_cmd:convert",
        "logs": "constellation.cli.logs_cmd:logs",
        "top": "constellation.cli.top_cmd:top",
        "server": "constellation.cli.server_cmd:server",
        "agent": "constellation.cli.agent_cmd:agent",
        "controllers": "constellation.cli.controllers_cmd:controllers",
        "version": "constellation.cli.main:version",
        "store": "constellation.cli.store_cmd:app",
        "gitops": "constellation.cli.gitops_cmd:app",
    }


app = typer.Typer(
    name="constellation",
    help="A small declarative orchestrator for Linux processes.",
    cls=Commands,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


@app.callback()
def configure(
    ctx: typer.Context,
    store: Annotated[
        str | None,
        typer.Option(
            envvar="CONSTELLATION_STORE",
            help="Store URL: sqlite:///PATH or etcd://HOST:PORT[,HOST:PORT][?cacert=&cert=&key=].",
        ),
    ] = None,
    data_dir: Annotated[
        Path | None,
        typer.Option(envvar="CONSTELLATION_DATA_DIR", help="Where the embedded store lives."),
    ] = None,
) -> None:
    ctx.obj = CliContext(store_url=store, data_dir=data_dir or default_data_dir())


def version() -> None:
    """Print the version."""
    ui.line(__version__)


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as error:
        if not report_user_error(error):
            raise
        sys.exit(1)
