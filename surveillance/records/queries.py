"""The questions every feature asks of the clinical record, each answered once.

A patient by study id, an assessment by its key, a patient's infusion dates: services, read
models and edges call these instead of writing the select again.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection
from datetime import date

from sqlalchemy import func, select, tuple_
from sqlmodel import Session, col

from surveillance.errors import NotFound
from surveillance.kit.text import text_problem
from surveillance.records.patients import (
    Assessment,
    AssessmentRef,
    AssessmentStatus,
    Infusion,
    Patient,
    assessment_key,
)


def find_patient(session: Session, study_id: str, *, for_update: bool = False) -> Patient | None:
    if text_problem(study_id) is not None:
        return None  # never enrolled (see enrolment.check_text): not worth asking the database
    statement = select(Patient).where(col(Patient.study_id) == study_id)
    if for_update:
        # populate_existing: a row this session read before the lock must show what
        # the lock returned, or a version check would compare against a stale copy.
        statement = statement.with_for_update().execution_options(populate_existing=True)
    patient: Patient | None = session.execute(statement).scalar_one_or_none()
    return patient


def get_patient(session: Session, study_id: str, *, for_update: bool = False) -> Patient:
    patient = find_patient(session, study_id, for_update=for_update)
    if patient is None:
        raise NotFound(f"no patient with study id {study_id!r}")
    return patient


def find_assessment(
    session: Session, key: str, *, for_update: bool = False
) -> tuple[Patient, Assessment]:
    """The patient and the assessment of ``ROM-001:1:rcl_test:2``; ``NotFound`` if either is not."""
    ref = AssessmentRef.parse(key)
    patient = get_patient(session, ref.study_id)
    statement = select(Assessment).where(
        col(Assessment.patient_id) == patient.id,
        col(Assessment.infusion_number) == ref.infusion_number,
        col(Assessment.assessment) == ref.assessment,
        col(Assessment.occurrence) == ref.occurrence,
    )
    if for_update:
        statement = statement.with_for_update().execution_options(populate_existing=True)
    row = session.execute(statement).scalar_one_or_none()
    if row is None:
        raise NotFound(f"no assessment {key!r}")
    return patient, row


def infusion_dates(session: Session, patient_id: int | None) -> dict[int, date]:
    """A patient's infusions, number -> date, in order (the first is the enrolment's)."""
    if patient_id is None:  # not flushed yet: it has no infusions in the database
        return {}
    return infusion_dates_of(session, [patient_id]).get(patient_id, {})


def infusion_dates_of(
    session: Session, patient_ids: Collection[int | None]
) -> dict[int, dict[int, date]]:
    """The infusions of many patients in one query: patient id -> (number -> date)."""
    dates: dict[int, dict[int, date]] = defaultdict(dict)
    rows = session.execute(
        select(col(Infusion.patient_id), col(Infusion.number), col(Infusion.infused_on))
        .where(col(Infusion.patient_id).in_([i for i in patient_ids if i is not None]))
        .order_by(col(Infusion.patient_id), col(Infusion.number))
    )
    for patient_id, number, infused_on in rows:
        dates[patient_id][number] = infused_on
    return dates


def study_ids_of(session: Session, patient_ids: Collection[int]) -> dict[int, str]:
    """Patient id -> study id, for lists that show many patients' records."""
    if not patient_ids:
        return {}
    rows = session.execute(
        select(col(Patient.id), col(Patient.study_id)).where(col(Patient.id).in_(patient_ids))
    )
    return {row.id: row.study_id for row in rows}


def assessment_versions(session: Session, keys: Collection[str]) -> dict[str, int]:
    """Each assessment's row version by key: forms send it back, so a stale one is refused."""
    if not keys:
        return {}
    wanted = [
        (ref.study_id, ref.infusion_number, ref.assessment, ref.occurrence)
        for ref in map(AssessmentRef.parse, set(keys))
    ]
    identity = (
        col(Patient.study_id),
        col(Assessment.infusion_number),
        col(Assessment.assessment),
        col(Assessment.occurrence),
    )
    rows = session.execute(
        select(*identity, col(Assessment.version))
        .join(Patient, col(Patient.id) == col(Assessment.patient_id))
        .where(tuple_(*identity).in_(wanted))
    )
    return {
        assessment_key(r.study_id, r.infusion_number, r.assessment, r.occurrence): r.version
        for r in rows
    }


def calendar_size(session: Session, patient_id: int) -> int:
    """How many assessments the patient's calendar holds (every status)."""
    statement = select(func.count()).where(col(Assessment.patient_id) == patient_id)
    return int(session.execute(statement).scalar_one())


def oldest_closed_pending(
    session: Session, patient_id: int, *, before: date, skip: Collection[int] = ()
) -> Assessment | None:
    """The patient's earliest pending assessment whose window closed before ``before``
    (the demo walks a synthetic history with it); ``skip``: ids already passed over."""
    statement = (
        select(Assessment)
        .where(
            col(Assessment.patient_id) == patient_id,
            col(Assessment.status) == AssessmentStatus.pending.value,
            col(Assessment.window_end) < before,
        )
        .order_by(col(Assessment.due_on), col(Assessment.id))
        .limit(1)
    )
    if skip:
        statement = statement.where(col(Assessment.id).not_in(skip))
    row: Assessment | None = session.execute(statement).scalar_one_or_none()
    return row
