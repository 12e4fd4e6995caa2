"""Undoing a one-click recording: its author takes it back within 15 minutes, no reason.

A slip of the finger (the wrong row, the wrong day) is not a correction: for a short
while its author may undo it. After that, or for anyone else, it is a correction, with a
reason. Nothing is deleted: the undo is one more outcome row (``UNDONE``) and one audit
row; the assessment is pending again and the calendar is re-planned without the result.

A recording whose result opened a safety case is never undone this way: the case has
alerted and started its reporting clocks, and only a person closes it, with a reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlmodel import Session, col

import rules
from surveillance.calendar.sync import CalendarChange, rematerialize
from surveillance.errors import Conflict
from surveillance.kit import audit
from surveillance.kit.concurrency import check_version
from surveillance.patients.outcomes import (
    RecordedOutcome,
    mark_started_by_corrected_result,
    plan_identities,
    stored_outcome_values,
)
from surveillance.protocols.registry import assessment_name, get_protocol
from surveillance.records.adverse_events import AdverseEventCase, AdverseEventVersion
from surveillance.records.patients import (
    FOLLOWED_STATUSES,
    UNDONE,
    Assessment,
    AssessmentStatus,
    OutcomeRecord,
    Patient,
    PatientStatus,
    assessment_key,
)
from surveillance.records.queries import find_assessment
from surveillance.records.sites import get_site

UNDO_MINUTES = 15
UNDO_REASON = f"undone by its author within {UNDO_MINUTES} minutes"
_RULE = (
    f"only its author can undo it, within {UNDO_MINUTES} minutes; "
    "after that, correct it with a reason"
)


def undo_outcome(
    session: Session,
    *,
    key: str,
    actor: str,
    registry: rules.ProtocolRegistry,
    now: datetime,
    expected_version: int | None,
) -> RecordedOutcome:
    """Take back the latest recording of ``key`` (pending again), then re-plan.

    Allowed only for a recording (not a correction, not one already undone) made by
    ``actor`` less than ``UNDO_MINUTES`` ago whose result opened no safety case;
    otherwise ``Conflict`` says why. What the recording started and is still pending is
    cancelled; what it stopped comes back.
    """
    patient, row = find_assessment(session, key, for_update=True)
    check_version(expected_version, row.version, key)
    recording = _undoable_recording(session, row, key=key, actor=actor, now=now)
    _refuse_if_it_opened_a_case(session, patient, row, key, registry)
    if patient.status not in FOLLOWED_STATUSES:
        # Pending work of a patient no longer followed would be nobody's: say so instead.
        raise Conflict(f"{patient.study_id} is {patient.status}: correct {key} with a reason")
    protocol = get_protocol(registry, patient.protocol_id, patient.protocol_version)
    planned_before = plan_identities(session, patient, protocol)
    _write_undo(session, patient, row, recording, key=key, actor=actor, now=now)
    change = CalendarChange()
    if patient.status == PatientStatus.active.value:
        today = get_site(session, patient.site_id).today(now)
        cause = f"recording undone on {today}: {key} ({recording.outcome}) is pending again"
        change = rematerialize(session, patient, protocol, cause=cause, actor=actor, now=now)
        # Work the recording started and that was done meanwhile stays done, marked.
        mark_started_by_corrected_result(
            session,
            patient,
            planned_before,
            plan_identities(session, patient, protocol),
            label=f"started by the recording of {key}, undone on {today}",
            actor=actor,
            now=now,
        )
    return RecordedOutcome(row, change)


def _undoable_recording(
    session: Session, row: Assessment, *, key: str, actor: str, now: datetime
) -> OutcomeRecord:
    """The outcome row to undo, or ``Conflict`` saying why there is none."""
    latest, before = _last_two_outcomes(session, row)
    if latest is None or latest.outcome == UNDONE or row.status != latest.outcome:
        raise Conflict(f"{key} is {row.status}: there is no recording to undo")
    # A recording is only ever made on a pending row, so it is the first outcome row or
    # follows an undo; any other row before it means the latest one is a correction.
    if before is not None and before.outcome != UNDONE:
        raise Conflict(f"{key} was corrected after it was recorded: {_RULE}")
    if latest.recorded_by != actor:
        raise Conflict(f"{key} was recorded by {latest.recorded_by}: {_RULE}")
    recorded_at = latest.recorded_at  # aware on both databases (kit.sqltypes)
    # A small negative age (clocks of two hosts) is still "just now".
    if now - recorded_at >= timedelta(minutes=UNDO_MINUTES):
        minutes = int((now - recorded_at).total_seconds() // 60)
        raise Conflict(f"{key} was recorded {minutes} minutes ago: {_RULE}")
    return latest


def _last_two_outcomes(
    session: Session, row: Assessment
) -> tuple[OutcomeRecord | None, OutcomeRecord | None]:
    """The assessment's latest outcome row and the one before it (ids only grow)."""
    rows = list(
        session.execute(
            select(OutcomeRecord)
            .where(col(OutcomeRecord.assessment_id) == row.id)
            .order_by(col(OutcomeRecord.id).desc())
            .limit(2)
        ).scalars()
    )
    return (rows[0] if rows else None, rows[1] if len(rows) > 1 else None)


