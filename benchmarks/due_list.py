"""The nurse's due list at scale: ``patients.due_list.due_list`` against the raw driver.

    .venv/bin/python benchmarks/due_list.py [--patients 100000] [--runs 200]
        [--postgres | --database-url postgresql+psycopg://...] [--no-sqlite]
        [--sqlite-file PATH] [--postgres-loaded URL] [--keep [--database-name NAME]]

An already-loaded database (``--sqlite-file`` that exists, ``--postgres-loaded``: this
script's ``--keep``, or ``benchmarks/registry_load.py``) is used as it is, nothing loaded;
the list is then the one of its busiest site (most patients).

The database (fast bulk load, documented because it bypasses ``enroll``)
    A fresh database migrated with the Alembic schema (same tables and partial indexes
    as production), with ``--sites`` sites; patient i goes to site i mod sites, so with
    2 sites one site has ~N/2 patients.

    Calendars come from the real engine, but to keep loading fast at 100 000 patients
    (the engine alone needs ~3.5 ms per CAR-T calendar, i.e. ~6 minutes) only
    ``--distinct-calendars`` random CAR-T patients (ages 5-17, SLE/SSc/JDM, infused on a
    random day of 2018-2025) are planned; every patient draws one of them and gets its
    facts (birth date, sex, diagnosis, infusion date) and calendar. With 5 000 templates
    over ~2 900 infusion days the due dates are spread over the calendar as for
    independent patients; only the birth date and diagnosis repeat.

    Rows are written with the driver alone (sqlite3 ``executemany`` / psycopg ``COPY``),
    one transaction per 1 000 patients, with their status already decided, as if the
    history had been recorded (this benchmark is about reading, so it does not go through
    ``record``):
    * window closed more than ``--recent-days`` before ``--on``: completed (performed on
      the due date), or missed with probability ``--missed-share``;
    * window closed within the last ``--recent-days``: completed, except a share
      ``--left-pending`` left pending: these are the overdue items, a small set as in
      real life (~180 at the 50 000-patient site with the defaults, fewer than the
      list's limit, so the whole list reads overdue and then due rows);
    * window still open or in the future: pending.
    Then ``ANALYZE`` (SQLite) / ``VACUUM ANALYZE`` (PostgreSQL).

What is timed (``--runs`` times each, after ``--warmup`` untimed runs)
    * app: ``with statement_read_session(engine) as session: due_list(session, site_id=...,
      on=..., registry=...)`` for the largest site on the fixed date ``--on`` (default
      limit 500, default horizon): a session per request, as the command line and the API
      do (on PostgreSQL without a transaction: the page is one statement). Also
      ``app_reused_session``: the same call on one long-lived session.
    * raw: the statements ``due_list`` sent (one per state it needed before reaching the
      limit), captured once with a ``before_cursor_execute`` listener: that is the SQL
      the due list's statement compiled to, in the driver's parameter style (qmark for
      sqlite3, pyformat for psycopg), with the parameters as SQLAlchemy handed them to
      the driver (ISO date strings on SQLite). They are run through a plain driver
      cursor on one reused connection, with ``fetchall()``.
    * per state: the same comparison for ``due_list(..., states=(state,))`` against its
      single statement, for overdue, due and upcoming (with the default limit of 500
      the whole list is often filled before ``upcoming`` is queried).
    Printed: median and p95 in ms, the ratios app/raw, and the query plans of the three
    state statements with the same parameters (EXPLAIN QUERY PLAN on SQLite, EXPLAIN
    ANALYZE on PostgreSQL) to show that the partial indexes on pending rows are used.
    Targets: app p95 < 5 ms and app within 2x of raw.

Prints readable lines, then the figures as one JSON object on the last line.
"""

from __future__ import annotations

