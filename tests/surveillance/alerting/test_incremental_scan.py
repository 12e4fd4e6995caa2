"""The incremental alert scan creates exactly the alerts the full scan creates.

Random histories (enrolments, outcomes recorded, corrected and undone, status changes and
transfers, acknowledgements, a webhook endpoint added, time passing, scans in between)
are played on two copies of one database: one scanned incrementally (the default), the
other with ``full=True`` (the reference: the full scan as it was before, kept as the
daily safety net). After every scan both outboxes hold the same alerts, id for id.
"""

from __future__ import annotations

import itertools
import logging
import sqlite3
from collections import Counter
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from pg_cluster import PostgresCluster
from sqlalchemy import Engine, delete, select, text
from sqlmodel import Session, col
from support.alert_support import AAV, ACTOR, ADMIN, START, Clock, add_sites_and_staff

import rules
from surveillance.accounts import auth
from surveillance.adverse_events.results import correct_outcome, record_outcome
from surveillance.alerting import operations
from surveillance.alerting.jobs import AlertJobs
from surveillance.alerting.models import ScanChange
from surveillance.alerting.scan import ScanReport, scan
from surveillance.config import Settings
from surveillance.errors import SurveillanceError
from surveillance.kit import migrate
from surveillance.kit.db import make_engine, read_session, write_session
from surveillance.patients.changes import change_status
from surveillance.patients.enrolment import Enrolment, enroll
from surveillance.patients.undo import undo_outcome
from surveillance.records.outbox import Alert, WebhookEndpoint
from surveillance.records.patients import (
    Assessment,
    AssessmentStatus,
    OutcomeRecord,
    Patient,
    assessment_key,
)

CAR_T = "cd19-car-t-pediatric-autoimmune"
SITES = ("Rome", "Erlangen")
_names = itertools.count()

# One step of a history; the integers pick a patient or a row among those that fit.
Step = tuple[Any, ...]
steps = st.one_of(
    st.tuples(st.just("advance"), st.sampled_from([1, 60, 24 * 60, 3 * 24 * 60, 8 * 24 * 60])),
    st.tuples(
        st.just("enrol"),
        st.integers(0, 4 * 365),  # infused this many days before "now"
        st.sampled_from(SITES),
        st.sampled_from([AAV, AAV, CAR_T]),
    ),
    st.tuples(
        st.just("record"),
        st.integers(0, 50),
        st.integers(0, 50),
        st.sampled_from(["completed", "missed", "missed", "not_done"]),
    ),
    st.tuples(
        st.just("correct"),
        st.integers(0, 50),
        st.integers(0, 50),
        st.sampled_from(["completed", "missed", "not_done"]),
    ),
    st.tuples(st.just("undo"), st.integers(0, 50)),
    st.tuples(
        st.just("status"),
        st.integers(0, 50),
        st.sampled_from(["lost_to_follow_up", "active", "transferred", "withdrawn", "deceased"]),
    ),
    st.tuples(st.just("ack"), st.integers(0, 50), st.integers(0, 50), st.sampled_from([1, 2])),
    st.tuples(st.just("endpoint"), st.sampled_from((*SITES, None))),
    st.tuples(st.just("scan"), st.booleans()),  # True: "as of" a given day, not today
)
histories = st.lists(steps, min_size=4, max_size=30).map(
    # Always a patient first (with an overdue past) and a scan at the end.
    lambda h: [("enrol", 800, "Rome", AAV), ("scan", False), *h, ("scan", False)]
)


@dataclass
class Store:
    """Makes databases: copies of one migrated with the sites and the staff."""

    new_url: Callable[[], str]


@pytest.fixture(scope="module")
def sqlite_store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    folder = tmp_path_factory.mktemp("incremental")
    template = folder / "template.db"
    _prepare(make_engine(f"sqlite:///{template}"))

    def new_url() -> str:
        target = folder / f"copy{next(_names)}.db"
        with closing(sqlite3.connect(template)) as src, closing(sqlite3.connect(target)) as dst:
            src.backup(dst)
        return f"sqlite:///{target}"

    return Store(new_url)


