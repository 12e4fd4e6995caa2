"""A patient's visit on one form, and several overdue items marked missed at once.

Both record through ``record_outcomes`` in one transaction: all or nothing. A refused
visit comes back (422, or 412 when a row changed meanwhile) with every typed value kept
and each row's error beside its field. "Check what it starts" shows the form again, as
typed, with what each result would start, stop or move in the calendar (nothing is
written: ``preview_outcomes``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request, Response
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData

from surveillance.accounts.models import CLINICAL_ROLES
from surveillance.adverse_events.previews import effects_of, preview_outcomes
from surveillance.adverse_events.results import (
    OutcomesRefused,
    OutcomeToRecord,
    RecordedResult,
    record_outcomes,
)
from surveillance.errors import InvalidInput, NotFound, PreconditionFailed
from surveillance.http.deps import AppState, State, visible_patient
from surveillance.http.web.effects_text import effects_summary
from surveillance.http.web.outcome_entry import (
    OUTCOMES,
    OutcomeEntry,
    done_on,
    form_version,
    typed_result,
)
from surveillance.http.web.render import (
    NO_SUCH_PATIENT,
    PageRoute,
    redirect,
    render,
    request_locale,
    set_flash,
)
from surveillance.http.web.routes.due import due_context
from surveillance.http.web.routes.outcomes import NOT_DONE_REASON
from surveillance.http.web.session import CurrentWebUser, WebUser, check_csrf, safe_next
from surveillance.kit.i18n import N_, gettext, ngettext, use_locale
from surveillance.patients.visits import Visit, visit_of
from surveillance.protocols.views import result_types
from surveillance.records.patients import AssessmentRef, Outcome, Patient

router = APIRouter(route_class=PageRoute, include_in_schema=False)
PENDING = "pending"  # the visit form's "not recorded now": the row stays on the list
STALE = N_(
    "Nothing was recorded: someone changed an assessment of this visit after the form was "
    "loaded. The form shows them as they are now, with what you typed; check and save again."
)


@dataclass
class VisitForm:
    """What was typed, per assessment key; the errors beside the fields."""

    on: str = ""
    values: dict[str, dict[str, str]] = field(default_factory=dict)
    errors: dict[str, tuple[str, str | None]] = field(default_factory=dict)


@router.get("/patients/{study_id}/visits/{due_on}")
def visit_page(
    request: Request, study_id: str, due_on: str, state: State, user: CurrentWebUser, next: str = ""
) -> Response:
    """All of the patient's pending assessments due that day, on one form."""
    context = _context(state, user, study_id, due_on, safe_next(next), VisitForm())
    return render(request, "visit_form.html", context, user=user)


@router.post("/patients/{study_id}/visits/{due_on}")
async def record_visit(
    request: Request, study_id: str, due_on: str, state: State, user: CurrentWebUser
) -> Response:
    """Record the visit in one transaction, then back to the due list with what it started."""
    form = await request.form()
    # The database work in a worker thread, not on the event loop other requests share.
    return await run_in_threadpool(_record_visit, request, form, study_id, due_on, state, user)


def _record_visit(
    request: Request, form: FormData, study_id: str, due_on: str, state: State, user: WebUser
) -> Response:
    # The messages made here (errors, the summary) are in the reader's language.
    with use_locale(request_locale(request, user)):
        return _record_visit_in_locale(request, form, study_id, due_on, state, user)


