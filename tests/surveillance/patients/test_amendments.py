"""Protocol amendments: a dry run shows the change; applying it moves the future only."""

from __future__ import annotations

import json
import shutil
from datetime import date, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from support.factories import (
    AAV,
    ACTOR,
    CAR_T,
    add_sites,
    enroll_committed,
    record,
    recorded_snapshot,
    replace_once,
    rows_of,
    table_snapshot,
    write_amended_aav,
)

import rules
from surveillance.calendar.sync import compare, patient_plan, stored_calendar
from surveillance.errors import InvalidInput
from surveillance.kit import audit
from surveillance.kit.audit import AuditEntry
from surveillance.kit.db import read_session, write_session
from surveillance.patients.amendments import amend
from surveillance.patients.changes import change_status
from surveillance.records.patients import Assessment, Patient
from surveillance.records.queries import get_patient

CAUSE = f"protocol {AAV} amended from 1.0 to 1.1"
INFUSION = date(2024, 1, 31)


@pytest.fixture
def amended_registry(tmp_path: Path) -> rules.ProtocolRegistry:
    folder = tmp_path / "protocols"
    write_amended_aav(folder)
    registry = rules.ProtocolRegistry.from_directory(folder)
    assert registry.get(AAV).version == "1.1"
    assert registry.get(AAV, "1.0").version == "1.0"
    return registry


@pytest.fixture
def aav_patient(engine: Engine, registry: rules.ProtocolRegistry, now: datetime) -> int:
    """ROM-201 on AAV 1.0, the first two liver images recorded; plus a CAR-T patient."""
    add_sites(engine)
    patient_id = enroll_committed(
        engine,
        registry,
        now,
        study_id="ROM-201",
        protocol_id=AAV,
        diagnosis="hemophilia_b",
        birth_date=date(1990, 5, 1),
        sex="M",
        infusion_date=INFUSION,
    )
    enroll_committed(engine, registry, now, study_id="ROM-101")
    with write_session(engine) as session:
        record(session, registry, now, "ROM-201:1:aav_hcc_imaging:1")
        record(session, registry, now, "ROM-201:1:aav_hcc_imaging:2")
    return patient_id


def _month(months: int) -> date:
    from dateutil.relativedelta import relativedelta

    return INFUSION + relativedelta(months=months)


def test_the_amended_protocol_differs_in_that_schedule_only(
    amended_registry: rules.ProtocolRegistry,
) -> None:
    facts = rules.PatientFacts(date(1990, 5, 1), "hemophilia_b", "M")
    old = rules.build_calendar(amended_registry.get(AAV, "1.0"), facts, [INFUSION])
    new = rules.build_calendar(amended_registry.get(AAV, "1.1"), facts, [INFUSION])
    assert [p.due for p in old if p.assessment == "aav_hcc_imaging"] == [
        _month(m) for m in range(6, 61, 6)
    ]
    assert [p.due for p in new if p.assessment == "aav_hcc_imaging"] == [
        _month(m) for m in range(6, 61, 3)
    ]

    def others(plan: list[rules.PlannedAssessment]) -> list[tuple[object, ...]]:
        return [
            (p.key, p.due, p.window_start, p.window_end)
            for p in plan
            if p.assessment != "aav_hcc_imaging"
        ]

    assert others(old) == others(new)


def test_a_dry_run_reports_the_change_and_writes_nothing(
    engine: Engine,
    amended_registry: rules.ProtocolRegistry,
    now: datetime,
    aav_patient: int,
) -> None:
    tables = (Patient, Assessment, AuditEntry)
    before = [table_snapshot(engine, model) for model in tables]
    with write_session(engine) as session:  # committed: a dry run must not have written
        amendments = amend(
            session,
            protocol_id=AAV,
            to_version="1.1",
            registry=amended_registry,
            actor=ACTOR,
            now=now,
            apply=False,
        )
    assert [(a.study_id, a.from_version) for a in amendments] == [("ROM-201", "1.0")]
    change = amendments[0].change
    # Occurrence 3 would land on month 12, already done (as occurrence 2 of 1.0): it is
    # covered, not planned again, and its pending row is cancelled.
    assert sorted((s.occurrence, p.due) for s, p in change.moved) == [
        (n, _month(3 + 3 * n)) for n in range(4, 11)
    ]
    assert sorted(p.occurrence for p in change.added) == list(range(11, 20))
    assert {p.assessment for p in change.added} == {"aav_hcc_imaging"}
    assert [(s.assessment, s.occurrence) for s in change.cancelled] == [("aav_hcc_imaging", 3)]
    # Every other pending row is relabelled with the new version, dates unchanged.
    assert change.relabelled
    assert all(p.protocol_version == "1.1" for _, p in change.relabelled)
    assert all((s.due_on, s.window_end) == (p.due, p.window_end) for s, p in change.relabelled)
    assert [table_snapshot(engine, model) for model in tables] == before


