"""Re-infusion, events and status changes: the future follows, history stays."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, select
from support.factories import (
    AAV,
    ACTOR,
    add_sites,
    enroll_committed,
    record,
    recorded_snapshot,
    rows_of,
    table_snapshot,
)

import rules
from surveillance.errors import Conflict, InvalidInput, NotFound, SurveillanceError
from surveillance.kit.audit import AuditEntry
from surveillance.kit.db import read_session, write_session
from surveillance.patients.changes import add_infusion, change_status, record_event
from surveillance.patients.due_list import due_list
from surveillance.records.patients import Assessment, Infusion, Patient, PatientEvent
from surveillance.records.queries import get_patient

REINFUSION = date(2025, 6, 1)
DEATH = date(2026, 11, 20)


@pytest.fixture
def patient(engine: Engine, registry: rules.ProtocolRegistry, now: datetime) -> int:
    add_sites(engine)
    return enroll_committed(engine, registry, now)


def _everything(engine: Engine) -> dict[str, Any]:
    return {
        model.__tablename__: table_snapshot(engine, model)  # type: ignore[attr-defined]
        for model in (Patient, Infusion, Assessment, PatientEvent, AuditEntry)
    }


def _status(
    session: Any,
    registry: rules.ProtocolRegistry,
    now: datetime,
    status: str,
    on: date = DEATH,
    reason: str = "reported by the family",
    **kwargs: Any,
) -> Any:
    return change_status(
        session,
        study_id="ROM-101",
        status=status,
        on=on,
        reason=reason,
        actor=ACTOR,
        registry=registry,
        now=now,
        **kwargs,
    )


# -- re-infusion ---------------------------------------------------------------------------


def test_a_re_infusion_restarts_the_calendar_from_the_new_date(
    engine: Engine, registry: rules.ProtocolRegistry, now: datetime, patient: int
) -> None:
    with write_session(engine) as session:
        record(session, registry, now, "ROM-101:1:rcl_test:1", result="negative")
    history = recorded_snapshot(engine)
    with read_session(engine) as session:
        first = {r.id: r for r in rows_of(session, "ROM-101")}

    with write_session(engine) as session:
        change = add_infusion(
            session, study_id="ROM-101", on=REINFUSION, actor=ACTOR, registry=registry, now=now
        )
    assert change.added
    assert change.cancelled

    with read_session(engine) as session:
        infusions = session.execute(
            select(Infusion.number, Infusion.infused_on).order_by(Infusion.number)  # type: ignore[arg-type]
        ).all()
        rows = rows_of(session, "ROM-101")
        actions = (
            session.execute(
                select(AuditEntry.action).order_by(AuditEntry.id)  # type: ignore[arg-type]
            )
            .scalars()
            .all()
        )
    assert [tuple(i) for i in infusions] == [(1, date(2024, 1, 31)), (2, REINFUSION)]

    second = [r for r in rows if r.infusion_number == 2]
    assert len(second) == len(change.added)
    assert {r.status for r in second} == {"pending"}
    # Follow-up ends 15 years after the new infusion (the hand-over rows of protocol 1.1,
    # scheduled past it, aside).
    protocol = registry.get("cd19-car-t-pediatric-autoimmune")
    in_study = [r for r in second if not protocol.rules[r.assessment].spec.after_study]
    assert max(r.due_on for r in in_study) == date(2040, 6, 1)
    assert max(r.window_end for r in in_study) == date(2040, 6, 1)
    # Only the new infusion's baseline comes before it.
    assert {r.assessment for r in second if r.due_on < REINFUSION} == {
        "baseline_evaluation",
        "biobank_sample",  # protocol 1.1: the pre-infusion biobank sample
        "rcl_baseline",
    }
    assert {r.reason.split(";")[0] for r in second if r.assessment == "ltfu_exam"} >= {
        "month 3 after infusion of 2025-06-01"
    }

    for row in (r for r in rows if r.infusion_number == 1):
        before = first[row.id]
        if before.status != "pending":
            continue  # recorded history: checked below
        if before.due_on >= REINFUSION:
            assert (row.status, row.status_reason) == ("cancelled", "infusion 2 on 2025-06-01")
        else:
            assert (row.status, row.due_on) == ("pending", before.due_on)
    assert recorded_snapshot(engine) == history
    assert actions[-2:] == ["add_infusion", "calendar_change"]


def test_a_re_infusion_under_a_first_infusion_protocol_does_not_restart_follow_up(
    engine: Engine, registry: rules.ProtocolRegistry, now: datetime
) -> None:
    add_sites(engine)
    enroll_committed(
        engine,
        registry,
        now,
        study_id="ROM-201",
        protocol_id=AAV,
        diagnosis="hemophilia_b",
        birth_date=date(1990, 5, 1),
    )
    before = table_snapshot(engine, Assessment)
    with write_session(engine) as session:
        change = add_infusion(
            session, study_id="ROM-201", on=REINFUSION, actor=ACTOR, registry=registry, now=now
        )
    assert change.is_empty()
    assert table_snapshot(engine, Assessment) == before


@pytest.mark.parametrize(
    ("on", "match"),
    [
        (date(2024, 1, 31), "must come after the last infusion on 2024-01-31"),
        (date(2023, 12, 1), "must come after the last infusion"),
        (date(2026, 11, 26), "infusion date 2026-11-26 is in the future"),
        (date(2013, 1, 1), "before the birth date"),
    ],
)
def test_an_impossible_re_infusion_is_refused(
    engine: Engine,
    registry: rules.ProtocolRegistry,
    now: datetime,
    patient: int,
    on: date,
    match: str,
) -> None:
    before = _everything(engine)
    with write_session(engine) as session:
        with pytest.raises(InvalidInput, match=match):
            add_infusion(
                session, study_id="ROM-101", on=on, actor=ACTOR, registry=registry, now=now
            )
    assert _everything(engine) == before


# -- events --------------------------------------------------------------------------------


def test_a_new_malignancy_starts_tumour_testing_within_30_days(
    engine: Engine, registry: rules.ProtocolRegistry, now: datetime, patient: int
) -> None:
    onset = date(2026, 10, 1)
    with write_session(engine) as session:
        change = record_event(
            session,
            study_id="ROM-101",
            kind="new_malignancy",
            on=onset,
            note="T-cell lymphoma",
            actor=ACTOR,
            registry=registry,
            now=now,
        )
    assert sorted(p.assessment for p in change.added) == [
        "cibmtr_form_3500",  # protocol 1.1: the registry's new-malignancy form
        "integration_site_analysis",
        "rcl_on_indication",
        "tumour_vector_test",
    ]
    with read_session(engine) as session:
        tumour = rows_of(session, "ROM-101", "tumour_vector_test")
        event = session.execute(select(PatientEvent)).scalar_one()
        audit_row = session.execute(
            select(AuditEntry).where(AuditEntry.action == "record_event")
        ).scalar_one()
    assert [(r.due_on, r.window_start, r.window_end, r.status) for r in tumour] == [
        (date(2026, 10, 31), onset, date(2026, 10, 31), "pending")
    ]
    assert "new malignancy on 2026-10-01" in tumour[0].reason
    assert (event.kind, event.occurred_on, event.note, event.patient_id) == (
        "new_malignancy",
        onset,
        "T-cell lymphoma",
        patient,
    )
    assert json.loads(audit_row.new_values or "{}") == {
        "event": "new_malignancy",
        "on": "2026-10-01",
    }


@pytest.mark.parametrize(
    ("kind", "on", "match"),
    [
        ("car_t_failure", date(2026, 10, 1), "unknown event 'car_t_failure'"),
        ("new_malignancy", date(2026, 11, 26), "event date 2026-11-26 is in the future"),
        ("new_malignancy", date(2024, 1, 30), "before the infusion on 2024-01-31"),
        ("serious_adverse_event", date(2026, 10, 1), "record the case instead"),
    ],
)
def test_an_impossible_event_is_refused(
    engine: Engine,
    registry: rules.ProtocolRegistry,
    now: datetime,
    patient: int,
    kind: str,
    on: date,
    match: str,
) -> None:
    before = _everything(engine)
    with write_session(engine) as session:
        with pytest.raises(InvalidInput, match=match):
            record_event(
                session,
                study_id="ROM-101",
                kind=kind,
                on=on,
                note=None,
                actor=ACTOR,
                registry=registry,
                now=now,
            )
    assert _everything(engine) == before


# -- status --------------------------------------------------------------------------------


def test_death_cancels_the_pending_future_and_keeps_history(
    engine: Engine, registry: rules.ProtocolRegistry, now: datetime, patient: int
) -> None:
    with write_session(engine) as session:
        record(session, registry, now, "ROM-101:1:rcl_test:1", result="negative")
        record(session, registry, now, "ROM-101:1:ltfu_exam:1", outcome="missed")
    history = recorded_snapshot(engine)
    with read_session(engine) as session:
        before = {r.id: r for r in rows_of(session, "ROM-101")}

    with write_session(engine) as session:
        change = _status(session, registry, now, "deceased")
    assert change.cancelled
    # The protocol asks for an autopsy with vector testing a week after a death, the
    # registry's death form within a week and the archived samples tested within 30 days.
    assert sorted((a.assessment, a.due) for a in change.added) == [
        ("archived_samples_test_after_death", DEATH + timedelta(days=30)),
        ("autopsy_vector_request", DEATH + timedelta(days=7)),
        ("cibmtr_form_2900", DEATH + timedelta(days=7)),
    ]

    with read_session(engine) as session:
        stored = get_patient(session, "ROM-101")
        after = rows_of(session, "ROM-101")
        event = session.execute(select(PatientEvent)).scalar_one()
    assert (stored.status, stored.status_on, stored.status_reason) == (
        "deceased",
        DEATH,
        "reported by the family",
    )
    assert (event.kind, event.occurred_on) == ("death", DEATH)
    assert recorded_snapshot(engine) == history
    after = [r for r in after if r.id in before]  # the autopsy request is checked above
    cancelled = [r for r in after if before[r.id].status == "pending" and r.due_on > DEATH]
    assert cancelled
    assert {(r.status, r.status_reason) for r in cancelled} == {
        ("cancelled", "deceased on 2026-11-20: reported by the family")
    }
    # Earlier pending work is left as it was (not rewritten as if it were history).
    earlier = [r for r in after if before[r.id].status == "pending" and r.due_on <= DEATH]
    assert earlier
    assert {r.status for r in earlier} == {"pending"}
    assert len(after) == len(before)


@pytest.mark.parametrize("status", ["deceased", "withdrawn"])
def test_after_the_end_of_follow_up_further_changes_are_conflicts(
    engine: Engine, registry: rules.ProtocolRegistry, now: datetime, patient: int, status: str
) -> None:
    with write_session(engine) as session:
        _status(session, registry, now, status)
    before = _everything(engine)

    attempts = [
        lambda s: _status(s, registry, now, "active", on=date(2026, 11, 24)),
        lambda s: _status(s, registry, now, "lost_to_follow_up", on=date(2026, 11, 24)),
        lambda s: _status(s, registry, now, "transferred", to_site="Erlangen"),
        lambda s: add_infusion(
            s, study_id="ROM-101", on=date(2026, 11, 24), actor=ACTOR, registry=registry, now=now
        ),
        lambda s: record_event(
            s,
            study_id="ROM-101",
            kind="new_malignancy",
            on=date(2026, 11, 24),
            note=None,
            actor=ACTOR,
            registry=registry,
            now=now,
        ),
    ]
    for attempt in attempts:
        with write_session(engine) as session:
            with pytest.raises(Conflict, match=f"ROM-101 is {status}"):
                attempt(session)
    assert _everything(engine) == before


def test_withdrawal_ends_the_calendar_like_death(
    engine: Engine, registry: rules.ProtocolRegistry, now: datetime, patient: int
) -> None:
    with write_session(engine) as session:
        _status(session, registry, now, "withdrawn", reason="consent withdrawn")
    with read_session(engine) as session:
        rows = rows_of(session, "ROM-101")
    assert {r.status for r in rows if r.due_on > DEATH} == {"cancelled"}
    assert any(r.status == "pending" for r in rows if r.due_on <= DEATH)


def test_a_transfer_moves_pending_work_to_the_new_site(
    engine: Engine, registry: rules.ProtocolRegistry, now: datetime, patient: int
) -> None:
    with write_session(engine) as session:
        record(session, registry, now, "ROM-101:1:rcl_test:1", result="negative")
    with write_session(engine) as session:
        change = _status(
            session, registry, now, "transferred", reason="family moved", to_site="Erlangen"
        )
    assert change.is_empty()

    with read_session(engine) as session:
        stored = get_patient(session, "ROM-101")
        rows = rows_of(session, "ROM-101")
        rome = due_list(session, site_id="Rome", on=now.date(), registry=registry)
        erlangen = due_list(session, site_id="Erlangen", on=now.date(), registry=registry)
        audit_row = session.execute(
            select(AuditEntry).where(AuditEntry.action == "change_status")
        ).scalar_one()
    assert (stored.site_id, stored.status) == ("Erlangen", "active")
    assert {r.site_id for r in rows if r.status == "pending"} == {"Erlangen"}
    assert {r.site_id for r in rows if r.status != "pending"} == {"Rome"}  # history stays
    assert rome == []
    assert erlangen
    assert {item.study_id for item in erlangen} == {"ROM-101"}
    assert json.loads(audit_row.old_values or "{}")["site"] == "Rome"
    assert json.loads(audit_row.new_values or "{}")["site"] == "Erlangen"


@pytest.mark.parametrize(
    ("to_site", "error", "match"),
    [
        (None, InvalidInput, "a transfer needs the site"),
        ("Rome", InvalidInput, "already followed at Rome"),
        ("Milan", NotFound, "unknown site 'Milan'"),
    ],
)
def test_an_impossible_transfer_is_refused(
    engine: Engine,
    registry: rules.ProtocolRegistry,
    now: datetime,
    patient: int,
    to_site: str | None,
    error: type[SurveillanceError],
    match: str,
) -> None:
    before = _everything(engine)
    with write_session(engine) as session:
        with pytest.raises(error, match=match):
            _status(session, registry, now, "transferred", to_site=to_site)
    assert _everything(engine) == before


@pytest.mark.parametrize(
    ("status", "reason", "on", "match"),
    [
        ("deceased", "", DEATH, "a status change needs a reason"),
        ("deceased", "   ", DEATH, "a status change needs a reason"),
        ("dead", "x", DEATH, "unknown status 'dead'"),
        ("deceased", "x", date(2026, 11, 26), "status date 2026-11-26 is in the future"),
    ],
)
def test_an_impossible_status_change_is_refused(
    engine: Engine,
    registry: rules.ProtocolRegistry,
    now: datetime,
    patient: int,
    status: str,
    reason: str,
    on: date,
    match: str,
) -> None:
    before = _everything(engine)
    with write_session(engine) as session:
        with pytest.raises(InvalidInput, match=match):
            _status(session, registry, now, status, on=on, reason=reason)
    assert _everything(engine) == before


def test_lost_to_follow_up_keeps_the_calendar_and_can_become_active_again(
    engine: Engine, registry: rules.ProtocolRegistry, now: datetime, patient: int
) -> None:
    before = table_snapshot(engine, Assessment)
    with write_session(engine) as session:
        change = _status(session, registry, now, "lost_to_follow_up", reason="no answer")
    assert change.is_empty()
    assert table_snapshot(engine, Assessment) == before
    with write_session(engine) as session:
        _status(session, registry, now, "active", on=date(2026, 11, 24), reason="called back")
    with read_session(engine) as session:
        assert get_patient(session, "ROM-101").status == "active"