import argparse
import os
import random
import sqlite3
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from _common import (
    CAR_T,
    NOW,
    SITES,
    busiest_site,
    create_database,
    drop_database,
    emit,
    is_postgres_url,
    libpq_url,
    postgres_server,
    random_patient,
    summary_ms,
)
from sqlalchemy import Engine, event
from sqlmodel import Session

import rules
from surveillance.config import get_settings
from surveillance.kit import migrate
from surveillance.kit.db import make_engine, read_session, statement_read_session, write_session
from surveillance.patients.due_list import DueItem, DueState, due_list
from surveillance.records.patients import AssessmentStatus, PatientStatus
from surveillance.records.sites import add_site

BATCH = 1000
PATIENT_COLUMNS = (
    "id",
    "study_id",
    "site_id",
    "birth_date",
    "sex",
    "diagnosis",
    "protocol_id",
    "protocol_version",
    "status",
    "enrolled_at",
)
ASSESSMENT_COLUMNS = (
    "patient_id",
    "site_id",
    "infusion_number",
    "assessment",
    "occurrence",
    "category",
    "due_on",
    "window_start",
    "window_end",
    "protocol_id",
    "protocol_version",
    "reason",
    "status",
    "status_reason",
    "performed_on",
    "result",
    "protocol_deviation",
    "updated_at",
)
PENDING = AssessmentStatus.pending.value
COMPLETED = AssessmentStatus.completed.value
MISSED = AssessmentStatus.missed.value


# -- synthetic data -----------------------------------------------------------------------


@dataclass(frozen=True)
class Template:
    """One planned patient: facts and calendar, split by where ``on`` falls."""

    birth_date: date
    sex: str
    diagnosis: str
    infusion_date: date
    version: str
    # (infusion, assessment, occurrence, category, due, start, end, protocol, version, reason)
    old: list[tuple[Any, ...]]  # window closed before the recent period
    recent: list[tuple[Any, ...]]  # window closed within the recent period
    open: list[tuple[Any, ...]]  # window open on ``on`` or in the future


def templates(count: int, seed: int, on: date, recent_days: int) -> list[Template]:
    registry = rules.ProtocolRegistry.from_directory()
    protocol = registry.get(CAR_T)
    rng = random.Random(seed)
    cutoff = on - timedelta(days=recent_days)
    out = []
    for number in range(count):
        p = random_patient(rng, number, CAR_T)
        plan = rules.build_calendar(
            protocol, rules.PatientFacts(p.birth_date, p.diagnosis, p.sex), [p.infusion_date]
        )
        old, recent, still_open = [], [], []
        for a in plan:
            row = (
                a.infusion,
                a.assessment,
                a.occurrence,
                a.category,
                a.due,
                a.window_start,
                a.window_end,
                a.protocol,
                a.protocol_version,
                a.reason,
            )
            if a.window_end < cutoff:
                old.append(row)
            elif a.window_end < on:
                recent.append(row)
            else:
                still_open.append(row)
        out.append(
            Template(
                p.birth_date,
                p.sex,
                p.diagnosis,
                p.infusion_date,
                protocol.version,
                old,
                recent,
                still_open,
            )
        )
    return out


@dataclass
class LoadOptions:
    patients: int
    sites: list[str]
    distinct: int
    seed: int
    on: date
    recent_days: int
    left_pending: float
    missed_share: float


