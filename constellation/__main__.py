"""`python -m constellation` runs the CLI."""

from constellation.cli.main import main

main()
