"""The command line: ``surveillance --help``.

Errors of the domain layers become one-line messages and a non-zero exit here, never
tracebacks; nothing is written when a command is refused.
"""

from __future__ import annotations

import csv
import io
import json
import os
import sys
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy import Engine, select
from sqlmodel import col

import rules
from surveillance.adverse_events.results import record_outcome
from surveillance.cli.alerts import alert_jobs, alerts_app, webhooks_app
from surveillance.cli.demo import create_demo_users, load_demo
from surveillance.config import get_settings
from surveillance.errors import SurveillanceError
from surveillance.kit import audit, migrate
from surveillance.kit.clock import Clock, fixed_clock, local_date, system_clock
from surveillance.kit.db import make_engine, read_session, write_session
from surveillance.kit.ics import calendar_ics
from surveillance.kit.text_table import render
from surveillance.patients.amendments import amend
from surveillance.patients.changes import add_infusion, change_status, record_event
from surveillance.patients.due_list import DueState, derive_state, due_list
from surveillance.patients.enrolment import Enrolment, enroll, get_patient
from surveillance.protocols.registry import assessment_name, registry_for
from surveillance.protocols.views import preview_calendar
from surveillance.records.patients import Assessment, Patient
from surveillance.records.sites import add_site, get_site, list_sites

app = typer.Typer(
    help="Long-term follow-up after gene therapy: calendars, due lists, records.",
    no_args_is_help=True,
)
protocols_app = typer.Typer(help="Protocol files: list and check.", no_args_is_help=True)
sites_app = typer.Typer(help="Sites and their time zones.", no_args_is_help=True)
db_app = typer.Typer(help="The database schema.", no_args_is_help=True)
audit_app = typer.Typer(help="The audit trail.", no_args_is_help=True)
users_app = typer.Typer(help="Users, roles and passwords.", no_args_is_help=True)
tokens_app = typer.Typer(help="API bearer tokens and calendar-feed tokens.", no_args_is_help=True)
app.add_typer(users_app, name="users")
app.add_typer(alerts_app, name="alerts")
app.add_typer(webhooks_app, name="webhooks")
app.add_typer(tokens_app, name="tokens")
app.add_typer(protocols_app, name="protocols")
app.add_typer(sites_app, name="sites")
app.add_typer(db_app, name="db")
app.add_typer(audit_app, name="audit")

DateOption = Annotated[datetime, typer.Option(formats=["%Y-%m-%d"])]


