"""The outcome forms: record (from the due list), correct (from the patient page), undo.

A refused entry shows its page again with what was typed and the error beside its field;
"Check what it starts" shows what saving would do (nothing is written); an early
completion asks first. Saved, the page is loaded afresh (303) with a message.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any
from urllib.parse import parse_qs, quote, urlsplit

from fastapi import APIRouter, Form, Request, Response
from sqlmodel import Session

from surveillance.accounts.models import CLINICAL_ROLES
from surveillance.adverse_events.effects import Effects
from surveillance.adverse_events.previews import effects_of, preview_correction, preview_outcome
from surveillance.adverse_events.results import correct_outcome, record_outcome
from surveillance.errors import Conflict, InvalidInput, PreconditionFailed, SurveillanceError
from surveillance.http.deps import AppState, State, visible_patient
from surveillance.http.web.effects_text import OUTCOME_WORDS, calendar_sentence, effects_summary
from surveillance.http.web.outcome_entry import (
    OutcomeEntry,
    done_on,
    form_version,
    typed_result,
)
from surveillance.http.web.render import (
    NO_SUCH_PATIENT,
    PageRoute,
    Sentence,
    reader_language,
    redirect,
    render,
    set_flash,
)
from surveillance.http.web.routes.assessment_page import render_item
from surveillance.http.web.routes.due import due_context
from surveillance.http.web.session import CurrentWebUser, WebUser, check_csrf, safe_next
from surveillance.kit.i18n import N_, format_day, gettext, term
from surveillance.patients.outcomes import RecordedOutcome
from surveillance.patients.undo import undo_outcome
from surveillance.protocols.registry import assessment_name
from surveillance.records.patients import Assessment, AssessmentRef, Outcome, Patient
from surveillance.records.queries import find_assessment
from surveillance.records.sites import get_site

router = APIRouter(route_class=PageRoute, include_in_schema=False)
Text = Annotated[str, Form()]
NOT_DONE_REASON = N_("Say why it was not done, for example “patient declined” or “sample lost”.")


@router.post("/assessments/{key}/outcome")
def record_outcome_form(
    request: Request,
    key: str,
    state: State,
    user: CurrentWebUser,
    csrf_token: Text = "",
    version: Text = "",
    outcome: Text = "completed",
    on: Text = "",
    result: Text = "",
    result_unit: Text = "",
    reason: Text = "",
    note: Text = "",
    quick: Text = "",
    intent: Text = "save",
    confirm_early: Text = "",
    next: Text = "",
) -> Response:
    """Record completed / missed / not done from the due list, re-plan, go back to it."""
    values = {"outcome": outcome, "on": on, "result": result, "result_unit": result_unit}
    values |= {"reason": reason, "note": note} | ({"quick": "1"} if quick else {})
    _check(user, csrf_token)
    back = safe_next(next)
    try:
        with state.write() as session:
            patient, row = _visible(session, user, key)
            today = get_site(session, patient.site_id).today(state.now())
            args: dict[str, Any] = {
                "key": key,
                "outcome": outcome,
                "on": done_on(on, today=today, quick=bool(quick)),
                "result": _result_if_completed(outcome, result, result_unit),
                "reason": reason.strip() or None,
                "note": note,
                "actor": user.principal.email,
                "registry": state.registry,
                "now": state.now(),
                "expected_version": form_version(version),
            }
            back = back or f"/sites/{quote(patient.site_id)}/due"
            early = outcome == Outcome.completed.value and args["on"] < row.window_start
            if intent == "preview":  # says the deviation too; saving still asks
                shown = OutcomeEntry(key, values, effects=preview_outcome(session, **args))
            elif early and not confirm_early:  # a deviation, and most often the wrong row
                shown = OutcomeEntry(key, values, early=row.window_start)
            else:
                done = record_outcome(session, **args)
                said = effects_of(session, done, registry=state.registry, now=state.now())
                shown = None
        if shown is not None:  # shown after the write transaction, which wrote nothing
            return _again_for(back)(request, state, user, patient, back, shown, 200)
    except InvalidInput as exc:
        message = exc.message
        if exc.field == "reason" and outcome == Outcome.not_done.value:
            message = gettext(NOT_DONE_REASON)  # words, beside the field: no internal key
        entry = OutcomeEntry(key, values, error=message, field=exc.field)
        return _refused_again(request, state, user, key, back, entry, _again_for(back))
    except (PreconditionFailed, Conflict) as exc:
        return _gone_back(request, key, back, "recorded", exc)
    with reader_language(request, user):
        message = _recorded_message(key, done, said, state)
    return _saved(request, back, message)


@router.post("/assessments/{key}/correction")
def correct_outcome_form(
    request: Request,
    key: str,
    state: State,
    user: CurrentWebUser,
    csrf_token: Text = "",
    version: Text = "",
    outcome: Text = "",
    on: Text = "",
    result: Text = "",
    result_unit: Text = "",
    reason: Text = "",
    note: Text = "",
    intent: Text = "save",
    next: Text = "",
) -> Response:
    """Correct a recorded outcome with a reason (from the patient page), then go back."""
    values = {"outcome": outcome, "on": on, "result": result, "result_unit": result_unit}
    values |= {"reason": reason, "note": note}
    _check(user, csrf_token)
    back = safe_next(next)
    try:
        with state.write() as session:
            patient, _ = _visible(session, user, key)
            today = get_site(session, patient.site_id).today(state.now())
            back = back or f"/patients/{quote(patient.study_id)}"
            args: dict[str, Any] = {
                "key": key,
                "outcome": outcome or None,
                "on": done_on(on, today=today),
                "result": _result_if_completed(outcome or "completed", result, result_unit),
                "note": note,
                "actor": user.principal.email,
                "registry": state.registry,
                "now": state.now(),
                "expected_version": form_version(version),
            }
            if intent == "preview":  # the reason is asked for when saving
                args["reason"] = reason.strip() or "(preview)"
                shown = OutcomeEntry(key, values, effects=preview_correction(session, **args))
            else:
                done = correct_outcome(session, reason=reason, **args)
                said = effects_of(
                    session, done, registry=state.registry, now=state.now(), corrected=True
                )
                shown = None
        if shown is not None:
            return _patient_again(request, state, user, patient, back, shown, 200)
    except InvalidInput as exc:
        entry = OutcomeEntry(key, values, error=exc.message, field=exc.field)
        return _refused_again(request, state, user, key, back, entry, _patient_again)
    except (PreconditionFailed, Conflict) as exc:
        return _gone_back(request, key, back, "corrected", exc)
    with reader_language(request, user):
        message = (
            gettext("Corrected: %(key)s.") % {"key": key} + f" {_sentence(effects_summary(said))}"
        )
    return _saved(request, back, message)


@router.post("/assessments/{key}/undo")
def undo_outcome_form(
    request: Request,
    key: str,
    state: State,
    user: CurrentWebUser,
    csrf_token: Text = "",
    version: Text = "",
    next: Text = "",
) -> Response:
    """Undo one's own recording within its 15 minutes: the item is pending again."""
    _check(user, csrf_token)
    back = safe_next(next)
    try:
        with state.write() as session:
            patient, _ = _visible(session, user, key)
            back = back or f"/sites/{quote(patient.site_id)}/due"
            done = undo_outcome(
                session,
                key=key,
                actor=user.principal.email,
                registry=state.registry,
                now=state.now(),
                expected_version=form_version(version),
            )
    except (PreconditionFailed, Conflict, InvalidInput) as exc:
        return _gone_back(request, key, back, "undone", exc)
    row = done.assessment
    name = assessment_name(state.registry, row.protocol_id, row.protocol_version, row.assessment)
    said: list[Sentence] = [
        (
            N_("Undone: {patient} · {name_term} is pending again."),
            {"patient": key.split(":", 1)[0], "name_term": name},
        )
    ]
    if not done.change.is_empty():
        said.append(calendar_sentence(done.change))
    return _saved(request, back, said)


