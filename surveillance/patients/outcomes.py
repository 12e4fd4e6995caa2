"""Recording what was done for an assessment; the calendar follows.

Entry points record through ``surveillance.adverse_events.results.record_outcome``, which
also opens the safety case a protocol declares for a result (a positive RCL test).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlmodel import Session

import rules
from surveillance.calendar.sync import CalendarChange, rematerialize
from surveillance.errors import Conflict, InvalidInput
from surveillance.kit import audit
from surveillance.kit.concurrency import check_version
from surveillance.protocols.registry import get_protocol
from surveillance.records.patients import (
    Assessment,
    AssessmentStatus,
    Outcome,
    OutcomeRecord,
    Patient,
    PatientStatus,
)
from surveillance.records.queries import find_assessment, infusion_dates
from surveillance.records.sites import get_site


@dataclass(frozen=True)
class RecordedOutcome:
    assessment: Assessment
    change: CalendarChange


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
    if result is not None:
        result = _typed(registry, row, result)
    _write(session, patient, row, kind, key, on, result, reason, actor=actor, now=now)
    change = CalendarChange()
    if patient.status == PatientStatus.active.value:
        cause = f"{kind.value} recorded for {key}" + (f" with result {result!r}" if result else "")
        protocol = get_protocol(registry, patient.protocol_id, patient.protocol_version)
        change = rematerialize(session, patient, protocol, cause=cause, actor=actor, now=now)
    return RecordedOutcome(row, change)


def _typed(registry: rules.ProtocolRegistry, row: Assessment, result: str) -> str:
    """The result as the rule's declared type reads it (what the engine branches on);
    refused, with what is accepted, if the type cannot produce it."""
    protocol = get_protocol(registry, row.protocol_id, row.protocol_version)
    try:
        return protocol.read_result(row.assessment, result)
    except rules.InvalidResult as exc:
        raise InvalidInput(f"result for {row.assessment}: {exc}") from exc


def _write(
    session: Session,
    patient: Patient,
    row: Assessment,
    kind: Outcome,
    key: str,
    on: date,
    result: str | None,
    reason: str | None,
    *,
    actor: str,
    now: datetime,
) -> None:
    """Add the outcome to the assessment's history, update the row, audit it (as ``key``,
    the way it was asked for)."""
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
    site = get_site(session, patient.site_id)
    today = site.today(now)
    if on > today:
        raise InvalidInput(f"outcome date {on} is in the future (today at {site.id} is {today})")
    infused_on = infusion_dates(session, patient.id)[row.infusion_number]
    earliest = min(infused_on, row.window_start)  # baseline samples come before the infusion
    if on < earliest:
        raise InvalidInput(f"outcome date {on} is before the infusion on {infused_on}")
    if kind is Outcome.not_done and not reason:
        raise InvalidInput("not_done needs a reason (e.g. 'patient declined', 'sample lost')")
    if result is not None and kind is not Outcome.completed:
        raise InvalidInput("only a completed assessment has a result")
    return kind
