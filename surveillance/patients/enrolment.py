"""Enrolling patients: one or a whole cohort, with set-based inserts."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import insert, select
from sqlmodel import Session, col

import rules
from surveillance.calendar.sync import assessment_rows, plan_calendar
from surveillance.errors import Conflict, InvalidInput
from surveillance.kit import audit
from surveillance.kit.bounds import check_birth, check_infusion
from surveillance.kit.bulk import insert_rows
from surveillance.kit.sql import chunked
from surveillance.kit.sqltypes import table_of
from surveillance.kit.text import single_line
from surveillance.protocols.registry import get_protocol
from surveillance.records.patients import Assessment, Infusion, Patient, PatientStatus, Site
from surveillance.records.sites import get_site

# Pseudonymous study ids only: upper-case letters, digits and dashes (no names).
STUDY_ID = re.compile(r"^[A-Z0-9][A-Z0-9-]{2,31}$")
SEXES = ("F", "M")


@dataclass(frozen=True)
class Enrolment:
    study_id: str
    site_id: str
    birth_date: date
    sex: str
    diagnosis: str
    protocol_id: str
    infusion_date: date


def enroll(
    session: Session,
    enrolments: list[Enrolment],
    *,
    registry: rules.ProtocolRegistry,
    now: datetime,
    actor: str,
) -> dict[str, int]:
    """Enrol patients with their first infusion and calendar; returns study id -> patient id.

    All or nothing: any impossible fact refuses the whole batch, and nothing is written.
    """
    for enrolment in enrolments:
        check_text(enrolment)
    sites = {site_id: get_site(session, site_id) for site_id in {e.site_id for e in enrolments}}
    _refuse_duplicates(session, enrolments)
    plans = {e.study_id: _plan(e, sites[e.site_id], registry, now) for e in enrolments}
    patient_ids = _insert_patients(session, enrolments, plans, now)
    insert_rows(
        session,
        table_of(Infusion),
        [
            {
                "patient_id": patient_ids[e.study_id],
                "number": 1,
                "infused_on": e.infusion_date,
                "protocol_version": plans[e.study_id][0].version,
                "recorded_at": now,
            }
            for e in enrolments
        ],
    )
    rows = [
        row
        for e in enrolments
        for row in assessment_rows(patient_ids[e.study_id], e.site_id, plans[e.study_id][1], now)
    ]
    insert_rows(session, table_of(Assessment), rows)
    audit.record_many(
        session,
        [
            audit.AuditFact(
                actor=actor,
                action="enroll",
                entity="patient",
                entity_key=e.study_id,
                patient_id=patient_ids[e.study_id],
                reason=None,
                new={
                    "site": e.site_id,
                    "birth_date": e.birth_date.isoformat(),
                    "sex": e.sex,
                    "diagnosis": e.diagnosis,
                    "protocol": f"{e.protocol_id} {plans[e.study_id][0].version}",
                    "infusion_date": e.infusion_date.isoformat(),
                    "assessments_planned": len(plans[e.study_id][1]),
                },
            )
            for e in enrolments
        ],
        now,
    )
    return patient_ids


def _refuse_duplicates(session: Session, enrolments: list[Enrolment]) -> None:
    study_ids = [e.study_id for e in enrolments]
    repeated = (
        sorted({s for s in study_ids if study_ids.count(s) > 1})
        if len(set(study_ids)) != len(study_ids)
        else []
    )
    if repeated:
        raise Conflict(f"study id given twice: {', '.join(repeated)}")
    existing: list[str] = []
    for chunk in chunked(study_ids):
        existing += session.execute(
            select(col(Patient.study_id)).where(col(Patient.study_id).in_(chunk))
        ).scalars()
    if existing:
        raise Conflict(f"already enrolled: {', '.join(sorted(existing)[:10])}")


def _plan(
    enrolment: Enrolment, site: Site, registry: rules.ProtocolRegistry, now: datetime
) -> tuple[rules.Protocol, list[rules.PlannedAssessment]]:
    check_enrolment(enrolment, site, now)
    protocol = get_protocol(registry, enrolment.protocol_id)
    if enrolment.diagnosis not in protocol.spec.diagnoses:
        # The engine refuses it too, but without saying which input is wrong.
        known = ", ".join(protocol.spec.diagnoses)
        raise InvalidInput(
            f"{enrolment.study_id}: diagnosis {enrolment.diagnosis!r} is not covered by "
            f"{protocol.id}; known: {known}",
            field="diagnosis",
        )
    facts = rules.PatientFacts(enrolment.birth_date, enrolment.diagnosis, enrolment.sex)
    return protocol, plan_calendar(enrolment.study_id, protocol, facts, [enrolment.infusion_date])


def check_text(enrolment: Enrolment) -> None:
    """Every text is one line of plain text, before it is looked up or stored."""
    single_line(enrolment.study_id, "study_id")
    single_line(enrolment.site_id, "site")
    single_line(enrolment.sex, "sex")
    single_line(enrolment.diagnosis, "diagnosis")
    single_line(enrolment.protocol_id, "protocol")


def check_enrolment(enrolment: Enrolment, site: Site, now: datetime) -> None:
    """Refuse impossible facts before anything is computed or written."""
    check_text(enrolment)
    who = enrolment.study_id
    if not STUDY_ID.fullmatch(who):
        raise InvalidInput(
            f"study id {who!r} is not a pseudonymous id: "
            "use 3-32 upper-case letters, digits and dashes",
            field="study_id",
        )
    if enrolment.sex not in SEXES:
        raise InvalidInput(f"{who}: sex must be F or M, not {enrolment.sex!r}", field="sex")
    today = site.today(now)
    if enrolment.birth_date > today:
        raise InvalidInput(
            f"{who}: birth date {enrolment.birth_date} is in the future "
            f"(today at {site.id} is {today})",
            field="birth_date",
        )
    check_birth(enrolment.birth_date, today)
    check_infusion_date(who, enrolment.birth_date, enrolment.infusion_date, today, site.id)


def check_infusion_date(who: str, birth: date, infused: date, today: date, site_id: str) -> None:
    if infused < birth:
        raise InvalidInput(
            f"{who}: infusion date {infused} is before the birth date {birth}",
            field="infusion_date",
        )
    if infused > today:
        raise InvalidInput(
            f"{who}: infusion date {infused} is in the future (today at {site_id} is {today})",
            field="infusion_date",
        )
    check_infusion(infused, today)


def _insert_patients(
    session: Session,
    enrolments: list[Enrolment],
    plans: dict[str, tuple[rules.Protocol, list[rules.PlannedAssessment]]],
    now: datetime,
) -> dict[str, int]:
    rows = [
        {
            "study_id": e.study_id,
            "site_id": e.site_id,
            "birth_date": e.birth_date,
            "sex": e.sex,
            "diagnosis": e.diagnosis,
            "protocol_id": e.protocol_id,
            "protocol_version": plans[e.study_id][0].version,
            "status": PatientStatus.active.value,
            "enrolled_at": now,
            "version": 1,
        }
        for e in enrolments
    ]
    table = table_of(Patient)
    statement = insert(table).returning(table.c.id, table.c.study_id)
    result = session.connection().execute(statement, rows)
    return {study_id: patient_id for patient_id, study_id in result}
