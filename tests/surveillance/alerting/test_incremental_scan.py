"""The incremental alert scan creates exactly the alerts the full scan creates.

Random histories (enrolments, outcomes recorded, corrected and undone, status changes and
transfers, acknowledgements, a webhook endpoint added, time passing, scans in between)
are played on two copies of one database: one scanned incrementally (the default), the
other with ``full=True`` (the reference: the full scan as it was before, kept as the
daily safety net). After every scan both outboxes hold the same alerts, id for id.
"""

from __future__ import annotations

import logging
from collections import Counter
from datetime import date, timedelta

import pytest
from hypothesis import event, given
from sqlalchemy import Engine, delete, select, text
from sqlmodel import col
from support.alert_support import AAV, ACTOR, START, Clock, add_sites_and_staff
from support.scan_histories import (
    Step,
    Store,
    World,
    histories,
    histories_settings,
    pg_store,
    sqlite_store,
)

import rules
from surveillance.alerting.jobs import AlertJobs
from surveillance.alerting.models import ScanChange
from surveillance.config import Settings
from surveillance.kit.db import make_engine, read_session, write_session
from surveillance.patients.enrolment import Enrolment, enroll
from surveillance.records.outbox import Alert

__all__ = ["pg_store", "sqlite_store"]  # fixtures


def _play(store: Store, registry: rules.ProtocolRegistry, history: list[Step]) -> None:
    incremental = World(make_engine(store.new_url()), full=False)
    reference = World(make_engine(store.new_url()), full=True)
    try:
        for number, step in enumerate(history):
            said = incremental.play(step, registry)
            assert reference.play(step, registry) == said, f"step {number} {step}"
            if step[0] == "scan":
                missing = reference.alerts() - incremental.alerts()
                extra = incremental.alerts() - reference.alerts()
                assert not missing, f"after step {number} of {history}"
                assert not extra, f"after step {number} of {history}"
                assert incremental.reports[-1].created == reference.reports[-1].created
        # What the histories reached (pytest --hypothesis-show-statistics).
        for kind in sorted({alert[1] for alert in reference.alerts()}):
            event(f"alerts of kind {kind}")
        event(f"incremental scans: {sum(bool(r.incremental_groups) for r in incremental.reports)}")
    finally:
        incremental.engine.dispose()
        reference.engine.dispose()


@histories_settings(40)
@given(history=histories)
def test_incremental_scans_write_the_alerts_of_full_scans(
    sqlite_store: Store, registry: rules.ProtocolRegistry, history: list[Step]
) -> None:
    _play(sqlite_store, registry, history)


@pytest.mark.postgres
@histories_settings(8)
@given(history=histories)
def test_incremental_scans_write_the_alerts_of_full_scans_on_postgresql(
    pg_store: Store, registry: rules.ProtocolRegistry, history: list[Step]
) -> None:
    _play(pg_store, registry, history)


def _listed(engine: Engine) -> set[int]:
    """The patients listed for the next scan, taken (as a scan takes them)."""
    table = ScanChange.__table__  # type: ignore[attr-defined]
    with write_session(engine) as session:
        return set(session.execute(delete(table).returning(table.c.patient_id)).scalars())


def test_every_write_to_the_watched_tables_lists_its_patient(
    engine: Engine, registry: rules.ProtocolRegistry
) -> None:
    """The triggers, whatever writes (hand-written SQL here): a later migration that
    rebuilt one of these tables without its triggers would fail this."""
    with write_session(engine) as session:
        add_sites_and_staff(session)
        enrolments = [
            Enrolment(s, "Rome", date(1990, 1, 1), "F", "hemophilia_a", AAV, START.date())
            for s in ("ROM-1", "ROM-2", "ROM-3")
        ]
        ids = enroll(session, enrolments, registry=registry, now=START, actor=ACTOR)
    one, two, three = ids["ROM-1"], ids["ROM-2"], ids["ROM-3"]
    assert _listed(engine) == {one, two, three}  # inserted patients and calendars
    assert _listed(engine) == set()
    writes = {
        "UPDATE assessments SET note = 'x' WHERE patient_id = :p AND occurrence = 1": one,
        "DELETE FROM assessments WHERE patient_id = :p AND assessment = 'aav_ltfu_exam'": two,
        "UPDATE patients SET status = 'withdrawn' WHERE id = :p": three,
        "INSERT INTO escalation_acks (assessment_id, level, note, by, at) SELECT id, 1, 'n', "
        "'b', CURRENT_TIMESTAMP FROM assessments WHERE patient_id = :p AND occurrence = 1 "
        "LIMIT 1": one,
        "UPDATE escalation_acks SET note = 'm' WHERE assessment_id IN "
        "(SELECT id FROM assessments WHERE patient_id = :p)": one,
        "DELETE FROM escalation_acks WHERE assessment_id IN "
        "(SELECT id FROM assessments WHERE patient_id = :p)": one,
    }
    for statement, patient_id in writes.items():
        with write_session(engine) as session:
            session.execute(text(statement), {"p": patient_id})
        assert _listed(engine) == {patient_id}, statement


