"""Entry point: global options, the command tree, and the one place user errors become a
single line on stderr with a non-zero exit instead of a traceback."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from constellation import __version__
from constellation.cli import (
    agent_cmd,
    apply_cmd,
    controllers_cmd,
    convert_cmd,
    crds_cmd,
    delete_cmd,
    describe_cmd,
    diff_cmd,
    get_cmd,
    gitops_cmd,
    logs_cmd,
    server_cmd,
    store_cmd,
    top_cmd,
    ui,
)
from constellation.cli.context import CliContext, default_data_dir
from constellation.cli.errors import report_user_error

app = typer.Typer(
    name="constellation",
    help="A small declarative orchestrator for Linux processes.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.command()(apply_cmd.apply)
app.command()(get_cmd.get)
app.command()(describe_cmd.describe)
app.command()(delete_cmd.delete)
app.command()(diff_cmd.diff)
app.command()(crds_cmd.crds)
app.command()(convert_cmd.convert)
app.command()(logs_cmd.logs)
app.command()(top_cmd.top)
app.command()(server_cmd.server)
app.command()(agent_cmd.agent)
app.command()(controllers_cmd.controllers)
app.add_typer(store_cmd.app, name="store")
app.add_typer(gitops_cmd.app, name="gitops")


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


@app.command()
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
