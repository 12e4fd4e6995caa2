"""Re-materialization: results, events, infusions and statuses re-plan only the future.

Recorded assessments are never deleted or rewritten; pending ones are added, moved or
cancelled with the reason kept.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import Engine, select
from support.factories import (
    ACTOR,
    CAR_T,
    add_sites,
    count,
    enroll_committed,
    record,
    recorded_snapshot,
    rows_of,
    table_snapshot,
)

import rules
from surveillance.calendar.sync import (
    StoredAssessment,
    assessment_rows,
    compare,
    patient_plan,
    rematerialize,
    stored_calendar,
)
from surveillance.kit.audit import AuditEntry
from surveillance.kit.db import read_session, write_session
from surveillance.kit.sqltypes import table_of
from surveillance.patients.changes import add_infusion, change_status, record_event
from surveillance.records.patients import Assessment
from surveillance.records.queries import get_patient

RCL = [f"ROM-101:1:rcl_test:{n}" for n in (1, 2, 3)]
LAST_RCL_DAY = date(2025, 1, 31)  # due date of the month-12 RCL test


@pytest.fixture
def patient(engine: Engine, registry: rules.ProtocolRegistry, now: datetime) -> int:
    add_sites(engine)
    return enroll_committed(engine, registry, now)


def _record_rcl(
    engine: Engine, registry: rules.ProtocolRegistry, now: datetime, results: list[str]
) -> list[bool]:
    """Record the first-year RCL tests at their due dates; whether each changed the plan."""
    changed = []
    for key, result in zip(RCL, results, strict=False):
        with write_session(engine) as session:
            changed.append(not record(session, registry, now, key, result=result).change.is_empty())
    return changed


def test_three_negative_rcl_tests_switch_yearly_testing_to_archive_samples(
    engine: Engine, registry: rules.ProtocolRegistry, now: datetime, patient: int
) -> None:
    with read_session(engine) as session:
        yearly_before = rows_of(session, "ROM-101", "rcl_yearly_test")
        assert not rows_of(session, "ROM-101", "rcl_archive")
    assert len(yearly_before) == 14
    assert {r.status for r in yearly_before} == {"pending"}

    # All three are needed: the first two change nothing.
    assert _record_rcl(engine, registry, now, ["negative"] * 3) == [False, False, True]

    with read_session(engine) as session:
        yearly = rows_of(session, "ROM-101", "rcl_yearly_test")
        archive = rows_of(session, "ROM-101", "rcl_archive")
        audit_row = session.execute(
            select(AuditEntry).where(AuditEntry.action == "calendar_change")
        ).scalar_one()
    assert [r.id for r in yearly] == [r.id for r in yearly_before]  # nothing deleted
    assert all(r.due_on > LAST_RCL_DAY for r in yearly)
    assert {r.status for r in yearly} == {"cancelled"}
    assert {r.status_reason for r in yearly} == {
        "completed recorded for ROM-101:1:rcl_test:3 with result 'negative'"
    }
    # The archive samples take the yearly tests' places, with the cause in their reason.
    assert [(r.occurrence, r.due_on, r.status) for r in archive] == [
        (r.occurrence, r.due_on, "pending") for r in yearly_before
    ]
    assert all("started by" in r.reason and "rcl_test" in r.reason for r in archive)
    assert audit_row.reason == "completed recorded for ROM-101:1:rcl_test:3 with result 'negative'"
    summary = json.loads(audit_row.new_values or "{}")
    assert summary["summary"].startswith("14 added, 0 moved, 14 cancelled")
    assert len(summary["cancelled"]) == 14
    assert summary["cancelled"][0] == {"key": "ROM-101:1:rcl_yearly_test:1", "due": "2026-01-31"}


def test_a_positive_rcl_test_starts_confirmation_and_intensified_testing(
    engine: Engine, registry: rules.ProtocolRegistry, now: datetime, patient: int
) -> None:
    assert _record_rcl(engine, registry, now, ["positive"]) == [True]
    with read_session(engine) as session:
        confirm = rows_of(session, "ROM-101", "rcl_confirm")
        intensified = rows_of(session, "ROM-101", "rcl_intensified")
        yearly = rows_of(session, "ROM-101", "rcl_yearly_test")
    # Anchored on the result's date (2024-04-30): confirmation at D14, monthly x3.
    assert [(r.due_on, r.status) for r in confirm] == [(date(2024, 5, 14), "pending")]
    assert [r.due_on for r in intensified] == [
        date(2024, 5, 30),
        date(2024, 6, 30),
        date(2024, 7, 30),
    ]
    assert {r.status for r in yearly} == {"pending"}  # testing continues yearly


def test_a_negative_then_positive_year_keeps_yearly_testing(
    engine: Engine, registry: rules.ProtocolRegistry, now: datetime, patient: int
) -> None:
    _record_rcl(engine, registry, now, ["negative", "negative", "positive"])
    with read_session(engine) as session:
        assert {r.status for r in rows_of(session, "ROM-101", "rcl_yearly_test")} == {"pending"}
        assert not rows_of(session, "ROM-101", "rcl_archive")
        assert rows_of(session, "ROM-101", "rcl_confirm")


def test_recorded_rows_are_never_modified_or_deleted_by_re_materialization(
    engine: Engine, registry: rules.ProtocolRegistry, now: datetime, patient: int
) -> None:
    def check_history_kept(history: dict[int, dict[str, object]]) -> dict[int, dict[str, object]]:
        current = recorded_snapshot(engine)
        assert {i: current.get(i) for i in history} == history
        return current

    # A recorded history: completed (with results), missed, not done.
    with write_session(engine) as session:
        record(session, registry, now, "ROM-101:1:baseline_evaluation:1")
        record(session, registry, now, "ROM-101:1:cbc_early:1")
        record(session, registry, now, "ROM-101:1:cbc_early:2", outcome="missed")
        record(session, registry, now, "ROM-101:1:bcell_cd19:1", outcome="not_done", reason="lost")
        # Recorded although its future is about to change: yearly RCL test of year 2.
        record(session, registry, now, "ROM-101:1:rcl_yearly_test:1", result="negative")
        record(session, registry, now, "ROM-101:1:immunoglobulins:1", result="350 mg/dL")
    history = recorded_snapshot(engine)
    assert len(history) == 6
    ids_before = {row["id"] for row in table_snapshot(engine, Assessment)}

    _record_rcl(engine, registry, now, ["negative"] * 3)  # cancels pending yearly tests
    history = check_history_kept(history)
    with read_session(engine) as session:
        yearly = {r.occurrence: r.status for r in rows_of(session, "ROM-101", "rcl_yearly_test")}
    assert yearly[1] == "completed"  # the recorded one stays as it was
    assert set(yearly.values()) == {"completed", "cancelled"}

    with write_session(engine) as session:
        record_event(
            session,
            study_id="ROM-101",
            kind="new_malignancy",
            on=date(2026, 10, 1),
            note="T-cell lymphoma",
            actor=ACTOR,
            registry=registry,
            now=now,
        )
    history = check_history_kept(history)

    with write_session(engine) as session:
        add_infusion(
            session,
            study_id="ROM-101",
            on=date(2024, 3, 1),
            actor=ACTOR,
            registry=registry,
            now=now,
        )
    history = check_history_kept(history)

    with write_session(engine) as session:
        change_status(
            session,
            study_id="ROM-101",
            status="withdrawn",
            on=date(2026, 11, 1),
            reason="consent withdrawn",
            actor=ACTOR,
            registry=registry,
            now=now,
        )
    check_history_kept(history)

    ids_after = {row["id"] for row in table_snapshot(engine, Assessment)}
    assert ids_before <= ids_after  # no row was ever deleted


def test_compare_on_an_unchanged_patient_is_empty_and_writes_nothing(
    engine: Engine, registry: rules.ProtocolRegistry, now: datetime, patient: int
) -> None:
    _record_rcl(engine, registry, now, ["negative"] * 3)
    protocol = registry.get(CAR_T)
    with read_session(engine) as session:
        stored_patient = get_patient(session, "ROM-101")
        change = compare(
            stored_calendar(session, patient), patient_plan(session, stored_patient, protocol)
        )
    assert change.is_empty()
    assert change.summary() == "0 added, 0 moved, 0 cancelled, 0 reinstated, 0 relabelled"

    before = (table_snapshot(engine, Assessment), table_snapshot(engine, AuditEntry))
    with write_session(engine) as session:
        stored_patient = get_patient(session, "ROM-101")
        again = rematerialize(
            session, stored_patient, protocol, cause="nothing new", actor=ACTOR, now=now
        )
    assert again.is_empty()
    assert (table_snapshot(engine, Assessment), table_snapshot(engine, AuditEntry)) == before


def test_a_dry_run_reports_the_change_without_writing_it(
    engine: Engine, registry: rules.ProtocolRegistry, now: datetime, patient: int
) -> None:
    _record_rcl(engine, registry, now, ["negative"] * 2)
    # Record the third test's result behind the service's back, then ask for a dry run.
    with write_session(engine) as session:
        row = session.execute(
            select(Assessment).where(
                Assessment.assessment == "rcl_test", Assessment.occurrence == 3
            )
        ).scalar_one()
        row.status, row.performed_on, row.result = "completed", LAST_RCL_DAY, "negative"
        session.add(row)
    before = (table_snapshot(engine, Assessment), table_snapshot(engine, AuditEntry))
    with write_session(engine) as session:
        change = rematerialize(
            session,
            get_patient(session, "ROM-101"),
            registry.get(CAR_T),
            cause="dry",
            actor=ACTOR,
            now=now,
            dry_run=True,
        )
    assert (len(change.added), len(change.cancelled)) == (14, 14)
    assert (table_snapshot(engine, Assessment), table_snapshot(engine, AuditEntry)) == before


def _stored(
    identity: tuple[int, str, int],
    status: str,
    due: date,
    window: tuple[date, date],
    row_id: int = 1,
) -> StoredAssessment:
    return StoredAssessment(row_id, *identity, status, due, window[0], window[1], "reason", "1.0")


def _planned(
    identity: tuple[int, str, int], due: date, window: tuple[date, date], reason: str = "reason"
) -> rules.PlannedAssessment:
    infusion, assessment, occurrence = identity
    return rules.PlannedAssessment(
        infusion, assessment, occurrence, "name", "cat", due, *window, CAR_T, "1.0", reason, "x"
    )


D1, D2 = date(2030, 1, 1), date(2030, 2, 1)
W1, W2 = (date(2029, 12, 1), date(2030, 1, 31)), (date(2030, 1, 1), date(2030, 3, 1))


@pytest.mark.parametrize("status", ["completed", "missed", "not_done"])
def test_compare_never_touches_recorded_rows(status: str) -> None:
    identity = (1, "ltfu_exam", 5)
    change = compare([_stored(identity, status, D1, W1)], [_planned(identity, D2, W2, "new")])
    assert change.is_empty()
    # Nor cancels them when the plan no longer wants them.
    assert compare([_stored(identity, status, D1, W1)], []).is_empty()


def test_compare_sorts_pending_rows_into_moved_cancelled_relabelled_and_added() -> None:
    moved, gone, relabel, same = (
        (1, "a", 1),
        (1, "b", 1),
        (1, "c", 1),
        (1, "d", 1),
    )
    stored = [
        _stored(moved, "pending", D1, W1, 1),
        _stored(gone, "pending", D1, W1, 2),
        _stored(relabel, "pending", D1, W1, 3),
        _stored(same, "pending", D1, W1, 4),
    ]
    new = (2, "a", 1)
    planned = [
        _planned(moved, D2, W2),
        _planned(relabel, D1, W1, "new wording"),
        _planned(same, D1, W1),
        _planned(new, D2, W2),
    ]
    change = compare(stored, planned)
    assert [s.id for s, _ in change.moved] == [1]
    assert [s.id for s in change.cancelled] == [2]
    assert [s.id for s, _ in change.relabelled] == [3]
    assert [(p.infusion, p.assessment) for p in change.added] == [(2, "a")]
    assert change.reinstated == []


def test_compare_reinstates_a_cancelled_row_the_plan_asks_for_again() -> None:
    identity = (1, "rcl_yearly_test", 3)
    change = compare([_stored(identity, "cancelled", D1, W1)], [_planned(identity, D1, W1)])
    assert [s.identity for s, _ in change.reinstated] == [identity]
    assert change.added == []
    assert change.moved == []
    assert change.cancelled == []
    # A cancelled row the plan does not want stays as it is.
    assert compare([_stored(identity, "cancelled", D1, W1)], []).is_empty()


def test_a_reinstated_row_is_pending_again_in_the_database(
    engine: Engine, registry: rules.ProtocolRegistry, now: datetime, patient: int
) -> None:
    # Cancel a planned row by hand (as an earlier plan might have), then re-plan.
    with write_session(engine) as session:
        row = session.execute(
            select(Assessment).where(Assessment.assessment == "ltfu_exam").limit(1)
        ).scalar_one()
        row.status, row.status_reason = "cancelled", "earlier plan"
        session.add(row)
        row_id = row.id
    with write_session(engine) as session:
        change = rematerialize(
            session,
            get_patient(session, "ROM-101"),
            registry.get(CAR_T),
            cause="re-planned",
            actor=ACTOR,
            now=now,
        )
    assert [s.id for s, _ in change.reinstated] == [row_id]
    with read_session(engine) as session:
        row = session.get(Assessment, row_id)
        assert row is not None
        assert (row.status, row.status_reason) == ("pending", "re-planned")
        assert count(session, AuditEntry) == 2  # enrolment + this calendar change


def test_a_new_row_fills_every_column_of_the_table(registry: rules.ProtocolRegistry) -> None:
    protocol = registry.get("cd19-car-t-pediatric-autoimmune")
    facts = rules.PatientFacts(date(2014, 3, 1), "sle", "F")
    planned = rules.build_calendar(protocol, facts, [date(2026, 1, 15)], [], [])
    now = datetime(2026, 1, 15, 9, tzinfo=UTC)
    row = assessment_rows(7, "Rome", planned, now)[0]
    columns = {column.name for column in table_of(Assessment).columns}
    assert set(row) == columns - {"id"}
    assert (row["status"], row["version"], row["result"], row["updated_at"]) == (
        "pending",
        1,
        None,
        now,
    )
    assert (row["due_on"], row["assessment"]) == (planned[0].due, planned[0].assessment)