def test_applying_moves_and_adds_rows_and_records_the_move(
    engine: Engine,
    amended_registry: rules.ProtocolRegistry,
    now: datetime,
    aav_patient: int,
) -> None:
    history = recorded_snapshot(engine)
    assert len(history) == 2
    with read_session(engine) as session:
        car_t_before = [r.model_dump() for r in rows_of(session, "ROM-101")]
        pending_before = {
            r.occurrence: r.id
            for r in rows_of(session, "ROM-201", "aav_hcc_imaging")
            if r.status == "pending"
        }

    with write_session(engine) as session:
        amendments = amend(
            session,
            protocol_id=AAV,
            to_version="1.1",
            registry=amended_registry,
            actor=ACTOR,
            now=now,
            apply=True,
        )
    assert len(amendments) == 1

    with read_session(engine) as session:
        patient = get_patient(session, "ROM-201")
        hcc = {r.occurrence: r for r in rows_of(session, "ROM-201", "aav_hcc_imaging")}
        pending = [r for r in rows_of(session, "ROM-201") if r.status == "pending"]
        car_t_after = [r.model_dump() for r in rows_of(session, "ROM-101")]
        moves = list(
            session.execute(
                select(AuditEntry).where(AuditEntry.action == "protocol_move")
            ).scalars()
        )
        changes = list(
            session.execute(
                select(AuditEntry).where(
                    AuditEntry.action == "calendar_change", AuditEntry.entity_key == "ROM-201"
                )
            ).scalars()
        )
        breaks = audit.verify_chain(session)
        again = compare(
            stored_calendar(session, aav_patient),
            patient_plan(session, patient, amended_registry.get(AAV, "1.1")),
        )

    assert patient.protocol_version == "1.1"
    assert recorded_snapshot(engine) == history  # recorded rows untouched, still on 1.0
    assert {hcc[1].protocol_version, hcc[2].protocol_version} == {"1.0"}
    assert (hcc[3].status, hcc[3].status_reason) == ("cancelled", CAUSE)  # month 12 is done
    for occurrence in range(4, 11):  # moved in place: same rows, new dates
        row = hcc[occurrence]
        assert row.id == pending_before[occurrence]
        assert (row.due_on, row.status, row.status_reason) == (
            _month(3 + 3 * occurrence),
            "pending",
            CAUSE,
        )
    for occurrence in range(11, 20):  # added
        assert hcc[occurrence].id not in pending_before.values()
        assert hcc[occurrence].due_on == _month(3 + 3 * occurrence)
    assert max(hcc) == 19
    assert {r.protocol_version for r in pending} == {"1.1"}
    assert car_t_after == car_t_before  # another protocol's patient is not touched

    assert len(moves) == 1
    assert (moves[0].entity_key, moves[0].reason) == ("ROM-201", CAUSE)
    assert json.loads(moves[0].old_values or "{}") == {"protocol_version": "1.0"}
    assert json.loads(moves[0].new_values or "{}")["protocol_version"] == "1.1"
    assert json.loads(moves[0].new_values or "{}")["summary"].startswith(
        "9 added, 7 moved, 1 cancelled"
    )
    assert [c.reason for c in changes] == [CAUSE]
    assert breaks == []
    assert again.is_empty()

    # Everyone is on 1.1 now: amending again finds nobody.
    with write_session(engine) as session:
        assert (
            amend(
                session,
                protocol_id=AAV,
                to_version="1.1",
                registry=amended_registry,
                actor=ACTOR,
                now=now,
                apply=True,
            )
            == []
        )


def test_patients_whose_follow_up_ended_are_not_moved(
    engine: Engine,
    registry: rules.ProtocolRegistry,
    amended_registry: rules.ProtocolRegistry,
    now: datetime,
    aav_patient: int,
) -> None:
    with write_session(engine) as session:
        change_status(
            session,
            study_id="ROM-201",
            status="deceased",
            on=date(2026, 11, 1),
            reason="reported",
            actor=ACTOR,
            registry=registry,
            now=now,
        )
    before = table_snapshot(engine, Assessment)
    with write_session(engine) as session:
        amendments = amend(
            session,
            protocol_id=AAV,
            to_version="1.1",
            registry=amended_registry,
            actor=ACTOR,
            now=now,
            apply=True,
        )
    assert amendments == []
    assert table_snapshot(engine, Assessment) == before
    with read_session(engine) as session:
        assert get_patient(session, "ROM-201").protocol_version == "1.0"


def test_amending_to_an_unknown_version_is_refused(
    engine: Engine,
    amended_registry: rules.ProtocolRegistry,
    now: datetime,
    aav_patient: int,
) -> None:
    with write_session(engine) as session:
        with pytest.raises(InvalidInput, match=r"unknown protocol 'aav-liver-5-year version 2\.0'"):
            amend(
                session,
                protocol_id=AAV,
                to_version="2.0",
                registry=amended_registry,
                actor=ACTOR,
                now=now,
                apply=True,
            )


