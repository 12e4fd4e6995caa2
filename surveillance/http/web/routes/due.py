"""The site due list and the record-outcome form posted from each of its rows."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Form, Request, Response
from sqlmodel import Session

from surveillance.accounts.models import CLINICAL_ROLES
from surveillance.adverse_events.results import correct_outcome, record_outcome
from surveillance.errors import Conflict, InvalidInput, PreconditionFailed
from surveillance.http.deps import State, visible_patient, visible_site
from surveillance.http.web.render import NO_SUCH_PATIENT, PageRoute, redirect, render, set_flash
from surveillance.http.web.session import CurrentWebUser, check_csrf, safe_next
from surveillance.patients.due_list import DueItem, DueState, due_list
from surveillance.patients.outcomes import RecordedOutcome
from surveillance.protocols.registry import assessment_name
from surveillance.protocols.views import categories, result_types
from surveillance.records.patients import AssessmentRef, Patient
from surveillance.records.queries import assessment_versions
from surveillance.records.sites import today_at

router = APIRouter(route_class=PageRoute, include_in_schema=False)
LIMIT = 500
HORIZON_DAYS = 30
OUTCOMES = {"completed": "Completed", "missed": "Missed", "not_done": "Not done"}


@dataclass(frozen=True)
class DueRow:
    item: DueItem
    version: int
    days: (
        int  # overdue: days since the window closed; due: days left; upcoming: days until it opens
    )


@dataclass(frozen=True)
class Filters:
    state: str
    on: date
    category: str
    error: str | None


@router.get("/sites/{site_id}/due")
def due_page(
    request: Request,
    site_id: str,
    state: State,
    user: CurrentWebUser,
    status: str = "",
    on: str = "",
    category: str = "",
) -> Response:
    """Overdue first, then due now, then the next 30 days; filters; a record form per row."""
    with state.read() as session:
        site = visible_site(session, user.principal, site_id)
        today = site.today(state.now())
        filters = _filters(status, on, category, today, categories(state.registry))
        wanted = tuple(s for s in DueState if filters.state in ("", s.value))
        items = due_list(
            session,
            site_id=site.id,
            on=filters.on,
            registry=state.registry,
            states=wanted,
            horizon_days=HORIZON_DAYS,
            limit=LIMIT,
        )
        truncated = len(items) >= LIMIT
        if filters.category:  # narrowed after the limit: see "truncated" on the page
            items = [item for item in items if item.category == filters.category]
        versions = assessment_versions(session, [item.key for item in items])
    sections = {
        s: [_row(item, versions.get(item.key, 0), filters.on) for item in items if item.state is s]
        for s in DueState
    }
    context = {
        "title": f"Due list · {site.id}",
        "site": site,
        "today": today,
        "filters": filters,
        "sections": sections,
        "shown": wanted,
        "categories": categories(state.registry),
        "truncated": truncated,
        "limit": LIMIT,
        "horizon": HORIZON_DAYS,
        "outcomes": OUTCOMES,
        "result_types": result_types(state.registry),
        "return_to": request.url.path + (f"?{request.url.query}" if request.url.query else ""),
    }
    return render(request, "due_list.html", context, user=user)


@router.post("/assessments/{key}/outcome")
def record_outcome_form(
    request: Request,
    key: str,
    state: State,
    user: CurrentWebUser,
    csrf_token: Annotated[str, Form()] = "",
    version: Annotated[str, Form()] = "",
    outcome: Annotated[str, Form()] = "completed",
    on: Annotated[str, Form()] = "",
    result: Annotated[str, Form()] = "",
    result_unit: Annotated[str, Form()] = "",
    reason: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "",
) -> Response:
    """Record completed / missed / not done, re-plan, and go back to the list with a message."""

    def record(session: Session, patient: Patient) -> RecordedOutcome:
        return record_outcome(
            session,
            key=key,
            outcome=outcome,
            on=_outcome_date(on, session, patient.site_id, state.now()),
            result=_typed_result(result, result_unit),
            reason=reason.strip() or None,
            actor=user.principal.email,
            registry=state.registry,
            now=state.now(),
            expected_version=_version(version),
        )

    return _change_outcome(
        request, state, user, key, csrf_token, next,
        verb="recorded",
        back_to=lambda patient: f"/sites/{quote(patient.site_id)}/due",
        change=record,
        announce=lambda done: _recorded_message(key, done, state),
    )  # fmt: skip


@router.post("/assessments/{key}/correction")
def correct_outcome_form(
    request: Request,
    key: str,
    state: State,
    user: CurrentWebUser,
    csrf_token: Annotated[str, Form()] = "",
    version: Annotated[str, Form()] = "",
    outcome: Annotated[str, Form()] = "",
    on: Annotated[str, Form()] = "",
    result: Annotated[str, Form()] = "",
    reason: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "",
) -> Response:
    """Correct a recorded outcome with a reason (from the patient page), then go back."""

    def correct(session: Session, patient: Patient) -> RecordedOutcome:
        return correct_outcome(
            session,
            key=key,
            reason=reason,
            outcome=outcome or None,
            on=_outcome_date(on, session, patient.site_id, state.now()),
            result=result.strip() or None,
            actor=user.principal.email,
            registry=state.registry,
            now=state.now(),
            expected_version=_version(version),
        )

    def announce(done: RecordedOutcome) -> str:
        summary = "" if done.change.is_empty() else f"; calendar: {done.change.summary()}"
        return f"Corrected: {key}{summary}"

    return _change_outcome(
        request, state, user, key, csrf_token, next,
        verb="corrected",
        back_to=lambda patient: f"/patients/{quote(patient.study_id)}",
        change=correct,
        announce=announce,
    )  # fmt: skip


def _change_outcome(
    request: Request,
    state: State,
    user: CurrentWebUser,
    key: str,
    csrf_token: str,
    next: str,
    *,
    verb: str,
    back_to: Callable[[Patient], str],
    change: Callable[[Session, Patient], RecordedOutcome],
    announce: Callable[[RecordedOutcome], str],
) -> Response:
    """A form that records or corrects one outcome: who may, the write, and the message
    it goes back with (what went wrong, with nothing written, or what changed)."""
    check_csrf(user.csrf_token, csrf_token)
    user.principal.require_role(*CLINICAL_ROLES)
    ref = AssessmentRef.parse(key)
    back = safe_next(next)
    try:
        with state.write() as session:
            patient = visible_patient(
                session, user.principal, ref.study_id, missing=NO_SUCH_PATIENT
            )
            back = back or back_to(patient)
            done = change(session, patient)
    except PreconditionFailed:
        message = (
            f"Nothing was {verb} for {key}: someone changed it after this page was loaded. "
            "The page below shows it as it is now; check it before trying again."
        )
        response = redirect(back or "/")
        set_flash(request, response, "error", message)
        return response
    except (Conflict, InvalidInput) as exc:
        response = redirect(back or "/")
        set_flash(request, response, "error", f"Nothing was {verb} for {key}: {exc.message}")
        return response
    response = redirect(back)
    set_flash(request, response, "success", announce(done))
    return response


def _filters(status: str, on: str, category: str, today: date, known: list[str]) -> Filters:
    error = None
    day = today
    if on:
        try:
            day = date.fromisoformat(on)
        except ValueError:
            error = f"{on!r} is not a date (use YYYY-MM-DD); showing today, {today.isoformat()}."
    state = status if status in {s.value for s in DueState} else ""
    return Filters(state, day, category if category in known else "", error)


def _row(item: DueItem, version: int, on: date) -> DueRow:
    if item.state is DueState.overdue:
        days = item.days_overdue
    elif item.state is DueState.due:
        days = (item.window_end - on).days
    else:
        days = (item.window_start - on).days
    return DueRow(item, version, days)


def _typed_result(value: str, unit: str) -> str | None:
    """The result field and, for a quantity, the unit chosen beside it ("3.5" + "g/L")."""
    value = value.strip()
    return f"{value} {unit.strip()}" if value and unit.strip() else value or None


def _version(value: str) -> int:
    if not value.isdigit():
        raise InvalidInput("the form lost the record's version; reload the page and try again")
    return int(value)


def _outcome_date(value: str, session: Session, site_id: str, now: datetime) -> date:
    """The date typed in the form, or today at the patient's site."""
    if value:
        try:
            return date.fromisoformat(value)
        except ValueError as exc:
            raise InvalidInput(f"{value!r} is not a date; use YYYY-MM-DD") from exc
    return today_at(session, site_id, now)


def _recorded_message(key: str, recorded: RecordedOutcome, state: State) -> str:
    row = recorded.assessment
    name = assessment_name(state.registry, row.protocol_id, row.protocol_version, row.assessment)
    label = OUTCOMES.get(row.status, row.status).lower()
    text = f"Recorded: {key.split(':', 1)[0]} · {name} — {label} on {row.performed_on}."
    if row.protocol_deviation:
        window = f"{row.window_start} to {row.window_end}"
        text += f" That is outside its window ({window}): flagged as a protocol deviation."
    change = recorded.change
    parts = [
        f"{len(v)} {k}"
        for k, v in (
            ("added", change.added),
            ("moved", change.moved),
            ("cancelled", change.cancelled),
            ("reinstated", change.reinstated),
        )
        if v
    ]
    if parts:
        text += f" The calendar was updated: {', '.join(parts)}."
    return text
