"""Patients and their calendars: enroll, record, correct, undo, infuse, event, status, due,
show, amend."""

from __future__ import annotations

import json
from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Any

import typer

from surveillance.adverse_events.previews import effects_of
from surveillance.adverse_events.results import correct_outcome, record_outcome
from surveillance.cli.context import DateOption, TodayOption, actor, migrated_runtime
from surveillance.kit.bounds import check_as_of
from surveillance.kit.db import read_session, statement_read_session, write_session
from surveillance.kit.text_table import render
from surveillance.patients import due_csv
from surveillance.patients.amendments import amend, describe
from surveillance.patients.changes import add_infusion, change_status, record_event
from surveillance.patients.due_list import DueState, due_list
from surveillance.patients.enrolment import Enrolment, enroll
from surveillance.patients.undo import undo_outcome
from surveillance.patients.views import calendar_dicts
from surveillance.records.queries import calendar_size, find_assessment, get_patient
from surveillance.records.sites import get_site

commands = typer.Typer()


class TableFormat(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"


# -- records that change a calendar -------------------------------------------------------


@commands.command("enroll")
def enroll_command(
    study_id: Annotated[str, typer.Option(help="Pseudonymous study id, e.g. ROM-009.")],
    site: Annotated[str, typer.Option()],
    birth: DateOption,
    sex: Annotated[str, typer.Option(help="F or M.")],
    diagnosis: Annotated[str, typer.Option()],
    protocol: Annotated[str, typer.Option()],
    infusion: DateOption,
    now: TodayOption = None,
) -> None:
    """Enrol a patient with the first infusion; the calendar is computed and stored."""
    current = migrated_runtime(now)
    enrolment = Enrolment(study_id, site, birth.date(), sex, diagnosis, protocol, infusion.date())
    with write_session(current.engine) as session:
        ids = enroll(
            session, [enrolment], registry=current.registry, now=current.clock(), actor=actor()
        )
        count = calendar_size(session, ids[study_id])
    typer.echo(f"enrolled {study_id} at {site}: {count} assessments planned")


@commands.command("record")
def record_command(
    key: Annotated[str, typer.Argument(help="Assessment key, e.g. ROM-001:1:rcl_test:2.")],
    outcome: Annotated[str, typer.Option(help="completed, missed or not_done.")],
    on: DateOption,
    result: Annotated[
        str | None, typer.Option(help="Typed by the assessment (`surveillance protocols show`).")
    ] = None,
    reason: Annotated[str | None, typer.Option()] = None,
    note: Annotated[str | None, typer.Option(help="Free text beside the result.")] = None,
    now: TodayOption = None,
) -> None:
    """Record what was done for one assessment; the future calendar follows."""
    current = migrated_runtime(now)
    with write_session(current.engine) as session:
        recorded = record_outcome(
            session,
            key=key,
            outcome=outcome,
            on=on.date(),
            result=result,
            reason=reason,
            note=note,
            actor=actor(),
            registry=current.registry,
            now=current.clock(),
        )
        said = effects_of(session, recorded, registry=current.registry, now=current.clock())
    flag = (
        " (outside its window: protocol deviation)"
        if recorded.assessment.protocol_deviation
        else ""
    )
    typer.echo(f"recorded {key}: {outcome} on {on.date()}{flag}")
    if not recorded.change.is_empty():
        typer.echo(f"calendar: {recorded.change.summary()}")
    typer.echo(f"so: {said.summary}")


@commands.command("correct")
def correct_command(
    key: Annotated[str, typer.Argument(help="Assessment key, e.g. ROM-001:1:rcl_test:2.")],
    reason: Annotated[str, typer.Option(help="Why it is corrected (kept in the audit trail).")],
    result: Annotated[str | None, typer.Option(help="The corrected result.")] = None,
    outcome: Annotated[
        str | None, typer.Option(help="The corrected status: completed, missed or not_done.")
    ] = None,
    on: Annotated[
        datetime | None, typer.Option(formats=["%Y-%m-%d"], help="The corrected date.")
    ] = None,
    note: Annotated[
        str | None, typer.Option(help="Replaces the note beside the result ('' clears it).")
    ] = None,
    now: TodayOption = None,
) -> None:
    """Correct a recorded outcome (a new version, with a reason); the future calendar follows."""
    current = migrated_runtime(now)
    with write_session(current.engine) as session:
        corrected = correct_outcome(
            session,
            key=key,
            reason=reason,
            result=result,
            outcome=outcome,
            on=on.date() if on else None,
            note=note,
            actor=actor(),
            registry=current.registry,
            now=current.clock(),
            expected_version=None,
        )
        said = effects_of(
            session, corrected, registry=current.registry, now=current.clock(), corrected=True
        )
    row = corrected.assessment
    typer.echo(
        f"corrected {key}: {row.status} on {row.performed_on}"
        + (f", result {row.result}" if row.result else "")
    )
    if not corrected.change.is_empty():
        typer.echo(f"calendar: {corrected.change.summary()}")
    typer.echo(f"so: {said.summary}")


@commands.command("undo")
def undo_command(
    key: Annotated[str, typer.Argument(help="Assessment key, e.g. ROM-001:1:rcl_test:2.")],
    now: TodayOption = None,
) -> None:
    """Undo your own recording within 15 minutes (no reason needed): pending again, and
    the future calendar follows. After that, or someone else's: ``correct`` it."""
    current = migrated_runtime(now)
    with write_session(current.engine) as session:
        # What is taken back, read (under the undo's own row lock) before it is cleared.
        _, before = find_assessment(session, key, for_update=True)
        was = f"{before.status} on {before.performed_on}" + (
            f", result {before.result}" if before.result else ""
        )
        undone = undo_outcome(
            session,
            key=key,
            actor=actor(),
            registry=current.registry,
            now=current.clock(),
            expected_version=None,
        )
    typer.echo(f"undone {key}: was {was}; now {undone.assessment.status}")
    if not undone.change.is_empty():
        typer.echo(f"calendar: {undone.change.summary()}")


@commands.command("infuse")
def infuse_command(study_id: str, on: DateOption, now: TodayOption = None) -> None:
    """Record a re-infusion (a new anchor for the calendar)."""
    current = migrated_runtime(now)
    with write_session(current.engine) as session:
        change = add_infusion(
            session,
            study_id=study_id,
            on=on.date(),
            actor=actor(),
            registry=current.registry,
            now=current.clock(),
        )
    typer.echo(f"re-infusion of {study_id} on {on.date()}: {change.summary()}")


@commands.command("event")
def event_command(
    study_id: str,
    kind: Annotated[str, typer.Option(help="e.g. new_malignancy (see the protocol's events).")],
    on: DateOption,
    note: Annotated[str | None, typer.Option()] = None,
    now: TodayOption = None,
) -> None:
    """Record an event the protocol reacts to (e.g. a new malignancy)."""
    current = migrated_runtime(now)
    with write_session(current.engine) as session:
        change = record_event(
            session,
            study_id=study_id,
            kind=kind,
            on=on.date(),
            note=note,
            actor=actor(),
            registry=current.registry,
            now=current.clock(),
        )
    typer.echo(f"{kind} for {study_id} on {on.date()}: {change.summary()}")


@commands.command("status")
def status_command(
    study_id: str,
    status: Annotated[
        str, typer.Option(help="deceased, withdrawn, lost_to_follow_up, transferred, active.")
    ],
    on: DateOption,
    reason: Annotated[str, typer.Option()],
    to_site: Annotated[str | None, typer.Option(help="For transferred: the new site.")] = None,
    now: TodayOption = None,
) -> None:
    """Change a patient's status; death and withdrawal end the future calendar."""
    current = migrated_runtime(now)
    with write_session(current.engine) as session:
        change = change_status(
            session,
            study_id=study_id,
            status=status,
            on=on.date(),
            reason=reason,
            actor=actor(),
            registry=current.registry,
            now=current.clock(),
            to_site=to_site,
        )
    typer.echo(f"{study_id} is now {status} (from {on.date()}): {change.summary()}")


# -- lists ---------------------------------------------------------------------------------


@commands.command("due")
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
    current = migrated_runtime()
    with statement_read_session(current.engine) as session:
        site_row = get_site(session, site)
        today = site_row.today(current.clock())
        day = check_as_of(on.date(), today) if on else today
        states = (status,) if status else tuple(DueState)
        items = due_list(
            session,
            site_id=site,
            on=day,
            registry=current.registry,
            states=states,
            horizon_days=horizon,
            limit=limit,
        )
    if output is TableFormat.json:
        typer.echo(json.dumps([item.as_dict() for item in items], indent=2, ensure_ascii=False))
        return
    if output is TableFormat.csv:
        # Bytes, as the API sends them (docs/csv.md): no re-encoding by the terminal's locale.
        typer.echo(due_csv.due_csv(items, site_id=site), nl=False)
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


# What ``show --format json`` prints of each assessment of the read model.
SHOW_FIELDS = (
    "key",
    "assessment",
    "name",
    "due",
    "window_start",
    "window_end",
    "status",
    "state",
    "performed_on",
    "result",
    "protocol_deviation",
    "reason",
    "status_reason",
)


@commands.command("show")
def show_command(
    study_id: str,
    on: Annotated[datetime | None, typer.Option(formats=["%Y-%m-%d"])] = None,
    output: Annotated[TableFormat, typer.Option("--format")] = TableFormat.table,
) -> None:
    """A patient's stored calendar with each assessment's state on a day."""
    current = migrated_runtime()
    with read_session(current.engine) as session:
        patient = get_patient(session, study_id)
        site = get_site(session, patient.site_id)
        today = site.today(current.clock())
        day = check_as_of(on.date(), today) if on else today
        rows = calendar_dicts(session, patient, on=day, registry=current.registry)
    if output is TableFormat.json:
        shown = [{name: _json_value(row[name]) for name in SHOW_FIELDS} for row in rows]
        typer.echo(json.dumps(shown, indent=2, ensure_ascii=False))
        return
    typer.echo(
        f"{patient.study_id}  site {patient.site_id}  {patient.diagnosis}  "
        f"born {patient.birth_date}  "
        f"{patient.protocol_id} {patient.protocol_version}  status {patient.status}\n"
    )
    table = [
        (
            row["due"],
            row["state"],
            row["assessment"],
            row["occurrence"],
            row["performed_on"] or "",
            row["result"] or "",
            row["status_reason"] or row["reason"],
        )
        for row in rows
    ]
    typer.echo(
        render(
            ("due", "state", "assessment", "#", "done on", "result", "reason"), table, max_width=70
        )
    )


def _json_value(value: Any) -> Any:
    return value.isoformat() if isinstance(value, date) else value


# -- protocol amendments -------------------------------------------------------------------


@commands.command("amend")
def amend_command(
    protocol: Annotated[str, typer.Option()],
    to_version: Annotated[str, typer.Option()],
    apply: Annotated[
        bool, typer.Option("--apply", help="Write the changes (default: dry run).")
    ] = False,
) -> None:
    """Show (or with --apply, make) the calendar changes of moving patients to a new protocol version."""  # noqa: E501
    current = migrated_runtime()
    with write_session(current.engine) as session:
        amendments = amend(
            session,
            protocol_id=protocol,
            to_version=to_version,
            registry=current.registry,
            actor=actor(),
            now=current.clock(),
            apply=apply,
        )
        if not apply:
            session.rollback()
    today = current.clock().date()
    for item in amendments:
        lines = describe(
            item,
            protocol_id=protocol,
            to_version=to_version,
            registry=current.registry,
            today=today,
        )
        for line in lines:
            typer.echo(line)
    verb = "applied to" if apply else "dry run: nothing written for"
    typer.echo(f"{verb} {len(amendments)} patient(s)")