def batches(
    options: LoadOptions, convert: Callable[[Any], Any]
) -> Iterator[tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]]:
    """(patient rows, assessment rows) per ``BATCH`` patients, values passed through ``convert``."""
    started = time.perf_counter()
    pool = templates(
        min(options.distinct, options.patients), options.seed, options.on, options.recent_days
    )
    print(
        f"  planned {len(pool)} distinct calendars in {time.perf_counter() - started:.1f} s",
        flush=True,
    )
    # Template rows with their values converted once (ISO strings for sqlite3).
    converted = [
        (
            [tuple(convert(v) for v in row) for row in t.old],
            [tuple(convert(v) for v in row) for row in t.recent],
            [tuple(convert(v) for v in row) for row in t.open],
        )
        for t in pool
    ]
    rng = random.Random(options.seed + 1)
    now = convert(NOW)
    active = PatientStatus.active.value
    false = convert(False)
    for start in range(0, options.patients, BATCH):
        patients: list[tuple[Any, ...]] = []
        assessments: list[tuple[Any, ...]] = []
        for number in range(start, min(start + BATCH, options.patients)):
            pick = rng.randrange(len(pool))
            t = pool[pick]
            old, recent, still_open = converted[pick]
            patient_id = number + 1
            site = options.sites[number % len(options.sites)]
            patients.append(
                (
                    patient_id,
                    f"P{number:07d}",
                    site,
                    convert(t.birth_date),
                    t.sex,
                    t.diagnosis,
                    CAR_T,
                    t.version,
                    active,
                    now,
                )
            )
            for row in old:
                status = MISSED if rng.random() < options.missed_share else COMPLETED
                performed = row[4] if status == COMPLETED else None
                assessments.append(
                    (patient_id, site, *row, status, None, performed, None, false, now)
                )
            for row in recent:
                if rng.random() < options.left_pending:
                    assessments.append(
                        (patient_id, site, *row, PENDING, None, None, None, false, now)
                    )
                else:
                    assessments.append(
                        (patient_id, site, *row, COMPLETED, None, row[4], None, false, now)
                    )
            for row in still_open:
                assessments.append((patient_id, site, *row, PENDING, None, None, None, false, now))
        yield patients, assessments


def _sqlite_value(value: Any) -> Any:
    """What SQLAlchemy's SQLite dialect stores: ISO dates, 'YYYY-MM-DD HH:MM:SS.ffffff', 0/1."""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bool):
        return int(value)
    return value


def _same(value: Any) -> Any:
    return value


def _insert(table: str, columns: tuple[str, ...], mark: str) -> str:
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join([mark] * len(columns))})"


def prepare_schema(url: str, sites: list[str]) -> None:
    engine = make_engine(url)
    try:
        migrate.upgrade(engine)
        with write_session(engine) as session:
            for site_id in sites:
                timezone = {s[0]: s[2] for s in SITES}.get(site_id, "Europe/Rome")
                add_site(session, site_id=site_id, name=f"{site_id} (benchmark)", timezone=timezone)
    finally:
        engine.dispose()


def load_sqlite(path: Path, options: LoadOptions) -> dict[str, Any]:
    prepare_schema(f"sqlite:///{path}", options.sites)
    started = time.perf_counter()
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("PRAGMA foreign_keys=ON")
    rows = 0
    insert_patients = _insert("patients", PATIENT_COLUMNS, "?")
    insert_assessments = _insert("assessments", ASSESSMENT_COLUMNS, "?")
    for patients, assessments in batches(options, _sqlite_value):
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(insert_patients, patients)
        conn.executemany(insert_assessments, assessments)
        conn.execute("COMMIT")
        rows += len(assessments)
        _progress(patients[-1][0], options.patients, rows, started)
    conn.execute("ANALYZE")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return {"load_s": round(time.perf_counter() - started, 1), "assessment_rows": rows}


def load_postgres(url: str, options: LoadOptions) -> dict[str, Any]:
    prepare_schema(url, options.sites)
    started = time.perf_counter()
    rows = 0
    with psycopg.connect(libpq_url(url)) as conn:
        for patients, assessments in batches(options, _same):
            with conn.transaction(), conn.cursor() as cursor:
                with cursor.copy(
                    f"COPY patients ({', '.join(PATIENT_COLUMNS)}) FROM STDIN"
                ) as copy:
                    for row in patients:
                        copy.write_row(row)
                with cursor.copy(
                    f"COPY assessments ({', '.join(ASSESSMENT_COLUMNS)}) FROM STDIN"
                ) as copy:
                    for row in assessments:
                        copy.write_row(row)
            rows += len(assessments)
            _progress(patients[-1][0], options.patients, rows, started)
        conn.execute("SELECT setval('patients_id_seq', (SELECT max(id) FROM patients))")
        conn.commit()
        conn.autocommit = True
        conn.execute("VACUUM ANALYZE")
    return {"load_s": round(time.perf_counter() - started, 1), "assessment_rows": rows}


