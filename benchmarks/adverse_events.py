"""Adverse events at scale: pulling a 20 000-entry feed, and recording cases concurrently.

    .venv/bin/python benchmarks/adverse_events.py [--entries 20000] [--limits 100,1000]
        [--runs 3] [--http-runs 1] [--threads 4] [--cases-per-thread 50] [--cohort 200]
        [--processes 4] [--postgres | --database-url postgresql+psycopg://...] [--no-sqlite]
        [--no-feed] [--no-record] [--workdir /tmp] [--keep]

The default feed has 20 000 entries (``--entries 20000 --no-record`` takes ~30 s a
store), the size ``run_all.py`` pulls. With ``--entries 200000`` each store takes ~6
minutes on a 2-CPU machine, most of it pulling the whole feed 16 times (FHIR over HTTP:
~1 minute per pull); the raw baseline is faster on a small file that stays in cache, so
the ratios come out lower at 20 000 (~0.09 instead of ~0.13).

SQLite runs on a file in a fresh folder under ``--workdir`` (default /tmp); PostgreSQL on
``--database-url`` (a PostgreSQL URL; default: DATABASE_URL as the app reads it) or,
with ``--postgres``, on a throwaway cluster started by ``tests/pg_cluster.py``. Each
part gets a fresh database, migrated with the Alembic schema, dropped at the end.

1. The feed (``surveillance.adverse_events.feed.feed_page``)
    Set-up, fast and documented because it bypasses ``create_case``: ``--entries``/10
    patients (ages 5-25 at onset, two sites with their countries, the CAR-T protocol),
    then cases and versions written with set-based inserts (``surveillance.kit.bulk``:
    Core ``insert(table)`` with many rows on SQLite, ``COPY`` on PostgreSQL), exactly
    ``--entries`` versions: 1-3 versions per case (some nullified), a mix of categories,
    CTCAE/ASTCT grades, serious and non-serious cases, MedDRA codes and narratives for
    some; follow-ups land later in the feed, interleaved with other cases; sequence is
    1..N contiguous and ``recorded_at`` grows with it. Then ANALYZE.
    Timed for each page size of ``--limits``, ``--runs`` times (the HTTP pulls
    ``--http-runs`` times), interleaved, medians printed:
    * app: the whole feed pulled page by page, ``feed_page`` in a fresh ``read_session``
      per page (as the API does per request): entries/s;
    * http: the same pages through ``GET /api/v1/feeds/adverse-events`` (the real app,
      in process, with FastAPI's TestClient, a pharmacovigilance bearer token,
      ``SURVEILLANCE_FEED_MIN_POLL_SECONDS=0``), as JSON and as FHIR: entries/s of the
      requests; parsing the response (``json.loads``, the consumer's cost) is timed
      apart and not counted. TestClient's own cost per request (``GET /healthz``) is
      printed so it can be discounted (checked once against the app under uvicorn on
      127.0.0.1 with an httpx keep-alive client: the same page times within noise, e.g.
      ~9 ms per 100-entry JSON page and ~240 ms per 1000-entry FHIR page on SQLite);
    * raw: the statement ``feed_page`` sent (captured once with a ``before_cursor_execute``
      listener), run page by page on the raw driver (sqlite3 / psycopg) with
      ``fetchall()``: same columns, no objects, no dicts: entries/s.
    Printed: entries/s of the whole pull (median of the runs) and from the median page
    time (over thousands of pages: robust to a burst of load on a busy machine), the
    ratios app/raw and http/raw for both, the query plan of the page
    statement at a cursor deep in the feed (95 %: after 19 000 by default; EXPLAIN
    QUERY PLAN on SQLite, EXPLAIN (ANALYZE, BUFFERS) on PostgreSQL) with a check that it
    is a range scan of the unique index on ``sequence`` (no full scan, no sort), the
    number of statements per page (1: no N+1), and the per-page time over the first
    and the last pages of the feed (flat if the page is an index range scan).

2. Recording cases under concurrent load (``surveillance.adverse_events.cases.create_case``)
    Set-up: ``--cohort`` CAR-T patients enrolled through ``enroll`` (real calendars, so
    the re-plan each case triggers is realistic) and one webhook endpoint subscribed to
    the case events (each version queues its webhook in the outbox, as in production).
    Timed, each ``--runs`` times: 1 thread, then ``--threads`` threads, each thread
    recording ``--cases-per-thread`` cases, one ``write_session`` per case, for distinct
    patients (no two threads share a patient): ~60 % non-serious (grade 1-2), ~40 %
    serious (grade 3-4, hospitalisation or life-threatening), CRS/ICANS on the ASTCT
    scale, some malignancies (which add tumour testing to the calendar); no fatal case
    (it would end the patient's follow-up). Patients are reused from run to run, so a
    patient collects a few cases. Printed: the statements one case takes (counted on
    an untimed warm-up case), cases/s and p50/p95 latency per case (waiting for the
    writers' lock included), also mean and max, at 1 and at K threads.
    Then the feed is checked: sequences exactly 1..N, no duplicate, count == N cases.
    Baseline in the same process: the same number of case + version rows as one K-thread
    run written by the raw driver (a) with ``executemany`` in one transaction and (b) one
    transaction per case; printed with the ratios.
    With ``--processes P``, also P writer processes (forked; each its own engine and
    interpreter, so Python's GIL does not serialise them as it does threads), each
    ``--cases-per-thread`` cases, after the thread runs of each repetition.
    Printed too, on PostgreSQL: the shares of the cases' time spent waiting for the
    writers' lock and holding it (``LockClock``). The audit chain and the feed's numbers
    are written at commit under one advisory lock (``kit.commit_order``): writers overlap
    but for that short part, so throughput grows with threads up to the machine's CPUs
    (the work is CPU-bound Python: ~2x at most on 2 CPUs). On SQLite writers are
    serialised by ``BEGIN IMMEDIATE``, so throughput does not grow with threads. On SQLite a
    waiting writer sleeps in the busy handler and retries while the others keep taking
    the lock (not a queue), so p50 stays low but the mean and max grow (seconds).

The machine may be busy (the load average is in the JSON): compare ratios, which are
measured in the same process, rather than absolute rates.
Prints readable lines, then the figures as one JSON object on the last line.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import random
import shutil
import sqlite3
import statistics
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from _common import (
    CAR_T,
    NOW,
    SITES,
    create_database,
    drop_database,
    emit,
    is_postgres_url,
    libpq_url,
    percentile,
    postgres_server,
    random_patient,
)
from fastapi.testclient import TestClient
from sqlalchemy import Engine, event, func, select, text
from sqlmodel import col

import rules
from surveillance.accounts import auth
from surveillance.adverse_events.cases import create_case
from surveillance.adverse_events.facts import CaseFacts
from surveillance.adverse_events.feed import feed_page
from surveillance.config import Settings, get_settings
from surveillance.http.app import create_app
from surveillance.kit import migrate
from surveillance.kit.bulk import insert_rows
from surveillance.kit.db import make_engine, read_session, write_session
from surveillance.kit.sqltypes import table_of
from surveillance.main import build_runtime
from surveillance.patients.enrolment import Enrolment, enroll
from surveillance.protocols.registry import registry_for
from surveillance.records.adverse_event_vocabulary import (
    CaseOutcome,
    Category,
    GradeScale,
    Relatedness,
    Seriousness,
)
from surveillance.records.adverse_events import AdverseEventCase, AdverseEventVersion
from surveillance.records.outbox import WebhookEndpoint
from surveillance.records.patients import Patient, PatientStatus
from surveillance.records.sites import add_site

COUNTRIES = {"Rome": "IT", "Erlangen": "DE"}
PV_USER = "pv@sponsor.example"
INVESTIGATOR = "investigator@bench.example"
FEED_START = datetime(2018, 3, 1, 8, 0, tzinfo=UTC)
CHUNK = 20_000  # rows per insert statement during the set-up

# Category -> (share of cases, verbatim terms). Shares after CAR-T in autoimmune disease.
CATEGORIES: dict[str, tuple[float, tuple[str, ...]]] = {
    "crs": (0.22, ("Cytokine release syndrome",)),
    "icans": (0.08, ("Immune effector cell-associated neurotoxicity syndrome",)),
    "infection": (0.25, ("Pneumonia", "Herpes zoster", "Urinary tract infection", "COVID-19")),
    "hematologic": (0.15, ("Neutropenia", "Thrombocytopenia", "Anaemia")),
    "autoimmune": (0.08, ("Lupus flare", "Arthritis", "Autoimmune thyroiditis")),
    "neurologic": (0.05, ("Headache", "Seizure", "Peripheral neuropathy")),
    "malignancy": (0.02, ("T-cell lymphoma", "Basal cell carcinoma")),
    "iec_hs": (0.02, ("Immune effector cell-associated HLH-like syndrome",)),
    "other": (0.13, ("Fatigue", "Rash", "Hypertension")),
}
ASTCT = ("crs", "icans")
TERMS = sorted({term for _, terms in CATEGORIES.values() for term in terms})
MEDDRA = {term: f"{10_000_000 + 7919 * n:08d}" for n, term in enumerate(TERMS)}
RELATEDNESS = [r.value for r in Relatedness]
NARRATIVE = (
    "Onset {days} days after the last visit; reported by the treating physician. "
    "Managed as an outpatient with supportive care; laboratory values followed weekly. "
    "No change to concomitant medication. "
)


# -- the feed's synthetic data ------------------------------------------------------------


@dataclass(frozen=True)
class CaseSpec:
    """One case's random draws; its versions are derived from it deterministically."""

    case_id: str
    patient_id: int
    number: int
    site_id: str
    category: str
    term: str
    meddra: bool
    grade: int | None
    serious: bool
    criteria: str
    relatedness: str
    expected: bool
    onset: date
    awareness: date
    narrative: str | None
    versions: int
    nullified: bool  # its last version nullifies it
    times: tuple[int, ...]  # each version's position on the feed's time line