class TableFormat(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"


class CalendarFormat(StrEnum):
    table = "table"
    json = "json"
    ics = "ics"


def _actor() -> str:
    return f"cli:{os.environ.get('USER') or os.environ.get('LOGNAME') or 'unknown'}"


def _registry() -> rules.ProtocolRegistry:
    return registry_for(get_settings().protocols_dir)


def _engine() -> Engine:
    engine = make_engine(get_settings().database_url)
    migrate.upgrade(engine)
    return engine


def _clock(on: datetime | None) -> Clock:
    return fixed_clock(on.date()) if on else system_clock


# -- protocols -------------------------------------------------------------------------------


@protocols_app.command("list")
def protocols_list() -> None:
    """The protocols this installation knows, newest version of each last."""
    rows = [
        (
            p.id,
            p.version,
            len(p.rules),
            str(p.spec.follow_up.duration),
            p.title,
            Path(p.source).name,
        )
        for p in _registry().all()
    ]
    typer.echo(render(("protocol", "version", "assessments", "follow-up", "title", "file"), rows))


@protocols_app.command("check")
def protocols_check(
    files: Annotated[list[Path], typer.Argument(help="Protocol YAML files.")],
) -> None:
    """Validate protocol files; exit 1 with the reason if any is malformed."""
    failed = 0
    for path in files:
        try:
            protocol = rules.load_protocol(path)
        except rules.ProtocolError as exc:
            failed += 1
            typer.echo(f"error: {exc}", err=True)
            continue
        typer.echo(
            f"ok: {path}: {protocol.id} version {protocol.version}, "
            f"{len(protocol.rules)} assessments"
        )
    if failed:
        raise typer.Exit(1)


# -- calendar preview (no database) ----------------------------------------------------------


@app.command("calendar")
def calendar_preview(
    protocol: Annotated[
        str, typer.Option(help="Protocol id, e.g. cd19-car-t-pediatric-autoimmune.")
    ],
    infusion: DateOption,
    birth: Annotated[
        datetime | None,
        typer.Option(formats=["%Y-%m-%d"], help="Default: 10 years before the infusion."),
    ] = None,
    diagnosis: Annotated[
        str | None, typer.Option(help="Default: the protocol's first diagnosis.")
    ] = None,
    sex: Annotated[str, typer.Option(help="F or M.")] = "F",
    version: Annotated[
        str | None, typer.Option(help="Protocol version; default the newest.")
    ] = None,
    output: Annotated[CalendarFormat, typer.Option("--format")] = CalendarFormat.table,
) -> None:
    """Preview the calendar a protocol gives for one infusion (no database)."""
    infused = infusion.date()
    preview = preview_calendar(
        _registry(),
        protocol,
        infusion=infused,
        birth=birth.date() if birth else None,
        diagnosis=diagnosis,
        sex=sex,
        version=version,
    )
    chosen, born, dx, plan = preview.protocol, preview.birth_date, preview.diagnosis, preview.plan
    if birth is None:
        typer.echo(
            f"note: no --birth given; assuming born {born} (10 years old at infusion)", err=True
        )
    if output is CalendarFormat.json:
        typer.echo(json.dumps([p.as_dict() for p in plan], indent=2, ensure_ascii=False))
    elif output is CalendarFormat.ics:
        entries = [
            (
                f"{chosen.id}-{infused}-{p.key}@preview.ltfu-surveillance",
                f"{p.name} (#{p.occurrence})",
                p.due,
                p.window_start,
                p.window_end,
                p.reason,
            )
            for p in plan
        ]
        sys.stdout.write(calendar_ics(entries, name=f"{chosen.title} from {infused}").decode())
    else:
        rows = [
            (p.due, p.window_start, p.window_end, p.assessment, p.occurrence, p.category, p.reason)
            for p in plan
        ]
        typer.echo(
            render(
                ("due", "window start", "window end", "assessment", "#", "category", "reason"),
                rows,
                max_width=90,
            )
        )
        typer.echo(
            f"\n{len(plan)} assessments, {chosen.id} version {chosen.version}, "
            f"diagnosis {dx}, born {born}"
        )


# -- database, sites ---------------------------------------------------------------------


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create or migrate the schema of DATABASE_URL to the newest version."""
    engine = make_engine(get_settings().database_url)
    migrate.upgrade(engine)
    typer.echo(
        f"schema at revision {migrate.current_revision(engine)} ({engine.url.render_as_string()})"
    )


@sites_app.command("add")
def sites_add(
    site_id: Annotated[str, typer.Option("--id", help="Short name used everywhere, e.g. Rome.")],
    name: Annotated[str, typer.Option()],
    timezone: Annotated[str, typer.Option(help="IANA time zone, e.g. Europe/Rome.")],
    country: Annotated[
        str | None, typer.Option(help="ISO 3166 two-letter code, e.g. IT (sent in the AE feed).")
    ] = None,
) -> None:
    """Add a site."""
    with write_session(_engine()) as session:
        add_site(session, site_id=site_id, name=name, timezone=timezone, country=country)
    typer.echo(f"added site {site_id} ({timezone})")


@sites_app.command("list")
def sites_list() -> None:
    with read_session(_engine()) as session:
        rows = [(s.id, s.timezone, s.name) for s in list_sites(session)]
    typer.echo(render(("site", "time zone", "name"), rows))


# -- patients and records -----------------------------------------------------------------


@app.command("enroll")
def enroll_command(
    study_id: Annotated[str, typer.Option(help="Pseudonymous study id, e.g. ROM-009.")],
    site: Annotated[str, typer.Option()],
    birth: DateOption,
    sex: Annotated[str, typer.Option(help="F or M.")],
    diagnosis: Annotated[str, typer.Option()],
    protocol: Annotated[str, typer.Option()],
    infusion: DateOption,
    now: Annotated[
        datetime | None, typer.Option("--today", formats=["%Y-%m-%d"], hidden=True)
    ] = None,
) -> None:
    """Enrol a patient with the first infusion; the calendar is computed and stored."""
    enrolment = Enrolment(study_id, site, birth.date(), sex, diagnosis, protocol, infusion.date())
    with write_session(_engine()) as session:
        enroll(session, [enrolment], registry=_registry(), now=_clock(now)(), actor=_actor())
        count = session.execute(
            select(col(Assessment.id)).join(Patient).where(col(Patient.study_id) == study_id)
        ).all()
    typer.echo(f"enrolled {study_id} at {site}: {len(count)} assessments planned")


@app.command("record")
def record_command(
    key: Annotated[str, typer.Argument(help="Assessment key, e.g. ROM-001:1:rcl_test:2.")],
    outcome: Annotated[str, typer.Option(help="completed, missed or not_done.")],
    on: DateOption,
    result: Annotated[str | None, typer.Option()] = None,
    reason: Annotated[str | None, typer.Option()] = None,
    now: Annotated[
        datetime | None, typer.Option("--today", formats=["%Y-%m-%d"], hidden=True)
    ] = None,
) -> None:
    """Record what was done for one assessment; the future calendar follows."""
    with write_session(_engine()) as session:
        recorded = record_outcome(
            session,
            key=key,
            outcome=outcome,
            on=on.date(),
            result=result,
            reason=reason,
            actor=_actor(),
            registry=_registry(),
            now=_clock(now)(),
        )
    flag = (
        " (outside its window: protocol deviation)"
        if recorded.assessment.protocol_deviation
        else ""
    )
    typer.echo(f"recorded {key}: {outcome} on {on.date()}{flag}")
    if not recorded.change.is_empty():
        typer.echo(f"calendar: {recorded.change.summary()}")


@app.command("infuse")
def infuse_command(
    study_id: str,
    on: DateOption,
    now: Annotated[
        datetime | None, typer.Option("--today", formats=["%Y-%m-%d"], hidden=True)
    ] = None,
) -> None:
    """Record a re-infusion (a new anchor for the calendar)."""
    with write_session(_engine()) as session:
        change = add_infusion(
            session,
            study_id=study_id,
            on=on.date(),
            actor=_actor(),
            registry=_registry(),
            now=_clock(now)(),
        )
    typer.echo(f"re-infusion of {study_id} on {on.date()}: {change.summary()}")


@app.command("event")
def event_command(
    study_id: str,
    kind: Annotated[str, typer.Option(help="e.g. new_malignancy (see the protocol's events).")],
    on: DateOption,
    note: Annotated[str | None, typer.Option()] = None,
    now: Annotated[
        datetime | None, typer.Option("--today", formats=["%Y-%m-%d"], hidden=True)
    ] = None,
) -> None:
    """Record an event the protocol reacts to (e.g. a new malignancy)."""
    with write_session(_engine()) as session:
        change = record_event(
            session,
            study_id=study_id,
            kind=kind,
            on=on.date(),
            note=note,
            actor=_actor(),
            registry=_registry(),
            now=_clock(now)(),
        )
    typer.echo(f"{kind} for {study_id} on {on.date()}: {change.summary()}")


@app.command("status")
def status_command(
    study_id: str,
    status: Annotated[
        str, typer.Option(help="deceased, withdrawn, lost_to_follow_up, transferred, active.")
    ],
    on: DateOption,
    reason: Annotated[str, typer.Option()],
    to_site: Annotated[str | None, typer.Option(help="For transferred: the new site.")] = None,
    now: Annotated[
        datetime | None, typer.Option("--today", formats=["%Y-%m-%d"], hidden=True)
    ] = None,
) -> None:
    """Change a patient's status; death and withdrawal end the future calendar."""
    with write_session(_engine()) as session:
        change = change_status(
            session,
            study_id=study_id,
            status=status,
            on=on.date(),
            reason=reason,
            actor=_actor(),
            registry=_registry(),
            now=_clock(now)(),
            to_site=to_site,
        )
    typer.echo(f"{study_id} is now {status} (from {on.date()}): {change.summary()}")


@app.command("due")
def due_command(
    site: Annotated[str, typer.Option()],
    on: Annotated[
        datetime | None, typer.Option(formats=["%Y-%m-%d"], help="Default: today at the site.")
    ] = None,
    status: Annotated[DueState | None, typer.Option(help="Only this state.")] = None,
    output: Annotated[TableFormat, typer.Option("--format")] = TableFormat.table,
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 500,
    horizon: Annotated[int, typer.Option(min=0, max=366, help="Days ahead for upcoming.")] = 30,
) -> None:
    """The site's list: overdue first, then due, then upcoming."""
    with read_session(_engine()) as session:
        site_row = get_site(session, site)
        day = on.date() if on else local_date(system_clock(), site_row.timezone)
        states = (status,) if status else tuple(DueState)
        items = due_list(
            session,
            site_id=site,
            on=day,
            registry=_registry(),
            states=states,
            horizon_days=horizon,
            limit=limit,
        )
    if output is TableFormat.json:
        typer.echo(json.dumps([item.as_dict() for item in items], indent=2, ensure_ascii=False))
        return
    if output is TableFormat.csv:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=list(items[0].as_dict()) if items else ["key"])
        writer.writeheader()
        writer.writerows(item.as_dict() for item in items)
        sys.stdout.write(buffer.getvalue())
        return
    rows = [
        (
            i.state.value,
            i.days_overdue or "",
            i.study_id,
            i.name,
            i.due_on,
            f"{i.window_start} to {i.window_end}",
            i.key,
        )
        for i in items
    ]
    typer.echo(
        f"{site} on {day}: {sum(i.state is DueState.overdue for i in items)} overdue, "
        f"{sum(i.state is DueState.due for i in items)} due, "
        f"{sum(i.state is DueState.upcoming for i in items)} upcoming in {horizon} days\n"
    )
    typer.echo(
        render(
            ("state", "days over", "patient", "assessment", "due", "window", "key"),
            rows,
            max_width=48,
        )
    )