def _progress(done: int, total: int, rows: int, started: float) -> None:
    if done % (BATCH * 10) == 0 or done == total:
        elapsed = time.perf_counter() - started
        print(f"  loaded {done:>7} patients, {rows:>10} rows ({elapsed:.0f} s)", flush=True)


# -- timing --------------------------------------------------------------------------------


@dataclass(frozen=True)
class RawStatement:
    states: str  # the states the statement reads ("overdue+due+upcoming": one page)
    sql: str
    params: Any


def captured_statements(
    engine: Engine, call: Callable[[], list[DueItem]], states: tuple[DueState, ...]
) -> tuple[list[DueItem], list[RawStatement]]:
    """Run ``call`` once and keep the SELECTs it sent, exactly as the driver got them.

    The SQL is what the due list's statement compiled to in the driver's parameter style (qmark
    for sqlite3, pyformat for psycopg), the parameters already converted by SQLAlchemy
    (dates as ISO strings on SQLite). ``due_list`` reads a page in one statement, a
    branch per state.
    """
    sent: list[tuple[str, Any]] = []

    def listener(
        _c: Any, _cur: Any, statement: str, parameters: Any, _ctx: Any, _many: bool
    ) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            sent.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", listener)
    try:
        items = call()
    finally:
        event.remove(engine, "before_cursor_execute", listener)
    assert len(sent) == 1, sent
    label = "+".join(state.value for state in states)
    return items, [RawStatement(label, sql, params) for sql, params in sent]


def time_calls(call: Callable[[], object], runs: int, warmup: int) -> list[float]:
    for _ in range(warmup):
        call()
    timings = []
    for _ in range(runs):
        start = time.perf_counter()
        call()
        timings.append(time.perf_counter() - start)
    return timings


def explain(cursor: Any, statements: list[RawStatement], postgres: bool) -> dict[str, list[str]]:
    plans: dict[str, list[str]] = {}
    for s in statements:
        if postgres:
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS, COSTS OFF, TIMING OFF) " + s.sql, s.params)
            lines = [row[0] for row in cursor.fetchall()]
        else:
            cursor.execute("EXPLAIN QUERY PLAN " + s.sql, s.params)
            depth: dict[int, int] = {0: -1}
            lines = []
            for node, parent, _unused, detail in cursor.fetchall():
                depth[node] = depth.get(parent, -1) + 1
                lines.append("  " * depth[node] + detail)
        plans[s.states] = lines
    return plans


