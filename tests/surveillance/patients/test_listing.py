"""``Assessment.listed``: the due list's index leaves out what nobody is owed any more.

A death or a withdrawal unlists the patient's pending rows that are no reporting duty;
nothing else unlists a row. The property: over random histories (enrolments, outcomes
recorded, corrected and undone, every status change, transfers, time passing) the due list
is, row for row, the list computed from every stored row with ``listed`` ignored.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
from hypothesis import event, given
from hypothesis import strategies as st
from sqlalchemy import Engine, select, text
from sqlalchemy import event as sql_event
from sqlmodel import Session, col
from support.factories import ACTOR, add_sites, enroll_committed, rows_of
from support.legacy import before_listed
from support.scan_histories import (
    SITES,
    Step,
    Store,
    World,
    histories,
    histories_settings,
    pg_store,
    sqlite_store,
)

import rules
from surveillance.cli.context import upgrade_schema
from surveillance.config import Settings
from surveillance.kit import migrate
from surveillance.kit.db import make_engine, read_session, write_session
from surveillance.main import build_runtime
from surveillance.patients.changes import change_status
from surveillance.patients.due_list import DueState, derive_state, due_list
from surveillance.patients.listing import LISTED_REVISION
from surveillance.records.patients import (
    ENDED_STATUSES,
    FOLLOWED_STATUSES,
    Assessment,
    AssessmentStatus,
    Patient,
    assessment_key,
)

__all__ = ["pg_store", "sqlite_store"]  # fixtures

PENDING = AssessmentStatus.pending.value
ON = date(2026, 11, 25)
HORIZON = 30


def _change(
    engine: Engine, registry: rules.ProtocolRegistry, now: datetime, study_id: str, status: str
) -> None:
    with write_session(engine) as session:
        change_status(
            session, study_id=study_id, status=status, on=date(2026, 11, 20),
            reason="as the site wrote", actor=ACTOR, registry=registry, now=now,
            to_site="Erlangen" if status == "transferred" else None,
        )  # fmt: skip


def _flags(engine: Engine, study_id: str) -> list[tuple[str, str, bool]]:
    with read_session(engine) as session:
        return [(r.status, r.category, r.listed) for r in rows_of(session, study_id)]


@pytest.mark.parametrize("ending", ["deceased", "withdrawn"])
def test_an_ended_follow_up_unlists_its_pending_rows_but_no_reporting_duty(
    engine: Engine, registry: rules.ProtocolRegistry, now: datetime, ending: str
) -> None:
    add_sites(engine)
    enroll_committed(engine, registry, now, study_id="ROM-101")
    before = _flags(engine, "ROM-101")
    assert all(listed for _, _, listed in before)

    _change(engine, registry, now, "ROM-101", ending)
    reporting = registry.reporting_categories()
    after = _flags(engine, "ROM-101")
    unlisted = [(s, c) for s, c, listed in after if not listed]
    assert unlisted, "the rows due before the end are left pending, and unlisted"
    assert all(s == PENDING and c not in reporting for s, c in unlisted)
    # Everything else is as it was: recorded and cancelled rows, and the reporting duties
    # (a death starts some: owed whatever the status).
    assert all(listed for s, c, listed in after if s != PENDING or c in reporting)
    if ending == "deceased":
        assert any(s == PENDING and c in reporting for s, c, _ in after)


@pytest.mark.parametrize("status", ["lost_to_follow_up", "completed", "transferred", "active"])
def test_no_other_status_unlists_anything(
    engine: Engine, registry: rules.ProtocolRegistry, now: datetime, status: str
) -> None:
    add_sites(engine)
    enroll_committed(engine, registry, now, study_id="ROM-101")
    _change(engine, registry, now, "ROM-101", status)
    assert all(listed for _, _, listed in _flags(engine, "ROM-101"))


def test_the_overdue_rows_are_read_from_the_listed_index(
    engine: Engine, registry: rules.ProtocolRegistry, now: datetime
) -> None:
    """The planner's choice, on both stores: the index that leaves the unlisted rows out
    (the one over every pending row is as long as a site's whole pending calendar)."""
    add_sites(engine)
    for number in range(1, 4):
        enroll_committed(engine, registry, now, study_id=f"ROM-10{number}")
    _change(engine, registry, now, "ROM-101", "deceased")
    captured: list[tuple[str, object]] = []

    with read_session(engine) as session:
        connection = session.connection()

        def seen(*args: object) -> None:
            captured.append((str(args[2]), args[3]))

        sql_event.listen(connection, "before_cursor_execute", seen)
        due_list(session, site_id="Rome", on=ON, registry=registry, states=(DueState.overdue,))
        sql_event.remove(connection, "before_cursor_execute", seen)
        statement, parameters = captured[-1]
        if engine.dialect.name == "sqlite":
            plan = connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters)
            lines = [str(row[-1]) for row in plan]
        else:  # a few rows: the planner would read the heap; ask which index it prefers
            connection.exec_driver_sql("SET LOCAL enable_seqscan = off")
            connection.exec_driver_sql("SET LOCAL enable_bitmapscan = off")
            plan = connection.exec_driver_sql(f"EXPLAIN {statement}", parameters)
            lines = [str(row[0]) for row in plan]
    assert any("ix_assessments_listed_site_window_end" in line for line in lines), lines


