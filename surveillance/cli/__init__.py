"""The command line: ``surveillance --help``. One module per command group."""

from surveillance.cli.commands import app, main

__all__ = ["app", "main"]
