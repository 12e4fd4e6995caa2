"""Facts that change a patient's future calendar: re-infusion, events, status."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import update
from sqlmodel import Session, col

import rules
from surveillance.calendar.case_events import CASE_EVENTS
from surveillance.calendar.sync import CalendarChange, rematerialize
from surveillance.errors import Conflict, InvalidInput
from surveillance.kit import audit
from surveillance.kit.bounds import check_day
from surveillance.kit.concurrency import check_version
from surveillance.kit.text import optional_multi_line, optional_single_line, single_line
from surveillance.patients.enrolment import check_infusion_date
from surveillance.patients.listing import unlist_ended
from surveillance.protocols.registry import get_protocol
from surveillance.records.adverse_events import AdverseEventCase
from surveillance.records.patients import (
    ENDED_STATUSES,
    Assessment,
    AssessmentStatus,
    Infusion,
    Patient,
    PatientEvent,
    PatientStatus,
)
from surveillance.records.queries import get_patient, infusion_dates
from surveillance.records.sites import get_site, today_at

# Statuses that end follow-up are written as the protocol's end events, so the engine
# (not this module) decides what stops.
_STATUS_EVENTS = {PatientStatus.deceased: "death", PatientStatus.withdrawn: "withdrawal"}


def _replan(
    session: Session,
    patient: Patient,
    registry: rules.ProtocolRegistry,
    *,
    cause: str,
    actor: str,
    now: datetime,
) -> CalendarChange:
    protocol = get_protocol(registry, patient.protocol_id, patient.protocol_version)
    return rematerialize(session, patient, protocol, cause=cause, actor=actor, now=now)


def add_infusion(
    session: Session,
    *,
    study_id: str,
    on: date,
    actor: str,
    registry: rules.ProtocolRegistry,
    now: datetime,
    expected_version: int | None = None,
) -> CalendarChange:
    """A re-infusion: a new anchor; the protocol says whether follow-up restarts."""
    patient = get_patient(session, study_id, for_update=True)
    check_version(expected_version, patient.version, study_id)
    _require_active(patient)
    check_infusion_date(
        study_id, patient.birth_date, on, today_at(session, patient.site_id, now), patient.site_id
    )
    infusions = infusion_dates(session, patient.id)
    last_number = max(infusions)
    last_on = infusions[last_number]
    if on <= last_on:
        raise InvalidInput(
            f"{study_id}: a re-infusion must come after the last infusion on {last_on}",
            field="infusion_date",
        )
    patient.version += 1
    session.add(
        Infusion(
            patient_id=patient.id,  # type: ignore[arg-type]
            number=last_number + 1,
            infused_on=on,
            protocol_version=patient.protocol_version,
            recorded_at=now,
        )
    )
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="add_infusion",
        entity="infusion",
        entity_key=f"{study_id}:{last_number + 1}",
        patient_id=patient.id,
        new={"number": last_number + 1, "infused_on": on.isoformat()},
        at=now,
    )
    return _replan(
        session,
        patient,
        registry,
        cause=f"infusion {last_number + 1} on {on}",
        actor=actor,
        now=now,
    )


def record_event(
    session: Session,
    *,
    study_id: str,
    kind: str,
    on: date,
    note: str | None,
    actor: str,
    registry: rules.ProtocolRegistry,
    now: datetime,
) -> CalendarChange:
    """An event the protocol reacts to (new malignancy, ...)."""
    single_line(kind, "event")
    optional_multi_line(note, "note")
    patient = get_patient(session, study_id, for_update=True)
    if patient.status in ENDED_STATUSES:
        raise Conflict(f"{study_id} is {patient.status}: follow-up has ended")
    protocol = get_protocol(registry, patient.protocol_id, patient.protocol_version)
    if kind in CASE_EVENTS:
        raise InvalidInput(
            f"{kind!r} follows from an adverse-event case: record the case instead "
            "(web page or POST /api/v1/patients/{study_id}/adverse-events)"
        )
    if kind not in protocol.events:
        raise InvalidInput(
            f"unknown event {kind!r}; {protocol.id} knows: {', '.join(sorted(protocol.events))}"
        )
    today = today_at(session, patient.site_id, now)
    if on > today:
        raise InvalidInput(f"{study_id}: event date {on} is in the future (today is {today})")
    first_infusion = min(infusion_dates(session, patient.id).values())
    if on < first_infusion:
        raise InvalidInput(
            f"{study_id}: event date {on} is before the infusion on {first_infusion}"
        )
    patient.version += 1
    _add_event(session, patient, kind, on, note, actor=actor, now=now)
    audit.record(
        session,
        actor=actor,
        action="record_event",
        entity="patient",
        entity_key=study_id,
        patient_id=patient.id,
        reason=note,
        new={"event": kind, "on": on.isoformat()},
        at=now,
    )
    return _replan(
        session, patient, registry, cause=f"{kind.replace('_', ' ')} on {on}", actor=actor, now=now
    )


def change_status(
    session: Session,
    *,
    study_id: str,
    status: str,
    on: date,
    reason: str,
    actor: str,
    registry: rules.ProtocolRegistry,
    now: datetime,
    to_site: str | None = None,
    expected_version: int | None = None,
) -> CalendarChange:
    """Deceased, withdrawn, lost to follow-up, transferred (to another site) or active again."""
    single_line(reason, "reason")
    optional_single_line(to_site, "to_site")
    check_day(on, "date")
    new_status = _status(status, reason)
    patient = get_patient(session, study_id, for_update=True)
    check_version(expected_version, patient.version, study_id)
    if patient.status in ENDED_STATUSES:
        raise Conflict(f"{study_id} is {patient.status}: follow-up has ended")
    today = today_at(session, patient.site_id, now)
    if on > today:
        raise InvalidInput(
            f"{study_id}: status date {on} is in the future (today is {today})", field="date"
        )
    old = {"status": patient.status, "status_on": str(patient.status_on), "site": patient.site_id}
    if new_status is PatientStatus.transferred:
        _transfer(session, patient, to_site)
    patient.status = (
        PatientStatus.active.value if new_status is PatientStatus.transferred else new_status.value
    )
    patient.status_on, patient.status_reason = on, reason
    patient.version += 1
    session.add(patient)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="change_status",
        entity="patient",
        entity_key=study_id,
        patient_id=patient.id,
        reason=reason,
        old=old,
        new={"status": new_status.value, "status_on": on.isoformat(), "site": patient.site_id},
        at=now,
    )
    event = _STATUS_EVENTS.get(new_status)
    if event is None:
        return CalendarChange()
    _add_event(session, patient, event, on, reason, actor=actor, now=now)
    change = rematerialize(
        session,
        patient,
        get_protocol(registry, patient.protocol_id, patient.protocol_version),
        cause=f"{new_status.value} on {on}: {reason}",
        actor=actor,
        now=now,
    )
    # What was due before stays pending (and hidden by the status): off the list's index.
    unlist_ended(session, registry=registry, patient_id=patient.id)
    return change


def _status(status: str, reason: str) -> PatientStatus:
    try:
        new_status = PatientStatus(status)
    except ValueError as exc:
        raise InvalidInput(
            f"unknown status {status!r}; use one of {', '.join(s.value for s in PatientStatus)}",
            field="status",
        ) from exc
    if not reason or not reason.strip():
        raise InvalidInput("a status change needs a reason", field="reason")
    return new_status


def _add_event(
    session: Session,
    patient: Patient,
    kind: str,
    on: date,
    note: str | None,
    *,
    actor: str,
    now: datetime,
) -> None:
    """An event the engine reacts to (death, withdrawal, a new malignancy, ...)."""
    session.add(
        PatientEvent(
            patient_id=patient.id,  # type: ignore[arg-type]
            kind=kind,
            occurred_on=on,
            note=note,
            recorded_by=actor,
            recorded_at=now,
        )
    )
    session.flush()


def _transfer(session: Session, patient: Patient, to_site: str | None) -> None:
    if not to_site:
        raise InvalidInput("a transfer needs the site the patient moves to", field="to_site")
    if to_site == patient.site_id:
        raise InvalidInput(f"{patient.study_id} is already followed at {to_site}", field="to_site")
    get_site(session, to_site)
    patient.site_id = to_site
    # Pending work moves with the patient; history stays where it was done.
    session.execute(
        update(Assessment)
        .where(
            col(Assessment.patient_id) == patient.id,
            col(Assessment.status) == AssessmentStatus.pending.value,
        )
        .values(site_id=to_site)
    )
    # So do the adverse-event cases: the new site's staff follow them up from now on.
    session.execute(
        update(AdverseEventCase)
        .where(col(AdverseEventCase.patient_id) == patient.id)
        .values(site_id=to_site)
    )


def _require_active(patient: Patient) -> None:
    if patient.status != PatientStatus.active.value:
        raise Conflict(f"{patient.study_id} is {patient.status}")