@pytest.fixture(scope="module")
def pg_store(pg: PostgresCluster) -> Store:
    template = "incremental_scan_template"
    _prepare(make_engine(pg.create_database(template)))
    return Store(lambda: pg.create_database(f"incremental_{next(_names)}", template=template))


def _prepare(engine: Engine) -> None:
    migrate.upgrade(engine)
    with write_session(engine) as session:
        add_sites_and_staff(session)
    engine.dispose()


@dataclass
class World:
    """One database, its clock and how it is scanned."""

    engine: Engine
    full: bool
    clock: Clock = field(default_factory=lambda: Clock(START))
    patients: list[str] = field(default_factory=list)
    endpoints: int = 0
    reports: list[ScanReport] = field(default_factory=list)

    def play(self, step: Step, registry: rules.ProtocolRegistry) -> str:
        """Apply ``step``; say what happened (refused steps are part of the history)."""
        name, *args = step
        if name == "advance":
            self.clock.advance(timedelta(minutes=args[0]))
            return "advanced"
        try:
            with write_session(self.engine) as session:
                return getattr(self, f"_{name}")(session, registry, *args)
        except SurveillanceError as refused:
            return f"refused: {type(refused).__name__}"

    def alerts(self) -> set[tuple[Any, ...]]:
        a = Alert.__table__.c  # type: ignore[attr-defined]
        columns = (a.id, a.kind, a.level, a.channel, a.recipient, a.site_id, a.patient_id)
        with read_session(self.engine) as session:
            rows = session.execute(select(*columns, a.assessment_id, a.as_of))
            return {tuple(row) for row in rows}

    def _today(self) -> date:
        return (self.clock() + timedelta(hours=1)).date()  # Rome and Erlangen, in winter

    def _enrol(self, session: Session, registry: rules.ProtocolRegistry, *args: Any) -> str:
        days_ago, site, protocol = args
        study_id = f"P-{len(self.patients) + 1:03d}"
        birth, diagnosis = (
            (date(1990, 1, 1), "hemophilia_a") if protocol == AAV else (date(2015, 1, 1), "sle")
        )
        infused = self._today() - timedelta(days=days_ago)
        enrolment = Enrolment(study_id, site, birth, "F", diagnosis, protocol, infused)
        enroll(session, [enrolment], registry=registry, now=self.clock(), actor=ACTOR)
        self.patients.append(study_id)
        return f"enrolled {study_id}"

    def _patient(self, session: Session, pick: int) -> Patient:
        study_id = self.patients[pick % len(self.patients)]
        found = session.execute(select(Patient).where(col(Patient.study_id) == study_id))
        return found.scalar_one()

    def _rows(self, session: Session, patient: Patient, *where: Any) -> list[Assessment]:
        statement = select(Assessment).where(col(Assessment.patient_id) == patient.id, *where)
        return list(session.execute(statement.order_by(col(Assessment.id))).scalars())

    def _key(self, patient: Patient, row: Assessment) -> str:
        return assessment_key(patient.study_id, row.infusion_number, row.assessment, row.occurrence)

    def _record(self, session: Session, registry: rules.ProtocolRegistry, *args: Any) -> str:
        pick, row_pick, outcome = args
        patient = self._patient(session, pick)
        opened = self._rows(
            session,
            patient,
            col(Assessment.status) == AssessmentStatus.pending.value,
            col(Assessment.window_start) <= self._today(),
        )
        if not opened:
            return "nothing to record"
        row = opened[row_pick % len(opened)]
        record_outcome(
            session,
            key=self._key(patient, row),
            outcome=outcome,
            on=self._today(),
            reason=None if outcome == "completed" else "no answer",
            actor=ACTOR,
            registry=registry,
            now=self.clock(),
        )
        return f"recorded {row.id} {outcome}"

    def _correct(self, session: Session, registry: rules.ProtocolRegistry, *args: Any) -> str:
        pick, row_pick, outcome = args
        patient = self._patient(session, pick)
        done = ("completed", "missed", "not_done")
        recorded = self._rows(session, patient, col(Assessment.status).in_(done))
        if not recorded:
            return "nothing to correct"
        row = recorded[row_pick % len(recorded)]
        correct_outcome(
            session,
            key=self._key(patient, row),
            reason="entered on the wrong row",
            actor=ACTOR,
            registry=registry,
            now=self.clock(),
            expected_version=row.version,
            outcome=outcome,
            on=row.performed_on,
        )
        return f"corrected {row.id} {outcome}"

    def _undo(self, session: Session, registry: rules.ProtocolRegistry, *args: Any) -> str:
        patient = self._patient(session, args[0])
        latest = session.execute(
            select(OutcomeRecord, Assessment)
            .join(Assessment, col(Assessment.id) == col(OutcomeRecord.assessment_id))
            .where(col(Assessment.patient_id) == patient.id)
            .order_by(col(OutcomeRecord.id).desc())
            .limit(1)
        ).first()
        if latest is None:
            return "nothing to undo"
        row = latest.Assessment
        key = self._key(patient, row)
        undo_outcome(
            session,
            key=key,
            actor=ACTOR,
            registry=registry,
            now=self.clock(),
            expected_version=row.version,
        )
        return f"undid {row.id}"

    def _status(self, session: Session, registry: rules.ProtocolRegistry, *args: Any) -> str:
        patient = self._patient(session, args[0])
        other = "Erlangen" if patient.site_id == "Rome" else "Rome"
        change_status(
            session,
            study_id=patient.study_id,
            status=args[1],
            on=self._today(),
            reason="as the site wrote",
            actor=ACTOR,
            registry=registry,
            now=self.clock(),
            to_site=other if args[1] == "transferred" else None,
        )
        return f"{patient.study_id} {args[1]}"

    def _ack(self, session: Session, registry: rules.ProtocolRegistry, *args: Any) -> str:
        pick, row_pick, level = args
        patient = self._patient(session, pick)
        overdue = self._rows(
            session,
            patient,
            col(Assessment.status) == AssessmentStatus.pending.value,
            col(Assessment.window_end) < self._today(),
        )
        if not overdue:
            return "nothing to acknowledge"
        row = overdue[row_pick % len(overdue)]
        user = auth.principal_for(session, auth.get_user(session, ADMIN))
        operations.acknowledge(
            session, key=self._key(patient, row), level=level, note="called", user=user,
            now=self.clock(),
        )  # fmt: skip
        return f"acknowledged {row.id} at {level}"

    def _endpoint(self, session: Session, registry: rules.ProtocolRegistry, *args: Any) -> str:
        self.endpoints += 1
        events = "assessment.overdue,assessment.escalated,patient.follow_up_at_risk"
        endpoint = WebhookEndpoint(
            id=f"wh_{self.endpoints}", url="https://receiver.example/hooks", site_id=args[0],
            event_types=events, secret="whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            created_at=self.clock(),
        )  # fmt: skip
        session.add(endpoint)
        return f"endpoint {endpoint.id}"

    def _scan(self, session: Session, registry: rules.ProtocolRegistry, *args: Any) -> str:
        on = self._today() - timedelta(days=3) if args[0] else None
        report = scan(
            session, now=self.clock(), overrides={}, registry=registry, on=on, full=self.full
        )
        self.reports.append(report)
        return f"scanned: {report.created}"


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


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(history=histories)
def test_incremental_scans_write_the_alerts_of_full_scans(
    sqlite_store: Store, registry: rules.ProtocolRegistry, history: list[Step]
) -> None:
    _play(sqlite_store, registry, history)


@pytest.mark.postgres
@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
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
