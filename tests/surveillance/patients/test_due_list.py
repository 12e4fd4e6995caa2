"""The nurse's list: overdue first, then due, then upcoming; states derived from the day."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
from sqlalchemy import Engine, event, insert, text, update
from sqlmodel import Session
from support.factories import ACTOR, add_sites, assessment_row, enroll_committed, record, rows_of

import rules
from surveillance.kit.db import (
    WriteInReadSession,
    make_engine,
    read_session,
    statement_read_session,
    write_session,
)
from surveillance.patients.changes import change_status
from surveillance.patients.due_list import DueItem, DueState, derive_state, due_list
from surveillance.records.patients import Assessment, Site, assessment_key

ON = date(2026, 11, 25)
ORDER = {DueState.overdue: 0, DueState.due: 1, DueState.upcoming: 2}


@pytest.fixture
def cohort(engine: Engine, registry: rules.ProtocolRegistry, now: datetime) -> None:
    """Two patients in Rome infused at different times, one in Erlangen."""
    add_sites(engine)
    enroll_committed(engine, registry, now, study_id="ROM-101")
    enroll_committed(
        engine, registry, now, study_id="ROM-102", infusion_date=date(2026, 8, 20), diagnosis="jdm"
    )
    enroll_committed(engine, registry, now, study_id="ERL-001", site_id="Erlangen")


def _list(
    engine: Engine, registry: rules.ProtocolRegistry, site: str = "Rome", **kwargs: object
) -> list[DueItem]:
    arguments: dict[str, object] = {"on": ON, **kwargs}
    with read_session(engine) as session:
        return due_list(session, site_id=site, registry=registry, **arguments)  # type: ignore[arg-type]


def _expected(
    engine: Engine, study_ids: list[str], on: date, horizon: int = 30
) -> list[tuple[str, DueState]]:
    """The list computed by hand from the stored rows."""
    with read_session(engine) as session:
        rows: list[Assessment] = []
        keys: dict[int | None, str] = {}
        for study_id in study_ids:
            for row in rows_of(session, study_id):
                rows.append(row)
                keys[row.id] = assessment_key(
                    study_id, row.infusion_number, row.assessment, row.occurrence
                )
    pending = [r for r in rows if r.status == "pending"]
    overdue = sorted(
        (r for r in pending if r.window_end < on), key=lambda r: (r.window_end, r.id or 0)
    )
    due = sorted(
        (r for r in pending if r.window_start <= on <= r.window_end),
        key=lambda r: (r.window_end, r.id or 0),
    )
    upcoming = sorted(
        (r for r in pending if on < r.window_start <= on + timedelta(days=horizon)),
        key=lambda r: (r.window_start, r.id or 0),
    )
    return (
        [(keys[r.id], DueState.overdue) for r in overdue]
        + [(keys[r.id], DueState.due) for r in due]
        + [(keys[r.id], DueState.upcoming) for r in upcoming]
    )


def test_overdue_first_longest_overdue_first_then_due_then_upcoming(
    engine: Engine, registry: rules.ProtocolRegistry, cohort: None
) -> None:
    items = _list(engine, registry)
    states = [item.state for item in items]
    assert {DueState.overdue, DueState.due, DueState.upcoming} <= set(states)
    assert [ORDER[s] for s in states] == sorted(ORDER[s] for s in states)

    overdue = [item for item in items if item.state is DueState.overdue]
    assert [item.days_overdue for item in overdue] == sorted(
        (item.days_overdue for item in overdue), reverse=True
    )
    assert all(item.days_overdue == (ON - item.window_end).days > 0 for item in overdue)
    due = [item for item in items if item.state is DueState.due]
    assert all(item.window_start <= ON <= item.window_end for item in due)
    assert [item.window_end for item in due] == sorted(item.window_end for item in due)
    upcoming = [item for item in items if item.state is DueState.upcoming]
    assert all(ON < item.window_start <= ON + timedelta(days=30) for item in upcoming)
    assert [item.window_start for item in upcoming] == sorted(i.window_start for i in upcoming)
    assert all(item.days_overdue == 0 for item in due + upcoming)

    assert [(item.key, item.state) for item in items] == _expected(
        engine, ["ROM-101", "ROM-102"], ON
    )


def test_items_carry_the_protocols_name_and_the_row_reason(
    engine: Engine, registry: rules.ProtocolRegistry, cohort: None
) -> None:
    items = {item.key: item for item in _list(engine, registry)}
    protocol = registry.get("cd19-car-t-pediatric-autoimmune")
    with read_session(engine) as session:
        stored = {
            assessment_key(study_id, r.infusion_number, r.assessment, r.occurrence): r
            for study_id in ("ROM-101", "ROM-102")
            for r in rows_of(session, study_id)
        }
    for key, item in items.items():
        row = stored[key]
        assert item.name == protocol.rules[item.assessment].spec.name
        assert (item.reason, item.category, item.due_on) == (row.reason, row.category, row.due_on)
        assert (item.window_start, item.window_end) == (row.window_start, row.window_end)
    as_dict = next(iter(items.values())).as_dict()
    assert set(as_dict) >= {"key", "study_id", "state", "due", "window_start", "window_end"}


def test_states_come_from_the_day_asked_about_not_from_stored_values(
    engine: Engine, registry: rules.ProtocolRegistry, cohort: None
) -> None:
    # ROM-101's month-12 CD19 B cells: due 2025-01-31, window 2025-01-17..2025-02-14.
    key = "ROM-101:1:bcell_cd19:9"
    with read_session(engine) as session:
        row = assessment_row(session, "ROM-101", "bcell_cd19", 9)
    assert (row.window_start, row.window_end) == (date(2025, 1, 17), date(2025, 2, 14))

    def state_on(day: date) -> tuple[DueState, int] | None:
        found = [i for i in _list(engine, registry, on=day, limit=10_000) if i.key == key]
        return (found[0].state, found[0].days_overdue) if found else None

    assert state_on(date(2024, 12, 1)) is None  # beyond the 30-day horizon
    assert state_on(date(2024, 12, 20)) == (DueState.upcoming, 0)
    assert state_on(date(2025, 1, 17)) == (DueState.due, 0)
    assert state_on(date(2025, 2, 14)) == (DueState.due, 0)
    assert state_on(date(2025, 2, 15)) == (DueState.overdue, 1)
    assert state_on(ON) == (DueState.overdue, (ON - date(2025, 2, 14)).days)
    with read_session(engine) as session:  # nothing was written by asking
        assert assessment_row(session, "ROM-101", "bcell_cd19", 9).status == "pending"


def test_derive_state_boundaries() -> None:
    start, end = date(2025, 1, 17), date(2025, 2, 14)
    assert derive_state(date(2025, 1, 16), start, end) is DueState.upcoming
    assert derive_state(start, start, end) is DueState.due
    assert derive_state(end, start, end) is DueState.due
    assert derive_state(date(2025, 2, 15), start, end) is DueState.overdue


def test_recorded_assessments_leave_the_list(
    engine: Engine, registry: rules.ProtocolRegistry, now: datetime, cohort: None
) -> None:
    first = _list(engine, registry)[0]
    assert first.state is DueState.overdue
    with write_session(engine) as session:
        record(session, registry, now, first.key, outcome="missed", on=first.window_end)
    keys = [item.key for item in _list(engine, registry)]
    assert first.key not in keys


@pytest.mark.parametrize("limit", [1, 5, 40])
def test_the_limit_is_respected_and_keeps_the_order(
    engine: Engine, registry: rules.ProtocolRegistry, cohort: None, limit: int
) -> None:
    everything = _list(engine, registry, limit=10_000)
    assert len(everything) > 40
    limited = _list(engine, registry, limit=limit)
    assert [i.key for i in limited] == [i.key for i in everything[:limit]]


def test_one_state_only(engine: Engine, registry: rules.ProtocolRegistry, cohort: None) -> None:
    everything = _list(engine, registry)
    for state in DueState:
        only = _list(engine, registry, states=(state,))
        assert only
        assert [i.key for i in only] == [i.key for i in everything if i.state is state]


def test_the_horizon_bounds_upcoming(
    engine: Engine, registry: rules.ProtocolRegistry, cohort: None
) -> None:
    none_ahead = _list(engine, registry, horizon_days=0)
    assert DueState.upcoming not in {i.state for i in none_ahead}
    far = _list(engine, registry, horizon_days=120, limit=10_000)
    assert [(i.key, i.state) for i in far] == _expected(engine, ["ROM-101", "ROM-102"], ON, 120)
    assert max(i.window_start for i in far if i.state is DueState.upcoming) > ON + timedelta(30)


def test_sites_see_only_their_own_patients(
    engine: Engine, registry: rules.ProtocolRegistry, cohort: None
) -> None:
    rome = _list(engine, registry, "Rome", limit=10_000)
    erlangen = _list(engine, registry, "Erlangen", limit=10_000)
    assert {i.study_id for i in rome} == {"ROM-101", "ROM-102"}
    assert {i.study_id for i in erlangen} == {"ERL-001"}
    assert [(i.key, i.state) for i in erlangen] == _expected(engine, ["ERL-001"], ON)
    assert _list(engine, registry, "Nowhere") == []


def test_deceased_patients_are_not_listed_lost_to_follow_up_are(
    engine: Engine, registry: rules.ProtocolRegistry, now: datetime, cohort: None
) -> None:
    before = _list(engine, registry, limit=10_000)
    assert {i.study_id for i in before if i.state is DueState.overdue} == {"ROM-101", "ROM-102"}

    with write_session(engine) as session:
        for study_id, status in (("ROM-101", "deceased"), ("ROM-102", "lost_to_follow_up")):
            change_status(
                session,
                study_id=study_id,
                status=status,
                on=date(2026, 11, 20),
                reason="test",
                actor=ACTOR,
                registry=registry,
                now=now,
            )
    after = _list(engine, registry, limit=10_000)
    assert [i.key for i in after if i.study_id == "ROM-102"] == [
        i.key for i in before if i.study_id == "ROM-102"
    ]
    # Of ROM-101, only what the death started is listed: its rows are in the protocol's
    # reporting category, due whatever the patient's status (protocol 1.1, issue 12).
    started_by_death = sorted(i.key.split(":")[2] for i in after if i.study_id == "ROM-101")
    assert started_by_death == [
        "archived_samples_test_after_death",
        "autopsy_vector_request",
        "cibmtr_form_2900",
    ]
    protocol = registry.get("cd19-car-t-pediatric-autoimmune")
    reporting = {
        i.key
        for i in after
        if i.study_id == "ROM-101" and i.category == protocol.reporting_category
    }
    assert len(reporting) == 3
    # ROM-101 still has pending rows from before the death: the patient status hides them.
    with read_session(engine) as session:
        assert any(r.status == "pending" and r.window_end < ON for r in rows_of(session, "ROM-101"))


def test_a_page_is_one_statement_cut_at_its_limit(
    engine: Engine, registry: rules.ProtocolRegistry, cohort: None
) -> None:
    """Every state a page shows comes from one statement (one round trip), and the limit
    cuts across states in list order: a page as long as the whole list ends where the
    list does, a shorter one is its start."""
    statements: list[str] = []

    def seen(*args: object) -> None:
        statements.append(str(args[2]))

    everything = _list(engine, registry)
    assert {item.state for item in everything} == set(DueState)
    event.listen(engine, "before_cursor_execute", seen)
    try:
        for limit in (1, len(everything) // 2, len(everything) - 1, len(everything) + 5):
            statements.clear()
            assert _list(engine, registry, limit=limit) == everything[:limit]
            assert [s for s in statements if "assessments" in s] == [statements[-1]]
            assert len([s for s in statements if s.lstrip().upper().startswith("SELECT")]) <= 2
    finally:
        event.remove(engine, "before_cursor_execute", seen)


def test_rows_out_of_list_order_are_refused(registry: rules.ProtocolRegistry) -> None:
    """The single statement relies on its branches being read in order; rows that come
    back otherwise (a plan the statement cannot rely on) are a defect, never a page."""
    from surveillance.patients.due_list import ListOrderLost, _items, _Row

    def row(state: int, window_end: date, row_id: int) -> tuple[object, ...]:
        return _Row(
            row_id, "ROM-101", 1, "rcl_test", 1, "virology", window_end, window_end,
            window_end, None, 1, datetime(2026, 1, 1), "Month 3",
            "cd19-car-t-pediatric-autoimmune", "1.0", state,
        )  # fmt: skip

    ordered = [row(0, date(2026, 1, 1), 5), row(0, date(2026, 1, 2), 3), row(1, ON, 1)]
    assert [i.state for i in _items(ordered, ON, registry)] == [
        DueState.overdue, DueState.overdue, DueState.due
    ]  # fmt: skip
    for wrong in (ordered[::-1], [ordered[1], ordered[0]], [ordered[2], ordered[0]]):
        with pytest.raises(ListOrderLost):
            _items(wrong, ON, registry)


def test_pooled_postgresql_connections_plan_serially_without_jit(
    engine: Engine, database_url: str
) -> None:
    """PostgreSQL: starting parallel workers cost more than a page (~7 of 8 ms at 10^5
    patients), a page's statement relies on its branches being read in order, and JIT
    compiled the scan's few-millisecond statements (15-150 ms each); so every connection
    the app's engine makes has both off, and keeps the deployment's own settings (startup
    ``options`` in the URL: a search path, a statement timeout)."""
    if engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL planner settings")
    row = text("SELECT setting, boot_val FROM pg_settings WHERE name = :name")
    own = make_engine(f"{database_url}?options=-c%20lock_timeout%3D1234")
    try:
        with own.connect() as first, own.connect() as second:
            for connection in (first, second):
                for name in ("max_parallel_workers_per_gather", "jit"):
                    setting, default = connection.execute(row, {"name": name}).one()
                    assert setting in ("0", "off")
                    assert default not in ("0", "off")  # the server's: else this shows nothing
                assert connection.execute(text("SHOW lock_timeout")).scalar_one() == "1234ms"
                connection.rollback()
                assert connection.execute(text("SHOW jit")).scalar_one() == "off"  # kept
    finally:
        own.dispose()


def _in_a_transaction(session: Session) -> bool:
    """Whether the session's statements share a transaction: after a pause, a statement
    of the same transaction starts later than the transaction (``now()``)."""
    session.execute(text("SELECT pg_sleep(0.02)"))
    return bool(session.execute(text("SELECT now() < statement_timestamp()")).scalar_one())


def test_a_page_is_read_without_a_transaction_on_postgresql(
    engine: Engine, database_url: str
) -> None:
    """The due list's reads (the API's page, ``surveillance due``) are one statement, so on
    PostgreSQL they run without BEGIN and ROLLBACK (two round trips of a ~3 ms page); the
    pooled connection goes back to transactions for the next session that takes it."""
    if engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL transactions")
    one = make_engine(database_url, pool_size=1, max_overflow=0)  # every session: the same
    try:
        with statement_read_session(one) as session:
            assert not _in_a_transaction(session)
        with read_session(one) as session:
            assert _in_a_transaction(session)
        with write_session(one) as session:
            assert _in_a_transaction(session)
    finally:
        one.dispose()


def test_a_read_without_a_transaction_refuses_to_write(engine: Engine) -> None:
    """Nothing could roll such a write back: it is refused, and nothing is stored."""
    with statement_read_session(engine) as session:
        session.add(Site(id="ZZ01", name="never stored", timezone="UTC"))
        with pytest.raises(WriteInReadSession):
            session.flush()
    with statement_read_session(engine) as session:
        with pytest.raises(WriteInReadSession):
            session.execute(insert(Site).values(id="ZZ02", name="never stored", timezone="UTC"))
        with pytest.raises(WriteInReadSession):
            session.execute(update(Site).values(name="renamed"))
    with read_session(engine) as session:
        assert session.get(Site, "ZZ01") is None
        assert session.get(Site, "ZZ02") is None