def _result_if_completed(outcome: str, result: str, unit: str) -> str | None:
    """The result field, for a completed outcome only: a choice left in it while the
    outcome was switched to missed or not done is not what the nurse means to save."""
    return typed_result(result, unit) if outcome == Outcome.completed.value else None


def _check(user: WebUser, csrf_token: str) -> None:
    check_csrf(user.csrf_token, csrf_token)
    user.principal.require_role(*CLINICAL_ROLES, to=N_("record assessments"))


def _visible(session: Session, user: WebUser, key: str) -> tuple[Patient, Assessment]:
    ref = AssessmentRef.parse(key)
    visible_patient(session, user.principal, ref.study_id, missing=NO_SUCH_PATIENT)
    return find_assessment(session, key)


Again = Callable[[Request, AppState, WebUser, Patient, str, OutcomeEntry, int], Response]


def _refused_again(
    request: Request,
    state: AppState,
    user: WebUser,
    key: str,
    back: str | None,
    entry: OutcomeEntry,
    again: Again,
) -> Response:
    """The form's page again, as typed, with the error beside the field (422)."""
    with state.read() as session:
        patient, _ = _visible(session, user, key)
    return again(request, state, user, patient, back or "", entry, 422)


def _due_again(
    request: Request,
    state: AppState,
    user: WebUser,
    patient: Patient,
    back: str,
    entry: OutcomeEntry,
    status_code: int,
) -> Response:
    """The patient's site's due list, with the filters the form came from kept and
    ``entry`` in its row."""
    query = {name: values[0] for name, values in parse_qs(urlsplit(back).query).items()}
    context = due_context(
        state,
        user,
        patient.site_id,
        status=query.get("status", ""),
        on=query.get("on", ""),
        category=query.get("category", ""),
        entry=entry,
    )
    return render(request, "due_list.html", context, user=user, status_code=status_code)