class Bench:
    """Times the app's ``due_list`` and the raw driver on the same database."""

    def __init__(self, url: str, args: argparse.Namespace, site: str) -> None:
        self.url = url
        self.args = args
        self.site = site
        self.registry = rules.ProtocolRegistry.from_directory()
        self.engine = make_engine(url)
        self.postgres = self.engine.dialect.name == "postgresql"
        self.conn: Any = (
            psycopg.connect(libpq_url(url), autocommit=True)  # as the app reads a page
            if self.postgres
            else sqlite3.connect(url.split("///", 1)[1])
        )
        self.cursor = self.conn.cursor()
        if self.postgres:  # what kit.db.OLTP_SETTINGS sets on each of the app's connections
            self.cursor.execute("SET max_parallel_workers_per_gather = 0")
            self.cursor.execute("SET jit = off")

    def close(self) -> None:
        self.conn.close()
        self.engine.dispose()

    def app_call(
        self, states: tuple[DueState, ...], session: Session | None = None
    ) -> Callable[[], list[DueItem]]:
        def call() -> list[DueItem]:
            if session is not None:
                return due_list(
                    session,
                    site_id=self.site,
                    on=self.args.on,
                    registry=self.registry,
                    states=states,
                    limit=self.args.limit,
                )
            with statement_read_session(self.engine) as fresh:
                return due_list(
                    fresh,
                    site_id=self.site,
                    on=self.args.on,
                    registry=self.registry,
                    states=states,
                    limit=self.args.limit,
                )

        return call

    def raw_call(self, statements: list[RawStatement]) -> Callable[[], int]:
        def call() -> int:
            rows = 0
            for s in statements:
                self.cursor.execute(s.sql, s.params)
                rows += len(self.cursor.fetchall())
            return rows

        return call

    def compare(
        self, states: tuple[DueState, ...], reused: bool
    ) -> tuple[dict[str, Any], list[RawStatement]]:
        items, statements = captured_statements(self.engine, self.app_call(states), states)
        raw = self.raw_call(statements)
        raw_rows = raw()
        figures: dict[str, Any] = {
            "items": {state.value: sum(1 for i in items if i.state is state) for state in states},
            "statements": len(statements),
            "raw_rows": raw_rows,
            "app": summary_ms(time_calls(self.app_call(states), self.args.runs, self.args.warmup)),
        }
        if reused:
            with read_session(self.engine) as long_lived:
                timings = time_calls(
                    self.app_call(states, long_lived), self.args.runs, self.args.warmup
                )
            figures["app_reused_session"] = summary_ms(timings)
        figures["raw"] = summary_ms(time_calls(raw, self.args.runs, self.args.warmup))
        figures["ratio_median"] = round(
            figures["app"]["median_ms"] / figures["raw"]["median_ms"], 2
        )
        figures["ratio_p95"] = round(figures["app"]["p95_ms"] / figures["raw"]["p95_ms"], 2)
        return figures, statements


def bench(url: str, label: str, args: argparse.Namespace, site: str) -> dict[str, Any]:
    b = Bench(url, args, site)
    try:
        figures, _ = b.compare(tuple(DueState), reused=True)
        per_state: dict[str, Any] = {}
        single: list[RawStatement] = []
        for state in DueState:
            per_state[state.value], statements = b.compare((state,), reused=False)
            single += statements
        plans = explain(b.cursor, single, b.postgres)
    finally:
        b.close()
    figures.update({"site": site, "on": args.on.isoformat(), "runs": args.runs})
    figures["target_p95_under_5ms"] = figures["app"]["p95_ms"] < 5
    figures["target_within_2x_of_raw"] = figures["ratio_median"] <= 2
    figures["per_state"] = per_state
    figures["plans"] = plans
    print(
        f"[{label}] due list for {site} on {args.on}, limit {args.limit}: {figures['items']} "
        f"in {figures['statements']} statements (raw rows {figures['raw_rows']})"
    )
    _print_timings(label, "whole list", figures)
    for state_name, state_figures in per_state.items():
        _print_timings(
            label, f"{state_name} only ({state_figures['raw_rows']} rows)", state_figures
        )
    for state_name, lines in plans.items():
        print(f"[{label}] plan, {state_name}:")
        for line in lines:
            print(f"    {line}")
    return figures


def _print_timings(label: str, what: str, figures: dict[str, Any]) -> None:
    print(f"[{label}] {what}:")
    for name in ("app", "app_reused_session", "raw"):
        if name in figures:
            s = figures[name]
            print(
                f"[{label}]   {name:<19} median {s['median_ms']:7.3f} ms  "
                f"p95 {s['p95_ms']:7.3f} ms  min {s['min_ms']:7.3f} ms  max {s['max_ms']:7.3f} ms"
            )
    print(f"[{label}]   app/raw: median {figures['ratio_median']}x, p95 {figures['ratio_p95']}x")