@app.command("show")
def show_command(
    study_id: str,
    on: Annotated[datetime | None, typer.Option(formats=["%Y-%m-%d"])] = None,
    output: Annotated[TableFormat, typer.Option("--format")] = TableFormat.table,
) -> None:
    """A patient's stored calendar with each assessment's state on a day."""
    registry = _registry()
    with read_session(_engine()) as session:
        patient = get_patient(session, study_id)
        site = get_site(session, patient.site_id)
        day = on.date() if on else local_date(system_clock(), site.timezone)
        rows = (
            session.execute(
                select(Assessment)
                .where(col(Assessment.patient_id) == patient.id)
                .order_by(col(Assessment.due_on), col(Assessment.assessment))
            )
            .scalars()
            .all()
        )

    def state(a: Assessment) -> str:
        return (
            derive_state(day, a.window_start, a.window_end).value
            if a.status == "pending"
            else a.status
        )

    if output is TableFormat.json:
        typer.echo(
            json.dumps(
                [
                    {
                        "key": f"{study_id}:{a.infusion_number}:{a.assessment}:{a.occurrence}",
                        "assessment": a.assessment,
                        "name": assessment_name(
                            registry, a.protocol_id, a.protocol_version, a.assessment
                        ),
                        "due": a.due_on.isoformat(),
                        "window_start": a.window_start.isoformat(),
                        "window_end": a.window_end.isoformat(),
                        "status": a.status,
                        "state": state(a),
                        "performed_on": a.performed_on.isoformat() if a.performed_on else None,
                        "result": a.result,
                        "protocol_deviation": a.protocol_deviation,
                        "reason": a.reason,
                        "status_reason": a.status_reason,
                    }
                    for a in rows
                ],
                indent=2,
                ensure_ascii=False,
            )
        )
        return
    typer.echo(
        f"{patient.study_id}  site {patient.site_id}  {patient.diagnosis}  "
        f"born {patient.birth_date}  "
        f"{patient.protocol_id} {patient.protocol_version}  status {patient.status}\n"
    )
    table = [
        (
            a.due_on,
            state(a),
            a.assessment,
            a.occurrence,
            a.performed_on or "",
            a.result or "",
            a.status_reason or a.reason,
        )
        for a in rows
    ]
    typer.echo(
        render(
            ("due", "state", "assessment", "#", "done on", "result", "reason"), table, max_width=70
        )
    )


