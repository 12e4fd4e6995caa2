"""Results stored as free text before results were typed: ``surveillance results map|review``."""

from __future__ import annotations

from typing import Annotated

import typer

from surveillance.adverse_events.legacy_results import map_stored_results
from surveillance.cli.context import migrated_runtime
from surveillance.kit.db import read_session, write_session
from surveillance.kit.text_table import render
from surveillance.patients.results_to_review import results_to_review
from surveillance.records.sites import get_site

results_app = typer.Typer(
    help="Results stored as free text: read into their types, and the ones left to review.",
    no_args_is_help=True,
)


@results_app.command("map")
def results_map() -> None:
    """Read stored free-text results into their declared types; flag the rest for review.

    ``db upgrade`` does this when it passes revision 0007; running it again changes nothing.
    """
    current = migrated_runtime()
    with write_session(current.engine) as session:
        report = map_stored_results(session, registry=current.registry, now=current.clock())
    typer.echo(report.summary())
    for key in report.flagged_keys:
        typer.echo(f"  needs a typed value: {key}")
    for key in report.unknown_protocol_keys:
        typer.echo(f"  left as stored (its protocol version is not loaded): {key}")


@results_app.command("review")
def results_review(
    site: Annotated[str, typer.Option(help="The site, e.g. Rome.")],
) -> None:
    """The site's results that need a typed value: correct each with
    ``surveillance correct KEY --result VALUE --reason TEXT``."""
    current = migrated_runtime()
    with read_session(current.engine) as session:
        get_site(session, site)  # an unknown site is an error, not an empty list
        items = results_to_review(session, site_id=site, registry=current.registry)
    if not items:
        typer.echo(f"no results need a typed value at {site}")
        return
    rows = [
        (
            item.key,
            item.name,
            item.performed_on,
            item.as_entered,
            item.expects,
            item.recorded_by or "",
            item.version,
        )
        for item in items
    ]
    headers = ("key", "assessment", "performed", "as entered", "expects", "recorded by", "ver")
    typer.echo(render(headers, rows))
    typer.echo(
        f"\n{len(items)} to correct: surveillance correct KEY --result VALUE --reason TEXT",
        err=True,
    )
