"""Undoing a one-click recording: its author, within 15 minutes, no reason; one more
version in the history, never a deletion; the calendar follows (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta

import pytest
from sqlalchemy import Engine, select
from sqlmodel import col
from support.factories import (
    ACTOR,
    add_sites,
    assessment_row,
    count,
    enroll_committed,
    record,
    rows_of,
)

import rules
from surveillance.adverse_events.results import correct_outcome
from surveillance.calendar.sync import compare, patient_plan, stored_calendar
from surveillance.errors import Conflict, PreconditionFailed
from surveillance.kit.audit import AuditEntry, verify_chain
from surveillance.kit.db import read_session, write_session
from surveillance.patients.changes import change_status
from surveillance.patients.outcomes import RecordedOutcome
from surveillance.patients.undo import UNDO_MINUTES, undo_outcome
from surveillance.records.adverse_events import AdverseEventCase
from surveillance.records.patients import OutcomeRecord
from surveillance.records.queries import get_patient

# ROM-101, infused 2024-01-31: the first-year RCL tests at months 3, 6 and 12. Three
# negatives stop the yearly tests and start archive-only samples (the protocol's rule).
RCL = ["ROM-101:1:rcl_test:1", "ROM-101:1:rcl_test:2", "ROM-101:1:rcl_test:3"]
WINDOW = timedelta(minutes=UNDO_MINUTES)


@pytest.fixture
def patient(engine: Engine, registry: rules.ProtocolRegistry, now: datetime) -> int:
    add_sites(engine)
    return enroll_committed(engine, registry, now)


def _undo(
    engine: Engine,
    registry: rules.ProtocolRegistry,
    now: datetime,
    key: str = RCL[0],
    *,
    actor: str = ACTOR,
    version: int | None = None,
) -> RecordedOutcome:
    with write_session(engine) as session:
        _, rule, occurrence = key.rsplit(":", 2)
        current = assessment_row(session, "ROM-101", rule, int(occurrence)).version
        return undo_outcome(
            session,
            key=key,
            actor=actor,
            registry=registry,
            now=now,
            expected_version=current if version is None else version,
        )


def _record(
    engine: Engine, registry: rules.ProtocolRegistry, now: datetime, key: str, **fields: object
) -> None:
    with write_session(engine) as session:
        record(session, registry, now, key, **fields)  # type: ignore[arg-type]


def _statuses(engine: Engine) -> dict[tuple[str, int], tuple[str, date]]:
    """The whole stored calendar: (rule, occurrence) -> (status, due)."""
    with read_session(engine) as session:
        return {
            (r.assessment, r.occurrence): (r.status, r.due_on) for r in rows_of(session, "ROM-101")
        }


def _history(engine: Engine) -> tuple[int, int]:
    """(outcome rows, audit rows): what a refused undo must leave alone."""
    with read_session(engine) as session:
        return count(session, OutcomeRecord), count(session, AuditEntry)


def test_the_author_undoes_a_recording_within_15_minutes_and_the_calendar_follows(
    engine: Engine, registry: rules.ProtocolRegistry, now: datetime, patient: int
) -> None:
    _record(engine, registry, now, RCL[0], result="negative")
    _record(engine, registry, now, RCL[1], result="negative")
    before = _statuses(engine)
    _record(engine, registry, now, RCL[2], result="negative", on=date(2025, 1, 31))
    after_recording = _statuses(engine)
    assert after_recording != before  # the third negative stopped and started work
    stopped = {k for k, (s, _) in after_recording.items() if s == "cancelled"} - {
        k for k, (s, _) in before.items() if s == "cancelled"
    }
    started = set(after_recording) - set(before)
    assert any(rule == "rcl_yearly_test" for rule, _ in stopped)
    assert any(rule == "rcl_archive" for rule, _ in started)

    undone = _undo(engine, registry, now + WINDOW - timedelta(seconds=1), RCL[2])

    row = undone.assessment
    assert (row.status, row.performed_on, row.result, row.note) == ("pending", None, None, None)
    assert (row.protocol_deviation, row.status_reason, row.version) == (False, None, 3)
    # The calendar is what it was before the recording: what it stopped is back, what it
    # started is cancelled (rows are never deleted), nothing else moved.
    now_planned = _statuses(engine)
    for key, (status, due) in before.items():
        assert now_planned[key] == (status, due), key
    for key in started:
        assert now_planned[key][0] == "cancelled", key
    assert {s.assessment for s, _ in undone.change.reinstated} == {r for r, _ in stopped}
    assert {s.assessment for s in undone.change.cancelled} == {r for r, _ in started}
    with read_session(engine) as session:
        patient_row = get_patient(session, "ROM-101")
        protocol = registry.get(patient_row.protocol_id, patient_row.protocol_version)
        assert compare(
            stored_calendar(session, patient), patient_plan(session, patient_row, protocol)
        ).is_empty()
        cancelled = rows_of(session, "ROM-101", "rcl_archive")
        assert all(
            r.status_reason == f"recording undone on {now.date()}: {RCL[2]} (completed) is "
            "pending again"
            for r in cancelled
        )
        # History: the recording and the undo, both kept, in order.
        history = [
            (h.outcome, h.performed_on, h.result, h.reason, h.recorded_by)
            for h in session.execute(
                select(OutcomeRecord)
                .where(col(OutcomeRecord.assessment_id) == row.id)
                .order_by(col(OutcomeRecord.id))
            ).scalars()
        ]
        audit = session.execute(
            select(AuditEntry).where(col(AuditEntry.action) == "undo_outcome")
        ).scalar_one()
        assert verify_chain(session) == []
    assert history == [
        ("completed", date(2025, 1, 31), "negative", None, ACTOR),
        ("undone", date(2025, 1, 31), None, "undone by its author within 15 minutes", ACTOR),
    ]
    assert (audit.actor, audit.entity_key, audit.reason) == (
        ACTOR,
        RCL[2],
        "undone by its author within 15 minutes",
    )
    old, new = json.loads(audit.old_values or ""), json.loads(audit.new_values or "")
    assert (old["status"], old["performed_on"], old["result"]) == (
        "completed",
        "2025-01-31",
        "negative",
    )
    assert (new["status"], new["performed_on"], new["result"]) == ("pending", None, None)


@pytest.mark.parametrize("late", [timedelta(0), timedelta(seconds=1), timedelta(hours=3)])
def test_from_15_minutes_on_it_is_a_correction(
    engine: Engine, registry: rules.ProtocolRegistry, now: datetime, patient: int, late: timedelta
) -> None:
    _record(engine, registry, now, RCL[0], result="negative")
    before = _history(engine)
    with pytest.raises(Conflict) as refused:
        _undo(engine, registry, now + WINDOW + late)
    assert (
        "only its author can undo it, within 15 minutes; after that, correct it with a reason"
        in (refused.value.message)
    )
    assert _history(engine) == before
    with read_session(engine) as session:
        assert assessment_row(session, "ROM-101", "rcl_test", 1).status == "completed"


def test_only_its_author_can_undo_it(
    engine: Engine, registry: rules.ProtocolRegistry, now: datetime, patient: int
) -> None:
    _record(engine, registry, now, RCL[0], result="negative")
    before = _history(engine)
    with pytest.raises(Conflict) as refused:
        _undo(engine, registry, now, actor="someone.else@rome.example")
    assert refused.value.message == (
        f"{RCL[0]} was recorded by {ACTOR}: only its author can undo it, within 15 minutes; "
        "after that, correct it with a reason"
    )
    assert _history(engine) == before


def test_an_undo_cannot_be_undone_nor_a_pending_row(
    engine: Engine, registry: rules.ProtocolRegistry, now: datetime, patient: int
) -> None:
    with pytest.raises(Conflict, match="is pending: there is no recording to undo"):
        _undo(engine, registry, now)
    _record(engine, registry, now, RCL[0], result="negative")
    _undo(engine, registry, now)
    before = _history(engine)
    with pytest.raises(Conflict, match="is pending: there is no recording to undo"):
        _undo(engine, registry, now)
    assert _history(engine) == before


def test_a_corrected_outcome_is_not_undone(
    engine: Engine, registry: rules.ProtocolRegistry, now: datetime, patient: int
) -> None:
    _record(engine, registry, now, RCL[0], result="negative")
    with write_session(engine) as session:
        correct_outcome(
            session,
            key=RCL[0],
            reason="wrong day",
            on=date(2024, 5, 2),
            actor=ACTOR,
            registry=registry,
            now=now,
            expected_version=2,
        )
    with pytest.raises(Conflict, match="was corrected after it was recorded: only its author"):
        _undo(engine, registry, now)


def test_a_result_that_opened_a_safety_case_is_not_undone(
    engine: Engine, registry: rules.ProtocolRegistry, now: datetime, patient: int
) -> None:
    _record(engine, registry, now, RCL[0], result="positive")
    before = _history(engine)
    with pytest.raises(Conflict) as refused:
        _undo(engine, registry, now)
    assert refused.value.message == (
        f"{RCL[0]}: its result opened safety case ROM-101-AE01, so it cannot be undone; "
        "correct it with a reason (the case stays until a person nullifies it)"
    )
    assert _history(engine) == before
    with read_session(engine) as session:
        assert count(session, AdverseEventCase) == 1


def test_after_an_undo_it_is_recorded_again_and_that_recording_can_be_undone_too(
    engine: Engine, registry: rules.ProtocolRegistry, now: datetime, patient: int
) -> None:
    _record(engine, registry, now, RCL[0], result="negative", on=date(2024, 4, 30))
    _undo(engine, registry, now)
    later = now + timedelta(minutes=5)
    _record(engine, registry, later, RCL[0], outcome="missed")
    with read_session(engine) as session:
        row = assessment_row(session, "ROM-101", "rcl_test", 1)
        assert (row.status, row.result, row.version) == ("missed", None, 4)
    undone = _undo(engine, registry, later + timedelta(minutes=10))
    assert undone.assessment.status == "pending"
    _record(engine, registry, later, RCL[0], outcome="not_done", reason="sample lost")
    with read_session(engine) as session:
        outcomes = session.execute(
            select(col(OutcomeRecord.outcome)).order_by(col(OutcomeRecord.id))
        ).scalars()
        assert list(outcomes) == ["completed", "undone", "missed", "undone", "not_done"]
        row = assessment_row(session, "ROM-101", "rcl_test", 1)
        assert (row.status, row.status_reason, row.version) == ("not_done", "sample lost", 6)


def test_the_undo_audits_what_the_recording_audited_back_to_nothing(
    engine: Engine, registry: rules.ProtocolRegistry, now: datetime, patient: int
) -> None:
    """The undo's old values are the recording's new ones, its reason included, and its new
    values the recording's old ones: the trail reads the undo as the recording reversed."""
    _record(engine, registry, now, RCL[0], outcome="not_done", reason="sample lost")
    _undo(engine, registry, now)
    with read_session(engine) as session:
        trail = session.execute(select(AuditEntry).order_by(col(AuditEntry.id))).scalars()
        by_action = {entry.action: entry for entry in trail}
    recorded, undone = by_action["record_outcome"], by_action["undo_outcome"]
    assert json.loads(recorded.new_values or "") == {
        "status": "not_done",
        "performed_on": "2024-04-30",
        "result": None,
        "note": None,
        "result_as_entered": None,
        "status_reason": "sample lost",
        "protocol_deviation": False,
    }
    assert json.loads(undone.old_values or "") == json.loads(recorded.new_values or "")
    assert json.loads(undone.new_values or "") == json.loads(recorded.old_values or "")