@app.command("amend")
def amend_command(
    protocol: Annotated[str, typer.Option()],
    to_version: Annotated[str, typer.Option()],
    apply: Annotated[
        bool, typer.Option("--apply", help="Write the changes (default: dry run).")
    ] = False,
) -> None:
    """Show (or with --apply, make) the calendar changes of moving patients to a new protocol version."""  # noqa: E501
    with write_session(_engine()) as session:
        amendments = amend(
            session,
            protocol_id=protocol,
            to_version=to_version,
            registry=_registry(),
            actor=_actor(),
            now=system_clock(),
            apply=apply,
        )
        if not apply:
            session.rollback()
    for item in amendments:
        typer.echo(f"{item.study_id}: {item.from_version} -> {to_version}: {item.change.summary()}")
        for key, entries in item.change.as_dict(item.study_id).items():
            for entry in entries[:20]:
                typer.echo(f"  {key:<10} {json.dumps(entry)}")
    verb = "applied to" if apply else "dry run: nothing written for"
    typer.echo(f"{verb} {len(amendments)} patient(s)")


@audit_app.command("verify")
def audit_verify() -> None:
    """Check the audit trail's hash chain; exit 1 if a row was edited or deleted."""
    with read_session(_engine()) as session:
        breaks = audit.verify_chain(session)
    if breaks:
        for item in breaks:
            typer.echo(f"audit row {item.entry_id}: {item.problem}", err=True)
        raise typer.Exit(1)
    typer.echo("audit trail intact")