def counts(url: str, site: str, on: date) -> dict[str, Any]:
    """Row counts that give the figures their meaning."""
    queries = {
        "patients": "SELECT count(*) FROM patients",
        "sites": "SELECT count(DISTINCT site_id) FROM patients",
        "assessments": "SELECT count(*) FROM assessments",
        "site_assessments": f"SELECT count(*) FROM assessments WHERE site_id = '{site}'",
        "site_patients": f"SELECT count(*) FROM patients WHERE site_id = '{site}'",
        "site_pending": (
            f"SELECT count(*) FROM assessments WHERE site_id = '{site}' AND status = 'pending'"
        ),
        "site_overdue": (
            f"SELECT count(*) FROM assessments WHERE site_id = '{site}' AND status = 'pending' "
            f"AND window_end < '{on.isoformat()}'"
        ),
        "site_due": (
            f"SELECT count(*) FROM assessments WHERE site_id = '{site}' AND status = 'pending' "
            f"AND window_start <= '{on.isoformat()}' AND window_end >= '{on.isoformat()}'"
        ),
    }
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            return {name: connection.exec_driver_sql(q).scalar() for name, q in queries.items()}
    finally:
        engine.dispose()


def run_sqlite(args: argparse.Namespace, options: LoadOptions, site: str) -> dict[str, Any]:
    if args.sqlite_file is not None:
        return _bench_sqlite_file(args.sqlite_file, args, options, site)
    workdir = Path(tempfile.mkdtemp(prefix="bench-due-list-", dir=args.workdir))
    path = workdir / "due.db"
    try:
        return _bench_sqlite_file(path, args, options, site)
    finally:
        if args.keep:
            print(f"[sqlite] kept {path}")
        else:
            for child in workdir.iterdir():
                child.unlink()
            workdir.rmdir()


def _bench_sqlite_file(
    path: Path, args: argparse.Namespace, options: LoadOptions, site: str
) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    url = f"sqlite:///{path}"
    if path.exists():
        print(f"[sqlite] reusing {path} (no load; --patients etc. are those it was built with)")
        figures["reused"] = str(path)
        site = busiest_site(url)
        figures["site"] = site
    else:
        print(f"[sqlite] loading {args.patients} patients into {path}", flush=True)
        figures.update(load_sqlite(path, options))
    figures["database_mb"] = round(path.stat().st_size / 1e6, 1)
    figures["counts"] = counts(url, site, args.on)
    print(f"[sqlite] {figures['counts']}", flush=True)
    figures.update(bench(url, "sqlite", args, site))
    return figures


def run_postgres_loaded(url: str, args: argparse.Namespace) -> dict[str, Any]:
    """The benchmark on a database loaded before (``--keep``, or another loader)."""
    site = busiest_site(url)
    print(f"[postgresql] reusing the loaded database (no load), busiest site {site}", flush=True)
    figures: dict[str, Any] = {"reused": True, "site": site, "counts": counts(url, site, args.on)}
    print(f"[postgresql] {figures['counts']}", flush=True)
    figures.update(bench(url, "postgresql", args, site))
    figures.update(postgres_facts(url))
    return figures


def postgres_facts(url: str) -> dict[str, Any]:
    with psycopg.connect(libpq_url(url)) as conn:
        version = conn.execute("SHOW server_version").fetchone()
        size = conn.execute("SELECT pg_database_size(current_database())").fetchone()
    return {
        "server_version": version[0] if version else None,
        "database_mb": round(size[0] / 1e6, 1) if size else None,
    }


