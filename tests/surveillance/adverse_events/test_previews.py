"""A preview says what saving a result will start, stop, move and open, by running the
real save in a SAVEPOINT and rolling it back: nothing it wrote remains."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlmodel import SQLModel
from support.factories import ACTOR, add_sites, enroll_committed, record, table_snapshot

import rules
from surveillance.adverse_events.effects import Effects
from surveillance.adverse_events.previews import (
    effects_of,
    preview_correction,
    preview_outcome,
    preview_outcomes,
)
from surveillance.adverse_events.results import OutcomesRefused, OutcomeToRecord
from surveillance.errors import InvalidInput, PreconditionFailed
from surveillance.kit.audit import AuditEntry
from surveillance.kit.db import write_session
from surveillance.records.adverse_events import AdverseEventCase, AdverseEventVersion
from surveillance.records.outbox import Alert
from surveillance.records.patients import Assessment, OutcomeRecord, PatientEvent

KEY = "ROM-101:1:rcl_test:1"  # due 2024-04-30, window 2024-04-16 to 2024-05-14
DUE = date(2024, 4, 30)
TABLES: tuple[type[SQLModel], ...] = (
    Assessment,
    OutcomeRecord,
    PatientEvent,
    AuditEntry,
    Alert,
    AdverseEventCase,
    AdverseEventVersion,
)


@pytest.fixture
def patient(engine: Engine, registry: rules.ProtocolRegistry, now: datetime) -> int:
    add_sites(engine)
    return enroll_committed(engine, registry, now)


def _stored(engine: Engine) -> dict[str, list[dict[str, Any]]]:
    """Every row a save could write or change, in primary-key order."""
    with engine.connect() as connection:
        return {
            table.name: [
                dict(row)
                for row in connection.execute(
                    select(table).order_by(*table.primary_key.columns)
                ).mappings()
            ]
            for table in (model.__table__ for model in TABLES)  # type: ignore[attr-defined]
        }


def _preview(
    engine: Engine, registry: rules.ProtocolRegistry, now: datetime, **overrides: Any
) -> Effects:
    arguments: dict[str, Any] = {"key": KEY, "outcome": "completed", "on": DUE, **overrides}
    with write_session(engine) as session:
        return preview_outcome(session, actor=ACTOR, registry=registry, now=now, **arguments)


def _rules(items: Any) -> list[str]:
    return [item.assessment for item in items]


def test_a_positive_rcl_preview_lists_what_it_starts_and_the_case_and_writes_nothing(
    engine: Engine, registry: rules.ProtocolRegistry, now: datetime, patient: int
) -> None:
    before = _stored(engine)
    effects = _preview(engine, registry, now, result=" Positive ")
    assert _stored(engine) == before
    assert (effects.key, effects.outcome, effects.result) == (KEY, "completed", "positive")
    started = _rules(effects.starts)
    assert {"rcl_confirm", "rcl_intensified", "rcl_positive_report"} <= set(started)
    assert started.count("rcl_intensified") == 3
    confirm = next(p for p in effects.starts if p.assessment == "rcl_confirm")
    assert confirm.key.startswith("ROM-101:1:rcl_confirm:")
    assert confirm.due == date(2024, 5, 14)  # 14 days after the positive sample
    assert confirm.window_start <= confirm.due <= confirm.window_end
    case = effects.safety_case
    assert case is not None
    assert (case.term, case.serious) == ("Replication-competent lentivirus (RCL) detected", True)
    reports = {d.key.split(":")[2] for d in case.deadlines}
    assert "rcl_positive_report" in reports
    assert "sae_sponsor_notification" in reports  # the case's own reporting clock
    assert not effects.protocol_deviation
    assert effects.summary == (
        "positive: starts RCL confirmation by culture assay, "
        "3 × RCL test, intensified monthly after a positive result; "
        "opens a serious safety case (Replication-competent lentivirus (RCL) detected) "
        "with 3 reports due 2024-04-30 to 2024-05-15"
    )


def test_a_negative_rcl_preview_changes_nothing_else(
    engine: Engine, registry: rules.ProtocolRegistry, now: datetime, patient: int
) -> None:
    before = _stored(engine)
    effects = _preview(engine, registry, now, result="negative")
    assert _stored(engine) == before
    assert (effects.starts, effects.stops, effects.moves, effects.safety_case) == ((), (), (), None)
    assert effects.summary == "negative: nothing else changes in the calendar"


def test_a_date_outside_the_window_is_previewed_as_a_protocol_deviation(
    engine: Engine, registry: rules.ProtocolRegistry, now: datetime, patient: int
) -> None:
    effects = _preview(engine, registry, now, on=date(2024, 6, 3), result="negative")
    assert effects.protocol_deviation
    assert effects.summary.endswith(
        "; 2024-06-03 is outside the window 2024-04-16 to 2024-05-14 (protocol deviation)"
    )


def test_a_not_done_preview(
    engine: Engine, registry: rules.ProtocolRegistry, now: datetime, patient: int
) -> None:
    before = _stored(engine)
    effects = _preview(engine, registry, now, outcome="not_done", reason="sample lost")
    assert _stored(engine) == before
    assert (effects.outcome, effects.result, effects.safety_case) == ("not_done", None, None)
    assert effects.summary.startswith("not done: ")


def test_a_refused_result_raises_as_the_save_would_and_writes_nothing(
    engine: Engine, registry: rules.ProtocolRegistry, now: datetime, patient: int
) -> None:
    before = _stored(engine)
    with pytest.raises(InvalidInput, match="is not one of the coded values: negative"):
        _preview(engine, registry, now, result="Positive by qPCR")
    with pytest.raises(PreconditionFailed):
        _preview(engine, registry, now, result="positive", expected_version=7)
    assert _stored(engine) == before


def test_a_correction_positive_to_negative_lists_what_it_cancels(
    engine: Engine, registry: rules.ProtocolRegistry, now: datetime, patient: int
) -> None:
    with write_session(engine) as session:
        record(session, registry, now, KEY, result="positive")
    before = _stored(engine)
    with write_session(engine) as session:
        effects = preview_correction(
            session,
            key=KEY,
            result="negative",
            reason="transcription error",
            actor=ACTOR,
            registry=registry,
            now=now,
            expected_version=2,
        )
    assert _stored(engine) == before
    assert effects.corrected
    assert effects.starts == ()
    assert {"rcl_confirm", "rcl_intensified", "rcl_positive_report"} <= set(_rules(effects.stops))
    assert effects.safety_case is None  # the case already open stays, and opens no other
    # The case's own reporting clocks stay with the case, which only a person nullifies.
    assert effects.summary == (
        "corrected to negative: stops Report the positive RCL test to the sponsor and FDA "
        "immediately, RCL confirmation by culture assay, "
        "3 × RCL test, intensified monthly after a positive result"
    )


def test_the_preview_describes_what_the_real_save_then_does(
    engine: Engine, registry: rules.ProtocolRegistry, now: datetime, patient: int
) -> None:
    previewed = _preview(engine, registry, now, result="positive")
    with write_session(engine) as session:
        saved = effects_of(
            session,
            record(session, registry, now, KEY, result="positive"),
            registry=registry,
            now=now,
        )
    assert saved == previewed


def test_a_preview_leaves_the_callers_own_transaction_as_it_was(
    engine: Engine, registry: rules.ProtocolRegistry, now: datetime, patient: int
) -> None:
    """Previewing inside a transaction that has written something keeps that write."""
    with write_session(engine) as session:
        record(session, registry, now, "ROM-101:1:rcl_test:2", result="negative")
        preview_outcome(
            session,
            key=KEY,
            outcome="completed",
            on=DUE,
            result="positive",
            actor=ACTOR,
            registry=registry,
            now=now,
        )
    after = {
        row["assessment"]: row
        for row in table_snapshot(engine, Assessment)
        if row["status"] == "completed"
    }
    assert list(after) == ["rcl_test"]
    assert after["rcl_test"]["occurrence"] == 2


def test_a_visit_preview_gives_each_row_its_effects_and_writes_nothing(
    engine: Engine, registry: rules.ProtocolRegistry, now: datetime, patient: int
) -> None:
    entries = [
        OutcomeToRecord(KEY, "completed", DUE, result="positive"),
        OutcomeToRecord("ROM-101:1:rcl_test:2", "missed", DUE, reason="travelling"),
    ]
    before = _stored(engine)
    with write_session(engine) as session:
        effects = preview_outcomes(session, entries, actor=ACTOR, registry=registry, now=now)
    assert _stored(engine) == before
    assert [e.key for e in effects] == [KEY, "ROM-101:1:rcl_test:2"]
    assert "rcl_confirm" in _rules(effects[0].starts)
    assert effects[0].safety_case is not None
    assert effects[1].outcome == "missed"


def test_a_visit_preview_with_a_refused_row_raises_as_saving_would(
    engine: Engine, registry: rules.ProtocolRegistry, now: datetime, patient: int
) -> None:
    entries = [
        OutcomeToRecord(KEY, "completed", DUE, result="negative"),
        OutcomeToRecord("ROM-101:1:rcl_test:2", "completed", DUE, result="pos"),
    ]
    before = _stored(engine)
    with pytest.raises(OutcomesRefused) as refused, write_session(engine) as session:
        preview_outcomes(session, entries, actor=ACTOR, registry=registry, now=now)
    assert list(refused.value.errors) == ["ROM-101:1:rcl_test:2"]
    assert _stored(engine) == before
