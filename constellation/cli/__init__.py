"""The `constellation` command: typer commands, one module per verb; rendering in `ui`."""
