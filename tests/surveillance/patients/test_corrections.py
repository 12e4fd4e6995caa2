"""Correcting a recorded outcome: a new version with a reason, never an overwrite, and a
calendar re-planned from the corrected fact (on SQLite and PostgreSQL)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, select
from support.factories import ACTOR, add_sites, assessment_row, enroll_committed, record, rows_of

import rules
from surveillance.adverse_events.results import correct_outcome
from surveillance.calendar.sync import compare, patient_plan, stored_calendar
from surveillance.errors import Conflict, InvalidInput, PreconditionFailed
from surveillance.kit import migrate
from surveillance.kit.audit import AuditEntry
from surveillance.kit.db import make_engine, read_session, write_session
from surveillance.records.adverse_events import AdverseEventCase
from surveillance.records.patients import OutcomeRecord, Patient
from surveillance.records.queries import find_assessment

# ROM-101, infused 2024-01-31: the month-3 RCL test (window 2024-04-16..05-14).
KEY = "ROM-101:1:rcl_test:1"
STARTED_BY_POSITIVE = {"rcl_confirm", "rcl_intensified", "rcl_positive_report"}


@pytest.fixture
def patient(engine: Engine, registry: rules.ProtocolRegistry, now: datetime) -> int:
    add_sites(engine)
    return enroll_committed(engine, registry, now)


def _correct(
    engine: Engine, registry: rules.ProtocolRegistry, now: datetime, **fields: object
) -> None:
    with write_session(engine) as session:
        version = assessment_row(session, "ROM-101", "rcl_test", 1).version
        correct_outcome(
            session,
            key=KEY,
            actor=ACTOR,
            registry=registry,
            now=now,
            expected_version=version,
            **{"reason": "transcription error", **fields},  # type: ignore[arg-type]
        )


def _pending(engine: Engine, rule: str) -> list[str]:
    with read_session(engine) as session:
        return [r.status for r in rows_of(session, "ROM-101", rule)]


def _cases(engine: Engine) -> int:
    with read_session(engine) as session:
        return len(session.execute(select(AdverseEventCase.case_id)).all())


def test_negative_corrected_to_positive_starts_what_a_first_positive_would(
    engine: Engine, registry: rules.ProtocolRegistry, now: datetime, patient: int
) -> None:
    with write_session(engine) as session:
        record(session, registry, now, KEY, result="negative")
    assert all(not _pending(engine, rule) for rule in STARTED_BY_POSITIVE)
    _correct(engine, registry, now, result="Positive")
    for rule in STARTED_BY_POSITIVE:
        assert "pending" in _pending(engine, rule), rule
    assert _cases(engine) == 1  # the serious case a positive RCL result is
    with read_session(engine) as session:
        row = assessment_row(session, "ROM-101", "rcl_test", 1)
        assert (row.status, row.result, row.version) == ("completed", "positive", 3)
        history = session.execute(
            select(OutcomeRecord.result).order_by(OutcomeRecord.id)  # type: ignore[arg-type]
        ).scalars()
        assert list(history) == ["negative", "positive"]  # nothing overwritten
        audit = session.execute(
            select(AuditEntry).where(AuditEntry.action == "correct_outcome")  # type: ignore[arg-type]
        ).scalar_one()
    assert audit.reason == "transcription error"
    assert json.loads(audit.old_values or "")["result"] == "negative"
    assert json.loads(audit.new_values or "")["result"] == "positive"


def test_positive_corrected_to_negative_cancels_what_it_started_and_keeps_the_case(
    engine: Engine, registry: rules.ProtocolRegistry, now: datetime, patient: int
) -> None:
    with write_session(engine) as session:
        record(session, registry, now, KEY, result="positive")
    assert _cases(engine) == 1
    _correct(engine, registry, now, result="negative")
    with read_session(engine) as session:
        started = [r for rule in STARTED_BY_POSITIVE for r in rows_of(session, "ROM-101", rule)]
    assert started
    for row in started:
        assert row.status == "cancelled"
        assert row.status_reason is not None
        assert row.status_reason.startswith(f"result corrected on {now.date()}: {KEY}")
    assert _cases(engine) == 1  # a case is nullified by a person, with a reason


def test_work_a_corrected_result_started_and_was_done_stays_done_and_is_marked(
    engine: Engine, registry: rules.ProtocolRegistry, now: datetime, patient: int
) -> None:
    with write_session(engine) as session:
        record(session, registry, now, KEY, on=date(2024, 4, 30), result="positive")
        confirm = rows_of(session, "ROM-101", "rcl_confirm")[0]
        confirm_key = f"ROM-101:1:rcl_confirm:{confirm.occurrence}"
        record(session, registry, now, confirm_key, on=date(2024, 5, 6), result="negative")
    _correct(engine, registry, now, result="negative", note="lab re-issued the report")
    with read_session(engine) as session:
        done = rows_of(session, "ROM-101", "rcl_confirm")[0]
        pending = rows_of(session, "ROM-101", "rcl_intensified")
        test = assessment_row(session, "ROM-101", "rcl_test", 1)
        marks = session.execute(
            select(AuditEntry).where(
                AuditEntry.action == "mark_started_by_corrected_result"  # type: ignore[arg-type]
            )
        ).scalar_one()
    assert (done.status, done.result) == ("completed", "negative")  # done stays done
    assert done.started_by_corrected_result == (
        f"started by the result of {KEY}, corrected on {now.date()}"
    )
    assert pending
    assert all(r.status == "cancelled" for r in pending)
    assert all(r.started_by_corrected_result is None for r in pending)
    assert test.note == "lab re-issued the report"
    assert json.loads(marks.new_values or "") == {confirm_key: done.started_by_corrected_result}

    # Corrected back to positive: the confirmation is the plan's again, the mark lifted.
    _correct(engine, registry, now, result="positive")
    with read_session(engine) as session:
        assert rows_of(session, "ROM-101", "rcl_confirm")[0].started_by_corrected_result is None


def test_a_positive_corrected_only_in_its_date_opens_no_second_case(
    engine: Engine, registry: rules.ProtocolRegistry, now: datetime, patient: int
) -> None:
    with write_session(engine) as session:
        record(session, registry, now, KEY, on=date(2024, 4, 30), result="positive")
    _correct(engine, registry, now, on=date(2024, 5, 2))
    assert _cases(engine) == 1


def test_completed_corrected_to_missed_clears_the_result(
    engine: Engine, registry: rules.ProtocolRegistry, now: datetime, patient: int
) -> None:
    with write_session(engine) as session:
        record(session, registry, now, KEY, result="negative")
    _correct(engine, registry, now, outcome="missed")
    with read_session(engine) as session:
        row = assessment_row(session, "ROM-101", "rcl_test", 1)
    assert (row.status, row.result) == ("missed", None)


def test_a_date_moved_out_of_and_back_into_the_window_flags_then_clears_the_deviation(
    engine: Engine, registry: rules.ProtocolRegistry, now: datetime, patient: int
) -> None:
    with write_session(engine) as session:
        record(session, registry, now, KEY, on=date(2024, 4, 30), result="negative")
    _correct(engine, registry, now, on=date(2024, 6, 1))
    with read_session(engine) as session:
        assert assessment_row(session, "ROM-101", "rcl_test", 1).protocol_deviation is True
    _correct(engine, registry, now, on=date(2024, 5, 1))
    with read_session(engine) as session:
        assert assessment_row(session, "ROM-101", "rcl_test", 1).protocol_deviation is False


@pytest.mark.parametrize(
    ("fields", "error", "says"),
    [
        ({"reason": " ", "result": "positive"}, InvalidInput, "needs a reason"),
        ({"result": "Positive by qPCR"}, InvalidInput, "is not one of the coded values"),
        ({"result": "negative"}, Conflict, "nothing to correct"),
        ({"on": date(2030, 1, 1)}, InvalidInput, "in the future"),
    ],
)
def test_a_correction_that_cannot_be_made_changes_nothing(
    engine: Engine,
    registry: rules.ProtocolRegistry,
    now: datetime,
    patient: int,
    fields: dict[str, object],
    error: type[Exception],
    says: str,
) -> None:
    with write_session(engine) as session:
        record(session, registry, now, KEY, result="negative")
    with pytest.raises(error, match=says):
        _correct(engine, registry, now, **fields)
    with read_session(engine) as session:
        row = assessment_row(session, "ROM-101", "rcl_test", 1)
        assert (row.result, row.version) == ("negative", 2)


def test_only_a_recorded_outcome_is_corrected_and_a_stale_version_is_refused(
    engine: Engine, registry: rules.ProtocolRegistry, now: datetime, patient: int
) -> None:
    with pytest.raises(Conflict, match="only a recorded outcome can be corrected"):
        _correct(engine, registry, now, result="positive")
    with write_session(engine) as session:
        record(session, registry, now, KEY, result="negative")
    with write_session(engine) as session, pytest.raises(PreconditionFailed):
        correct_outcome(
            session,
            key=KEY,
            reason="typo",
            result="positive",
            actor=ACTOR,
            registry=registry,
            now=now,
            expected_version=1,
        )


# -- property: nothing left behind by an old result ---------------------------------------

RCL_TESTS = ["ROM-101:1:rcl_test:1", "ROM-101:1:rcl_test:2", "ROM-101:1:rcl_test:3"]
RCL_DAYS = [date(2024, 4, 30), date(2024, 7, 31), date(2025, 1, 31)]
VALUES = ["negative", "positive", "indeterminate"]
Step = tuple[int, str]  # which RCL test, and the value recorded (first) or corrected to


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@example(steps=[(0, "negative"), (0, "positive")])  # a correction that starts confirmation
@example(steps=[(1, "positive"), (1, "negative"), (2, "negative")])  # one that cancels it
@given(steps=st.lists(st.tuples(st.integers(0, 2), st.sampled_from(VALUES)), max_size=6))
def test_after_any_results_and_corrections_the_calendar_is_the_engines(
    tmp_path_factory: pytest.TempPathFactory, registry: rules.ProtocolRegistry, steps: list[Step]
) -> None:
    """For any sequence of recorded and corrected RCL results, the stored calendar is what
    the engine plans from the final, corrected facts: nothing an old result started is
    left pending, nothing the last one starts is missing."""
    now = datetime(2026, 11, 25, 12, tzinfo=UTC)
    engine = make_engine(f"sqlite:///{tmp_path_factory.mktemp('prop') / 'p.db'}")
    migrate.upgrade(engine)
    add_sites(engine)
    patient_id = enroll_committed(engine, registry, now)
    recorded: set[int] = set()
    for index, value in steps:
        key = RCL_TESTS[index]
        with write_session(engine) as session:
            if index in recorded:
                row = find_assessment(session, key)[1]
                if row.result == value:
                    continue
                correct_outcome(
                    session, key=key, reason="checked against the lab report", result=value,
                    actor=ACTOR, registry=registry, now=now, expected_version=row.version,
                )  # fmt: skip
            else:
                record(session, registry, now, key, on=RCL_DAYS[index], result=value)
                recorded.add(index)
    with read_session(engine) as session:
        patient = session.get(Patient, patient_id)
        assert patient is not None
        protocol = registry.get(patient.protocol_id, patient.protocol_version)
        left = compare(
            stored_calendar(session, patient_id), patient_plan(session, patient, protocol)
        )
    assert left.is_empty(), left
    engine.dispose()


def test_correcting_only_the_date_keeps_a_quantity_in_its_stored_form(
    engine: Engine, registry: rules.ProtocolRegistry, now: datetime, patient: int
) -> None:
    """IgG accepts mg/dL and g/L: its stored "350" (mg/dL) is not asked for a unit again."""
    with write_session(engine) as session:
        row = assessment_row(session, "ROM-101", "immunoglobulins", 1)
        key = f"ROM-101:1:immunoglobulins:{row.occurrence}"
        record(session, registry, now, key, on=row.due_on, result="3.5 g/L")
    with write_session(engine) as session:
        row = assessment_row(session, "ROM-101", "immunoglobulins", 1)
        correct_outcome(
            session,
            key=key,
            on=row.due_on + (row.window_end - row.due_on) // 2,
            reason="date typed wrong",
            actor=ACTOR,
            registry=registry,
            now=now,
            expected_version=row.version,
        )
    with read_session(engine) as session:
        row = assessment_row(session, "ROM-101", "immunoglobulins", 1)
        assert (row.result, row.version) == ("350", 3)
        assert "pending" in [r.status for r in rows_of(session, "ROM-101", "ivig_course")]