@dataclass(frozen=True)
class FeedData:
    patients: list[dict[str, Any]]
    cases: list[CaseSpec]
    # (time, case index, version number) in feed order: sequence = position + 1.
    order: list[tuple[int, int, int]]
    minutes_per_time: float


def feed_data(entries: int, patients: int, protocol_version: str, seed: int) -> FeedData:
    rng = random.Random(seed)
    people: list[dict[str, Any]] = []
    for n in range(patients):
        site = SITES[n % len(SITES)][0]
        people.append(
            {
                "id": n + 1,
                "study_id": f"{site[:3].upper()}-{n + 1:06d}",
                "site_id": site,
                # Born 2001-2012: 5 to 25 years old at any onset of 2018-2026.
                "birth_date": date(2001, 1, 1) + timedelta(days=rng.randrange(12 * 365)),
                "sex": rng.choice("FM"),
                "diagnosis": rng.choice(("sle", "ssc", "jdm")),
                "protocol_id": CAR_T,
                "protocol_version": protocol_version,
                "status": PatientStatus.active.value,
                "enrolled_at": FEED_START,
                "version": 1,
            }
        )
    names = list(CATEGORIES)
    weights = [CATEGORIES[c][0] for c in names]
    numbers = [0] * patients
    cases: list[CaseSpec] = []
    total = 0
    while total < entries:
        i = len(cases)
        versions = min(rng.choices((1, 2, 3), (0.5, 0.35, 0.15))[0], entries - total)
        total += versions
        category = rng.choices(names, weights)[0]
        patient = rng.randrange(patients)
        numbers[patient] += 1
        grade: int | None = rng.choices((None, 1, 2, 3, 4, 5), (5, 35, 30, 18, 10, 2))[0]
        if category in ASTCT and grade == 5:
            grade = 4
        serious = (grade is not None and grade >= 3) or rng.random() < 0.05
        criteria = ""
        if grade == 5:
            criteria = "death"
        elif serious:
            criteria = rng.choice(("hospitalization", "life_threatening,hospitalization"))
        # Follow-ups come later, with other cases' entries in between.
        times = [i * 10]
        for _ in range(versions - 1):
            times.append(times[-1] + rng.randrange(10, 30_000))
        cases.append(
            CaseSpec(
                case_id=f"{people[patient]['study_id']}-AE{numbers[patient]:02d}",
                patient_id=patient + 1,
                number=numbers[patient],
                site_id=people[patient]["site_id"],
                category=category,
                term=rng.choice(CATEGORIES[category][1]),
                meddra=rng.random() < 0.6,
                grade=grade,
                serious=serious,
                criteria=criteria,
                relatedness=rng.choice(RELATEDNESS),
                expected=rng.random() < 0.5,
                onset=date(2000, 1, 1),  # set below, from the time of version 1
                awareness=date(2000, 1, 1),
                narrative=NARRATIVE.format(days=rng.randrange(1, 90))
                if rng.random() < 0.5
                else None,
                versions=versions,
                nullified=versions > 1 and rng.random() < 0.03,
                times=tuple(times),
            )
        )
    # ~7.5 years of feed: version 1 is recorded 0-14 days after the onset.
    minutes = 7.5 * 365 * 24 * 60 / (len(cases) * 10)
    for i, case in enumerate(cases):
        recorded = _moment(case.times[0], minutes).date()
        onset = recorded - timedelta(days=rng.randrange(15))
        awareness = min(recorded, onset + timedelta(days=rng.randrange(4)))
        cases[i] = CaseSpec(**{**case.__dict__, "onset": onset, "awareness": awareness})
    order = sorted((t, i, k + 1) for i, case in enumerate(cases) for k, t in enumerate(case.times))
    assert len(order) == entries
    return FeedData(people, cases, order, minutes)


def _moment(time_line: int, minutes: float) -> datetime:
    return FEED_START + timedelta(minutes=time_line * minutes)


def version_row(
    case: CaseSpec, number: int, sequence: int, recorded_at: datetime
) -> dict[str, Any]:
    """Version ``number`` of ``case``: what a follow-up would say at that point."""
    last = number == case.versions
    nullified = last and case.nullified
    fatal = case.grade == 5
    if fatal:
        outcome = CaseOutcome.fatal.value
    elif number == 1:
        outcome = CaseOutcome.not_recovered.value
    elif last:
        recovered = case.grade is not None and case.grade >= 3
        outcome = (
            CaseOutcome.recovered_with_sequelae.value if recovered else CaseOutcome.recovered.value
        )
    else:
        outcome = CaseOutcome.recovering.value
    ended = outcome not in (CaseOutcome.not_recovered.value, CaseOutcome.recovering.value)
    narrative = case.narrative
    if narrative is not None and number > 1:
        narrative += f"Follow-up {number}: outcome {outcome.replace('_', ' ')}."
    scale = None
    if case.grade is not None:
        scale = GradeScale.astct.value if case.category in ASTCT else GradeScale.ctcae_v5.value
    return {
        "case_id": case.case_id,
        "version": number,
        "sequence": sequence,
        "change": "created" if number == 1 else "nullified" if nullified else "updated",
        "onset_date": case.onset,
        "end_date": case.onset + timedelta(days=3 + 4 * number) if ended else None,
        "awareness_date": case.awareness,
        "last_info_date": max(case.awareness, recorded_at.date()),
        "term": case.term,
        "meddra_code": MEDDRA[case.term] if case.meddra else None,
        "meddra_version": "27.1" if case.meddra else None,
        "category": case.category,
        "grade": case.grade,
        "grade_scale": scale,
        "serious": case.serious,
        "seriousness_criteria": case.criteria,
        "relatedness": case.relatedness,
        "expected": case.expected,
        "outcome": outcome,
        "narrative": narrative,
        "pre_existing": False,
        "reporter_qualification": "physician",
        "source": None,
        "nullify_reason": "entered for the wrong patient" if nullified else None,
        "recorded_by": INVESTIGATOR,
        "recorded_at": recorded_at,
    }