def test_a_stale_version_is_refused(
    engine: Engine, registry: rules.ProtocolRegistry, now: datetime, patient: int
) -> None:
    _record(engine, registry, now, RCL[0], result="negative")
    before = _history(engine)
    with pytest.raises(PreconditionFailed):
        _undo(engine, registry, now, version=1)
    assert _history(engine) == before


def test_not_for_a_patient_no_longer_followed(
    engine: Engine, registry: rules.ProtocolRegistry, now: datetime, patient: int
) -> None:
    _record(engine, registry, now, RCL[0], result="negative")
    with write_session(engine) as session:
        change_status(
            session,
            study_id="ROM-101",
            status="withdrawn",
            on=now.date(),
            reason="consent withdrawn",
            actor=ACTOR,
            registry=registry,
            now=now,
        )
    with pytest.raises(Conflict, match=r"ROM-101 is withdrawn: correct .* with a reason"):
        _undo(engine, registry, now)


def test_done_work_the_undone_recording_started_stays_done_and_is_marked(
    engine: Engine, registry: rules.ProtocolRegistry, now: datetime, patient: int
) -> None:
    igg = "ROM-101:1:immunoglobulins:1"
    _record(engine, registry, now, igg, result="350 mg/dL")  # below 400: IVIG starts
    with read_session(engine) as session:
        ivig = rows_of(session, "ROM-101", "ivig_course")[0]
    ivig_key = f"ROM-101:1:ivig_course:{ivig.occurrence}"
    _record(engine, registry, now, ivig_key, on=ivig.window_start)
    _undo(engine, registry, now, igg)
    with read_session(engine) as session:
        done, *rest = rows_of(session, "ROM-101", "ivig_course")
    assert done.status == "completed"
    assert done.started_by_corrected_result == (
        f"started by the recording of {igg}, undone on {now.date()}"
    )
    assert rest
    assert {r.status for r in rest} == {"cancelled"}