@app.command("demo")
def demo_command() -> None:
    """Create (or reset) the database with the synthetic demo cohort."""
    settings = get_settings()
    engine = make_engine(settings.database_url)
    _reset(engine)
    migrate.upgrade(engine)
    with write_session(engine) as session:
        summary = load_demo(session, registry=_registry(), now=system_clock())
        credentials = create_demo_users(session)
    typer.echo(
        f"demo cohort loaded into {engine.url.render_as_string()}: "
        f"{summary.patients} synthetic patients at Rome and Erlangen, "
        f"{summary.completed} assessments completed, {summary.missed} missed, "
        f"{summary.overdue_left} left overdue, {summary.adverse_events} adverse events."
    )
    lines = ["Demo users (sign in at http://127.0.0.1:8000/ after `surveillance serve`):"]
    lines += [f"  {role:<18} {email:<32} {password}" for email, role, password in credentials]
    text = "\n".join(lines)
    typer.echo(text)
    credentials_file = Path("var") / "demo-credentials.txt"
    if engine.dialect.name == "sqlite":
        credentials_file.parent.mkdir(exist_ok=True)
        credentials_file.write_text(text + "\n")
        credentials_file.chmod(0o600)


def _reset(engine: Engine) -> None:
    from sqlmodel import SQLModel

    if engine.dialect.name == "sqlite" and engine.url.database not in (None, "", ":memory:"):
        engine.dispose()
        for suffix in ("", "-wal", "-shm"):
            Path(f"{engine.url.database}{suffix}").unlink(missing_ok=True)
        return
    with engine.begin() as connection:
        SQLModel.metadata.drop_all(connection)
        connection.exec_driver_sql("DROP TABLE IF EXISTS alembic_version")


@app.command("serve")
def serve_command(
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    port: Annotated[int, typer.Option()] = 8000,
    scheduler: Annotated[
        bool, typer.Option(help="Also run the alert scheduler (--no-scheduler: API only).")
    ] = True,
) -> None:
    """Run the web pages and the HTTP API (OpenAPI at /docs), with the alert scheduler."""
    import uvicorn

    from surveillance.alerting.scheduler import build_scheduler
    from surveillance.http.app import create_app

    jobs = alert_jobs()  # migrates before serving
    background = build_scheduler(jobs) if scheduler else None
    if background is not None:
        background.start()
    typer.echo(
        f"serving on http://{host}:{port}/ (API docs at /docs)"
        f"{'' if scheduler else ', no scheduler'}"
    )
    try:
        uvicorn.run(create_app(), host=host, port=port, log_level="info")
    finally:
        if background is not None:
            background.shutdown(wait=False)