def _record_visit_in_locale(
    request: Request, form: FormData, study_id: str, due_on: str, state: State, user: WebUser
) -> Response:
    _check(user, str(form.get("csrf_token", "")))
    back = safe_next(str(form.get("next", "")))
    typed = VisitForm(on=str(form.get("on", "")))
    keys = [str(key) for key in form.getlist("key")]
    for key in keys:
        names = ("outcome", "on", "result", "result_unit", "reason", "note", "version")
        typed.values[key] = {name: str(form.get(f"{name}:{key}", "")) for name in names}
    preview = str(form.get("intent", "")) == "preview"
    try:
        with state.write() as session:
            patient = _patient(session, user, study_id)
            today = state.site(session, patient.site_id).today(state.now())
            entries = _entries(typed, today)
            now, registry = state.now(), state.registry
            if preview:  # rolled back inside: this transaction writes nothing
                effects = preview_outcomes(
                    session, entries, actor=user.principal.email, registry=registry, now=now
                )
            else:
                done = record_outcomes(
                    session, entries, actor=user.principal.email, registry=registry, now=now
                )
                said = [effects_of(session, d, registry=registry, now=now) for d in done]
    except OutcomesRefused as exc:
        for key, error in exc.errors.items():
            typed.errors[key] = (_words(error), getattr(error, "field", None))
        status = 412 if exc.stale else 422
        return _again(request, state, user, study_id, due_on, back, typed, status, exc.stale)
    except InvalidInput as exc:  # a date or version the form lost, before any row was tried
        key = getattr(exc, "key", "")
        typed.errors[key or "_visit"] = (exc.message, exc.field)
        return _again(request, state, user, study_id, due_on, back, typed, 422, False)
    if preview:
        context = _context(state, user, study_id, due_on, back, typed)
        context["effects"] = {e.key: e for e in effects}
        return render(request, "visit_form.html", context, user=user)
    message = ngettext(
        "Recorded the visit of %(patient)s: %(n)s assessment.",
        "Recorded the visit of %(patient)s: %(n)s assessments.",
        len(done),
    ) % {"patient": study_id, "n": len(done)}
    started = [effects_summary(e) for e in said if e.starts or e.stops or e.moves or e.safety_case]
    text = " ".join([message, *(f"{s[:1].upper()}{s[1:]}." for s in started)])
    response = redirect(back or f"/sites/{quote(patient.site_id)}/due")
    set_flash(request, response, "success", text)
    return response


@router.post("/sites/{site_id}/due/missed")
async def mark_missed(
    request: Request, site_id: str, state: State, user: CurrentWebUser
) -> Response:
    """The ticked overdue rows recorded missed, with one reason, in one transaction."""
    form = await request.form()
    return await run_in_threadpool(_mark_missed, request, form, site_id, state, user)


def _mark_missed(
    request: Request, form: FormData, site_id: str, state: State, user: WebUser
) -> Response:
    with use_locale(request_locale(request, user)):
        return _mark_missed_in_locale(request, form, site_id, state, user)


def _mark_missed_in_locale(
    request: Request, form: FormData, site_id: str, state: State, user: WebUser
) -> Response:
    _check(user, str(form.get("csrf_token", "")))
    back = safe_next(str(form.get("next", ""))) or f"/sites/{quote(site_id)}/due"
    keys = [str(key) for key in form.getlist("key")]
    reason = str(form.get("reason", "")).strip()
    error = None
    if not keys:
        error = gettext("Tick at least one overdue row to mark it missed.")
    elif not reason:
        error = gettext("Say why they were missed; the reason is kept with each of them.")
    if error is None:
        try:
            with state.write() as session:
                for key in keys:
                    patient = _patient(session, user, AssessmentRef.parse(key).study_id)
                    if patient.site_id != site_id:
                        raise NotFound(NO_SUCH_PATIENT.format(study_id=patient.study_id))
                today = state.site(session, site_id).today(state.now())
                entries = [
                    OutcomeToRecord(
                        key,
                        Outcome.missed.value,
                        today,
                        reason=reason,
                        expected_version=form_version(str(form.get(f"version:{key}", ""))),
                    )
                    for key in keys
                ]
                done = record_outcomes(
                    session, entries, actor=user.principal.email, registry=state.registry,
                    now=state.now(),
                )  # fmt: skip
        except OutcomesRefused as exc:
            error = "; ".join(f"{key}: {_words(e)}" for key, e in exc.errors.items())
            if exc.stale:
                error = gettext(
                    "Nothing was marked missed: someone changed one of them after the page "
                    "was loaded. Check the list below and try again."
                )
        except InvalidInput as exc:
            error = exc.message
    if error is not None:
        context = due_context(state, user, site_id) | {"bulk_error": error, "bulk_reason": reason}
        return render(request, "due_list.html", context, user=user, status_code=422)
    names = ", ".join(_name(d) for d in done)
    text = ngettext(
        "%(n)s assessment marked missed: %(names)s.",
        "%(n)s assessments marked missed: %(names)s.",
        len(done),
    ) % {"n": len(done), "names": names}
    response = redirect(back)
    set_flash(request, response, "success", text)
    return response


