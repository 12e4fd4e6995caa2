"""Every shipped branch again, through the application: a patient enrolled by the
enrolment service, the branch's satisfying results typed into ``record_outcome``, and the
stored calendar (on SQLite and PostgreSQL) gains what the branch starts and loses what it
stops, exactly as the rules engine plans it (``support.branches`` builds the cases)."""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy import Engine
from support.branches import BranchCase, Scenario, Typed, branch_cases, branch_count, scenario
from support.factories import ACTOR, add_sites, enroll_committed, rows_of

import rules
from surveillance.adverse_events.results import record_outcome
from surveillance.kit.db import read_session, write_session
from surveillance.records.patients import AssessmentStatus, assessment_key

REGISTRY = rules.ProtocolRegistry.from_directory()
# Enrolment takes a protocol's newest version: its branches are the ones driven here (every
# version's are driven through the engine in tests/rules/test_every_branch.py).
CASES = [c for c in branch_cases(REGISTRY) if c.version == REGISTRY.get(c.protocol).version]
STUDY = "ROM-201"

Row = tuple[str, int, str]  # (assessment, occurrence, due) of a stored or planned row


def test_every_shipped_branch_of_a_newest_version_is_a_case() -> None:
    newest = rules.ProtocolRegistry([REGISTRY.get(p) for p in REGISTRY.ids()])
    assert len(CASES) == branch_count(newest)


def _record(engine: Engine, registry: rules.ProtocolRegistry, now: datetime, t: Typed) -> None:
    with write_session(engine) as session:
        record_outcome(
            session,
            key=assessment_key(STUDY, 1, t.assessment, t.occurrence),
            outcome="completed",
            on=t.on,
            result=t.text,  # as typed: the application reads it into its type
            actor=ACTOR,
            registry=registry,
            now=now,
        )


def _stored(engine: Engine, rule: str, status: str | None = None) -> set[Row]:
    with read_session(engine) as session:
        return {
            (r.assessment, r.occurrence, r.due_on.isoformat())
            for r in rows_of(session, STUDY, rule)
            if (r.status == status if status else r.status != AssessmentStatus.cancelled.value)
        }


def _planned(plan: list[rules.PlannedAssessment], rule: str) -> set[Row]:
    return {(p.assessment, p.occurrence, p.due.isoformat()) for p in plan if p.assessment == rule}


@pytest.mark.parametrize("chosen", CASES, ids=[c.id for c in CASES])
def test_recording_the_satisfying_results_changes_the_stored_calendar(
    chosen: BranchCase,
    engine: Engine,
    registry: rules.ProtocolRegistry,
    now: datetime,
) -> None:
    case = _enrolled(chosen, engine, registry, now)
    for typed in case.before:
        _record(engine, registry, now, typed)
    pending_before = {t: _stored(engine, t, "pending") for t in case.branch.start}

    for typed in case.satisfying:
        _record(engine, registry, now, typed)

    expected = case.plan(REGISTRY.get(chosen.protocol), case.satisfying)
    for target in case.branch.start:
        gained = _stored(engine, target, "pending") - pending_before[target]
        assert gained, f"{chosen.id}: no pending {target} after the results"
        assert _stored(engine, target) == _planned(expected, target), target
    for target in case.branch.stop:
        later = {row for row in _stored(engine, target) if row[2] > case.fired_on.isoformat()}
        assert later == set(), f"{chosen.id}: {target} still stored after {case.fired_on}"
        assert _stored(engine, target) == _planned(expected, target), target
    with read_session(engine) as session:  # stored as read, not as typed
        for typed in case.satisfying:
            [row] = [
                r
                for r in rows_of(session, STUDY, typed.assessment)
                if r.occurrence == typed.occurrence
            ]
            assert (row.status, row.result) == ("completed", typed.read)


@pytest.mark.parametrize("chosen", CASES, ids=[c.id for c in CASES])
def test_recording_the_nearest_failing_results_changes_none_of_it(
    chosen: BranchCase,
    engine: Engine,
    registry: rules.ProtocolRegistry,
    now: datetime,
) -> None:
    case = _enrolled(chosen, engine, registry, now)
    for typed in case.before:
        _record(engine, registry, now, typed)
    targets = (*case.branch.start, *case.branch.stop)
    stored_before = {t: _stored(engine, t) for t in targets}

    for typed in case.failing:
        _record(engine, registry, now, typed)

    for target in targets:
        assert _stored(engine, target) == stored_before[target], target


def _enrolled(
    chosen: BranchCase, engine: Engine, registry: rules.ProtocolRegistry, now: datetime
) -> Scenario:
    """The case's patient, enrolled through the application (one enrolment per test)."""
    case = scenario(REGISTRY, chosen)
    add_sites(engine)
    enroll_committed(
        engine,
        registry,
        now,
        study_id=STUDY,
        protocol_id=chosen.protocol,
        diagnosis=case.facts.diagnosis,
        birth_date=case.facts.birth_date,
        sex=case.facts.sex,
        infusion_date=case.infusions[0],
    )
    assert not case.events, "enrolment records no events: extend this test for such a case"
    return case
