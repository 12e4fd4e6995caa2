"""Small builders for the surveillance tests: real sites, patients and records.

Plain functions, no magic: each takes the session (or engine) it writes with, so a test
reads as the story it checks.
"""

from __future__ import annotations

import shutil
from datetime import date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, select
from sqlmodel import Session, SQLModel

import rules
from surveillance.adverse_events.results import record_outcome
from surveillance.kit.db import read_session, write_session
from surveillance.patients.enrolment import Enrolment, enroll
from surveillance.patients.outcomes import RecordedOutcome
from surveillance.records import sites
from surveillance.records.patients import Assessment, AssessmentStatus, Patient
from surveillance.records.queries import get_patient

CAR_T = "cd19-car-t-pediatric-autoimmune"
AAV = "aav-liver-5-year"
ACTOR = "test"

# The default patient: a girl with SLE, born 2014-03-01, infused 2024-01-31 in Rome.
DEFAULTS: dict[str, Any] = {
    "study_id": "ROM-101",
    "site_id": "Rome",
    "birth_date": date(2014, 3, 1),
    "sex": "F",
    "diagnosis": "sle",
    "protocol_id": CAR_T,
    "infusion_date": date(2024, 1, 31),
}


def add_rome(session: Session) -> None:
    sites.add_site(session, site_id="Rome", name="Rome", timezone="Europe/Rome")


def add_erlangen(session: Session) -> None:
    sites.add_site(session, site_id="Erlangen", name="Erlangen", timezone="Europe/Berlin")


def add_sites(engine: Engine) -> None:
    """Rome and Erlangen, committed in their own transaction."""
    with write_session(engine) as session:
        add_rome(session)
        add_erlangen(session)


def enrolment(**overrides: Any) -> Enrolment:
    unknown = set(overrides) - set(DEFAULTS)
    assert not unknown, f"unknown enrolment fields: {unknown}"
    return Enrolment(**{**DEFAULTS, **overrides})


def enroll_one(
    session: Session, registry: rules.ProtocolRegistry, now: datetime, **overrides: Any
) -> Patient:
    """Enrol one patient (defaults: ``DEFAULTS``) and return the stored patient."""
    wanted = enrolment(**overrides)
    enroll(session, [wanted], registry=registry, now=now, actor=ACTOR)
    return get_patient(session, wanted.study_id)


def enroll_committed(
    engine: Engine, registry: rules.ProtocolRegistry, now: datetime, **overrides: Any
) -> int:
    """Enrol one patient in its own transaction; returns the patient id."""
    with write_session(engine) as session:
        patient = enroll_one(session, registry, now, **overrides)
        assert patient.id is not None
        return patient.id


def assessment_row(
    session: Session, study_id: str, assessment: str, occurrence: int, infusion: int = 1
) -> Assessment:
    return session.execute(
        select(Assessment)
        .join(Patient, Patient.id == Assessment.patient_id)  # type: ignore[arg-type]
        .where(
            Patient.study_id == study_id,
            Assessment.infusion_number == infusion,
            Assessment.assessment == assessment,
            Assessment.occurrence == occurrence,
        )
    ).scalar_one()


def rows_of(session: Session, study_id: str, assessment: str | None = None) -> list[Assessment]:
    """A patient's stored calendar (optionally one rule), in a stable order."""
    statement = (
        select(Assessment)
        .join(Patient, Patient.id == Assessment.patient_id)  # type: ignore[arg-type]
        .where(Patient.study_id == study_id)
    )
    if assessment is not None:
        statement = statement.where(Assessment.assessment == assessment)
    statement = statement.order_by(
        Assessment.infusion_number, Assessment.assessment, Assessment.occurrence
    )
    return list(session.execute(statement).scalars())


def record(
    session: Session,
    registry: rules.ProtocolRegistry,
    now: datetime,
    key: str,
    *,
    outcome: str = "completed",
    on: date | None = None,
    result: str | None = None,
    reason: str | None = None,
) -> RecordedOutcome:
    """Record an outcome; ``on`` defaults to the assessment's due date."""
    if on is None:
        study_id, infusion, assessment, occurrence = key.rsplit(":", 3)
        on = assessment_row(session, study_id, assessment, int(occurrence), int(infusion)).due_on
    return record_outcome(
        session,
        key=key,
        outcome=outcome,
        on=on,
        result=result,
        reason=reason,
        actor=ACTOR,
        registry=registry,
        now=now,
    )


def count(session: Session, model: type[SQLModel]) -> int:
    return session.execute(select(func.count()).select_from(model)).scalar_one()


def table_snapshot(engine: Engine, model: type[SQLModel]) -> list[dict[str, Any]]:
    """Every row of ``model``'s table as plain dicts, ordered by id."""
    table = model.__table__  # type: ignore[attr-defined]
    with engine.connect() as connection:
        rows = connection.execute(select(table).order_by(table.c.id)).mappings()
        return [dict(row) for row in rows]


def recorded_snapshot(engine: Engine) -> dict[int, dict[str, Any]]:
    """Every assessment row that is no longer pending or cancelled, by id, all columns."""
    with read_session(engine) as session:
        rows = session.execute(
            select(Assessment).where(
                Assessment.status.in_(  # type: ignore[attr-defined]
                    [
                        AssessmentStatus.completed.value,
                        AssessmentStatus.missed.value,
                        AssessmentStatus.not_done.value,
                    ]
                )
            )
        ).scalars()
        return {row.id: row.model_dump() for row in rows}  # type: ignore[misc]


# Version 1.1 images the liver every 3 months instead of every 6 (from month 6 to year 5).
HCC_V1_0 = "      - every: M6\n        from: M6\n        to: Y5\n"
HCC_V1_1 = "      - every: M3\n        from: M6\n        to: Y5\n"


def replace_once(text: str, old: str, new: str) -> str:
    assert text.count(old) == 1, f"expected {old!r} exactly once in the bundled protocol"
    return text.replace(old, new)


def write_amended_aav(folder: Path) -> Path:
    """The bundled protocols plus an AAV version 1.1 with one schedule change."""
    folder.mkdir(parents=True, exist_ok=True)
    for path in rules.BUNDLED_PROTOCOLS.glob("*.yaml"):
        shutil.copy(path, folder / path.name)
    text = (rules.BUNDLED_PROTOCOLS / f"{AAV}.yaml").read_text(encoding="utf-8")
    text = replace_once(text, 'version: "1.0"', 'version: "1.1"')
    text = replace_once(text, HCC_V1_0, HCC_V1_1)
    amended = folder / f"{AAV}-1.1.yaml"
    amended.write_text(text, encoding="utf-8")
    return amended