def test_a_car_t_amendment_only_touches_car_t_patients(
    engine: Engine,
    registry: rules.ProtocolRegistry,
    now: datetime,
    aav_patient: int,
    tmp_path: Path,
) -> None:
    """The CAR-T protocol moves its RCL month-3 test to month 4 in a version 1.2 (patients
    are enrolled on the newest bundled version, 1.1)."""
    folder = tmp_path / "car-t"
    folder.mkdir()
    for path in rules.BUNDLED_PROTOCOLS.glob("*.yaml"):
        shutil.copy(path, folder / path.name)
    text = (rules.BUNDLED_PROTOCOLS / f"{CAR_T}-1.1.yaml").read_text(encoding="utf-8")
    text = replace_once(text, 'version: "1.1"', 'version: "1.2"')
    head, rcl_section = text.split("  - id: rcl_test\n", 1)
    rcl_section = replace_once(
        rcl_section,
        "    schedule:\n      - at: [M3]\n        window: [-14, 14]\n      - at: [M6, M12]",
        "    schedule:\n      - at: [M4]\n        window: [-14, 14]\n      - at: [M6, M12]",
    )
    text = head + "  - id: rcl_test\n" + rcl_section
    (folder / f"{CAR_T}-1.2.yaml").write_text(text, encoding="utf-8")
    car_t_registry = rules.ProtocolRegistry.from_directory(folder)

    with read_session(engine) as session:
        aav_before = [r.model_dump() for r in rows_of(session, "ROM-201")]
    with write_session(engine) as session:
        amendments = amend(
            session,
            protocol_id=CAR_T,
            to_version="1.2",
            registry=car_t_registry,
            actor=ACTOR,
            now=now,
            apply=True,
        )
    assert [a.study_id for a in amendments] == ["ROM-101"]
    moved = [(s.assessment, s.occurrence, p.due) for s, p in amendments[0].change.moved]
    assert moved == [("rcl_test", 1, _month(4))]
    with read_session(engine) as session:
        rcl = rows_of(session, "ROM-101", "rcl_test")
        aav_after = [r.model_dump() for r in rows_of(session, "ROM-201")]
    assert [(r.occurrence, r.due_on, r.protocol_version) for r in rcl] == [
        (1, _month(4), "1.2"),
        (2, _month(6), "1.2"),
        (3, _month(12), "1.2"),
    ]
    assert aav_after == aav_before


def test_rows_an_amendment_adds_after_their_window_closed_are_not_required(
    engine: Engine, registry: rules.ProtocolRegistry, now: datetime, tmp_path: Path
) -> None:
    """CAR-T 1.1 adds a pre-infusion biobank sample: for ROM-101, infused 2024-01-31 and
    amended on 2026-11-25, it can never be taken. It is marked not required, with the
    amendment as the reason, not left overdue; a later re-plan leaves it so."""
    only_1_0 = tmp_path / "only-1.0"
    only_1_0.mkdir()
    shutil.copy(rules.BUNDLED_PROTOCOLS / f"{CAR_T}.yaml", only_1_0)
    add_sites(engine)
    enroll_committed(engine, rules.ProtocolRegistry.from_directory(only_1_0), now)
    with write_session(engine) as session:
        [moved] = amend(
            session,
            protocol_id=CAR_T,
            to_version="1.1",
            registry=registry,
            actor=ACTOR,
            now=now,
            apply=True,
        )
    today = now.date()
    past = {(p.assessment, p.occurrence) for p in moved.change.added if p.window_end < today}
    assert ("biobank_sample", 1) in past
    with read_session(engine) as session:
        rows = {(r.assessment, r.occurrence): r for r in rows_of(session, "ROM-101")}
        [entry] = session.execute(
            select(AuditEntry).where(AuditEntry.action == "protocol_move")  # type: ignore[arg-type]
        ).scalars()
    for identity in past:
        assert rows[identity].status == "not_required"
        assert rows[identity].status_reason == (
            f"protocol {CAR_T} amended from 1.0 to 1.1 on {today}, after its window had "
            "closed: not owed retroactively"
        )
    future = [p for p in moved.change.added if p.window_end >= today]
    assert future
    assert all(rows[(p.assessment, p.occurrence)].status == "pending" for p in future)
    assert len(json.loads(entry.new_values or "{}")["not_required"]) == len(past)

    with write_session(engine) as session:  # a later re-plan does not bring them back
        record(session, registry, now, "ROM-101:1:rcl_test:1", on=date(2024, 5, 1))
    with read_session(engine) as session:
        after = {(r.assessment, r.occurrence): r.status for r in rows_of(session, "ROM-101")}
        patient = get_patient(session, "ROM-101")
        plan = patient_plan(session, patient, registry.get(CAR_T, "1.1"))
        assert compare(stored_calendar(session, patient.id), plan).is_empty()  # type: ignore[arg-type]
    assert all(after[identity] == "not_required" for identity in past)
