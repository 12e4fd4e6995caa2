"""What saving a result will start or stop, shown before it is saved (and after).

A preview runs the real entry point (``record_outcome(s)`` / ``correct_outcome``) inside a
SAVEPOINT and rolls it back: what it shows is exactly what saving does, refusals
included (a result the assessment cannot produce raises the same ``InvalidInput``), and
nothing it wrote remains. ``effects_of`` describes a real save the same way.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import date, datetime

from sqlmodel import Session

import rules
from surveillance.adverse_events.cases import CaseChange
from surveillance.adverse_events.deadlines import deadlines_of
from surveillance.adverse_events.effects import Deadline, Effects, Moved, OpenedCase, Planned
from surveillance.adverse_events.results import (
    OutcomeToRecord,
    RecordedResult,
    correct_outcome,
    record_outcome,
    record_outcomes,
)
from surveillance.protocols.registry import assessment_name, get_protocol
from surveillance.records.patients import Assessment, Patient, assessment_key
from surveillance.records.sites import today_at


def preview_outcome(
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
) -> Effects:
    """What ``record_outcome`` with these arguments would do; nothing is kept."""
    with _rolled_back(session):
        recorded = record_outcome(
            session,
            key=key,
            outcome=outcome,
            on=on,
            result=result,
            reason=reason,
            note=note,
            actor=actor,
            registry=registry,
            now=now,
            expected_version=expected_version,
        )
        return effects_of(session, recorded, registry=registry, now=now)


def preview_outcomes(
    session: Session,
    entries: list[OutcomeToRecord],
    *,
    actor: str,
    registry: rules.ProtocolRegistry,
    now: datetime,
) -> list[Effects]:
    """What ``record_outcomes`` (a whole visit) would do, one ``Effects`` per entry in
    order; nothing is kept. A refused row raises ``OutcomesRefused`` as saving does."""
    with _rolled_back(session):
        done = record_outcomes(session, entries, actor=actor, registry=registry, now=now)
        return [effects_of(session, d, registry=registry, now=now) for d in done]


def preview_correction(
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
) -> Effects:
    """What ``correct_outcome`` with these arguments would do; nothing is kept."""
    with _rolled_back(session):
        corrected = correct_outcome(
            session,
            key=key,
            reason=reason,
            actor=actor,
            registry=registry,
            now=now,
            expected_version=expected_version,
            outcome=outcome,
            on=on,
            result=result,
            note=note,
        )
        return effects_of(session, corrected, registry=registry, now=now, corrected=True)


@contextmanager
def _rolled_back(session: Session) -> Iterator[None]:
    """A SAVEPOINT undone whatever happens, leaving the caller's transaction as it was
    (the ORM expires what the savepoint changed and forgets what it added)."""
    savepoint = session.begin_nested()
    try:
        yield
    finally:
        savepoint.rollback()


def effects_of(
    session: Session,
    recorded: RecordedResult,
    *,
    registry: rules.ProtocolRegistry,
    now: datetime,
    corrected: bool = False,
) -> Effects:
    """Describe a save, real or previewed, from what the entry point returned. Call it in
    the same transaction, straight after: it reads the opened case's reporting clocks."""
    row = recorded.assessment
    patient = session.get(Patient, row.patient_id)
    assert patient is not None
    starts, stops, moves = _calendar(patient, recorded, registry)
    today = today_at(session, patient.site_id, now)
    return Effects(
        key=assessment_key(patient.study_id, row.infusion_number, row.assessment, row.occurrence),
        outcome=row.status,
        result=row.result,
        performed_on=row.performed_on,
        corrected=corrected,
        starts=starts,
        stops=stops,
        moves=moves,
        safety_case=_opened(session, recorded.case, registry, today),
        protocol_deviation=row.protocol_deviation,
        window_start=row.window_start,
        window_end=row.window_end,
        result_unit=_unit(registry, row),
    )


def _unit(registry: rules.ProtocolRegistry, row: Assessment) -> str | None:
    spec = get_protocol(registry, row.protocol_id, row.protocol_version).result_type(row.assessment)
    return spec.unit if isinstance(spec, rules.QuantityResult) else None


def _calendar(
    patient: Patient, recorded: RecordedResult, registry: rules.ProtocolRegistry
) -> tuple[tuple[Planned, ...], tuple[Planned, ...], tuple[Moved, ...]]:
    """The result's own re-plan, then the one its safety case made (the case's reporting
    clocks), netted by key: what one started and the other stopped is no change."""
    changes = [recorded.change] + ([recorded.case.calendar] if recorded.case else [])
    starts: dict[str, Planned] = {}
    stops: dict[str, Planned] = {}
    moves: dict[str, Moved] = {}
    study_id = patient.study_id
    for change in changes:
        for p in [*change.added, *(planned for _, planned in change.reinstated)]:
            key = assessment_key(study_id, p.infusion, p.assessment, p.occurrence)
            if stops.pop(key, None) is None:
                starts[key] = Planned(
                    key, p.assessment, p.name, p.due, p.window_start, p.window_end
                )
        for s in change.cancelled:
            key = assessment_key(study_id, *s.identity)
            if starts.pop(key, None) is None:
                name = assessment_name(
                    registry, patient.protocol_id, s.protocol_version, s.assessment
                )
                stops[key] = Planned(
                    key, s.assessment, name, s.due_on, s.window_start, s.window_end
                )
        for s, p in change.moved:
            key = assessment_key(study_id, *s.identity)
            was = moves[key].from_due if key in moves else s.due_on
            moves[key] = Moved(key, s.assessment, p.name, was, p.due)
    return (
        _by_due(starts.values()),
        _by_due(stops.values()),
        tuple(sorted(moves.values(), key=lambda m: (m.to_due, m.key))),
    )


def _by_due(items: Iterable[Planned]) -> tuple[Planned, ...]:
    return tuple(sorted(items, key=lambda p: (p.due, p.assessment, p.key)))


def _opened(
    session: Session, change: CaseChange | None, registry: rules.ProtocolRegistry, today: date
) -> OpenedCase | None:
    """The case the save opened, with its reporting clocks as the case's page reads them."""
    if change is None:
        return None
    rows = deadlines_of(session, change.case, change.version, registry, on=today)
    deadlines = tuple(Deadline(r["key"], r["name"], date.fromisoformat(r["due"])) for r in rows)
    return OpenedCase(change.version.term, change.version.serious, deadlines)