def _patient_again(
    request: Request,
    state: AppState,
    user: WebUser,
    patient: Patient,
    back: str,
    entry: OutcomeEntry,
    status_code: int,
) -> Response:
    """The assessment's own page (linked from the patient page), with ``entry`` in its
    form: the patient page itself carries no forms but "Completed today"."""
    return render_item(request, state, user, entry.key, entry=entry, status_code=status_code)


def _again_for(back: str | None) -> Again:
    """A form posted from a patient's page is shown again on the assessment's own page."""
    return _patient_again if back and back.startswith("/patients/") else _due_again


# What was not done, said whole (a verb alone does not translate).
_CHANGED_MEANWHILE = {
    "recorded": N_(
        "Nothing was recorded for {key}: someone changed it after this page was loaded. "
        "The page below shows it as it is now; check it before trying again."
    ),
    "corrected": N_(
        "Nothing was corrected for {key}: someone changed it after this page was loaded. "
        "The page below shows it as it is now; check it before trying again."
    ),
    "undone": N_(
        "Nothing was undone for {key}: someone changed it after this page was loaded. "
        "The page below shows it as it is now; check it before trying again."
    ),
}
_REFUSED = {
    "recorded": N_("Nothing was recorded for {key}: {why}"),
    "corrected": N_("Nothing was corrected for {key}: {why}"),
    "undone": N_("Nothing was undone for {key}: {why}"),
}


def _gone_back(request: Request, key: str, back: str | None, verb: str, exc: Exception) -> Response:
    """Nothing written: back to the page, which shows the item as it is now."""
    response = redirect(back or "/")
    if isinstance(exc, PreconditionFailed):
        set_flash(request, response, "error", _CHANGED_MEANWHILE[verb], key=key)
    else:
        why = exc.message if isinstance(exc, SurveillanceError) else str(exc)
        set_flash(request, response, "error", _REFUSED[verb], key=key, why=why)
    return response


def _saved(request: Request, back: str, message: str | list[Sentence]) -> Response:
    response = redirect(back)
    set_flash(request, response, "success", message)
    return response


def _recorded_message(key: str, recorded: RecordedOutcome, said: Effects, state: AppState) -> str:
    """ "Recorded: ROM-101 · RCL test — done on 3 Dec 2026. Negative: …" in the reader's
    language (call under ``reader_language``)."""
    row = recorded.assessment
    name = assessment_name(state.registry, row.protocol_id, row.protocol_version, row.assessment)
    text = gettext("Recorded: %(patient)s · %(name)s — %(outcome)s on %(day)s.") % {
        "patient": key.split(":", 1)[0],
        "name": term(name),
        "outcome": gettext(OUTCOME_WORDS.get(row.status, row.status)),
        "day": format_day(row.performed_on),
    }
    return f"{text} {_sentence(effects_summary(said))}"


def _sentence(summary: str) -> str:
    """ "positive: starts ..." as a sentence of the message."""
    return f"{summary[:1].upper()}{summary[1:]}."