def case_row(case: CaseSpec, data: FeedData) -> dict[str, Any]:
    """The case's latest state: its last version."""
    created = _moment(case.times[0], data.minutes_per_time)
    updated = _moment(case.times[-1], data.minutes_per_time)
    latest = version_row(case, case.versions, 0, updated)
    return {
        "case_id": case.case_id,
        "patient_id": case.patient_id,
        "number": case.number,
        "site_id": case.site_id,
        "version": case.versions,
        "status": "nullified" if case.nullified else "open",
        "term": case.term,
        "category": case.category,
        "grade": case.grade,
        "serious": case.serious,
        "onset_date": case.onset,
        "awareness_date": case.awareness,
        "outcome": latest["outcome"],
        "created_at": created,
        "updated_at": updated,
    }


def prepare(url: str, *, pv_user: bool) -> None:
    """Migrate, add the two sites (with their countries) and, if asked, the PV user."""
    engine = make_engine(url)
    try:
        migrate.upgrade(engine)
        with write_session(engine) as session:
            for site_id, name, timezone in SITES:
                add_site(
                    session,
                    site_id=site_id,
                    name=name,
                    timezone=timezone,
                    country=COUNTRIES.get(site_id),
                )
            if pv_user:
                auth.add_user(
                    session, email=PV_USER, role="pharmacovigilance", sites=[], actor="benchmark"
                )
    finally:
        engine.dispose()


