"""The command line: ``surveillance --help``. One module per command group; this one puts
them together, in the order ``--help`` lists them, and is where errors become messages.

Errors of the domain layers become one-line messages and a non-zero exit here, never
tracebacks; nothing is written when a command is refused.
"""

from __future__ import annotations

import sys

import typer

import rules
from surveillance.cli import admin, alerts, demo, patients, protocols, results, serve
from surveillance.config import SettingsError, default_data_dir
from surveillance.errors import SurveillanceError
from surveillance.kit.log_setup import log_to_stderr

app = typer.Typer(
    help=(
        "Long-term follow-up after gene therapy: calendars, due lists, records.\n\n"
        "Data lives in SURVEILLANCE_DATA_DIR (for this user by default: "
        f"{default_data_dir()}): the SQLite database surveillance.db, unless DATABASE_URL "
        "names another, and the demo's credentials. Only `db upgrade`, `demo`, `serve`, "
        "`worker`, `sites add`, `users add` and `webhooks add` create a missing database."
    ),
    no_args_is_help=True,
)
# Top-level commands: calendar; enroll ... amend; demo; serve, worker.
for group in (protocols.commands, patients.commands, demo.commands, serve.commands):
    app.add_typer(group)
app.add_typer(admin.users_app, name="users")
app.add_typer(alerts.alerts_app, name="alerts")
app.add_typer(alerts.webhooks_app, name="webhooks")
app.add_typer(admin.tokens_app, name="tokens")
app.add_typer(protocols.protocols_app, name="protocols")
app.add_typer(admin.sites_app, name="sites")
app.add_typer(results.results_app, name="results")
app.add_typer(admin.db_app, name="db")
app.add_typer(admin.audit_app, name="audit")


def main() -> None:
    """Entry point: domain errors become a message and exit code 1, never a traceback.
    Log lines (a ``serve`` or ``worker`` scan) go to stderr: this is the process's own."""
    log_to_stderr()
    try:
        app()
    except (SurveillanceError, rules.RulesError) as exc:
        typer.echo(f"error: {getattr(exc, 'message', None) or exc}", err=True)
        sys.exit(1)
    except SettingsError as exc:  # the environment, not the command: fix and run again
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2)


__all__ = ["app", "main"]
