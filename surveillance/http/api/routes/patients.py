"""Patients: enrol, read, calendar, re-infusion, status."""

from __future__ import annotations

from typing import Annotated, Any, Literal
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Header, Query, Response, status
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse

from surveillance.accounts.models import CLINICAL_ROLES, Role
from surveillance.calendar.sync import CalendarChange
from surveillance.http.api.schemas import (
    AssessmentPublic,
    InfusionCreate,
    PatientChangeResult,
    PatientCreate,
    PatientPublic,
    PatientWithCalendar,
    StatusChange,
)
from surveillance.http.deps import (
    CurrentUser,
    IfMatch,
    State,
    etag,
    parse_if_match,
    visible_patient,
)
from surveillance.http.inputs import Day
from surveillance.kit.bounds import check_as_of
from surveillance.patients.changes import add_infusion, change_status
from surveillance.patients.enrolment import Enrolment, enroll
from surveillance.patients.fhir_careplan import care_plan_bundle
from surveillance.patients.views import calendar_dicts, change_dict, patient_dict, patient_dicts
from surveillance.protocols.fhir_plan import FHIR_JSON, wants_fhir
from surveillance.records.queries import get_patient
from surveillance.records.sites import get_site

router = APIRouter(prefix="/patients", tags=["patients"])
DEFAULT_PATIENTS_PAGE = 500
MAX_PATIENTS_PAGE = 5000
VARY = {"Vary": "Accept"}  # the calendar is JSON or FHIR by the Accept header


@router.post("", status_code=status.HTTP_201_CREATED, response_model=PatientWithCalendar)
def enroll_patient(
    body: PatientCreate, state: State, user: CurrentUser, response: Response
) -> dict[str, Any]:
    """Enrol a patient with the first infusion; the calendar is computed and stored."""
    user.require_role(*CLINICAL_ROLES, to="enrol a patient")
    user.require_site(body.site)
    enrolment = Enrolment(
        body.study_id,
        body.site,
        body.birth_date,
        body.sex,
        body.diagnosis,
        body.protocol,
        body.infusion_date,
    )
    with state.write() as session:
        enroll(session, [enrolment], registry=state.registry, now=state.now(), actor=user.email)
        patient = get_patient(session, body.study_id)
        site = get_site(session, patient.site_id)
        on = site.today(state.now())
        result = {
            "patient": patient_dict(session, patient),
            "calendar": calendar_dicts(session, patient, on=on, registry=state.registry),
        }
    response.headers["ETag"] = etag(patient.version)
    response.headers["Location"] = f"/api/v1/patients/{patient.study_id}"
    return result