def load_feed(
    url: str, args: argparse.Namespace, registry: rules.ProtocolRegistry
) -> dict[str, Any]:
    """The feed's database; returns the set-up figures."""
    started = time.perf_counter()
    prepare(url, pv_user=True)
    version = registry.get(CAR_T).version
    data = feed_data(args.entries, max(1, args.entries // 10), version, args.seed)
    generated = time.perf_counter() - started
    engine = make_engine(url)
    try:
        with write_session(engine) as session:
            insert_rows(session, table_of(Patient), data.patients)
            if engine.dialect.name == "postgresql":
                # Explicit ids: move the sequence past them, as a real enrolment would.
                session.execute(
                    text("SELECT setval('patients_id_seq', :n)"), {"n": len(data.patients)}
                )
            cases = table_of(AdverseEventCase)
            for start in range(0, len(data.cases), CHUNK):
                chunk = data.cases[start : start + CHUNK]
                insert_rows(session, cases, [case_row(c, data) for c in chunk])
        versions = table_of(AdverseEventVersion)
        for start in range(0, len(data.order), CHUNK):
            with write_session(engine) as session:
                rows = [
                    version_row(
                        data.cases[i],
                        number,
                        sequence,
                        _moment(t, data.minutes_per_time),
                    )
                    for sequence, (t, i, number) in enumerate(
                        data.order[start : start + CHUNK], start=start + 1
                    )
                ]
                insert_rows(session, versions, rows)
        with engine.connect() as connection:
            connection.execution_options(isolation_level="AUTOCOMMIT")
            connection.exec_driver_sql(
                "VACUUM ANALYZE" if engine.dialect.name == "postgresql" else "ANALYZE"
            )
    finally:
        engine.dispose()
    seconds = time.perf_counter() - started
    by_versions = {n: sum(1 for c in data.cases if c.versions == n) for n in (1, 2, 3)}
    figures = {
        "patients": len(data.patients),
        "cases": len(data.cases),
        "cases_by_version_count": by_versions,
        "serious_cases": sum(c.serious for c in data.cases),
        "nullified_cases": sum(c.nullified for c in data.cases),
        "setup_s": round(seconds, 1),
        "generate_s": round(generated, 1),
    }
    print(
        f"  set-up: {args.entries} versions of {len(data.cases)} cases "
        f"({by_versions} by number of versions), {len(data.patients)} patients, "
        f"in {seconds:.1f} s (of which {generated:.1f} s generating)",
        flush=True,
    )
    return figures


# -- the feed: timing ----------------------------------------------------------------------


@dataclass
class Pull:
    entries: int
    pages: int
    seconds: float
    page_seconds: list[float]
    extra_seconds: float = 0.0  # HTTP: the consumer's json.loads, not counted
    bytes: int = 0


def pull_app(engine: Engine, registry: rules.ProtocolRegistry, limit: int) -> Pull:
    """The whole feed with ``feed_page``, a read session per page (as per request)."""
    after, entries, timings = 0, 0, []
    started = time.perf_counter()
    while True:
        t0 = time.perf_counter()
        with read_session(engine) as session:
            page = feed_page(session, after=after, limit=limit, registry=registry)
        timings.append(time.perf_counter() - t0)
        entries += len(page.entries)
        after = int(page.next_cursor)
        if page.caught_up:
            break
    return Pull(entries, len(timings), time.perf_counter() - started, timings)


def pull_http(client: TestClient, token: str, limit: int, fhir: bool) -> Pull:
    """The whole feed through the API; the next cursor is read from the page's ETag."""
    headers = {"Authorization": f"Bearer {token}"}
    cursor, entries, timings, parse, size = "", 0, [], 0.0, 0
    fmt = "fhir" if fhir else "json"
    while True:
        params: dict[str, Any] = {"limit": limit, "format": fmt}
        if cursor:
            params["cursor"] = cursor
        t0 = time.perf_counter()
        response = client.get("/api/v1/feeds/adverse-events", params=params, headers=headers)
        t1 = time.perf_counter()
        if response.status_code != 200:
            raise RuntimeError(f"{response.status_code}: {response.text[:300]}")
        body = json.loads(response.content)
        parse += time.perf_counter() - t1
        timings.append(t1 - t0)
        size += len(response.content)
        count = len(body.get("entry", ())) if fhir else len(body["entries"])
        entries += count
        # ETag: "feed-{after}-{limit}-{next_cursor}-{format}"
        cursor = response.headers["etag"].strip('"').split("-")[3]
        if count < limit:
            break
    return Pull(entries, len(timings), sum(timings), timings, parse, size)


@dataclass(frozen=True)
class PageStatement:
    """The SQL ``feed_page`` sends, in the driver's parameter style, and how to rebind it."""

    sql: str
    params: Any
    after_key: Any  # index (qmark) or name (pyformat) of the cursor parameter
    limit_key: Any


def captured_statement(
    engine: Engine, registry: rules.ProtocolRegistry, after: int, limit: int
) -> tuple[PageStatement, int]:
    """Run one page and keep what the driver got; also how many statements it took."""
    sent: list[tuple[str, Any]] = []

    def listener(
        _c: Any, _cur: Any, statement: str, parameters: Any, _ctx: Any, _many: bool
    ) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            sent.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", listener)
    try:
        with read_session(engine) as session:
            feed_page(session, after=after, limit=limit, registry=registry)
    finally:
        event.remove(engine, "before_cursor_execute", listener)
    sql, params = sent[0]
    items = list(params.items()) if isinstance(params, dict) else list(enumerate(params))
    after_keys = [k for k, v in items if v == after]
    limit_keys = [k for k, v in items if v == limit]
    assert len(after_keys) == 1, (sql, params)
    assert len(limit_keys) == 1, (sql, params)
    return PageStatement(sql, params, after_keys[0], limit_keys[0]), len(sent)


def bind(statement: PageStatement, after: int, limit: int) -> Any:
    if isinstance(statement.params, dict):
        return {**statement.params, statement.after_key: after, statement.limit_key: limit}
    values = list(statement.params)
    values[statement.after_key], values[statement.limit_key] = after, limit
    return tuple(values)


class RawFeed:
    """The page statement on the raw driver: one connection, ``fetchall()``, no objects."""

    def __init__(self, url: str, statement: PageStatement) -> None:
        self.postgres = is_postgres_url(url)
        self.statement = statement
        self.conn: Any = (
            psycopg.connect(libpq_url(url))
            if self.postgres
            else sqlite3.connect(url.split("///", 1)[1])
        )
        cursor: Any = self.conn.cursor()
        cursor.execute(statement.sql, bind(statement, 0, 1))
        names = [d[0] for d in cursor.description]
        cursor.fetchall()
        self._end()
        self.sequence_at = names.index("sequence")

    def _end(self) -> None:
        if self.postgres:
            self.conn.rollback()  # the read transaction psycopg opened, as a session's close

    def pull(self, limit: int) -> Pull:
        cursor = self.conn.cursor()
        after, entries, timings = 0, 0, []
        started = time.perf_counter()
        while True:
            t0 = time.perf_counter()
            cursor.execute(self.statement.sql, bind(self.statement, after, limit))
            rows = cursor.fetchall()
            self._end()
            timings.append(time.perf_counter() - t0)
            entries += len(rows)
            if rows:
                after = rows[-1][self.sequence_at]
            if len(rows) < limit:
                break
        return Pull(entries, len(timings), time.perf_counter() - started, timings)

    def plan(self, after: int, limit: int) -> list[str]:
        cursor = self.conn.cursor()
        params = bind(self.statement, after, limit)
        if self.postgres:
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + self.statement.sql, params)
            lines = [row[0] for row in cursor.fetchall()]
            self._end()
            return lines
        cursor.execute("EXPLAIN QUERY PLAN " + self.statement.sql, params)
        depth: dict[int, int] = {0: -1}
        lines = []
        for node, parent, _unused, detail in cursor.fetchall():
            depth[node] = depth.get(parent, -1) + 1
            lines.append("  " * depth[node] + detail)
        return lines

    def sequence_index(self) -> str:
        """The name of the unique index on ``adverse_event_versions.sequence``."""
        cursor = self.conn.cursor()
        if self.postgres:
            cursor.execute(
                "SELECT indexname FROM pg_indexes WHERE tablename = 'adverse_event_versions' "
                "AND indexdef LIKE 'CREATE UNIQUE INDEX % (sequence)'"
            )
            name: str = cursor.fetchone()[0]
            self._end()
            return name
        for _seq, index, unique, *_ in cursor.execute(
            "PRAGMA index_list('adverse_event_versions')"
        ).fetchall():
            columns = [r[2] for r in self.conn.execute(f"PRAGMA index_info('{index}')")]
            if unique and columns == ["sequence"]:
                return str(index)
        raise RuntimeError("no unique index on adverse_event_versions.sequence")

    def close(self) -> None:
        self.conn.close()


def index_range_scan(plan: list[str], index: str, postgres: bool) -> bool:
    """The versions are read by a range on the sequence index, in its order (no sort)."""
    joined = "\n".join(plan)
    if postgres:
        return (
            f"Index Scan using {index} on adverse_event_versions" in joined
            and "Seq Scan on adverse_event_versions" not in joined
            and "Sort" not in joined
        )
    return (
        f"adverse_event_versions USING INDEX {index} (sequence>?)" in joined
        and "SCAN adverse_event_versions" not in joined
        and "TEMP B-TREE" not in joined
    )


def rate(pulls: list[Pull]) -> float:
    """Entries/s of the median pull."""
    return statistics.median(p.entries / p.seconds for p in pulls)


def page_rate(pulls: list[Pull], limit: int) -> float:
    """Entries/s of the median full page over all runs (robust to a burst of load)."""
    full = [t for p in pulls for t in p.page_seconds[:-1]] or [pulls[0].page_seconds[0]]
    return limit / statistics.median(full)


def flatness(pulls: list[Pull]) -> dict[str, float]:
    """Median page time (ms) over the first and the last 20 full pages of the feed."""
    pages = max(1, min(20, pulls[0].pages // 4))
    first = [s for p in pulls for s in p.page_seconds[:pages]]
    # The last page is the empty "caught up" one: leave it out.
    last = [s for p in pulls for s in p.page_seconds[-pages - 1 : -1]]
    start, end = statistics.median(first) * 1000, statistics.median(last) * 1000
    return {"first_pages_ms": round(start, 3), "last_pages_ms": round(end, 3)}


def client_overhead(client: TestClient, runs: int = 300) -> float:
    """Median ms of ``GET /healthz`` (no database, no auth): TestClient's own cost."""
    timings = []
    for _ in range(runs):
        t0 = time.perf_counter()
        client.get("/healthz")
        timings.append(time.perf_counter() - t0)
    return statistics.median(timings) * 1000


def bench_feed(
    label: str, url: str, args: argparse.Namespace, registry: rules.ProtocolRegistry
) -> dict[str, Any]:
    figures: dict[str, Any] = {"entries": args.entries}
    print(f"[{label}] feed: loading {args.entries} entries", flush=True)
    figures["setup"] = load_feed(url, args, registry)
    engine = make_engine(url)
    with write_session(engine) as session:
        _, token = auth.create_token(session, email=PV_USER, actor="benchmark", now=NOW)
    deep = max(1, args.entries * 95 // 100)
    capture_limit = 999 if deep == 1000 else 1000
    statement, statements = captured_statement(engine, registry, deep, capture_limit)
    raw = RawFeed(url, statement)
    postgres = raw.postgres
    settings = Settings(database_url=url, feed_min_poll_seconds=0)
    app = create_app(build_runtime(settings, clock=lambda: NOW, registry=registry))
    try:
        # Query plan at a cursor deep in the feed.
        index = raw.sequence_index()
        plan = raw.plan(deep, 100)
        ok = index_range_scan(plan, index, postgres)
        figures["plan"] = {"after": deep, "limit": 100, "lines": plan, "index": index}
        figures["plan"]["index_range_scan"] = ok
        figures["statements_per_page"] = statements
        print(f"[{label}] page statement ({statements} statement per page):")
        print("    " + statement.sql.replace("\n", "\n    "))
        print(f"[{label}] plan after {deep}, limit 100:")
        for line in plan:
            print(f"    {line}")
        verdict = "OK: range scan of" if ok else "PROBLEM: not a plain range scan of"
        print(f"[{label}] {verdict} the unique index {index} on sequence (no full scan, no sort)")
        if not ok and args.entries < 50_000:
            # On a few thousand rows PostgreSQL rightly prefers hash joins and a sort.
            print(f"[{label}]   (a small feed: check the plan with the default --entries)")

        with TestClient(app) as client:
            overhead = client_overhead(client)
            figures["testclient_ms_per_request"] = round(overhead, 3)
            print(f"[{label}] TestClient cost per request (GET /healthz): {overhead:.3f} ms")
            for limit in args.limits:
                figures[f"limit_{limit}"] = _compare(
                    label, engine, registry, client, token, raw, limit, args, overhead
                )
    finally:
        raw.close()
        app.state.surveillance.engine.dispose()
        engine.dispose()
    return figures


def _compare(
    label: str,
    engine: Engine,
    registry: rules.ProtocolRegistry,
    client: TestClient,
    token: str,
    raw: RawFeed,
    limit: int,
    args: argparse.Namespace,
    overhead_ms: float,
) -> dict[str, Any]:
    pulls: dict[str, list[Pull]] = {"raw": [], "app": [], "http_json": [], "http_fhir": []}
    # Interleaved, so a burst of load on the machine hits every variant alike.
    for run in range(args.runs):
        pulls["raw"].append(raw.pull(limit))
        pulls["app"].append(pull_app(engine, registry, limit))
        if run < args.http_runs:
            pulls["http_json"].append(pull_http(client, token, limit, fhir=False))
            pulls["http_fhir"].append(pull_http(client, token, limit, fhir=True))
    raw_rate = rate(pulls["raw"])
    raw_page_rate = page_rate(pulls["raw"], limit)
    out: dict[str, Any] = {"pages": pulls["app"][0].pages}
    print(
        f"[{label}] whole feed at limit {limit} ({out['pages']} pages); entries/s of the "
        f"whole pull (median of runs) and from the median full page; ratio to raw:"
    )
    for name, done in pulls.items():
        if not done:
            continue
        counts = {p.entries for p in done}
        per_s, per_page = rate(done), page_rate(done, limit)
        figures: dict[str, Any] = {
            "runs": len(done),
            "entries": sorted(counts),
            "entries_per_s": round(per_s, 1),
            "seconds": [round(p.seconds, 2) for p in done],
            "vs_raw": round(per_s / raw_rate, 3),
            "median_page_entries_per_s": round(per_page, 1),
            "median_page_vs_raw": round(per_page / raw_page_rate, 3),
            "page_ms": flatness(done),
        }
        line = (
            f"[{label}]   {name:<9} x{len(done)} {per_s:>9,.0f}/s "
            f"({statistics.median(p.seconds for p in done):6.2f} s) vs raw {per_s / raw_rate:5.3f}"
            f" | page {per_page:>9,.0f}/s vs raw {per_page / raw_page_rate:5.3f}"
            f" | page ms first {figures['page_ms']['first_pages_ms']:7.2f}"
            f" last {figures['page_ms']['last_pages_ms']:7.2f}"
        )
        if name.startswith("http"):
            figures["bytes_per_entry"] = round(done[0].bytes / max(1, done[0].entries))
            figures["client_parse_s"] = round(statistics.median(p.extra_seconds for p in done), 2)
            # TestClient's own cost (measured on /healthz) as a share of the pull.
            share = done[0].pages * overhead_ms / 1000 / statistics.median(p.seconds for p in done)
            figures["testclient_share"] = round(share, 3)
            line += (
                f" | {figures['bytes_per_entry']} B/entry; TestClient ~{share:.0%} of it; "
                f"client json.loads {figures['client_parse_s']} s not counted"
            )
        print(line, flush=True)
        out[name] = figures
        if counts != {args.entries}:
            print(
                f"[{label}]   WARNING: {name} pulled {sorted(counts)} entries, not {args.entries}"
            )
    return out


# -- recording under concurrent load ------------------------------------------------------


def random_facts(rng: random.Random, infusion: date, today: date) -> CaseFacts:
    """A plausible new case, serious in ~40 %; never fatal (the patient stays enrolled)."""
    span = max(1, (today - infusion).days)
    onset = infusion + timedelta(days=rng.randrange(span))
    awareness = min(today, onset + timedelta(days=rng.randrange(4)))
    category = rng.choices(list(CATEGORIES), [w for w, _ in CATEGORIES.values()])[0]
    serious = rng.random() < 0.4
    grade = rng.randint(3, 4) if serious else rng.randint(1, 2)
    term = rng.choice(CATEGORIES[category][1])
    return CaseFacts(
        onset_date=onset,
        awareness_date=awareness,
        term=term,
        category=Category(category),
        serious=serious,
        relatedness=Relatedness(rng.choice(RELATEDNESS)),
        expected=rng.random() < 0.5,
        outcome=CaseOutcome.not_recovered,
        meddra_code=MEDDRA[term],
        meddra_version="27.1",
        grade=grade,
        grade_scale=GradeScale.astct if category in ASTCT else GradeScale.ctcae_v5,
        seriousness_criteria=(
            (rng.choice((Seriousness.hospitalization, Seriousness.life_threatening)),)
            if serious
            else ()
        ),
        narrative=NARRATIVE.format(days=rng.randrange(1, 90)) if rng.random() < 0.5 else None,
    )


@dataclass(frozen=True)
class Cohort:
    study_ids: list[str]
    infusions: dict[str, date]
    patient_ids: dict[str, int]


def enroll_cohort(url: str, size: int, registry: rules.ProtocolRegistry, seed: int) -> Cohort:
    prepare(url, pv_user=False)
    rng = random.Random(seed)
    people = [random_patient(rng, n, CAR_T) for n in range(size)]
    engine = make_engine(url)
    try:
        with write_session(engine) as session:
            ids = enroll(
                session,
                [
                    Enrolment(
                        p.study_id,
                        p.site_id,
                        p.birth_date,
                        p.sex,
                        p.diagnosis,
                        p.protocol_id,
                        p.infusion_date,
                    )
                    for p in people
                ],
                registry=registry,
                now=NOW,
                actor="benchmark",
            )
            # A safety system's webhook: each case version queues an alert for it.
            session.add(
                WebhookEndpoint(
                    id="wh_safety",
                    url="https://safety.example/hooks",
                    event_types="adverse_event.created,adverse_event.updated,"
                    "adverse_event.nullified,adverse_event.serious",
                    secret="whsec_benchmark",
                    created_at=NOW,
                )
            )
    finally:
        engine.dispose()
    return Cohort([p.study_id for p in people], {p.study_id: p.infusion_date for p in people}, ids)


@dataclass
class RecordRun:
    threads: int
    cases: int
    seconds: float
    latencies: list[float]
    errors: list[str]
    waited: float = 0.0  # seconds spent waiting for the writers' lock, all cases
    held: float = 0.0  # seconds from taking it to the end of the commit, all cases


class LockClock:
    """Per case (PostgreSQL): the time waiting for the writers' lock (the
    ``pg_advisory_xact_lock`` statement) and holding it (from then to the end of the
    commit, which releases it). SQLite's BEGIN IMMEDIATE wait is not separated: zeros."""

    def __init__(self, engine: Engine) -> None:
        self._local = threading.local()
        event.listen(engine, "before_cursor_execute", self._before)
        event.listen(engine, "after_cursor_execute", self._after)

    def _before(self, _c: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if "pg_advisory_xact_lock" in statement:
            self._local.asked = time.perf_counter()

    def _after(self, _c: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if "pg_advisory_xact_lock" in statement and getattr(self._local, "got", None) is None:
            self._local.got = time.perf_counter()  # the first time: later ones are re-entrant
            self._local.waited = self._local.got - self._local.asked

    def start(self) -> None:
        self._local.got = None
        self._local.waited = 0.0

    def stop(self) -> tuple[float, float]:
        """(waited, held) of the case just committed."""
        got = self._local.got
        return (self._local.waited, 0.0 if got is None else time.perf_counter() - got)


def record_run(
    engine: Engine,
    cohort: Cohort,
    registry: rules.ProtocolRegistry,
    threads: int,
    per_thread: int,
    rng: random.Random,
    clock: LockClock,
) -> RecordRun:
    """``threads`` threads, each ``per_thread`` cases for its own patients."""
    today = NOW.date()
    work: list[list[tuple[str, CaseFacts]]] = []
    for t in range(threads):
        mine = cohort.study_ids[t::threads]
        work.append(
            [
                (
                    mine[n % len(mine)],
                    random_facts(rng, cohort.infusions[mine[n % len(mine)]], today),
                )
                for n in range(per_thread)
            ]
        )
    latencies: list[list[float]] = [[] for _ in range(threads)]
    locked: list[list[tuple[float, float]]] = [[] for _ in range(threads)]
    errors: list[str] = []
    start = threading.Barrier(threads + 1)

    def writer(t: int) -> None:
        start.wait()
        for study_id, facts in work[t]:
            t0 = time.perf_counter()
            clock.start()
            try:
                with write_session(engine) as session:
                    create_case(
                        session,
                        study_id=study_id,
                        facts=facts,
                        actor=INVESTIGATOR,
                        registry=registry,
                        now=NOW,
                    )
            except Exception as exc:  # counted and reported: the run goes on
                errors.append(f"{study_id}: {type(exc).__name__}: {exc}")
                continue
            locked[t].append(clock.stop())
            latencies[t].append(time.perf_counter() - t0)

    pool = [threading.Thread(target=writer, args=(t,)) for t in range(threads)]
    for thread in pool:
        thread.start()
    start.wait()
    started = time.perf_counter()
    for thread in pool:
        thread.join()
    seconds = time.perf_counter() - started
    done = [s for per in latencies for s in per]
    waited = sum(w for per in locked for w, _ in per)
    held = sum(h for per in locked for _, h in per)
    return RecordRun(threads, len(done), seconds, done, errors, waited, held)


def _process_writer(
    url: str,
    work: list[tuple[str, CaseFacts]],
    registry: rules.ProtocolRegistry,
    start: Any,
    results: Any,
) -> None:
    """One writer process (``--processes``): its own engine and interpreter (no GIL
    shared with the other writers)."""
    engine = make_engine(url)
    clock = LockClock(engine)
    latencies: list[float] = []
    errors: list[str] = []
    waited = held = 0.0
    start.wait()
    for study_id, facts in work:
        t0 = time.perf_counter()
        clock.start()
        try:
            with write_session(engine) as session:
                create_case(session, study_id=study_id, facts=facts, actor=INVESTIGATOR,
                            registry=registry, now=NOW)  # fmt: skip
        except Exception as exc:  # counted and reported: the run goes on
            errors.append(f"{study_id}: {type(exc).__name__}: {exc}")
            continue
        w, h = clock.stop()
        waited, held = waited + w, held + h
        latencies.append(time.perf_counter() - t0)
    engine.dispose()
    results.put((latencies, errors, waited, held))


def record_run_processes(
    url: str,
    cohort: Cohort,
    registry: rules.ProtocolRegistry,
    processes: int,
    per_process: int,
    rng: random.Random,
) -> RecordRun:
    """As ``record_run``, with ``processes`` writer processes instead of threads."""
    today = NOW.date()
    context = multiprocessing.get_context("fork")
    start = context.Barrier(processes + 1)
    results = context.Queue()
    pool = []
    for t in range(processes):
        mine = cohort.study_ids[t::processes]
        work = [
            (mine[n % len(mine)], random_facts(rng, cohort.infusions[mine[n % len(mine)]], today))
            for n in range(per_process)
        ]
        pool.append(
            context.Process(target=_process_writer, args=(url, work, registry, start, results))
        )
    for process in pool:
        process.start()
    start.wait()
    started = time.perf_counter()
    done = [results.get() for _ in pool]
    seconds = time.perf_counter() - started
    for process in pool:
        process.join()
    latencies = [s for d in done for s in d[0]]
    errors = [e for d in done for e in d[1]]
    waited, held = sum(d[2] for d in done), sum(d[3] for d in done)
    return RecordRun(processes, len(latencies), seconds, latencies, errors, waited, held)


def statements_per_case(
    engine: Engine, cohort: Cohort, registry: rules.ProtocolRegistry, rng: random.Random
) -> int:
    """Record one case (untimed: it also warms the caches) and count its statements."""
    sent: list[str] = []

    def listener(_c: Any, _cur: Any, statement: str, _params: Any, _ctx: Any, _many: bool) -> None:
        sent.append(statement)

    study_id = cohort.study_ids[-1]
    facts = random_facts(rng, cohort.infusions[study_id], NOW.date())
    event.listen(engine, "before_cursor_execute", listener)
    try:
        with write_session(engine) as session:
            create_case(
                session,
                study_id=study_id,
                facts=facts,
                actor=INVESTIGATOR,
                registry=registry,
                now=NOW,
            )
    finally:
        event.remove(engine, "before_cursor_execute", listener)
    return len(sent)


def verify_feed(engine: Engine, registry: rules.ProtocolRegistry, expected: int) -> dict[str, Any]:
    """Sequences exactly 1..N in the feed, no duplicate, as many entries as cases written."""
    sequences: list[int] = []
    after = 0
    with read_session(engine) as session:
        while True:
            page = feed_page(session, after=after, limit=1000, registry=registry)
            sequences += [e["sequence"] for e in page.entries]
            after = int(page.next_cursor)
            if page.caught_up:
                break
        rows = session.execute(select(func.count()).select_from(AdverseEventVersion)).scalar_one()
        cases = session.execute(
            select(func.count(func.distinct(col(AdverseEventVersion.case_id))))
        ).scalar_one()
    ok = (
        sequences == list(range(1, expected + 1))
        and len(set(sequences)) == len(sequences)
        and rows == expected
        and cases == expected
    )
    return {
        "entries": len(sequences),
        "version_rows": rows,
        "cases": cases,
        "expected": expected,
        "contiguous_1_to_n": sequences == list(range(1, len(sequences) + 1)),
        "ok": ok,
    }


class RawWriter:
    """Case and version rows written by the raw driver, numbered after what exists."""

    def __init__(self, url: str, cohort: Cohort) -> None:
        self.postgres = is_postgres_url(url)
        self.cohort = cohort
        if self.postgres:
            self.conn: Any = psycopg.connect(libpq_url(url))
            mark = "%s"
        else:
            self.conn = sqlite3.connect(url.split("///", 1)[1], isolation_level=None)
            # As the app's engine: WAL is the file's, synchronous as db.make_engine sets it.
            self.conn.execute("PRAGMA synchronous=NORMAL")
            mark = "?"
        self.case_columns = list(case_row_columns())
        self.version_columns = list(version_row(_dummy_case(), 1, 1, NOW))
        self.insert_case = _insert("adverse_event_cases", self.case_columns, mark)
        self.insert_version = _insert("adverse_event_versions", self.version_columns, mark)
        cursor = self.conn.cursor()
        cursor.execute("SELECT coalesce(max(sequence), 0) FROM adverse_event_versions")
        self.sequence = int(cursor.fetchone()[0])
        self._commit()
        self.number = 1000  # case numbers per patient beyond those the app gave

    def _commit(self) -> None:
        if self.postgres:
            self.conn.commit()

    def rows(self, count: int) -> list[tuple[tuple[Any, ...], tuple[Any, ...]]]:
        out = []
        for n in range(count):
            study_id = self.cohort.study_ids[n % len(self.cohort.study_ids)]
            self.number += 1
            self.sequence += 1
            spec = CaseSpec(
                **{
                    **_dummy_case().__dict__,
                    "case_id": f"{study_id}-RAW{self.number}",
                    "patient_id": self.cohort.patient_ids[study_id],
                    "number": self.number,
                    "site_id": SITES[0][0],
                }
            )
            case = {**_case_values(spec), "created_at": NOW, "updated_at": NOW}
            version = version_row(spec, 1, self.sequence, NOW)
            out.append(
                (
                    tuple(self._value(case[c]) for c in self.case_columns),
                    tuple(self._value(version[c]) for c in self.version_columns),
                )
            )
        return out

    def _value(self, value: Any) -> Any:
        if self.postgres:
            return value
        if isinstance(value, datetime):
            return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
        if isinstance(value, date):
            return value.isoformat()
        if isinstance(value, bool):
            return int(value)
        return value

    @contextmanager
    def _transaction(self) -> Iterator[Any]:
        cursor = self.conn.cursor()
        if self.postgres:
            with self.conn.transaction():
                yield cursor
        else:
            cursor.execute("BEGIN IMMEDIATE")
            yield cursor
            cursor.execute("COMMIT")

    def executemany(self, count: int) -> float:
        """``count`` cases and versions in one transaction; seconds."""
        rows = self.rows(count)
        t0 = time.perf_counter()
        with self._transaction() as cursor:
            cursor.executemany(self.insert_case, [c for c, _ in rows])
            cursor.executemany(self.insert_version, [v for _, v in rows])
        return time.perf_counter() - t0

    def one_per_transaction(self, count: int) -> float:
        """``count`` cases, each case and its version in its own transaction; seconds."""
        rows = self.rows(count)
        t0 = time.perf_counter()
        for case, version in rows:
            with self._transaction() as cursor:
                cursor.execute(self.insert_case, case)
                cursor.execute(self.insert_version, version)
        return time.perf_counter() - t0

    def close(self) -> None:
        self.conn.close()


def _dummy_case() -> CaseSpec:
    return CaseSpec(
        case_id="X",
        patient_id=1,
        number=1,
        site_id=SITES[0][0],
        category="infection",
        term="Pneumonia",
        meddra=True,
        grade=3,
        serious=True,
        criteria="hospitalization",
        relatedness="not_related",
        expected=False,
        onset=date(2025, 12, 1),
        awareness=date(2025, 12, 2),
        narrative=NARRATIVE.format(days=12),
        versions=1,
        nullified=False,
        times=(0,),
    )


def _case_values(case: CaseSpec) -> dict[str, Any]:
    return {
        "case_id": case.case_id,
        "patient_id": case.patient_id,
        "number": case.number,
        "site_id": case.site_id,
        "version": 1,
        "status": "open",
        "term": case.term,
        "category": case.category,
        "grade": case.grade,
        "serious": case.serious,
        "onset_date": case.onset,
        "awareness_date": case.awareness,
        "outcome": CaseOutcome.not_recovered.value,
    }


def case_row_columns() -> list[str]:
    return [*_case_values(_dummy_case()), "created_at", "updated_at"]


def _insert(table: str, columns: list[str], mark: str) -> str:
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join([mark] * len(columns))})"


def _latency(runs: list[RecordRun]) -> dict[str, Any]:
    per_s = statistics.median(r.cases / r.seconds for r in runs)
    p50 = statistics.median(statistics.median(r.latencies) for r in runs) * 1000
    p95 = statistics.median(percentile(r.latencies, 95) for r in runs) * 1000
    # Mean and max too: SQLite's busy handler is not fair (a waiting writer sleeps and
    # retries while the others take the lock), so the wait hides in a few long cases.
    mean = statistics.median(statistics.mean(r.latencies) for r in runs) * 1000
    worst = max(max(r.latencies) for r in runs) * 1000
    return {
        "cases_per_run": [r.cases for r in runs],
        "cases_per_s": round(per_s, 1),
        "p50_ms": round(p50, 2),
        "p95_ms": round(p95, 2),
        "mean_ms": round(mean, 2),
        "max_ms": round(worst, 2),
        "seconds": [round(r.seconds, 2) for r in runs],
        "errors": sum(len(r.errors) for r in runs),
        # Shares of the cases' summed latency: waiting for the lock, and holding it.
        "lock_wait_share": round(statistics.median(r.waited / sum(r.latencies) for r in runs), 3),
        "lock_held_share": round(statistics.median(r.held / sum(r.latencies) for r in runs), 3),
    }


def bench_record(
    label: str, url: str, args: argparse.Namespace, registry: rules.ProtocolRegistry
) -> dict[str, Any]:
    started = time.perf_counter()
    cohort = enroll_cohort(url, args.cohort, registry, args.seed)
    print(
        f"[{label}] record: enrolled {args.cohort} CAR-T patients through enroll "
        f"in {time.perf_counter() - started:.1f} s",
        flush=True,
    )
    engine = make_engine(url, pool_size=max(5, args.threads))
    clock = LockClock(engine)
    rng = random.Random(args.seed + 7)
    runs: dict[int, list[RecordRun]] = {1: [], args.threads: []}
    process_runs: list[RecordRun] = []
    try:
        statements = statements_per_case(engine, cohort, registry, rng)
        print(
            f"[{label}]   one case (untimed warm-up) took {statements} statements "
            "(patient lock, checks, case, version, audit, outbox, calendar diff)",
            flush=True,
        )
        # Interleaved: 1 thread, K threads, 1 thread, ... so load bursts hit both alike.
        for _ in range(args.runs):
            for threads in runs:
                run = record_run(
                    engine, cohort, registry, threads, args.cases_per_thread, rng, clock
                )
                runs[threads].append(run)
                for error in run.errors[:3]:
                    print(f"[{label}]   ERROR {error}")
            if args.processes:
                engine.dispose()  # no pooled connection shared with the forked writers
                run = record_run_processes(
                    url, cohort, registry, args.processes, args.cases_per_thread, rng
                )
                process_runs.append(run)
                for error in run.errors[:3]:
                    print(f"[{label}]   ERROR {error}")
        written = 1 + sum(r.cases for done in [*runs.values(), process_runs] for r in done)
        check = verify_feed(engine, registry, written)
    finally:
        engine.dispose()
    figures: dict[str, Any] = {
        "cohort": args.cohort,
        "cases_per_thread": args.cases_per_thread,
        "statements_per_case": statements,
        "writers_serialised_by": "advisory lock at commit (audit chain, feed numbers)"
        if is_postgres_url(url)
        else "BEGIN IMMEDIATE",
    }
    for threads, done in runs.items():
        figures[f"threads_{threads}"] = _latency(done)
    if process_runs:
        figures[f"processes_{args.processes}"] = _latency(process_runs)
    figures["feed_check"] = check

    # Baselines: as many case + version rows as one K-thread run, by the raw driver.
    count = args.threads * args.cases_per_thread
    raw = RawWriter(url, cohort)
    try:
        many = [count / raw.executemany(count) for _ in range(args.runs)]
        single = [count / raw.one_per_transaction(count) for _ in range(args.runs)]
    finally:
        raw.close()
    figures["raw_executemany_rows_per_s"] = round(statistics.median(many), 1)
    figures["raw_one_transaction_per_case_per_s"] = round(statistics.median(single), 1)

    one, many_threads = figures["threads_1"], figures[f"threads_{args.threads}"]
    print(f"[{label}] recording cases (create_case, median of {args.runs} runs):")
    for threads in runs:
        f = figures[f"threads_{threads}"]
        print(
            f"[{label}]   {threads} thread(s) x {args.cases_per_thread}: "
            f"{f['cases_per_s']:7.1f} cases/s  p50 {f['p50_ms']:7.2f} ms  "
            f"p95 {f['p95_ms']:7.2f} ms  mean {f['mean_ms']:7.2f} ms  "
            f"max {f['max_ms']:8.2f} ms  errors {f['errors']}  lock: waiting "
            f"{f['lock_wait_share']:.0%}, holding {f['lock_held_share']:.0%} of the time"
        )
    if process_runs:
        f = figures[f"processes_{args.processes}"]
        scaled = f["cases_per_s"] / one["cases_per_s"]
        figures[f"scaling_{args.processes}_processes_vs_1_thread"] = round(scaled, 2)
        print(
            f"[{label}]   {args.processes} processes x {args.cases_per_thread}: "
            f"{f['cases_per_s']:7.1f} cases/s ({scaled:.2f}x 1 thread)  p50 {f['p50_ms']:7.2f} ms"
            f"  p95 {f['p95_ms']:7.2f} ms  errors {f['errors']}  lock: waiting "
            f"{f['lock_wait_share']:.0%}, holding {f['lock_held_share']:.0%} of the time"
        )
    scaling = many_threads["cases_per_s"] / one["cases_per_s"]
    figures["scaling_k_vs_1"] = round(scaling, 2)
    if is_postgres_url(url):
        expected = (
            "writers overlap but for the lock taken at commit (chain and feed numbers): "
            f"bounded by the machine's {os.cpu_count()} CPUs (Python work is CPU-bound)"
        )
    else:
        expected = "~1x: SQLite writers are serialised by BEGIN IMMEDIATE"
    print(f"[{label}]   {args.threads} threads / 1 thread: {scaling:.2f}x throughput ({expected}).")
    print(
        f"[{label}]   raw driver, {count} case+version rows: executemany in one "
        f"transaction {figures['raw_executemany_rows_per_s']:,.0f}/s; one transaction per "
        f"case {figures['raw_one_transaction_per_case_per_s']:,.0f}/s"
    )
    for name in ("raw_executemany_rows_per_s", "raw_one_transaction_per_case_per_s"):
        figures[f"ratio_1_thread_vs_{name}"] = round(one["cases_per_s"] / figures[name], 4)
    print(
        f"[{label}]   app (1 thread) / raw executemany: "
        f"{figures['ratio_1_thread_vs_raw_executemany_rows_per_s']:.4f}; "
        f"app / raw one transaction per case: "
        f"{figures['ratio_1_thread_vs_raw_one_transaction_per_case_per_s']:.3f}"
    )
    print(
        f"[{label}]   feed after recording: {check['entries']} entries for {check['cases']} "
        f"cases written, sequences 1..N contiguous: {check['contiguous_1_to_n']}; "
        f"{'OK' if check['ok'] else 'PROBLEM'}",
        flush=True,
    )
    return figures


# -- the runs ------------------------------------------------------------------------------


def run_sqlite(args: argparse.Namespace, registry: rules.ProtocolRegistry) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="bench-adverse-events-", dir=args.workdir))
    figures: dict[str, Any] = {}
    try:
        if not args.no_feed:
            path = workdir / "feed.db"
            figures["feed"] = bench_feed("sqlite", f"sqlite:///{path}", args, registry)
            figures["feed"]["database_mb"] = round(path.stat().st_size / 1e6, 1)
        if not args.no_record:
            path = workdir / "record.db"
            figures["record"] = bench_record("sqlite", f"sqlite:///{path}", args, registry)
        return figures
    finally:
        if args.keep:
            print(f"[sqlite] kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def run_postgres(args: argparse.Namespace, registry: rules.ProtocolRegistry) -> dict[str, Any]:
    url = args.database_url if is_postgres_url(args.database_url) else None
    figures: dict[str, Any] = {}
    with postgres_server(url) as server:
        parts = [
            (part, f"bench_adverse_events_{part}_{os.getpid()}")
            for part in ("feed", "record")
            if not getattr(args, f"no_{part}")
        ]
        for part, name in parts:
            db_url = create_database(server, name)
            try:
                if part == "feed":
                    figures["feed"] = bench_feed("postgresql", db_url, args, registry)
                    with psycopg.connect(libpq_url(db_url)) as conn:
                        row = conn.execute(
                            "SELECT pg_database_size(current_database()), "
                            "current_setting('server_version')"
                        ).fetchone()
                        assert row is not None
                        figures["feed"]["database_mb"] = round(row[0] / 1e6, 1)
                        figures["server_version"] = row[1]
                else:
                    figures["record"] = bench_record("postgresql", db_url, args, registry)
            finally:
                if args.keep:
                    print(f"[postgresql] kept database {name}")
                else:
                    drop_database(server, name)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--entries",
        type=int,
        default=20_000,
        help="versions in the feed (200000: the long run described above)",
    )
    parser.add_argument(
        "--limits",
        type=lambda s: [int(x) for x in s.split(",")],
        default=[100, 1000],
        help="page sizes, comma-separated",
    )
    parser.add_argument("--runs", type=int, default=3, help="repetitions of each measurement")
    parser.add_argument(
        "--http-runs",
        type=int,
        default=1,
        help="repetitions of the HTTP pulls (at most --runs; each takes 15-60 s at 200 000)",
    )
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--cases-per-thread", type=int, default=50)
    parser.add_argument(
        "--processes",
        type=int,
        default=0,
        help="also record with this many writer processes (no shared GIL), each "
        "--cases-per-thread cases",
    )
    parser.add_argument("--cohort", type=int, default=200, help="patients enrolled for part 2")
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
    parser.add_argument("--no-feed", action="store_true", help="skip part 1")
    parser.add_argument("--no-record", action="store_true", help="skip part 2")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp"))
    parser.add_argument("--keep", action="store_true", help="keep the databases")
    args = parser.parse_args()
    if args.entries <= 0 or args.runs <= 0 or args.threads <= 0 or args.cases_per_thread <= 0:
        parser.error("--entries, --runs, --threads and --cases-per-thread must be positive")
    if not 0 <= args.http_runs <= args.runs:
        parser.error("--http-runs: from 0 (no HTTP pulls) to --runs")
    if args.cohort < args.threads:
        parser.error("--cohort must be at least --threads (each thread has its own patients)")
    if any(not 1 <= limit <= 1000 for limit in args.limits):
        parser.error("--limits: page sizes from 1 to 1000 (the feed's maximum)")
    registry = registry_for(rules.BUNDLED_PROTOCOLS)
    figures: dict[str, Any] = {
        "benchmark": "adverse_events",
        "entries": args.entries,
        "limits": args.limits,
        "runs": args.runs,
        "http_runs": args.http_runs,
        "threads": args.threads,
        "cases_per_thread": args.cases_per_thread,
        "cpus": os.cpu_count(),
    }
    ran = False
    if not args.no_sqlite:
        figures["sqlite"] = run_sqlite(args, registry)
        ran = True
    if args.postgres or is_postgres_url(args.database_url):
        figures["postgresql"] = run_postgres(args, registry)
        ran = True
    if not ran:
        parser.error(
            "nothing to run: --no-sqlite without --postgres or a PostgreSQL --database-url"
        )
    emit(figures)


if __name__ == "__main__":
    main()
