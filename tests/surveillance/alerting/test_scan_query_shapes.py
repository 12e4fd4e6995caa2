"""The scan's queries, tuned for PostgreSQL at 10^5 patients (issue 15), select what they
selected before, row for row (``support/scan_reference.py``: the patient joined to every
row read, the two latest yearly contacts found by a self-join).

Random histories (``support/scan_histories.py``) are played on one database; then each
kind's query and the reference are asked for every (site, protocol) group, as of several
days (the history's last, a day, a week, ten weeks and a year later), in full and
incrementally (since the same day, a day, three days and eight days before; with every
patient or some of them written since).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import date, timedelta
from typing import Any

import pytest
from hypothesis import event, given
from sqlalchemy import Engine, select
from sqlmodel import col
from support import scan_reference
from support.alert_support import (
    AAV,
    ACTOR,
    INFECTION,
    START,
    add_sites_and_staff,
    enroll_aav,
)
from support.scan_histories import (
    CAR_T,
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
from surveillance.adverse_events.cases import create_case
from surveillance.alerting import scan_queries
from surveillance.alerting.policy import policy_for
from surveillance.alerting.scan_queries import Rows, Scope
from surveillance.kit.db import make_engine, read_session, write_session
from surveillance.patients.changes import change_status
from surveillance.records.patients import Assessment, Patient

__all__ = ["pg_store", "sqlite_store"]  # fixtures

Query = Callable[[Scope, int], Rows]
KINDS: tuple[tuple[str, Query, Query, int], ...] = (
    ("overdue", scan_queries.overdue, scan_reference.overdue, 0),
    ("escalated", scan_queries.escalated, scan_reference.escalated, 1),
    ("escalated", scan_queries.escalated, scan_reference.escalated, 2),
    ("at risk", scan_queries.at_risk, scan_reference.at_risk, 0),
)
LATER = (0, 1, 9, 70, 400)  # days after the history's last day


def _scopes(world: World, registry: rules.ProtocolRegistry, patients: tuple[int, ...]) -> Any:
    today = world.clock().date()
    for site in SITES:
        for protocol in (AAV, CAR_T):
            policy = policy_for({}, site=site, protocol=protocol)
            for later in LATER:
                full = Scope(
                    site,
                    protocol,
                    today + timedelta(days=later),
                    policy,
                    reporting_categories=tuple(sorted(registry.reporting_categories())),
                    yearly_contacts=policy.yearly_contact_rules(registry, protocol),
                )
                yield full
                for days, changed in ((0, patients), (1, ()), (3, patients[::2]), (8, patients)):
                    yield replace(full, since=full.as_of - timedelta(days=days), changed=changed)


def _check(store: Store, registry: rules.ProtocolRegistry, history: list[Step]) -> None:
    world = World(make_engine(store.new_url()), full=False)
    try:
        for step in history:
            world.play(step, registry)
        with read_session(world.engine) as session:
            patients = tuple(session.execute(select(col(Patient.id))).scalars())
            for scope in _scopes(world, registry, patients):
                for name, tuned, reference, level in KINDS:
                    # Sorted lists, not sets: a row selected twice is a difference too.
                    rows = sorted(session.execute(tuned(scope, level)).all())
                    expected = sorted(session.execute(reference(scope, level)).all())
                    assert rows == expected, (name, level, scope, history)
                    if rows:
                        event(f"{name} {level}: rows selected")
    finally:
        world.engine.dispose()


@histories_settings(30)
@given(history=histories)
def test_the_tuned_scan_queries_select_what_they_selected_before(
    sqlite_store: Store, registry: rules.ProtocolRegistry, history: list[Step]
) -> None:
    _check(sqlite_store, registry, history)


@pytest.mark.postgres
@histories_settings(8)
@given(history=histories)
def test_the_tuned_scan_queries_select_what_they_selected_before_on_postgresql(
    pg_store: Store, registry: rules.ProtocolRegistry, history: list[Step]
) -> None:
    _check(pg_store, registry, history)


def test_a_deceased_patients_reporting_clocks_are_still_selected(
    engine: Engine, registry: rules.ProtocolRegistry
) -> None:
    """A reporting duty is owed whatever the patient's status: after a serious case and
    the patient's death, the overdue sponsor notice and safety reports are selected (and
    escalated), by the tuned queries as by the reference; the rest of the calendar is not."""
    with write_session(engine) as session:
        add_sites_and_staff(session)
        enroll_aav(session, registry, ["ROM-101"], infused=date(2026, 6, 1), now=START)
        create_case(
            session, study_id="ROM-101", facts=INFECTION, actor=ACTOR, registry=registry, now=START
        )
        death = {"status": "deceased", "on": START.date(), "reason": "as the site wrote"}
        change_status(
            session, study_id="ROM-101", **death, actor=ACTOR, registry=registry, now=START
        )
    policy = policy_for({}, site="Rome", protocol=AAV)
    selected: dict[tuple[str, int], set[int]] = {}
    with read_session(engine) as session:
        for later in (3, 30, 90):
            scope = Scope(
                "Rome",
                AAV,
                START.date() + timedelta(days=later),
                policy,
                reporting_categories=tuple(sorted(registry.reporting_categories())),
                yearly_contacts=policy.yearly_contact_rules(registry, AAV),
            )
            for name, tuned, reference, level in KINDS:
                rows = set(session.execute(tuned(scope, level)).all())
                assert rows == set(session.execute(reference(scope, level)).all())
                selected.setdefault((name, level), set()).update(row[0] for row in rows)
        categories = dict(
            session.execute(select(col(Assessment.id), col(Assessment.category))).all()
        )
    for kind in (("overdue", 0), ("escalated", 1), ("escalated", 2)):
        assert selected[kind], kind
        assert {categories[row] for row in selected[kind]} == {"safety-reporting"}, kind
    assert selected[("at risk", 0)] == set()