def _entries(typed: VisitForm, today: date) -> list[OutcomeToRecord]:
    """The rows to record (a row left "not recorded now" stays pending)."""
    entries: list[OutcomeToRecord] = []
    errors: dict[str, tuple[str, str | None]] = {}
    for key, v in typed.values.items():
        if v["outcome"] == PENDING:
            continue
        try:
            on = done_on(v["on"] or typed.on, today=today)
            version = form_version(v["version"])
        except InvalidInput as exc:
            errors[key] = (exc.message, exc.field)
            continue
        result = typed_result(v["result"], v["result_unit"])
        entries.append(
            OutcomeToRecord(
                key=key,
                outcome=v["outcome"],
                on=on,
                result=result if v["outcome"] == Outcome.completed.value else None,
                reason=v["reason"].strip() or None,
                note=v["note"],
                expected_version=version,
            )
        )
    if errors:
        typed.errors.update(errors)
        raise OutcomesRefused({})  # shown with the errors already set
    if not entries:
        raise InvalidInput(gettext("Nothing to record: every row is left for later."))
    return entries


def _words(error: Exception) -> str:
    """The refusal as a nurse reads it: not the assessment's internal key, which the row shows."""
    if isinstance(error, PreconditionFailed):
        return gettext("Changed by someone else after this form was loaded.")
    if isinstance(error, InvalidInput) and error.field == "reason":
        return gettext(NOT_DONE_REASON)
    return getattr(error, "message", str(error))


def _name(done: RecordedResult) -> str:
    row = done.assessment
    return f"{row.assessment} #{row.occurrence}"


def _check(user: WebUser, csrf_token: str) -> None:
    check_csrf(user.csrf_token, csrf_token)
    user.principal.require_role(*CLINICAL_ROLES, to="record assessments")


def _patient(session: Session, user: WebUser, study_id: str) -> Patient:
    return visible_patient(session, user.principal, study_id, missing=NO_SUCH_PATIENT)


def _visit(
    state: AppState, user: WebUser, study_id: str, due_on: str
) -> tuple[Patient, Visit, date]:
    try:
        day = date.fromisoformat(due_on)
    except ValueError as exc:
        raise NotFound(f"{due_on!r} is not a date") from exc
    with state.read() as session:
        patient = _patient(session, user, study_id)
        today = state.site(session, patient.site_id).today(state.now())
        visit = visit_of(session, patient=patient, due_on=day, on=today, registry=state.registry)
    return patient, visit, today


def _context(
    state: AppState, user: WebUser, study_id: str, due_on: str, back: str | None, typed: VisitForm
) -> dict[str, Any]:
    patient, visit, today = _visit(state, user, study_id, due_on)
    return {
        "title": N_("Record a visit"),
        "patient": patient,
        "visit": visit,
        "today": today,
        "typed": typed,
        "entries": {
            item.key: OutcomeEntry(
                item.key,
                typed.values.get(item.key, {}),
                error=typed.errors.get(item.key, (None, None))[0],
                field=typed.errors.get(item.key, (None, None))[1],
            )
            for item in visit.items
        },
        "pending": PENDING,
        "outcomes": OUTCOMES,
        "result_types": result_types(state.registry),
        "return_to": back or f"/sites/{quote(patient.site_id)}/due",
        "action": f"/patients/{quote(study_id)}/visits/{visit.due_on.isoformat()}",
        "effects": {},  # key -> what recording it would do (a preview)
    }


def _again(
    request: Request,
    state: AppState,
    user: WebUser,
    study_id: str,
    due_on: str,
    back: str | None,
    typed: VisitForm,
    status_code: int,
    stale: bool,
) -> Response:
    context = _context(state, user, study_id, due_on, back, typed) | {
        "stale": STALE if stale else None
    }
    return render(request, "visit_form.html", context, user=user, status_code=status_code)
