"""Assessments: read one, record its outcome, book it on a day inside its window.

Keys look like ``ROM-001:1:rcl_test:2`` (study id, infusion, rule, occurrence); the
colons travel in the path unescaped. Updates carry the version they change (If-Match).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from sqlmodel import Session

from surveillance.accounts.auth import Principal
from surveillance.accounts.models import CLINICAL_ROLES
from surveillance.adverse_events.effects import Effects
from surveillance.adverse_events.previews import effects_of, preview_correction, preview_outcome
from surveillance.adverse_events.results import RecordedResult, correct_outcome, record_outcome
from surveillance.errors import NotFound
from surveillance.http.api.effects_schemas import EffectsPublic
from surveillance.http.api.schemas import (
    AssessmentChangeResult,
    AssessmentPublic,
    CorrectionCreate,
    OutcomeCreate,
    RescheduleRequest,
)
from surveillance.http.deps import (
    AppState,
    CurrentUser,
    IfMatch,
    OptionalIfMatch,
    State,
    etag,
    parse_if_match,
)
from surveillance.patients.appointments import reschedule
from surveillance.patients.undo import undo_outcome
from surveillance.patients.views import assessment_dict, change_dict
from surveillance.records.patients import Assessment, Patient
from surveillance.records.queries import find_assessment
from surveillance.records.sites import get_site

router = APIRouter(prefix="/assessments", tags=["assessments"])


def _visible(session: Session, user: Principal, key: str) -> tuple[Patient, Assessment]:
    """The assessment, if the caller works at its patient's site; otherwise 404 alike."""
    user.require_role(*CLINICAL_ROLES, to="read or record assessments")
    try:
        patient, row = find_assessment(session, key)
    except NotFound:
        raise NotFound(f"no assessment {key!r}") from None
    if not user.works_at(patient.site_id):
        raise NotFound(f"no assessment {key!r}")
    return patient, row


def _shaped(session: Session, state: AppState, patient: Patient, row: Assessment) -> dict[str, Any]:
    """The assessment with its state on today's date at the patient's site."""
    site = get_site(session, patient.site_id)
    today = site.today(state.now())
    return assessment_dict(patient.study_id, row, on=today, registry=state.registry)


@router.get("/{key}", response_model=AssessmentPublic)
def read_assessment(
    key: str, state: State, user: CurrentUser, response: Response
) -> dict[str, Any]:
    """One assessment with its stored outcome and today's state; the ETag is its version."""
    with state.read() as session:
        patient, row = _visible(session, user, key)
        result = _shaped(session, state, patient, row)
    response.headers["ETag"] = etag(row.version)
    return result


@router.post("/{key}/outcome", response_model=AssessmentChangeResult)
def record_assessment_outcome(
    key: str,
    body: OutcomeCreate,
    state: State,
    user: CurrentUser,
    response: Response,
    if_match: IfMatch = None,
) -> dict[str, Any]:
    """Completed (with date and optional result), missed, or not done (with a reason).

    A completed date outside the window is accepted and flagged as a protocol deviation.
    The calendar is re-planned from the new fact; the response says what changed.
    """
    with state.write() as session:
        patient, _ = _visible(session, user, key)
        recorded = record_outcome(
            session, **_recording(key, body, user, state, parse_if_match(if_match))
        )
        return _changed(session, state, patient, recorded, response)


@router.post("/{key}/corrections", response_model=AssessmentChangeResult)
def correct_assessment_outcome(
    key: str,
    body: CorrectionCreate,
    state: State,
    user: CurrentUser,
    response: Response,
    if_match: IfMatch = None,
) -> dict[str, Any]:
    """Correct a recorded outcome (status, date, result) with a reason.

    The original stays in the history and the audit trail; the calendar is re-planned
    from the corrected fact: what the old result started and is still pending is
    cancelled, what the corrected one starts appears (a corrected positive RCL opens its
    safety case). Nurses and investigators of the site; not pharmacovigilance.
    """
    with state.write() as session:
        patient, _ = _visible(session, user, key)
        corrected = correct_outcome(
            session, **_correcting(key, body, user, state, parse_if_match(if_match))
        )
        return _changed(session, state, patient, corrected, response, corrected=True)