def test_a_statement_lists_each_patient_once(
    engine: Engine, registry: rules.ProtocolRegistry
) -> None:
    """Enrolling writes a patient's whole calendar (~100 rows) in one statement: the
    patient is listed once for it, not once per row (it was, on PostgreSQL, before
    migration 0013: as many change rows as assessment rows)."""
    with write_session(engine) as session:
        add_sites_and_staff(session)
        enrolments = [
            Enrolment(s, "Rome", date(1990, 1, 1), "F", "hemophilia_a", AAV, START.date())
            for s in ("ROM-1", "ROM-2")
        ]
        enroll(session, enrolments, registry=registry, now=START, actor=ACTOR)
    table = ScanChange.__table__  # type: ignore[attr-defined]
    with read_session(engine) as session:
        listed = session.execute(select(table.c.patient_id)).scalars().all()
        planned = session.execute(text("SELECT count(*) FROM assessments")).scalar_one()
    assert planned > 200
    # At most one row per statement that wrote the patient (its row, its calendar).
    assert sorted(Counter(listed).values()) in ([1, 1], [2, 2]), Counter(listed)


def test_a_scan_takes_the_changes_and_reads_only_what_changed(
    engine: Engine, registry: rules.ProtocolRegistry
) -> None:
    """A first scan is full; the next ones are incremental and take the listed patients;
    a new webhook endpoint (another fingerprint) or an earlier day makes one full again."""
    with write_session(engine) as session:
        add_sites_and_staff(session)
        enrolment = Enrolment("ROM-1", "Rome", date(1990, 1, 1), "F", "hemophilia_a", AAV,
                              START.date() - timedelta(days=400))  # fmt: skip
        enroll(session, [enrolment], registry=registry, now=START, actor=ACTOR)
    world = World(engine, full=False)
    world.patients.append("ROM-1")
    world.play(("scan", False), registry)
    world.play(("scan", False), registry)
    world.play(("record", 0, 0, "missed"), registry)
    world.play(("scan", False), registry)
    world.play(("endpoint", None), registry)
    world.play(("scan", False), registry)
    world.play(("scan", True), registry)
    group = [("Rome", AAV)]
    first, again, recorded, endpoint, earlier = world.reports
    assert (first.full_groups, first.total > 0) == (group, True)
    assert (again.incremental_groups, again.total, again.changed_patients) == (group, 0, 0)
    assert (recorded.incremental_groups, recorded.changed_patients) == (group, 1)
    assert (endpoint.full_groups, endpoint.created["assessment.overdue"] > 0) == (group, True)
    assert earlier.full_groups == group


def test_the_daily_full_scan_writes_and_logs_what_the_incremental_scans_missed(
    engine: Engine, registry: rules.ProtocolRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    """Once a UTC day the job reads every group in full after the incremental scan. An
    overdue alert deleted by hand stands in for a change the incremental scan missed."""
    with write_session(engine) as session:
        add_sites_and_staff(session)
        enrolment = Enrolment("ROM-1", "Rome", date(1990, 1, 1), "F", "hemophilia_a", AAV,
                              START.date() - timedelta(days=30))  # fmt: skip
        enroll(session, [enrolment], registry=registry, now=START, actor=ACTOR)
    clock = Clock(START)
    settings = Settings(
        _env_file=None, database_url=engine.url.render_as_string(hide_password=False)
    )  # type: ignore[call-arg]
    job = AlertJobs(engine=engine, settings=settings, registry=registry, clock=clock)
    job.run_scan()  # incremental (a first scan: full), then the day's full one
    overdue = {a for a in World(engine, full=False).alerts() if a[1] == "assessment.overdue"}
    assert overdue
    with write_session(engine) as session:
        session.execute(delete(Alert).where(col(Alert.kind) == "assessment.overdue"))
    clock.advance(timedelta(hours=1))
    job.run_scan()  # the same UTC day: incremental only, the alerts stay missing
    assert not {a for a in World(engine, full=False).alerts() if a[1] == "assessment.overdue"}
    assert "daily full scan" not in caplog.text

    clock.advance(timedelta(days=1))
    with caplog.at_level(logging.WARNING, logger="surveillance.alerts"):
        job.run_scan()
    again = {a for a in World(engine, full=False).alerts() if a[1] == "assessment.overdue"}
    assert {a[0] for a in again} >= {a[0] for a in overdue}  # and today's new ones
    assert f"the daily full scan found {len(overdue)} alerts" in caplog.text