@app.command("worker")
def worker_command() -> None:
    """Run only the alert scheduler (scan, digests, dispatch), for multi-process deployments."""
    import signal
    import threading

    from surveillance.alerting.scheduler import build_scheduler

    scheduler = build_scheduler(alert_jobs())
    scheduler.start()
    typer.echo("alert worker running (Ctrl+C to stop)")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        scheduler.shutdown()


@users_app.command("add")
def users_add(
    email: Annotated[str, typer.Option()],
    role: Annotated[str, typer.Option(help="nurse, investigator, pharmacovigilance or admin.")],
    site: Annotated[
        list[str] | None,
        typer.Option(help="A site of a nurse or investigator; repeat for several."),
    ] = None,
    password: Annotated[
        str | None, typer.Option(help="Set a password for the web pages too.")
    ] = None,
) -> None:
    """Add a user (nurses and investigators work at one or more sites)."""
    from surveillance.accounts import auth

    with write_session(_engine()) as session:
        auth.add_user(session, email=email, role=role, sites=site or [], actor=_actor())
        if password:
            auth.set_password(session, email=email, password=password, actor=_actor())
    typer.echo(f"added {email} ({role}{': ' + ', '.join(site) if site else ''})")


@users_app.command("set-password")
def users_set_password(
    email: Annotated[str, typer.Option()],
    password: Annotated[str, typer.Option(prompt=True, confirmation_prompt=True, hide_input=True)],
) -> None:
    """Set the password a user signs in to the web pages with."""
    from surveillance.accounts import auth

    with write_session(_engine()) as session:
        auth.set_password(session, email=email, password=password, actor=_actor())
    typer.echo(f"password set for {email}")


@users_app.command("list")
def users_list() -> None:
    from surveillance.accounts.models import User, UserSite

    with read_session(_engine()) as session:
        users = session.execute(select(User).order_by(col(User.email))).scalars().all()
        sites = {(u.user_id, u.site_id) for u in session.execute(select(UserSite)).scalars()}
    rows = [
        (
            u.email,
            u.role,
            ", ".join(sorted(s for uid, s in sites if uid == u.id)),
            "yes" if u.password_hash else "no",
        )
        for u in users
    ]
    typer.echo(render(("email", "role", "sites", "password"), rows))


@tokens_app.command("create")
def tokens_create(
    email: Annotated[str, typer.Option()],
    feed_site: Annotated[
        str | None,
        typer.Option("--feed-site", help="A read-only calendar-feed token for this site."),
    ] = None,
) -> None:
    """Create a token for a user; it is printed once and stored only as a hash."""
    from surveillance.accounts import auth

    with write_session(_engine()) as session:
        row, token = auth.create_token(
            session, email=email, actor=_actor(), feed_site=feed_site, now=system_clock()
        )
    typer.echo(token)
    if feed_site:
        typer.echo(
            f"calendar feed: {get_settings().base_url}"
            f"/api/v1/sites/{feed_site}/calendar.ics?token={token}",
            err=True,
        )
    typer.echo(f"token {row.prefix}… for {email}: store it now, it is not shown again", err=True)


@tokens_app.command("revoke")
def tokens_revoke(
    prefix: Annotated[
        str, typer.Argument(help="The token's first 12 characters (see tokens list).")
    ],
) -> None:
    """Revoke a token: it stops working within SURVEILLANCE_CACHE_SECONDS (default 5 s)."""
    from surveillance.accounts import auth

    with write_session(_engine()) as session:
        auth.revoke_token(session, prefix=prefix, actor=_actor(), now=system_clock())
    typer.echo(f"revoked {prefix}")


@tokens_app.command("list")
def tokens_list() -> None:
    from surveillance.accounts import auth

    with read_session(_engine()) as session:
        rows = [
            (t.prefix + "…", email, t.kind, t.feed_site_id or "", t.created_at, t.revoked_at or "")
            for t, email in auth.list_tokens(session)
        ]
    typer.echo(render(("token", "user", "kind", "site", "created", "revoked"), rows))


def main() -> None:
    """Entry point: domain errors become a message and exit code 1, never a traceback."""
    try:
        app()
    except (SurveillanceError, rules.RulesError) as exc:
        typer.echo(f"error: {getattr(exc, 'message', None) or exc}", err=True)
        sys.exit(1)
