"""Reading cases: one case with all its versions, and lists of cases for a site."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import select
from sqlmodel import Session, col

import rules
from surveillance.adverse_events.cases import content_of, versions_of
from surveillance.adverse_events.deadlines import deadlines_of
from surveillance.records.adverse_events import AdverseEventCase, AdverseEventVersion
from surveillance.records.patients import Patient


def case_detail(
    session: Session, case: AdverseEventCase, registry: rules.ProtocolRegistry, *, on: date
) -> dict[str, Any]:
    patient = session.get(Patient, case.patient_id)
    versions = versions_of(session, case.case_id)
    contents = [content_of(session, v, registry, patient) for v in versions]
    return {
        "case_id": case.case_id,
        "version": case.version,
        "status": case.status,
        "current": contents[-1],
        "versions": contents,
        "reporting_deadlines": deadlines_of(session, case, versions[-1], registry, on=on),
    }


def case_summaries(
    session: Session,
    *,
    site_ids: set[str] | None = None,
    patient_id: int | None = None,
    serious_only: bool = False,
    limit: int = 500,
) -> list[dict[str, Any]]:
    """Newest awareness first; ``site_ids`` None means every site."""
    statement = (
        select(AdverseEventCase, col(Patient.study_id))
        .join(Patient, col(Patient.id) == col(AdverseEventCase.patient_id))
        .order_by(col(AdverseEventCase.awareness_date).desc(), col(AdverseEventCase.case_id))
        .limit(limit)
    )
    if site_ids is not None:
        statement = statement.where(col(AdverseEventCase.site_id).in_(site_ids))
    if patient_id is not None:
        statement = statement.where(col(AdverseEventCase.patient_id) == patient_id)
    if serious_only:
        statement = statement.where(col(AdverseEventCase.serious).is_(True))
    return [
        {
            "case_id": case.case_id,
            "version": case.version,
            "status": case.status,
            "study_id": study_id,
            "site": case.site_id,
            "term": case.term,
            "category": case.category,
            "grade": case.grade,
            "serious": case.serious,
            "onset_date": case.onset_date,
            "awareness_date": case.awareness_date,
            "outcome": case.outcome,
            "updated_at": case.updated_at,
        }
        for case, study_id in session.execute(statement).all()
    ]


def recorded_by(session: Session, case_id: str) -> dict[int, str]:
    """Who recorded each version (kept at the site: the feed does not carry it)."""
    rows = session.execute(
        select(col(AdverseEventVersion.version), col(AdverseEventVersion.recorded_by)).where(
            col(AdverseEventVersion.case_id) == case_id
        )
    )
    return {row.version: row.recorded_by for row in rows}
