"""Entry point: global options, the command tree, and the one place user errors become a
single line on stderr with a non-zero exit instead of a traceback."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from constellation import __version__
from constellation.cli import store_cmd, ui
from constellation.cli.context import CliContext, default_data_dir
from constellation.store import StoreError

app = typer.Typer(
    name="constellation",
    help="A small declarative orchestrator for Linux processes.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(store_cmd.app, name="store")


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
    except StoreError as error:
        ui.error(str(error))
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
