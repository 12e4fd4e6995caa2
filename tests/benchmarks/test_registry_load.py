"""``benchmarks/registry_load.py``: a small registry loaded on SQLite and PostgreSQL.

The loader runs as the command a benchmark user types; the database it leaves must read
as one the services wrote: the audit trail verifies (``surveillance audit verify``), the
feed is numbered 1..N, every stored calendar is what the engine plans from the stored
facts, the keys, indexes, foreign keys and triggers are those of a freshly migrated
database, and the app's due list and enrolment work on it.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import psycopg
import pytest
from pg_cluster import PostgresCluster
from sqlalchemy import Engine, select, text
from sqlalchemy.engine import make_url
from sqlmodel import col

import rules
from surveillance.adverse_events.feed import feed_page
from surveillance.calendar.sync import rematerialize
from surveillance.kit import audit, migrate
from surveillance.kit.db import make_engine, read_session, write_session
from surveillance.patients.due_list import due_list
from surveillance.patients.enrolment import Enrolment, enroll
from surveillance.patients.listing import unlist_ended
from surveillance.protocols.registry import get_protocol
from surveillance.records.patients import ENDED_STATUSES, Assessment, Patient, Site
from surveillance.records.sites import add_site

ROOT = Path(__file__).resolve().parents[2]
LOADER = ROOT / "benchmarks" / "registry_load.py"
sys.path.insert(0, str(ROOT / "benchmarks"))
from _common import NOW  # noqa: E402
from _registry_history import PatientHistory  # noqa: E402
from registry_load import sites  # noqa: E402

PATIENTS = 30
SITES = 3
_names = itertools.count()


def _load(target: list[str], *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(LOADER), "--patients", str(PATIENTS), "--sites", str(SITES),
         "--jobs", "2", "--chunk", "8", *target, *extra],
        capture_output=True, text=True, timeout=600, cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def loaded(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, dict[str, Any]]]:
    """(database URL, the loader's JSON figures) after a load of ``PATIENTS`` patients
    (once per module and backend; the last test adds a patient to it)."""
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("registry") / "registry.db"
        url, target = f"sqlite:///{path}", ["--sqlite-file", str(path)]
    else:
        cluster: PostgresCluster = request.getfixturevalue("pg")
        url = cluster.url_for(f"loader_{os.getpid()}_{next(_names)}")
        target = ["--database-url", url]
    done = _load(target)
    assert done.returncode == 0, done.stderr[-3000:]
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    yield url, figures
    if request.param == "postgres":
        cluster.drop_database(make_url(url).database or "")


def test_the_trail_verifies_and_the_feed_is_gapless(loaded: tuple[str, dict[str, Any]]) -> None:
    url, figures = loaded
    assert figures["rows"]["patients"] == PATIENTS
    assert figures["rows"]["audit_log"] == figures["audit_rows"] > PATIENTS
    verified = subprocess.run(
        [sys.executable, "-c", "from surveillance.cli import main; main()", "audit", "verify",
         "--expect-head", figures["audit_head"], "--expect-count", str(figures["audit_rows"])],
        capture_output=True, text=True, timeout=300, cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), "DATABASE_URL": url},
    )  # fmt: skip
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "intact" in verified.stdout
    registry = rules.ProtocolRegistry.from_directory()
    engine = make_engine(url)
    try:
        with read_session(engine) as session:
            page = feed_page(session, after=0, limit=1000, registry=registry)
            assert audit.verify_chain(session) == []
        sequences = [entry["sequence"] for entry in page.entries]
        assert figures["feed_entries"] == len(sequences) > 0
        assert sequences == list(range(1, len(sequences) + 1))
        outcomes = _scalar(engine, "SELECT count(*) FROM outcomes")
        recorded = _scalar(engine, "SELECT count(*) FROM audit_log WHERE action = 'record_outcome'")
        assert outcomes == recorded > PATIENTS * 50
    finally:
        engine.dispose()


def test_the_load_reports_its_own_cpu_and_a_local_servers(
    loaded: tuple[str, dict[str, Any]],
) -> None:
    """The figures split the load's CPU between the loader's workers and, for a server on
    this machine, PostgreSQL itself (what a faster loader cannot take away)."""
    url, figures = loaded
    assert figures["worker_cpu_ms_per_patient"] > 0
    if not url.startswith("postgresql"):
        assert "server_cpu_s" not in figures or figures["server_cpu_s"] == {}
        return
    server = figures["server_cpu_s"]
    if not server:  # another host's server, or one whose files this user cannot read
        pytest.skip("the server's processes cannot be measured from here")
    assert set(server) == {"load_s", "rebuild_s", "checkpoint_s", "analyze_s"}
    assert server["load_s"] > 0  # the COPY of every row ran in the server
    assert figures["server_cpu_ms_per_patient"] == pytest.approx(
        sum(server.values()) / PATIENTS * 1000, abs=0.02
    )
    projection = figures["projection_1e6"]
    assert projection["cpu_bound_hours_here"] > projection["server_only_hours_here"] > 0


def test_every_calendar_is_what_the_engine_plans_from_the_stored_facts(
    loaded: tuple[str, dict[str, Any]],
) -> None:
    """``rematerialize`` (dry run) on every loaded patient changes nothing: the history's
    re-plans (results, cases, deaths, withdrawals) were all applied as the services would."""
    url, figures = loaded
    registry = rules.ProtocolRegistry.from_directory()
    engine = make_engine(url)
    try:
        with read_session(engine) as session:
            patients = list(session.execute(select(Patient)).scalars())
            for patient in patients:
                protocol = get_protocol(registry, patient.protocol_id, patient.protocol_version)
                change = rematerialize(
                    session, patient, protocol, cause="check", actor="test", now=NOW,
                    dry_run=True,
                )  # fmt: skip
                assert change.is_empty(), (patient.study_id, change.summary())
        statuses = dict(_rows(engine, "SELECT status, count(*) FROM assessments GROUP BY status"))
        assert statuses["completed"] > statuses["missed"] > 0
        assert statuses["pending"] > 0
        assert figures["history"]["through_engine"] > 0  # results that re-planned
    finally:
        engine.dispose()


def test_keys_indexes_foreign_keys_and_triggers_are_back(
    loaded: tuple[str, dict[str, Any]], tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    url, _ = loaded
    if make_url(url).get_backend_name() == "postgresql":
        cluster: PostgresCluster = request.getfixturevalue("pg")
        fresh = cluster.create_database(f"loader_fresh_{os.getpid()}_{next(_names)}")
    else:
        fresh = f"sqlite:///{tmp_path / 'fresh.db'}"
    engine = make_engine(fresh)
    try:
        migrate.upgrade(engine)
    finally:
        engine.dispose()
    try:
        assert _catalog(url) == _catalog(fresh)
        assert any(kind == "trigger" for kind, *_ in _catalog(url))
    finally:
        if make_url(fresh).get_backend_name() == "postgresql":
            cluster.drop_database(make_url(fresh).database or "")


def test_the_rows_of_ended_follow_ups_are_unlisted_as_change_status_leaves_them(
    loaded: tuple[str, dict[str, Any]],
) -> None:
    """The loader's withdrawals and deaths leave the rows off the due list's index as
    ``change_status`` does (``unlist_ended``): none it would unlist is left listed, and
    every unlisted row is an ended patient's, no reporting duty."""
    url, _ = loaded
    registry = rules.ProtocolRegistry.from_directory()
    reporting = registry.reporting_categories()
    engine = make_engine(url)
    try:
        with read_session(engine) as session:
            unlisted = session.execute(
                select(col(Assessment.category), col(Patient.status))
                .join(Patient, col(Patient.id) == col(Assessment.patient_id))
                .where(~col(Assessment.listed))
            ).all()
        assert unlisted, "the load ends some follow-ups with work left pending"
        assert all(status in ENDED_STATUSES and c not in reporting for c, status in unlisted)
        with write_session(engine) as session:
            assert unlist_ended(session, registry=registry) == 0
    finally:
        engine.dispose()


def test_the_due_list_reads_and_enrolment_writes_on_the_loaded_database(
    loaded: tuple[str, dict[str, Any]],
) -> None:
    url, _ = loaded
    registry = rules.ProtocolRegistry.from_directory()
    site = sites(SITES)[0]
    engine = make_engine(url)
    try:
        with read_session(engine) as session:
            items = due_list(session, site_id=site.id, on=NOW.date(), registry=registry)
        assert items
        assert {item.state.value for item in items} >= {"upcoming"}
        # The id sequences were set: the app's own enrolment adds the next patient.
        with write_session(engine) as session:
            ids = enroll(
                session,
                [Enrolment("NEW-0001", site.id, date(2012, 5, 1), "F", "sle",
                           "cd19-car-t-pediatric-autoimmune", date(2025, 6, 1))],
                registry=registry, now=NOW, actor="test",
            )  # fmt: skip
        assert ids["NEW-0001"] == PATIENTS + 1
        with read_session(engine) as session:
            assert audit.verify_chain(session) == []
    finally:
        engine.dispose()


def test_a_patients_enrolment_is_what_enroll_writes(
    tmp_path: Path, registry: rules.ProtocolRegistry
) -> None:
    """The loader's rows at enrolment (before any history) against the service's."""
    site = sites(1)[0]
    engine = make_engine(f"sqlite:///{tmp_path / 'enrolled.db'}")
    migrate.upgrade(engine)
    try:
        with write_session(engine) as session:
            add_site(session, site_id=site.id, name=site.name, timezone=site.timezone,
                     country=site.country)  # fmt: skip
        for number in range(5):
            history = PatientHistory(
                number, site=Site.model_validate(site.model_dump()), registry=registry, now=NOW,
                seed=7,
            )  # fmt: skip
            history._enrol()
            ours = sorted(_plain(row) for row in history.rows)
            with write_session(engine) as session:
                ids = enroll(session, [history.draw.enrolment], registry=registry, now=NOW,
                             actor="demo")  # fmt: skip
            with read_session(engine) as session:
                stored = session.execute(
                    select(Assessment).where(
                        col(Assessment.patient_id) == ids[history.draw.enrolment.study_id]
                    )
                ).scalars()
                theirs = sorted(_plain(row.model_dump()) for row in stored)
                trail = audit.patient_trail(
                    session, patient_id=ids[history.draw.enrolment.study_id]
                )
            assert ours == theirs
            assert [a.row["new_values"] for a in history.audit] == [trail[0].new_values]
    finally:
        engine.dispose()


def test_a_database_that_holds_tables_is_refused_and_so_is_a_load_the_disk_cannot_hold(
    tmp_path: Path,
) -> None:
    path = tmp_path / "taken.db"
    engine = make_engine(f"sqlite:///{path}")
    migrate.upgrade(engine)
    engine.dispose()
    refused = _load(["--sqlite-file", str(path)])
    assert refused.returncode == 2
    assert "not empty" in refused.stderr
    huge = subprocess.run(
        [sys.executable, str(LOADER), "--patients", str(10**12), "--sqlite-file",
         str(tmp_path / "huge.db")],
        capture_output=True, text=True, timeout=120, cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    assert huge.returncode == 2
    assert huge.stderr.strip().count("\n") == 0
    assert "GB free" in huge.stderr
    assert not (tmp_path / "huge.db").exists()


# -- helpers --------------------------------------------------------------------------------


def _plain(row: dict[str, Any]) -> tuple[Any, ...]:
    """An assessment row without its ids and timestamps (they differ by construction)."""
    skip = {"id", "patient_id", "updated_at"}
    return tuple(sorted((k, str(v)) for k, v in row.items() if k not in skip))


def _scalar(engine: Engine, statement: str) -> Any:
    with engine.connect() as connection:
        return connection.execute(text(statement)).scalar()


def _rows(engine: Engine, statement: str) -> list[tuple[Any, ...]]:
    with engine.connect() as connection:
        return [tuple(row) for row in connection.execute(text(statement))]


def _catalog(url: str) -> set[tuple[str, ...]]:
    """Every key, index, foreign key and trigger, by name and definition."""
    if make_url(url).get_backend_name() == "postgresql":
        libpq = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
        with psycopg.connect(libpq) as conn:
            rows = conn.execute(
                "SELECT 'constraint', conrelid::regclass::text, conname, pg_get_constraintdef(oid) "
                "FROM pg_constraint WHERE connamespace = 'public'::regnamespace "
                "UNION ALL SELECT 'index', tablename, indexname, indexdef FROM pg_indexes "
                "WHERE schemaname = 'public' "
                "UNION ALL SELECT 'trigger', tgrelid::regclass::text, tgname, "
                "pg_get_triggerdef(oid) FROM pg_trigger WHERE NOT tgisinternal"
            ).fetchall()
        return {
            (kind, table, name, _deparsed(definition)) for kind, table, name, definition in rows
        }
    engine = make_engine(url)
    try:
        return {
            tuple(str(v) for v in row)
            for row in _rows(engine, "SELECT type, tbl_name, name, sql FROM sqlite_master")
            if not str(row[1]).startswith("sqlite_stat")  # ANALYZE's statistics
        }
    finally:
        engine.dispose()


def _deparsed(definition: str) -> str:
    """A definition without the casts and brackets PostgreSQL's deparser adds differently
    once a definition it printed is read back (``ARRAY['a'::varchar]::text[]`` vs
    ``ARRAY['a'::varchar::text]``: the same predicate; pg_restore shows the same)."""
    for noise in ("::character varying", "::text[]", "::text", "(", ")", " "):
        definition = definition.replace(noise, "")
    return definition
