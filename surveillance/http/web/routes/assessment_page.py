"""One assessment of a patient, as the place to act on it: why it is due (the engine's
reason and its window), record an outcome, book it on a day inside its window, or correct
what was recorded. The patient page links each row here, so it need not carry every form."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Form, Request, Response

from surveillance.accounts.models import CLINICAL_ROLES
from surveillance.errors import Conflict, InvalidInput, NotFound, PreconditionFailed
from surveillance.http.deps import AppState, State, visible_patient
from surveillance.http.web.outcome_entry import OUTCOMES, OutcomeEntry, form_version
from surveillance.http.web.render import (
    NO_SUCH_PATIENT,
    PageRoute,
    redirect,
    render,
    request_locale,
    set_flash,
)
from surveillance.http.web.session import CurrentWebUser, WebUser, check_csrf, safe_next
from surveillance.kit.i18n import N_, gettext, use_locale
from surveillance.patients.appointments import reschedule
from surveillance.patients.views import assessment_dict
from surveillance.records.patients import AssessmentRef
from surveillance.records.queries import find_assessment
from surveillance.records.sites import get_site

router = APIRouter(route_class=PageRoute, include_in_schema=False)
Text = Annotated[str, Form()]


def with_reason(row: dict[str, Any]) -> dict[str, Any]:
    """``row`` with the reason for its date in parts: the engine's cause ("Month 6 after
    infusion of 2024-01-31") and the window as days before and after the due date, worked
    out from the stored dates (so a window cut at the end of follow-up reads as it is)."""
    reason = row.get("reason") or ""
    row["cause"] = reason.split(";", 1)[0].strip()
    row["before"] = (row["due"] - row["window_start"]).days
    row["after"] = (row["window_end"] - row["due"]).days
    return row


def patient_path(study_id: str) -> str:
    return f"/patients/{quote(study_id)}"


def item_path(study_id: str, key: str) -> str:
    return f"{patient_path(study_id)}/assessments/{quote(key, safe='')}"


@router.get("/patients/{study_id}/assessments/{key}")
def assessment_page(
    request: Request, study_id: str, key: str, state: State, user: CurrentWebUser
) -> Response:
    return render_item(request, state, user, key, study_id=study_id)


def render_item(
    request: Request,
    state: AppState,
    user: WebUser,
    key: str,
    *,
    study_id: str | None = None,
    entry: OutcomeEntry | None = None,
    booking: OutcomeEntry | None = None,
    status_code: int = 200,
) -> Response:
    """The item page; ``entry`` is an outcome or correction form re-shown (as typed, with
    its error or preview), ``booking`` the reschedule form re-shown."""
    context = item_context(state, user, key, study_id=study_id)
    context |= {"entry": entry, "booking": booking}
    return render(request, "assessment.html", context, user=user, status_code=status_code)


def item_context(
    state: AppState, user: WebUser, key: str, *, study_id: str | None = None
) -> dict[str, Any]:
    user.principal.require_role(*CLINICAL_ROLES, to="open a patient's page")
    try:
        ref = AssessmentRef.parse(key)
    except (InvalidInput, ValueError) as exc:
        raise NotFound(f"There is no assessment {key!r}.") from exc
    if study_id is not None and ref.study_id != study_id:
        raise NotFound(f"There is no assessment {key!r} for {study_id}.")
    with state.read() as session:
        patient = visible_patient(session, user.principal, ref.study_id, missing=NO_SUCH_PATIENT)
        _, row = find_assessment(session, key)
        site = get_site(session, patient.site_id)
        today = site.today(state.now())
        item = with_reason(
            assessment_dict(patient.study_id, row, on=today, registry=state.registry)
        )
    item["study_id"] = patient.study_id
    back = patient_path(patient.study_id)
    here = item_path(patient.study_id, key)
    return {
        "title": N_("{name} #{occurrence} · patient {study_id}"),
        "title_args": {
            "name": item["name"],
            "occurrence": item["occurrence"],
            "study_id": patient.study_id,
        },
        "item": item,
        "patient_id": patient.study_id,
        "today": today,
        "book_from": max(today, item["window_start"]),
        "outcomes": OUTCOMES,
        "back": back,
        "here": here,
    }


@router.post("/assessments/{key}/reschedule")
def reschedule_form(
    request: Request,
    key: str,
    state: State,
    user: CurrentWebUser,
    csrf_token: Text = "",
    version: Text = "",
    on: Text = "",
    reason: Text = "",
    next: Text = "",
) -> Response:
    """Book a pending assessment on a day inside its window; refused, with the window said,
    outside it."""
    check_csrf(user.csrf_token, csrf_token)
    user.principal.require_role(*CLINICAL_ROLES, to="book assessments")
    values = {"on": on, "reason": reason}
    back = safe_next(next)
    try:
        day = _day(on)
        with state.write() as session:
            ref = AssessmentRef.parse(key)
            visible_patient(session, user.principal, ref.study_id, missing=NO_SUCH_PATIENT)
            row = reschedule(
                session,
                key=key,
                on=day,
                reason=reason.strip() or None,
                actor=user.principal.email,
                now=state.now(),
                expected_version=form_version(version),
            )
            back = back or patient_path(ref.study_id)
            booked = row.appointment_on
    except InvalidInput as exc:
        # The template says it in the reader's language: "outside", "past" or "date".
        problem = "date" if exc.field == "on" else "outside" if "outside" in exc.message else "past"
        entry = OutcomeEntry(key, values | {"problem": problem}, error=exc.message, field="on")
        return render_item(request, state, user, key, booking=entry, status_code=422)
    except (PreconditionFailed, Conflict) as exc:
        response = redirect(back or "/")
        with use_locale(request_locale(request, user)):
            text = gettext("Nothing was booked for {key}: {why}").format(key=key, why=exc)
        set_flash(request, response, "error", text)
        return response
    with use_locale(request_locale(request, user)):
        text = gettext("Booked: {key} on {day}.").format(key=key, day=booked)
    response = redirect(back)
    set_flash(request, response, "success", text)
    return response


def _day(value: str) -> date:
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise InvalidInput("a date is needed (YYYY-MM-DD)", field="on") from None