@router.post("/{key}/undo", response_model=AssessmentChangeResult)
def undo_assessment_outcome(
    key: str,
    state: State,
    user: CurrentUser,
    response: Response,
    if_match: IfMatch = None,
) -> dict[str, Any]:
    """Undo your own recording within 15 minutes, without a reason: pending again.

    The undo is one more version in the history and the audit trail; the calendar is
    re-planned as if the result had not come. 409 when it is not yours, is older than 15
    minutes, was corrected, or opened a safety case: then it is a correction, with a reason.
    """
    with state.write() as session:
        patient, _ = _visible(session, user, key)
        undone = undo_outcome(
            session,
            key=key,
            actor=user.email,
            registry=state.registry,
            now=state.now(),
            expected_version=parse_if_match(if_match),
        )
        # An undo opens no case: described like a save that opened none.
        return _changed(
            session, state, patient, RecordedResult(undone.assessment, undone.change), response
        )


def _changed(
    session: Session,
    state: AppState,
    patient: Patient,
    done: RecordedResult,
    response: Response,
    *,
    corrected: bool = False,
) -> dict[str, Any]:
    """An outcome recorded or corrected: the assessment as now, what the calendar did, what
    the save started and opened (as its preview said), and the new ETag."""
    response.headers["ETag"] = etag(done.assessment.version)
    return {
        "assessment": _shaped(session, state, patient, done.assessment),
        "change": change_dict(done.change, patient.study_id),
        "effects": effects_of(
            session, done, registry=state.registry, now=state.now(), corrected=corrected
        ),
    }


@router.post("/{key}/outcome/preview", response_model=EffectsPublic)
def preview_assessment_outcome(
    key: str,
    body: OutcomeCreate,
    state: State,
    user: CurrentUser,
    if_match: OptionalIfMatch = None,
) -> Effects:
    """What POST /outcome with this body would start, stop, move and open; nothing is saved.

    The same body, roles and refusals (a result the assessment cannot produce is the same
    422). If-Match is optional here; when sent, a stale one is 412 as for the save.
    """
    with state.write() as session:  # the save runs in a SAVEPOINT, then is rolled back
        _visible(session, user, key)
        return preview_outcome(
            session, **_recording(key, body, user, state, _version_if_sent(if_match))
        )


@router.post("/{key}/corrections/preview", response_model=EffectsPublic)
def preview_assessment_correction(
    key: str,
    body: CorrectionCreate,
    state: State,
    user: CurrentUser,
    if_match: OptionalIfMatch = None,
) -> Effects:
    """What POST /corrections with this body would cancel, start and open; nothing is
    saved. Same body, roles and refusals; If-Match optional, checked when sent."""
    with state.write() as session:
        _visible(session, user, key)
        return preview_correction(
            session, **_correcting(key, body, user, state, _version_if_sent(if_match))
        )


def _recording(
    key: str, body: OutcomeCreate, user: Principal, state: AppState, version: int | None
) -> dict[str, Any]:
    """The arguments of ``record_outcome`` (and of its preview) from the request: one
    place, so a save and its preview can never read the body differently."""
    return {
        "key": key,
        "outcome": body.outcome,
        "on": body.date,
        "result": body.result,
        "reason": body.reason,
        "note": body.note,
        "actor": user.email,
        "registry": state.registry,
        "now": state.now(),
        "expected_version": version,
    }


def _correcting(
    key: str, body: CorrectionCreate, user: Principal, state: AppState, version: int | None
) -> dict[str, Any]:
    """The arguments of ``correct_outcome`` (and of its preview) from the request."""
    return {
        "key": key,
        "reason": body.reason,
        "outcome": body.outcome,
        "on": body.date,
        "result": body.result,
        "note": body.note,
        "actor": user.email,
        "registry": state.registry,
        "now": state.now(),
        "expected_version": version,
    }


def _version_if_sent(if_match: str | None) -> int | None:
    return None if if_match is None else parse_if_match(if_match)


@router.post("/{key}/reschedule", response_model=AssessmentPublic)
def reschedule_assessment(
    key: str,
    body: RescheduleRequest,
    state: State,
    user: CurrentUser,
    response: Response,
    if_match: IfMatch = None,
) -> dict[str, Any]:
    """Book the assessment on a day inside its window (the window itself does not move)."""
    with state.write() as session:
        patient, _ = _visible(session, user, key)
        row = reschedule(
            session,
            key=key,
            on=body.date,
            reason=body.reason,
            actor=user.email,
            now=state.now(),
            expected_version=parse_if_match(if_match),
        )
        result = _shaped(session, state, patient, row)
    response.headers["ETag"] = etag(row.version)
    return result
