"""Recording what was done for an assessment; the calendar follows.

Entry points record through ``surveillance.adverse_events.results.record_outcome``, which
also opens the safety case a protocol declares for a result (a positive RCL test).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlmodel import Session, col, select

import rules
from surveillance.calendar.sync import CalendarChange, patient_plan, rematerialize
from surveillance.errors import Conflict, InvalidInput
from surveillance.kit import audit
from surveillance.kit.concurrency import check_version
from surveillance.kit.text import optional_multi_line, optional_single_line
from surveillance.protocols.registry import get_protocol
from surveillance.records.patients import (
    Assessment,
    AssessmentStatus,
    Outcome,
    OutcomeRecord,
    Patient,
    PatientStatus,
    assessment_key,
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
    note: str | None = None,
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
    _write(session, patient, row, kind, key, on, result, reason, _note(note), actor=actor, now=now)
    change = CalendarChange()
    if patient.status == PatientStatus.active.value:
        cause = f"{kind.value} recorded for {key}" + (f" with result {result!r}" if result else "")
        protocol = get_protocol(registry, patient.protocol_id, patient.protocol_version)
        change = rematerialize(session, patient, protocol, cause=cause, actor=actor, now=now)
    return RecordedOutcome(row, change)


# An assessment's columns that say what was recorded for it (``outcome_values``' arguments).
OUTCOME_COLUMNS = (
    "status",
    "performed_on",
    "result",
    "note",
    "result_as_entered",
    "status_reason",
    "protocol_deviation",
)


def outcome_values(
    status: str,
    *,
    performed_on: date | None = None,
    result: str | None = None,
    note: str | None = None,
    result_as_entered: str | None = None,
    status_reason: str | None = None,
    protocol_deviation: bool = False,
) -> dict[str, Any]:
    """What an assessment's audit rows record of its outcome, as old or new values (the
    defaults: nothing recorded). Recording, correcting, undoing, the large demo and the
    registry loader all write this one dict, so their audit rows (and hashes) agree."""
    return {
        "status": status,
        "performed_on": performed_on.isoformat() if performed_on else None,
        "result": result,
        "note": note,
        "result_as_entered": result_as_entered,
        "status_reason": status_reason,
        "protocol_deviation": protocol_deviation,
    }


def stored_outcome_values(row: Assessment) -> dict[str, Any]:
    """``outcome_values`` of what ``row`` holds now (the old values of a change to it)."""
    return outcome_values(**{name: getattr(row, name) for name in OUTCOME_COLUMNS})


_RECORDED = frozenset({Outcome.completed.value, Outcome.missed.value, Outcome.not_done.value})


def correct_outcome_without_safety_case(
    session: Session,
    *,
    key: str,
    reason: str,
    actor: str,
    registry: rules.ProtocolRegistry,
    now: datetime,
    expected_version: int | None,
    outcome: str | None = None,
    on: date | None = None,
    result: str | None = None,
    note: str | None = None,
) -> RecordedOutcome:
    """Correct what was recorded (status, date, result), with a reason; then re-plan.

    Nothing is overwritten: the correction is one more outcome row, and the audit row
    keeps the old and new values with the reason. What the old result started and is
    still pending is cancelled ("result corrected on ..."); what was done stays. Not an
    entry point: ``surveillance.adverse_events.results.correct_outcome`` also opens the
    safety case a corrected result may now declare.
    """
    optional_single_line(reason, "reason")
    if not reason or not reason.strip():
        raise InvalidInput(
            "a correction needs a reason (e.g. 'transcription error')", field="reason"
        )
    patient, row = find_assessment(session, key, for_update=True)
    check_version(expected_version, row.version, key)
    if row.status not in _RECORDED or row.performed_on is None:
        raise Conflict(f"{key} is {row.status}: only a recorded outcome can be corrected")
    outcome = outcome or row.status
    on = on or row.performed_on
    kept = result is None and outcome == Outcome.completed.value
    if kept:
        result = row.result  # unchanged unless given
    kind = _check(
        session,
        patient,
        row,
        key=key,
        outcome=outcome,
        on=on,
        result=result,
        reason=reason if outcome == Outcome.not_done.value else None,
        now=now,
        correcting=True,
    )
    protocol = get_protocol(registry, row.protocol_id, row.protocol_version)
    # A kept result is already in its stored form ("350" for 3.5 g/L): not read again as
    # typed text, which would ask for its unit.
    if result is not None and not (kept and protocol.is_stored_result(row.assessment, result)):
        result = _typed(registry, row, result)
    note = row.note if note is None else _note(note)  # unchanged unless given ("" clears it)
    if (row.status, row.performed_on, row.result, row.note) == (kind.value, on, result, note):
        raise Conflict(f"{key} is already recorded so: nothing to correct")
    today = get_site(session, patient.site_id).today(now)
    protocol = get_protocol(registry, patient.protocol_id, patient.protocol_version)
    planned_before = plan_identities(session, patient, protocol)
    _write(
        session,
        patient,
        row,
        kind,
        key,
        on,
        result,
        reason,
        note,
        actor=actor,
        now=now,
        action="correct_outcome",
    )
    change = CalendarChange()
    if patient.status == PatientStatus.active.value:
        cause = f"result corrected on {today}: {key} is now {kind.value}" + (
            f" with result {result!r}" if result else ""
        )
        change = rematerialize(session, patient, protocol, cause=cause, actor=actor, now=now)
        mark_started_by_corrected_result(
            session,
            patient,
            planned_before,
            plan_identities(session, patient, protocol),
            label=f"started by the result of {key}, corrected on {today}",
            actor=actor,
            now=now,
        )
    return RecordedOutcome(row, change)


def plan_identities(
    session: Session, patient: Patient, protocol: rules.Protocol
) -> set[tuple[int, str, int]]:
    return {
        (p.infusion, p.assessment, p.occurrence) for p in patient_plan(session, patient, protocol)
    }


def mark_started_by_corrected_result(
    session: Session,
    patient: Patient,
    before: set[tuple[int, str, int]],
    after: set[tuple[int, str, int]],
    *,
    label: str,
    actor: str,
    now: datetime,
) -> None:
    """Done work the old result had planned and the corrected one does not stays done (it
    was done), marked with what corrected it; a mark the plan wants again is lifted."""
    rows = session.exec(
        select(Assessment).where(
            col(Assessment.patient_id) == patient.id,
            col(Assessment.status).in_(_RECORDED),
        )
    ).all()
    changed: dict[str, dict[str, str | None]] = {}
    for row in rows:
        identity = (row.infusion_number, row.assessment, row.occurrence)
        if identity in before and identity not in after:
            mark: str | None = label
        elif identity in after and row.started_by_corrected_result is not None:
            mark = None
        else:
            continue
        if mark == row.started_by_corrected_result:
            continue
        key = assessment_key(patient.study_id, *identity)
        changed[key] = {"old": row.started_by_corrected_result, "new": mark}
        row.started_by_corrected_result, row.updated_at = mark, now
        row.version += 1
        session.add(row)
    if changed:
        session.flush()
        audit.record(
            session,
            actor=actor,
            action="mark_started_by_corrected_result",
            entity="patient",
            entity_key=patient.study_id,
            patient_id=patient.id,
            reason=label,
            old={key: c["old"] for key, c in changed.items()},
            new={key: c["new"] for key, c in changed.items()},
            at=now,
        )


def _typed(registry: rules.ProtocolRegistry, row: Assessment, result: str) -> str:
    """The result as the rule's declared type reads it (what the engine branches on);
    refused, with what is accepted, if the type cannot produce it."""
    protocol = get_protocol(registry, row.protocol_id, row.protocol_version)
    try:
        return protocol.read_result(row.assessment, result)
    except rules.InvalidResult as exc:
        raise InvalidInput(f"result for {row.assessment}: {exc}", field="result") from exc


def _write(
    session: Session,
    patient: Patient,
    row: Assessment,
    kind: Outcome,
    key: str,
    on: date,
    result: str | None,
    reason: str | None,
    note: str | None,
    *,
    actor: str,
    now: datetime,
    action: str = "record_outcome",
) -> None:
    """Add the outcome to the assessment's history, update the row, audit it (as ``key``,
    the way it was asked for)."""
    deviation = kind is Outcome.completed and not row.window_start <= on <= row.window_end
    old = stored_outcome_values(row)
    session.add(
        OutcomeRecord(
            assessment_id=row.id,  # type: ignore[arg-type]
            outcome=kind.value,
            performed_on=on,
            result=result,
            note=note,
            reason=reason,
            protocol_deviation=deviation,
            recorded_by=actor,
            recorded_at=now,
        )
    )
    row.status, row.performed_on, row.result, row.note = kind.value, on, result, note
    if result is not None or kind is not Outcome.completed:
        row.result_as_entered = None  # the free text awaiting a typed value is resolved
    row.status_reason, row.protocol_deviation, row.updated_at = reason, deviation, now
    row.version += 1
    session.add(row)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action=action,
        entity="assessment",
        entity_key=key,
        patient_id=patient.id,
        reason=reason,
        old=old,
        new=stored_outcome_values(row),
        at=now,
    )


def _note(text: str | None) -> str | None:
    """A free-text note beside the result: kept as written, never branched on."""
    optional_multi_line(text, "note")
    return (text.strip() or None) if text is not None else None


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
    correcting: bool = False,
) -> Outcome:
    optional_single_line(result, "result")
    optional_single_line(reason, "reason")
    try:
        kind = Outcome(outcome)
    except ValueError as exc:
        raise InvalidInput(
            f"outcome must be completed, missed or not_done, not {outcome!r}", field="outcome"
        ) from exc
    if not correcting and row.status != AssessmentStatus.pending.value:
        when = f" on {row.performed_on}" if row.performed_on else ""
        raise Conflict(f"{key} is already {row.status}{when}; it cannot be recorded twice")
    site = get_site(session, patient.site_id)
    today = site.today(now)
    if on > today:
        raise InvalidInput(
            f"outcome date {on} is in the future (today at {site.id} is {today})", field="on"
        )
    infused_on = infusion_dates(session, patient.id)[row.infusion_number]
    earliest = min(infused_on, row.window_start)  # baseline samples come before the infusion
    if on < earliest:
        raise InvalidInput(f"outcome date {on} is before the infusion on {infused_on}", field="on")
    if kind is Outcome.not_done and not reason:
        raise InvalidInput(
            "not done needs a reason (e.g. 'patient declined', 'sample lost')", field="reason"
        )
    if result is not None and kind is not Outcome.completed:
        raise InvalidInput("only a completed assessment has a result", field="result")
    return kind