def test_an_upgrade_past_the_revision_unlists_the_rows_of_ended_follow_ups(
    database_url: str, registry: rules.ProtocolRegistry, now: datetime
) -> None:
    """A database from before ``listed`` (every row listed, as migration 0014 adds the
    column): ``db upgrade`` unlists the rows of the patients who had already died."""
    engine = make_engine(database_url)
    add_sites(engine)
    enroll_committed(engine, registry, now, study_id="ROM-101")
    enroll_committed(engine, registry, now, study_id="ROM-102")
    _change(engine, registry, now, "ROM-101", "deceased")
    expected = {s: _flags(engine, s) for s in ("ROM-101", "ROM-102")}
    assert not all(listed for _, _, listed in expected["ROM-101"])
    before_listed(engine)

    settings = Settings(_env_file=None, database_url=database_url)  # type: ignore[call-arg]
    runtime = build_runtime(settings, registry=registry)
    try:
        assert migrate.upgrade_applies(migrate.current_revision(runtime.engine), LISTED_REVISION)
        assert upgrade_schema(runtime) is None  # no typed-results report: 0007 not passed
        assert migrate.current_revision(runtime.engine) == migrate.head_revision()
        assert {s: _flags(runtime.engine, s) for s in expected} == expected
    finally:
        runtime.engine.dispose()


# -- the property ------------------------------------------------------------------------


def _expected(session: Session, site: str, on: date, reporting: frozenset[str]) -> list[str]:
    """The list from every stored row, ``listed`` ignored: pending rows of followed
    patients, and reporting duties whatever the status."""
    rows = session.execute(
        select(Assessment, Patient.study_id, Patient.status)
        .join(Patient, col(Patient.id) == col(Assessment.patient_id))
        .where(col(Assessment.site_id) == site, col(Assessment.status) == PENDING)
    ).all()
    shown: list[tuple[int, date, int, str]] = []
    for row, study_id, patient_status in rows:
        if patient_status not in FOLLOWED_STATUSES and row.category not in reporting:
            continue
        state = derive_state(on, row.window_start, row.window_end)
        if state is DueState.upcoming and row.window_start > on + timedelta(days=HORIZON):
            continue
        sort_on = row.window_start if state is DueState.upcoming else row.window_end
        key = assessment_key(study_id, row.infusion_number, row.assessment, row.occurrence)
        shown.append((list(DueState).index(state), sort_on, row.id, key))
    return [key for *_, key in sorted(shown)]


def _check(world: World, registry: rules.ProtocolRegistry, step: int) -> int:
    """The list of each site against the one computed by hand; the unlisted rows."""
    reporting = registry.reporting_categories()
    on = world._today()
    with read_session(world.engine) as session:
        for site in SITES:
            items = due_list(
                session, site_id=site, on=on, registry=registry, limit=100_000,
                horizon_days=HORIZON,
            )  # fmt: skip
            listed = [item.key for item in items]
            assert listed == _expected(session, site, on, reporting), f"step {step}, {site}"
        unlisted = session.execute(
            select(Assessment.category, Patient.status)
            .join(Patient, col(Patient.id) == col(Assessment.patient_id))
            .where(~col(Assessment.listed))
        ).all()
    for category, patient_status in unlisted:
        assert patient_status in ENDED_STATUSES, f"step {step}"
        assert category not in reporting, f"step {step}"
    return len(unlisted)


# The histories of the alert-scan tests, with the first patient (enrolled with an overdue
# past) dying at some point of each: later steps then correct, undo and re-plan around it.
with_a_death = st.tuples(histories, st.integers(2, 32)).map(
    lambda drawn: [*drawn[0][: drawn[1]], ("status", 0, "deceased"), *drawn[0][drawn[1] :]]
)


def _play(store: Store, registry: rules.ProtocolRegistry, history: list[Step]) -> None:
    world = World(make_engine(store.new_url()), full=False)
    try:
        unlisted = 0
        for number, step in enumerate(history):
            world.play(step, registry)
            if step[0] != "advance":
                unlisted = _check(world, registry, number)
        event(f"rows unlisted at the end: {'some' if unlisted else 'none'}")
    finally:
        world.engine.dispose()


@histories_settings(30)
@given(history=with_a_death)
def test_the_list_is_the_list_of_every_stored_row(
    sqlite_store: Store, registry: rules.ProtocolRegistry, history: list[Step]
) -> None:
    _play(sqlite_store, registry, history)


@pytest.mark.postgres
@histories_settings(8)
@given(history=with_a_death)
def test_the_list_is_the_list_of_every_stored_row_on_postgresql(
    pg_store: Store, registry: rules.ProtocolRegistry, history: list[Step]
) -> None:
    _play(pg_store, registry, history)


def test_the_property_reaches_unlisted_rows(
    sqlite_store: Store, registry: rules.ProtocolRegistry
) -> None:
    """A fixed history the property must cover: a death with overdue work left, then a
    correction and an undo on that patient, and time passing."""
    history: list[Step] = [
        ("enrol", 800, "Rome", "cd19-car-t-pediatric-autoimmune"),
        ("enrol", 400, "Rome", "aav-liver-5-year"),
        ("record", 0, 3, "completed"),
        ("status", 0, "deceased"),
        ("status", 1, "withdrawn"),
        ("correct", 0, 0, "missed"),
        ("undo", 0),
        ("advance", 8 * 24 * 60),
        ("scan", False),
    ]
    world = World(make_engine(sqlite_store.new_url()), full=False)
    try:
        for number, step in enumerate(history):
            world.play(step, registry)
            _check(world, registry, number)
        with read_session(world.engine) as session:
            unlisted = text("SELECT count(*) FROM assessments WHERE NOT listed")
            assert session.execute(unlisted).scalar_one() > 0
    finally:
        world.engine.dispose()
