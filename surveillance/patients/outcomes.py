"""Recording what was done for an assessment; the calendar follows.

Entry points record through ``surveillance.adverse_events.results.record_outcome``, which
also opens the safety case a protocol declares for a result (a positive RCL test).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import select
from sqlmodel import Session, col

import rules
from surveillance.calendar.sync import CalendarChange, rematerialize
from surveillance.errors import Conflict, InvalidInput, NotFound
from surveillance.kit import audit
from surveillance.kit.clock import local_date
from surveillance.kit.concurrency import check_version
from surveillance.kit.sqltypes import MAX_INTEGER
from surveillance.patients.enrolment import get_patient
from surveillance.protocols.registry import get_protocol
from surveillance.records.patients import (
    Assessment,
    AssessmentStatus,
    Infusion,
    Outcome,
    OutcomeRecord,
    Patient,
    PatientStatus,
    Site,
)


@dataclass(frozen=True)
class AssessmentRef:
    study_id: str
    infusion_number: int
    assessment: str
    occurrence: int

    @classmethod
    def parse(cls, key: str) -> AssessmentRef:
        """``ROM-001:1:rcl_test:2`` -> its parts; ``InvalidInput`` if it is not a key."""
        parts = key.rsplit(":", 3)
        numbers = parts[1::2] if len(parts) == 4 else []
        if len(numbers) != 2 or not all(_small_number(n) for n in numbers):
            raise InvalidInput(
                f"{key!r} is not an assessment key: "
                "expected STUDY-ID:infusion:assessment:occurrence, "
                "e.g. ROM-001:1:rcl_test:2"
            )
        return cls(parts[0], int(parts[1]), parts[2], int(parts[3]))


def _small_number(text: str) -> bool:
    return text.isascii() and text.isdigit() and int(text) <= MAX_INTEGER


@dataclass(frozen=True)
class RecordedOutcome:
    assessment: Assessment
    change: CalendarChange


def find_assessment(
    session: Session, key: str, *, for_update: bool = False
) -> tuple[Patient, Assessment]:
    ref = AssessmentRef.parse(key)
    patient = get_patient(session, ref.study_id)
    statement = select(Assessment).where(
        col(Assessment.patient_id) == patient.id,
        col(Assessment.infusion_number) == ref.infusion_number,
        col(Assessment.assessment) == ref.assessment,
        col(Assessment.occurrence) == ref.occurrence,
    )
    if for_update:
        # populate_existing: a row this session read before the lock must show what
        # the lock returned, or a version check would compare against a stale copy.
        statement = statement.with_for_update().execution_options(populate_existing=True)
    row = session.execute(statement).scalar_one_or_none()
    if row is None:
        raise NotFound(f"no assessment {key!r}")
    return patient, row


def record_outcome_without_safety_case(
    session: Session,
    *,
    key: str,
    outcome: str,
    on: date,
    result: str | None = None,
    reason: str | None = None,
    actor: str,
    registry: rules.ProtocolRegistry,
    now: datetime,
    expected_version: int | None = None,
) -> RecordedOutcome:
    """Record completed / missed / not_done for one pending assessment, then re-plan.

    Not an entry point: it opens no safety case, whatever the result. Record through
    ``surveillance.adverse_events.results.record_outcome``, which calls this first.
    """
    patient, row = find_assessment(session, key, for_update=True)
    check_version(expected_version, row.version, key)
    kind = _check(
        session,
        patient,
        row,
        key=key,
        outcome=outcome,
        on=on,
        result=result,
        reason=reason,
        now=now,
    )
    deviation = kind is Outcome.completed and not row.window_start <= on <= row.window_end
    old = {"status": row.status, "performed_on": None, "result": None}
    session.add(
        OutcomeRecord(
            assessment_id=row.id,  # type: ignore[arg-type]
            outcome=kind.value,
            performed_on=on,
            result=result,
            reason=reason,
            protocol_deviation=deviation,
            recorded_by=actor,
            recorded_at=now,
        )
    )
    row.status, row.performed_on, row.result = kind.value, on, result
    row.status_reason, row.protocol_deviation, row.updated_at = reason, deviation, now
    row.version += 1
    session.add(row)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="record_outcome",
        entity="assessment",
        entity_key=key,
        patient_id=patient.id,
        reason=reason,
        old=old,
        new={
            "status": kind.value,
            "performed_on": on.isoformat(),
            "result": result,
            "protocol_deviation": deviation,
        },
        at=now,
    )
    change = CalendarChange()
    if patient.status == PatientStatus.active.value:
        cause = f"{kind.value} recorded for {key}" + (f" with result {result!r}" if result else "")
        protocol = get_protocol(registry, patient.protocol_id, patient.protocol_version)
        change = rematerialize(session, patient, protocol, cause=cause, actor=actor, now=now)
    return RecordedOutcome(row, change)


def _check(
    session: Session,
    patient: Patient,
    row: Assessment,
    *,
    key: str,
    outcome: str,
    on: date,
    result: str | None,
    reason: str | None,
    now: datetime,
) -> Outcome:
    try:
        kind = Outcome(outcome)
    except ValueError as exc:
        raise InvalidInput(
            f"outcome must be completed, missed or not_done, not {outcome!r}"
        ) from exc
    if row.status != AssessmentStatus.pending.value:
        when = f" on {row.performed_on}" if row.performed_on else ""
        raise Conflict(f"{key} is already {row.status}{when}; it cannot be recorded twice")
    site = session.get(Site, patient.site_id)
    assert site is not None
    today = local_date(now, site.timezone)
    if on > today:
        raise InvalidInput(f"outcome date {on} is in the future (today at {site.id} is {today})")
    infused_on = session.execute(
        select(col(Infusion.infused_on)).where(
            col(Infusion.patient_id) == patient.id, col(Infusion.number) == row.infusion_number
        )
    ).scalar_one()
    earliest = min(infused_on, row.window_start)  # baseline samples come before the infusion
    if on < earliest:
        raise InvalidInput(f"outcome date {on} is before the infusion on {infused_on}")
    if kind is Outcome.not_done and not reason:
        raise InvalidInput("not_done needs a reason (e.g. 'patient declined', 'sample lost')")
    if result is not None and kind is not Outcome.completed:
        raise InvalidInput("only a completed assessment has a result")
    return kind