def _refuse_if_it_opened_a_case(
    session: Session,
    patient: Patient,
    row: Assessment,
    key: str,
    registry: rules.ProtocolRegistry,
) -> None:
    """``Conflict`` if a safety case was opened from this assessment, or its result is one
    the protocol opens a case for: a case alerts and starts clocks, so it is not undone."""
    canonical = assessment_key(
        patient.study_id, row.infusion_number, row.assessment, row.occurrence
    )
    sources = {f"assessment {key}", f"assessment {canonical}"}  # as the recording named it
    opened = session.execute(
        select(col(AdverseEventCase.case_id))
        .join(AdverseEventVersion, col(AdverseEventVersion.case_id) == AdverseEventCase.case_id)
        .where(
            col(AdverseEventCase.patient_id) == patient.id,
            col(AdverseEventVersion.source).in_(sorted(sources)),
        )
        .limit(1)
    ).scalar()
    declared = False
    if row.status == AssessmentStatus.completed.value and row.result is not None:
        protocol = get_protocol(registry, row.protocol_id, row.protocol_version)
        declared = protocol.safety_case(row.assessment, row.result) is not None
    if opened or declared:
        case = f"safety case {opened}" if opened else "a safety case"
        raise Conflict(
            f"{key}: its result opened {case}, so it cannot be undone; "
            "correct it with a reason (the case stays until a person nullifies it)"
        )


def _write_undo(
    session: Session,
    patient: Patient,
    row: Assessment,
    recording: OutcomeRecord,
    *,
    key: str,
    actor: str,
    now: datetime,
) -> None:
    """Add the undo to the history, put the row back to pending, audit it."""
    old = stored_outcome_values(row)
    session.add(
        OutcomeRecord(
            assessment_id=row.id,  # type: ignore[arg-type]
            outcome=UNDONE,
            performed_on=recording.performed_on,  # which recording was taken back
            reason=UNDO_REASON,
            recorded_by=actor,
            recorded_at=now,
        )
    )
    row.status = AssessmentStatus.pending.value
    row.performed_on = row.result = row.note = row.result_as_entered = None
    row.status_reason, row.protocol_deviation, row.updated_at = None, False, now
    row.version += 1
    session.add(row)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="undo_outcome",
        entity="assessment",
        entity_key=key,
        patient_id=patient.id,
        reason=UNDO_REASON,
        old=old,
        new=stored_outcome_values(row),
        at=now,
    )


@dataclass(frozen=True)
class Undoable:
    """A recording its author may still take back (the due list offers it)."""

    key: str
    study_id: str
    name: str
    outcome: str
    performed_on: date
    result: str | None
    version: int
    until: str  # the time the undo closes, at the site: "14:32"


def undoable_by(
    session: Session,
    *,
    site_id: str,
    actor: str,
    registry: rules.ProtocolRegistry,
    now: datetime,
) -> list[Undoable]:
    """What ``actor`` recorded at ``site_id`` in the last ``UNDO_MINUTES`` and may still
    undo, newest first: the same checks ``undo_outcome`` makes, so nothing offered is
    refused (unless someone changes it meanwhile)."""
    since = now - timedelta(minutes=UNDO_MINUTES)
    recent = session.execute(
        select(Assessment, Patient, col(OutcomeRecord.recorded_at))
        .join(OutcomeRecord, col(OutcomeRecord.assessment_id) == Assessment.id)
        .join(Patient, col(Patient.id) == Assessment.patient_id)
        .where(
            col(Assessment.site_id) == site_id,
            col(Assessment.status) != AssessmentStatus.pending.value,
            col(OutcomeRecord.recorded_by) == actor,
            col(OutcomeRecord.recorded_at) >= since,
            col(OutcomeRecord.outcome) != UNDONE,
        )
        .order_by(col(OutcomeRecord.id).desc())
    ).all()
    zone = ZoneInfo(get_site(session, site_id).timezone)
    offered: list[Undoable] = []
    seen: set[int] = set()
    for row, patient, recorded_at in recent:
        if row.id in seen:
            continue
        seen.add(row.id)
        key = assessment_key(patient.study_id, row.infusion_number, row.assessment, row.occurrence)
        try:
            recording = _undoable_recording(session, row, key=key, actor=actor, now=now)
            _refuse_if_it_opened_a_case(session, patient, row, key, registry)
        except Conflict:
            continue
        closes = recorded_at + timedelta(minutes=UNDO_MINUTES)
        offered.append(
            Undoable(
                key=key,
                study_id=patient.study_id,
                name=assessment_name(
                    registry, row.protocol_id, row.protocol_version, row.assessment
                ),
                outcome=recording.outcome,
                performed_on=recording.performed_on,
                result=row.result,
                version=row.version,
                until=closes.astimezone(zone).strftime("%H:%M"),
            )
        )
    return offered
