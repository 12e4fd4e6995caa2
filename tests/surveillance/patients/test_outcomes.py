"""Recording outcomes: completed, missed, not done; history rows; refusals write nothing."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, select
from support.factories import (
    ACTOR,
    add_sites,
    assessment_row,
    count,
    enroll_committed,
    record,
    table_snapshot,
)

import rules
from surveillance.adverse_events.results import record_outcome
from surveillance.errors import Conflict, InvalidInput, NotFound, SurveillanceError
from surveillance.kit.audit import AuditEntry
from surveillance.kit.db import read_session, write_session
from surveillance.records.patients import Assessment, AssessmentRef, OutcomeRecord

# ROM-101, infused 2024-01-31: RCL test month 3 is due 2024-04-30, window 2024-04-16..05-14.
RCL_1 = "ROM-101:1:rcl_test:1"
# Baseline evaluation: due D-14 (2024-01-17), window 2024-01-03..2024-01-30, before infusion.
BASELINE = "ROM-101:1:baseline_evaluation:1"


@pytest.fixture
def patient(engine: Engine, registry: rules.ProtocolRegistry, now: datetime) -> int:
    add_sites(engine)
    return enroll_committed(engine, registry, now)


def _state(engine: Engine) -> dict[str, Any]:
    """Everything recording an outcome can write."""
    return {
        "assessments": table_snapshot(engine, Assessment),
        "outcomes": table_snapshot(engine, OutcomeRecord),
        "audit": table_snapshot(engine, AuditEntry),
    }


def _refused(
    engine: Engine,
    registry: rules.ProtocolRegistry,
    now: datetime,
    error: type[SurveillanceError],
    match: str,
    **kwargs: Any,
) -> None:
    """Refused with ``error`` before anything is written (the caller then commits)."""
    before = _state(engine)
    arguments: dict[str, Any] = {"key": RCL_1, "outcome": "completed", "on": date(2024, 4, 30)}
    arguments.update(kwargs)
    with write_session(engine) as session:
        with pytest.raises(error, match=match):
            record_outcome(session, actor=ACTOR, registry=registry, now=now, **arguments)
    assert _state(engine) == before


def test_recording_completed_updates_the_row_and_writes_history_and_audit(
    engine: Engine, registry: rules.ProtocolRegistry, now: datetime, patient: int
) -> None:
    with write_session(engine) as session:
        recorded = record_outcome(
            session,
            key=RCL_1,
            outcome="completed",
            on=date(2024, 5, 2),
            result="negative",
            actor="nurse:giulia",
            registry=registry,
            now=now,
        )
    assert recorded.assessment.status == "completed"

    with read_session(engine) as session:
        row = assessment_row(session, "ROM-101", "rcl_test", 1)
        history = list(session.execute(select(OutcomeRecord)).scalars())
        audit_rows = list(
            session.execute(
                select(AuditEntry).where(AuditEntry.action == "record_outcome")
            ).scalars()
        )
    assert (row.status, row.performed_on, row.result, row.protocol_deviation) == (
        "completed",
        date(2024, 5, 2),
        "negative",
        False,
    )
    assert [
        (h.assessment_id, h.outcome, h.performed_on, h.result, h.protocol_deviation, h.recorded_by)
        for h in history
    ] == [(row.id, "completed", date(2024, 5, 2), "negative", False, "nurse:giulia")]
    assert len(audit_rows) == 1
    entry = audit_rows[0]
    assert (entry.entity, entry.entity_key, entry.patient_id, entry.actor) == (
        "assessment",
        RCL_1,
        patient,
        "nurse:giulia",
    )
    assert json.loads(entry.old_values or "{}")["status"] == "pending"
    assert json.loads(entry.new_values or "{}") == {
        "status": "completed",
        "performed_on": "2024-05-02",
        "result": "negative",
        "note": None,
        "result_as_entered": None,
        "status_reason": None,
        "protocol_deviation": False,
    }


def test_recording_missed(
    engine: Engine, registry: rules.ProtocolRegistry, now: datetime, patient: int
) -> None:
    with write_session(engine) as session:
        record(
            session,
            registry,
            now,
            RCL_1,
            outcome="missed",
            on=date(2024, 5, 14),
            reason="did not attend",
        )
    with read_session(engine) as session:
        row = assessment_row(session, "ROM-101", "rcl_test", 1)
        history = session.execute(select(OutcomeRecord)).scalar_one()
    assert (row.status, row.performed_on, row.status_reason, row.result) == (
        "missed",
        date(2024, 5, 14),
        "did not attend",
        None,
    )
    assert (history.outcome, history.reason) == ("missed", "did not attend")


def test_recording_not_done_with_a_reason(
    engine: Engine, registry: rules.ProtocolRegistry, now: datetime, patient: int
) -> None:
    with write_session(engine) as session:
        record(session, registry, now, RCL_1, outcome="not_done", reason="sample lost")
    with read_session(engine) as session:
        row = assessment_row(session, "ROM-101", "rcl_test", 1)
        history = session.execute(select(OutcomeRecord)).scalar_one()
    assert (row.status, row.status_reason) == ("not_done", "sample lost")
    assert (history.outcome, history.reason) == ("not_done", "sample lost")


@pytest.mark.parametrize("reason", [None, ""])
def test_not_done_without_a_reason_is_refused(
    engine: Engine,
    registry: rules.ProtocolRegistry,
    now: datetime,
    patient: int,
    reason: str | None,
) -> None:
    _refused(
        engine,
        registry,
        now,
        InvalidInput,
        "not done needs a reason",
        outcome="not_done",
        reason=reason,
    )


def test_recording_twice_is_a_conflict(
    engine: Engine, registry: rules.ProtocolRegistry, now: datetime, patient: int
) -> None:
    with write_session(engine) as session:
        record(session, registry, now, RCL_1, on=date(2024, 4, 30), result="negative")
    for outcome, reason in (("completed", None), ("missed", "again")):
        _refused(
            engine,
            registry,
            now,
            Conflict,
            f"{RCL_1} is already completed on 2024-04-30; it cannot be recorded twice",
            outcome=outcome,
            on=date(2024, 5, 1),
            reason=reason,
        )
    with read_session(engine) as session:
        assert count(session, OutcomeRecord) == 1


def test_an_outcome_before_the_infusion_is_refused(
    engine: Engine, registry: rules.ProtocolRegistry, now: datetime, patient: int
) -> None:
    _refused(
        engine,
        registry,
        now,
        InvalidInput,
        "outcome date 2024-01-30 is before the infusion on 2024-01-31",
        on=date(2024, 1, 30),
    )


def test_a_baseline_done_before_the_infusion_inside_its_window_is_accepted(
    engine: Engine, registry: rules.ProtocolRegistry, now: datetime, patient: int
) -> None:
    with read_session(engine) as session:
        row = assessment_row(session, "ROM-101", "baseline_evaluation", 1)
    assert (row.window_start, row.window_end) == (date(2024, 1, 3), date(2024, 1, 30))

    with write_session(engine) as session:
        record(session, registry, now, BASELINE, on=date(2024, 1, 10))
    with read_session(engine) as session:
        row = assessment_row(session, "ROM-101", "baseline_evaluation", 1)
    assert (row.status, row.performed_on, row.protocol_deviation) == (
        "completed",
        date(2024, 1, 10),
        False,
    )


def test_a_baseline_before_its_window_and_the_infusion_is_refused(
    engine: Engine, registry: rules.ProtocolRegistry, now: datetime, patient: int
) -> None:
    _refused(
        engine,
        registry,
        now,
        InvalidInput,
        "outcome date 2024-01-02 is before the infusion",
        key=BASELINE,
        on=date(2024, 1, 2),
    )


def test_an_outcome_in_the_future_is_refused(
    engine: Engine, registry: rules.ProtocolRegistry, now: datetime, patient: int
) -> None:
    _refused(
        engine,
        registry,
        now,
        InvalidInput,
        r"outcome date 2026-11-26 is in the future \(today at Rome is 2026-11-25\)",
        on=date(2026, 11, 26),
    )


def test_the_future_is_judged_by_the_sites_local_date(
    engine: Engine, registry: rules.ProtocolRegistry, patient: int
) -> None:
    late_evening_utc = datetime(2026, 11, 25, 23, 30, tzinfo=UTC)  # 26 Nov in Rome
    with write_session(engine) as session:
        record(session, registry, late_evening_utc, RCL_1, on=date(2026, 11, 26))
    with read_session(engine) as session:
        assert assessment_row(session, "ROM-101", "rcl_test", 1).performed_on == date(2026, 11, 26)


def test_completed_outside_the_window_is_a_protocol_deviation(
    engine: Engine, registry: rules.ProtocolRegistry, now: datetime, patient: int
) -> None:
    with write_session(engine) as session:
        late = record(session, registry, now, RCL_1, on=date(2024, 5, 15), result="negative")
        early = record(session, registry, now, "ROM-101:1:rcl_test:2", on=date(2024, 6, 30))
        inside = record(session, registry, now, "ROM-101:1:rcl_test:3", on=date(2025, 1, 1))
    assert late.assessment.protocol_deviation is True
    assert early.assessment.protocol_deviation is True
    assert inside.assessment.protocol_deviation is False
    with read_session(engine) as session:
        assert assessment_row(session, "ROM-101", "rcl_test", 1).protocol_deviation is True
        history = {
            h.performed_on: h.protocol_deviation
            for h in session.execute(select(OutcomeRecord)).scalars()
        }
        audit_new = [
            json.loads(a.new_values or "{}")["protocol_deviation"]
            for a in session.execute(
                select(AuditEntry)
                .where(AuditEntry.action == "record_outcome")
                .order_by(AuditEntry.id)  # type: ignore[arg-type]
            ).scalars()
        ]
    assert history == {date(2024, 5, 15): True, date(2024, 6, 30): True, date(2025, 1, 1): False}
    assert audit_new == [True, True, False]


def test_missed_outside_the_window_is_not_a_deviation(
    engine: Engine, registry: rules.ProtocolRegistry, now: datetime, patient: int
) -> None:
    with write_session(engine) as session:
        missed = record(session, registry, now, RCL_1, outcome="missed", on=date(2024, 6, 1))
    assert missed.assessment.protocol_deviation is False


def test_a_result_on_an_outcome_other_than_completed_is_refused(
    engine: Engine, registry: rules.ProtocolRegistry, now: datetime, patient: int
) -> None:
    _refused(
        engine,
        registry,
        now,
        InvalidInput,
        "only a completed assessment has a result",
        outcome="missed",
        result="negative",
    )


def test_an_unknown_outcome_is_refused(
    engine: Engine, registry: rules.ProtocolRegistry, now: datetime, patient: int
) -> None:
    _refused(engine, registry, now, InvalidInput, "outcome must be completed", outcome="done")


@pytest.mark.parametrize("key", ["ROM-101", "ROM-101:rcl_test:1", "ROM-101:x:rcl_test:1", ""])
def test_a_malformed_key_is_refused(
    engine: Engine, registry: rules.ProtocolRegistry, now: datetime, patient: int, key: str
) -> None:
    _refused(engine, registry, now, InvalidInput, "is not an assessment key", key=key)


@pytest.mark.parametrize(
    ("key", "match"),
    [
        ("ROM-999:1:rcl_test:1", "no patient with study id 'ROM-999'"),
        ("ROM-101:1:rcl_test:4", "no assessment 'ROM-101:1:rcl_test:4'"),
        ("ROM-101:2:rcl_test:1", "no assessment"),
        ("ROM-101:1:rcl_archive:1", "no assessment"),  # not planned (yet)
    ],
)
def test_an_unknown_assessment_is_not_found(
    engine: Engine,
    registry: rules.ProtocolRegistry,
    now: datetime,
    patient: int,
    key: str,
    match: str,
) -> None:
    _refused(engine, registry, now, NotFound, match, key=key)


def test_a_key_parses_into_its_parts_even_with_colons_in_the_study_id() -> None:
    assert AssessmentRef.parse("ROM-001:1:rcl_test:2") == AssessmentRef("ROM-001", 1, "rcl_test", 2)
    assert AssessmentRef.parse("A:B:2:x:3") == AssessmentRef("A:B", 2, "x", 3)


def test_only_the_recorded_row_changes_when_the_plan_does_not(
    engine: Engine, registry: rules.ProtocolRegistry, now: datetime, patient: int
) -> None:
    """An outcome without a branch-driving result touches exactly one assessment row."""
    before = {row["id"]: row for row in table_snapshot(engine, Assessment)}
    with write_session(engine) as session:
        recorded = record(session, registry, now, "ROM-101:1:cbc_early:1")
    assert recorded.change.is_empty()
    after = {row["id"]: row for row in table_snapshot(engine, Assessment)}
    changed = [i for i in before if before[i] != after[i]]
    assert changed == [recorded.assessment.id]
    assert before.keys() == after.keys()


def test_recording_day_after_day_keeps_one_history_row_per_outcome(
    engine: Engine, registry: rules.ProtocolRegistry, now: datetime, patient: int
) -> None:
    first_day = date(2024, 2, 1)
    with write_session(engine) as session:
        for day in range(14):
            on = first_day + timedelta(days=day)
            record(session, registry, now, f"ROM-101:1:crs_icans_daily_capd:{day + 1}", on=on)
    with read_session(engine) as session:
        dates = sorted(h.performed_on for h in session.execute(select(OutcomeRecord)).scalars())
        statuses = {
            r.status
            for r in session.execute(
                select(Assessment).where(Assessment.assessment == "crs_icans_daily_capd")
            ).scalars()
        }
    assert dates == [first_day + timedelta(days=d) for d in range(14)]
    assert statuses == {"completed"}