@router.get("", response_model=list[PatientPublic])
def list_patients(
    state: State,
    user: CurrentUser,
    response: Response,
    site: str | None = None,
    after: Annotated[
        str | None, Query(description="The last study id of the previous page.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PATIENTS_PAGE)] = DEFAULT_PATIENTS_PAGE,
) -> list[dict[str, Any]]:
    """Patients of your sites (or of one site), by study id; a full page links the next."""
    user.require_role(*CLINICAL_ROLES, to="list patients")
    if site is not None:
        user.require_site(site)
    site_ids = {site} if site is not None else (None if user.is_admin else user.sites)
    with state.read() as session:
        page = patient_dicts(session, site_ids=site_ids, after=after, limit=limit)
    if len(page) == limit:
        query = urlencode({k: v for k, v in (("site", site), ("limit", limit)) if v is not None})
        next_url = f"/api/v1/patients?{query}&after={quote(page[-1]['study_id'])}"
        response.headers["Link"] = f'<{next_url}>; rel="next"'
    return page


def _change_result(
    session: Any, study_id: str, change: CalendarChange, response: Response
) -> dict[str, Any]:
    """The patient as it is now and what the change did to its calendar; sets the ETag."""
    patient = get_patient(session, study_id)
    response.headers["ETag"] = etag(patient.version)
    return {"patient": patient_dict(session, patient), "change": change_dict(change, study_id)}


@router.get("/{study_id}", response_model=PatientPublic)
def read_patient(
    study_id: str, state: State, user: CurrentUser, response: Response
) -> dict[str, Any]:
    with state.read() as session:
        patient = visible_patient(session, user, study_id)
        result = patient_dict(session, patient)
    response.headers["ETag"] = etag(patient.version)
    return result


@router.get(
    "/{study_id}/calendar",
    response_model=list[AssessmentPublic],
    responses={
        200: {
            "content": {FHIR_JSON: {}},
            "description": "The calendar, or (?format=fhir) a FHIR R4 transaction Bundle: "
            "the CarePlan and a ServiceRequest per assessment.",
        }
    },
)
def read_calendar(
    study_id: str,
    state: State,
    user: CurrentUser,
    response: Response,
    on: Annotated[
        Day | None, Query(description="Default: today. From 1990-01-01 to 20 years on.")
    ] = None,
    format: Literal["json", "fhir"] | None = None,
    accept: Annotated[str | None, Header()] = None,
) -> Any:
    """Every assessment with its stored outcome, its reason, and its state on ``on``
    (default: today at the site); ``?format=fhir`` (or ``Accept: application/fhir+json``):
    the same as a FHIR R4 transaction Bundle, ready to ``POST`` to a FHIR server: a
    CarePlan that instantiates the protocol's PlanDefinition and a ServiceRequest per
    assessment (the window, the status, the reason), each a conditional update by our
    identifier, so importing again updates; the patient known by study id only, no birth
    or infusion date."""
    with state.read() as session:
        patient = visible_patient(session, user, study_id)
        site = get_site(session, patient.site_id)
        day = check_as_of(on, site.today(state.now())) if on else site.today(state.now())
        calendar = calendar_dicts(session, patient, on=day, registry=state.registry)
        patient_status = str(patient.status)
    response.headers["Vary"] = "Accept"
    if wants_fhir(format, accept):
        body = care_plan_bundle(study_id, patient_status, calendar, base_url=state.base_url)
        return JSONResponse(jsonable_encoder(body), media_type=FHIR_JSON, headers=VARY)
    return calendar


@router.post("/{study_id}/infusions", response_model=PatientChangeResult)
def reinfuse(
    study_id: str,
    body: InfusionCreate,
    state: State,
    user: CurrentUser,
    response: Response,
    if_match: IfMatch = None,
) -> dict[str, Any]:
    """A re-infusion: the engine re-runs and the calendar difference is applied and returned."""
    with state.write() as session:
        visible_patient(session, user, study_id)  # who may, before what they sent
        expected = parse_if_match(if_match)
        change = add_infusion(
            session,
            study_id=study_id,
            on=body.infusion_date,
            actor=user.email,
            registry=state.registry,
            now=state.now(),
            expected_version=expected,
        )
        return _change_result(session, study_id, change, response)


@router.post("/{study_id}/status", response_model=PatientChangeResult)
def set_status(
    study_id: str,
    body: StatusChange,
    state: State,
    user: CurrentUser,
    response: Response,
    if_match: IfMatch = None,
) -> dict[str, Any]:
    """Deceased, withdrawn, lost to follow-up, transferred, or active again.

    Investigator or admin only.
    """
    # Authorisation first (role, then the patient's site), preconditions after: a nurse
    # gets 403 with or without If-Match, another site's patient 404.
    user.require_role(Role.investigator, Role.admin, to="change a patient's status")
    with state.write() as session:
        visible_patient(session, user, study_id)
        if body.to_site is not None:
            user.require_site(body.to_site)
        expected = parse_if_match(if_match)
        change = change_status(
            session,
            study_id=study_id,
            status=body.status,
            on=body.date,
            reason=body.reason,
            actor=user.email,
            registry=state.registry,
            now=state.now(),
            to_site=body.to_site,
            expected_version=expected,
        )
        return _change_result(session, study_id, change, response)
