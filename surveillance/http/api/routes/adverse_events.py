"""Adverse events: record a case, add follow-up versions, nullify, read.

Nurses, investigators and admins of the patient's site write; pharmacovigilance reads
(pseudonymous content only). Every change needs If-Match with the case's ETag.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response, status
from sqlmodel import Session

from surveillance.accounts.auth import Principal
from surveillance.accounts.models import CLINICAL_ROLES, Role
from surveillance.adverse_events.cases import (
    CaseChange,
    add_follow_up,
    create_case,
    get_case,
    nullify_case,
)
from surveillance.adverse_events.queries import case_detail, case_summaries
from surveillance.errors import NotFound
from surveillance.http.api.adverse_event_schemas import (
    AdverseEventCreate,
    CaseChangeResult,
    CaseDetail,
    CaseSummary,
    NullifyRequest,
)
from surveillance.http.deps import (
    AppState,
    CurrentUser,
    IfMatch,
    State,
    etag,
    parse_if_match,
    visible_patient,
)
from surveillance.records.adverse_event_vocabulary import default_reporter
from surveillance.records.adverse_events import AdverseEventCase
from surveillance.records.patients import Patient

router = APIRouter(tags=["adverse events"])
_WRITERS = CLINICAL_ROLES
_READERS = (*CLINICAL_ROLES, Role.pharmacovigilance)


def _readable_case(
    session: Session, user: Principal, case_id: str, *, write: bool = False
) -> AdverseEventCase:
    if write:
        user.require_role(*_WRITERS, to="record adverse events")
    user.require_role(*_READERS, to="read adverse events")
    case = get_case(session, case_id)
    if user.role is not Role.pharmacovigilance and not user.works_at(case.site_id):
        raise NotFound(f"no adverse event case {case_id!r}")
    return case


def _detail(session: Session, state: AppState, case: AdverseEventCase) -> dict[str, Any]:
    """The case with its versions and deadlines, judged on today's date at its site."""
    today = state.today_at(state.site(session, case.site_id))
    return case_detail(session, case, state.registry, on=today)


def _result(
    session: Session, state: AppState, change: CaseChange, response: Response
) -> dict[str, Any]:
    case = change.case
    patient = session.get(Patient, case.patient_id)
    assert patient is not None
    detail = _detail(session, state, case)
    response.headers["ETag"] = etag(case.version)
    response.headers["Location"] = f"/api/v1/adverse-events/{case.case_id}"
    return {
        **detail,
        "calendar_change": change.calendar.as_dict(patient.study_id),
        "patient_status": patient.status,
    }


@router.post(
    "/patients/{study_id}/adverse-events",
    status_code=status.HTTP_201_CREATED,
    response_model=CaseChangeResult,
)
def record_adverse_event(
    study_id: str, body: AdverseEventCreate, state: State, user: CurrentUser, response: Response
) -> dict[str, Any]:
    """Record a new case (version 1). A serious case alerts the site's investigators and
    the safety systems at once and starts its reporting clocks; a malignancy schedules
    tumour testing for the vector; a fatal case marks the patient deceased."""
    with state.write() as session:
        visible_patient(session, user, study_id)
        change = create_case(
            session,
            study_id=study_id,
            facts=body.facts(default_reporter(user.role.value)),
            actor=user.email,
            registry=state.registry,
            now=state.now(),
        )
        return _result(session, state, change, response)


@router.get("/patients/{study_id}/adverse-events", response_model=list[CaseSummary])
def list_patient_adverse_events(
    study_id: str, state: State, user: CurrentUser
) -> list[dict[str, Any]]:
    with state.read() as session:
        patient = visible_patient(session, user, study_id)
        return case_summaries(session, patient_id=patient.id)


@router.get("/adverse-events", response_model=list[CaseSummary])
def list_adverse_events(
    state: State,
    user: CurrentUser,
    site: str | None = None,
    limit: Annotated[int, Query(ge=1, le=2000)] = 500,
) -> list[dict[str, Any]]:
    """Cases of your sites (or one site), newest awareness first."""
    user.require_role(*_WRITERS, to="list a site's adverse events")
    if site is not None:
        user.require_site(site)
    site_ids = {site} if site is not None else (None if user.is_admin else set(user.sites))
    with state.read() as session:
        return case_summaries(session, site_ids=site_ids, limit=limit)


@router.get("/adverse-events/{case_id}", response_model=CaseDetail)
def read_adverse_event(
    case_id: str, state: State, user: CurrentUser, response: Response
) -> dict[str, Any]:
    """The case with every version, oldest first, and its reporting deadlines."""
    with state.read() as session:
        case = _readable_case(session, user, case_id)
        response.headers["ETag"] = etag(case.version)
        return _detail(session, state, case)


@router.post(
    "/adverse-events/{case_id}/versions",
    status_code=status.HTTP_201_CREATED,
    response_model=CaseChangeResult,
)
def add_adverse_event_version(
    case_id: str,
    body: AdverseEventCreate,
    state: State,
    user: CurrentUser,
    response: Response,
    if_match: IfMatch = None,
) -> dict[str, Any]:
    """A follow-up: the whole case as now known becomes the next version."""
    with state.write() as session:
        _readable_case(session, user, case_id, write=True)  # who may, before what they sent
        expected = parse_if_match(if_match)
        change = add_follow_up(
            session,
            case_id=case_id,
            facts=body.facts(default_reporter(user.role.value)),
            actor=user.email,
            registry=state.registry,
            now=state.now(),
            expected_version=expected,
        )
        return _result(session, state, change, response)


@router.post("/adverse-events/{case_id}/nullify", response_model=CaseChangeResult)
def nullify_adverse_event(
    case_id: str,
    body: NullifyRequest,
    state: State,
    user: CurrentUser,
    response: Response,
    if_match: IfMatch = None,
) -> dict[str, Any]:
    """A case entered in error: nullified with a reason, never deleted; its reporting
    clocks and the testing it started are cancelled (work already done stays)."""
    with state.write() as session:
        _readable_case(session, user, case_id, write=True)  # who may, before what they sent
        expected = parse_if_match(if_match)
        change = nullify_case(
            session,
            case_id=case_id,
            reason=body.reason,
            actor=user.email,
            registry=state.registry,
            now=state.now(),
            expected_version=expected,
        )
        return _result(session, state, change, response)