def run_postgres(args: argparse.Namespace, options: LoadOptions, site: str) -> dict[str, Any]:
    if args.postgres_loaded:
        return run_postgres_loaded(args.postgres_loaded, args)
    url = args.database_url if is_postgres_url(args.database_url) else None
    with postgres_server(url) as server:
        name = args.database_name or f"bench_due_list_{os.getpid()}"
        db_url = create_database(server, name)
        try:
            print(f"[postgresql] loading {args.patients} patients into database {name}", flush=True)
            figures = load_postgres(db_url, options)
            figures["counts"] = counts(db_url, site, args.on)
            print(f"[postgresql] loaded in {figures['load_s']} s: {figures['counts']}", flush=True)
            figures.update(bench(db_url, "postgresql", args, site))
            figures.update(postgres_facts(db_url))
            return figures
        finally:
            if args.keep:
                print(f"[postgresql] kept database {name}: {db_url}")
            else:
                drop_database(server, name)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--patients", type=int, default=100_000)
    parser.add_argument("--sites", type=int, default=2)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--limit", type=int, default=500, help="due_list's limit")
    parser.add_argument(
        "--on", type=date.fromisoformat, default=NOW.date(), help="the day of the list"
    )
    parser.add_argument("--distinct-calendars", type=int, default=5000)
    parser.add_argument("--recent-days", type=int, default=120)
    parser.add_argument(
        "--left-pending",
        type=float,
        default=0.0005,
        help="share of recently closed assessments left overdue (~180 at a 50 000-patient site)",
    )
    parser.add_argument("--missed-share", type=float, default=0.04)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument(
        "--database-url",
        default=get_settings().database_url,
        help="a PostgreSQL URL adds a PostgreSQL run (default: DATABASE_URL as the app reads it)",
    )
    parser.add_argument(
        "--postgres", action="store_true", help="run on a throwaway PostgreSQL cluster"
    )
    parser.add_argument("--no-sqlite", action="store_true")
    parser.add_argument("--workdir", type=Path, default=None, help="where the SQLite file goes")
    parser.add_argument("--keep", action="store_true", help="keep the database")
    parser.add_argument(
        "--sqlite-file",
        type=Path,
        default=None,
        help="SQLite file to use: loaded if missing, reused as it is if present; never deleted",
    )
    parser.add_argument(
        "--postgres-loaded",
        metavar="URL",
        help="a loaded PostgreSQL database to use as it is (--keep, registry_load.py)",
    )
    parser.add_argument(
        "--database-name", help="name of the PostgreSQL database to load (with --keep)"
    )
    args = parser.parse_args()
    if args.patients <= 0 or args.sites <= 0 or args.runs <= 0:
        parser.error("--patients, --sites and --runs must be positive")

    sites = [s[0] for s in SITES][: args.sites] + [
        f"Site{n:02d}" for n in range(len(SITES) + 1, args.sites + 1)
    ]
    site = sites[0]  # patients 0, sites, 2*sites, ...: the largest site
    options = LoadOptions(
        patients=args.patients,
        sites=sites,
        distinct=args.distinct_calendars,
        seed=args.seed,
        on=args.on,
        recent_days=args.recent_days,
        left_pending=args.left_pending,
        missed_share=args.missed_share,
    )
    figures: dict[str, Any] = {
        "benchmark": "due_list",
        "patients": args.patients,
        "sites": args.sites,
        # A reused database: each store's own "site" (its busiest) is the one measured.
        "site": site if not (args.sqlite_file or args.postgres_loaded) else None,
        "on": args.on.isoformat(),
        "limit": args.limit,
        "runs": args.runs,
        "distinct_calendars": min(args.distinct_calendars, args.patients),
        "left_pending": args.left_pending,
    }
    ran = False
    if not args.no_sqlite:
        figures["sqlite"] = run_sqlite(args, options, site)
        ran = True
    if args.postgres or args.postgres_loaded or is_postgres_url(args.database_url):
        figures["postgresql"] = run_postgres(args, options, site)
        ran = True
    if not ran:
        parser.error(
            "nothing to run: --no-sqlite without --postgres or a PostgreSQL --database-url"
        )
    emit(figures)


if __name__ == "__main__":
    main()
