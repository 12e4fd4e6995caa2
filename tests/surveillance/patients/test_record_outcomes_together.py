"""Several outcomes in one transaction (a visit, a bulk "missed"): all or nothing, on
SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlmodel import col
from support.factories import ACTOR, add_sites, enroll_committed, table_snapshot

import rules
from surveillance.adverse_events.results import OutcomesRefused, OutcomeToRecord, record_outcomes
from surveillance.errors import PreconditionFailed
from surveillance.kit.audit import AuditEntry
from surveillance.kit.db import read_session, write_session
from surveillance.records.patients import Assessment, OutcomeRecord
from surveillance.records.queries import find_assessment

# ROM-101, infused 2024-01-31: the month-3 visit is due 2024-04-30.
RCL_1 = "ROM-101:1:rcl_test:1"
CBC = "ROM-101:1:cbc_late:1"


@pytest.fixture
def patient(engine: Engine, registry: rules.ProtocolRegistry, now: datetime) -> int:
    add_sites(engine)
    return enroll_committed(engine, registry, now)


def _state(engine: Engine) -> dict[str, Any]:
    return {
        "assessments": table_snapshot(engine, Assessment),
        "outcomes": table_snapshot(engine, OutcomeRecord),
        "audit": table_snapshot(engine, AuditEntry),
    }


def _version(engine: Engine, key: str) -> int:
    with read_session(engine) as session:
        return find_assessment(session, key)[1].version


def _keys_due(engine: Engine, day: date) -> list[str]:
    with read_session(engine) as session:
        patient, _ = find_assessment(session, RCL_1)
        rows = session.execute(select(Assessment).where(col(Assessment.due_on) == day)).scalars()
        return [f"{patient.study_id}:1:{r.assessment}:{r.occurrence}" for r in rows]


def _record(engine: Engine, registry: rules.ProtocolRegistry, now: datetime, entries: Any) -> Any:
    with write_session(engine) as session:
        return record_outcomes(session, entries, actor=ACTOR, registry=registry, now=now)


def test_a_visit_is_recorded_together(
    engine: Engine, registry: rules.ProtocolRegistry, now: datetime, patient: int
) -> None:
    keys = _keys_due(engine, date(2024, 4, 30))
    assert RCL_1 in keys
    assert len(keys) > 2
    entries = [
        OutcomeToRecord(
            key,
            "completed",
            date(2024, 4, 30),
            result="negative" if key == RCL_1 else None,
            expected_version=_version(engine, key),
        )
        for key in keys
    ]
    done = _record(engine, registry, now, entries)
    assert len(done) == len(keys)
    with read_session(engine) as session:
        assert {find_assessment(session, k)[1].status for k in keys} == {"completed"}


def test_one_refusal_records_nothing(
    engine: Engine, registry: rules.ProtocolRegistry, now: datetime, patient: int
) -> None:
    keys = _keys_due(engine, date(2024, 4, 30))
    other = next(k for k in keys if k != RCL_1)
    entries = [
        OutcomeToRecord(RCL_1, "completed", date(2024, 4, 30), result="positive",
                        expected_version=_version(engine, RCL_1)),
        OutcomeToRecord(other, "not_done", date(2024, 4, 30),
                        expected_version=_version(engine, other)),  # no reason
    ]  # fmt: skip
    before = _state(engine)
    with pytest.raises(OutcomesRefused) as refused:
        _record(engine, registry, now, entries)
    assert set(refused.value.errors) == {other}
    assert refused.value.errors[other].field == "reason"  # type: ignore[attr-defined]
    assert _state(engine) == before  # the positive RCL (and its safety case) rolled back


def test_a_stale_version_records_nothing(
    engine: Engine, registry: rules.ProtocolRegistry, now: datetime, patient: int
) -> None:
    stale = _version(engine, RCL_1) - 1
    entries = [
        OutcomeToRecord(RCL_1, "missed", date(2024, 6, 1), reason="no show",
                        expected_version=stale),
    ]  # fmt: skip
    before = _state(engine)
    with pytest.raises(OutcomesRefused) as refused:
        _record(engine, registry, now, entries)
    assert refused.value.stale
    assert isinstance(refused.value.errors[RCL_1], PreconditionFailed)
    assert _state(engine) == before
