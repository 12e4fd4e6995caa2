"""Command line for alerts and webhooks: `surveillance alerts ...`, `surveillance webhooks ...`."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated

import typer

from surveillance.alerting import endpoints, operations
from surveillance.alerting.kinds import WEBHOOK_EVENTS
from surveillance.cli.context import actor, migrated_runtime
from surveillance.kit.db import read_session, write_session
from surveillance.kit.text_table import render
from surveillance.main import alert_jobs

alerts_app = typer.Typer(help="Alerts: scan, dispatch, list, retry, replay.", no_args_is_help=True)
webhooks_app = typer.Typer(
    help="Webhook endpoints (Standard Webhooks, signed).", no_args_is_help=True
)


@alerts_app.command("scan")
def scan_command(
    on: Annotated[
        datetime | None,
        typer.Option(
            formats=["%Y-%m-%d"], help="Scan as of this day (default: today at each site)."
        ),
    ] = None,
    full: Annotated[
        bool,
        typer.Option(
            "--full",
            help="Read every group in full, not only what changed since the last scan "
            "(the scheduler does so once a day; same alerts).",
        ),
    ] = False,
) -> None:
    """One scan: write the alerts due as of a day (running it twice creates nothing new)."""
    # The real clock: the alerts are due for sending now, whatever --on says.
    jobs = alert_jobs(migrated_runtime())
    report = jobs.scan_once(on=on.date() if on else None, full=full)
    digests = jobs.run_digests() + jobs.run_admin_digest() if on is None else 0
    created = ", ".join(f"{kind} {count}" for kind, count in report.created.items())
    typer.echo(
        f"scan as of {', '.join(f'{s} {d}' for s, d in report.as_of.items()) or '-'}: "
        f"{created or 'nothing'}" + (f", digests {digests}" if digests else "")
    )


@alerts_app.command("dispatch")
def dispatch_command() -> None:
    """Deliver what is pending now (one batch)."""
    report = alert_jobs(migrated_runtime()).run_dispatch()
    typer.echo(
        f"claimed {report.claimed}: sent {report.sent}, retrying {report.retrying}, "
        f"failed {report.failed}, cancelled {report.cancelled}, held {report.held}"
    )
    for error in report.errors:
        typer.echo(f"failed: {error}", err=True)


@alerts_app.command("list")
def list_command(
    status: Annotated[
        str | None, typer.Option(help="pending, sending, sent, failed, cancelled or held.")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 100,
) -> None:
    with read_session(migrated_runtime().engine) as session:
        rows = [
            (
                a.status,
                a.kind,
                a.level,
                a.channel,
                a.recipient,
                a.attempts,
                a.last_error or a.cancel_reason or "",
                a.id,
            )
            for a in operations.list_alerts(session, status=status, limit=limit)
        ]
    typer.echo(
        render(
            (
                "status",
                "kind",
                "level",
                "channel",
                "recipient",
                "attempts",
                "last error / reason",
                "id",
            ),
            rows,
            max_width=70,
        )
    )


@alerts_app.command("retry")
def retry_command(alert_id: str) -> None:
    """Send a failed or held alert again (same id)."""
    current = migrated_runtime()
    with write_session(current.engine) as session:
        operations.retry(session, alert_id, actor=actor(), now=current.clock())
    typer.echo(f"queued {alert_id} again")


@alerts_app.command("replay")
def replay_command(
    endpoint: Annotated[str, typer.Option(help="Webhook endpoint id.")],
    since: Annotated[
        datetime, typer.Option(formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S"])
    ],
) -> None:
    """Queue again every alert of an endpoint created since a time (e.g. after re-enabling)."""
    moment = since if since.tzinfo else since.replace(tzinfo=UTC)
    current = migrated_runtime()
    with write_session(current.engine) as session:
        count = endpoints.replay(
            session, endpoint, since=moment, actor=actor(), now=current.clock()
        )
    typer.echo(f"queued {count} alert(s) for {endpoint} again")


@webhooks_app.command("add")
def webhooks_add(
    url: str,
    events: Annotated[
        str,
        typer.Option(help="Comma-separated: " + ",".join(WEBHOOK_EVENTS)),
    ],
    site: Annotated[str | None, typer.Option(help="Only this site's alerts.")] = None,
    output: Annotated[str, typer.Option("--format", help="text or json")] = "text",
) -> None:
    """Register an endpoint; its signing secret is printed once."""
    current = migrated_runtime(create=True)
    with write_session(current.engine) as session:
        created = endpoints.add_endpoint(
            session,
            url=url,
            events=[e.strip() for e in events.split(",") if e.strip()],
            site_id=site,
            allow_private=current.settings.webhook_allow_private,
            actor=actor(),
            now=current.clock(),
        )
    if output == "json":
        typer.echo(json.dumps({"id": created.endpoint.id, "secret": created.secret, "url": url}))
    else:
        typer.echo(
            f"endpoint {created.endpoint.id}\n"
            f"secret   {created.secret}   (shown once: store it now)"
        )


@webhooks_app.command("list")
def webhooks_list() -> None:
    with read_session(migrated_runtime().engine) as session:
        rows = [
            (
                e.id,
                "enabled" if e.enabled else f"disabled: {e.disabled_reason}",
                e.url,
                e.event_types,
                e.site_id or "all",
            )
            for e in endpoints.list_endpoints(session)
        ]
    typer.echo(render(("id", "state", "url", "events", "site"), rows, max_width=60))


def _toggle(endpoint_id: str, enabled: bool) -> None:
    current = migrated_runtime()
    with write_session(current.engine) as session:
        endpoints.set_enabled(
            session, endpoint_id, enabled=enabled, actor=actor(), now=current.clock()
        )
    typer.echo(f"{endpoint_id} {'enabled' if enabled else 'disabled'}")


@webhooks_app.command("disable")
def webhooks_disable(endpoint_id: str) -> None:
    _toggle(endpoint_id, False)


@webhooks_app.command("enable")
def webhooks_enable(endpoint_id: str) -> None:
    """Enable again; held alerts can then be replayed with `alerts replay`."""
    _toggle(endpoint_id, True)


@webhooks_app.command("rotate-secret")
def webhooks_rotate(endpoint_id: str) -> None:
    """A new secret; the old one keeps working (both signatures sent) for 24 hours."""
    current = migrated_runtime()
    with write_session(current.engine) as session:
        rotated = endpoints.rotate_secret(session, endpoint_id, actor=actor(), now=current.clock())
    typer.echo(f"new secret {rotated.secret}   (the old one stays valid for 24 hours)")
