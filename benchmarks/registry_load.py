"""A national registry in one database: N synthetic patients with their recorded history.

    .venv/bin/python benchmarks/registry_load.py --patients 100000 --sites 50 \\
        --database-url postgresql+psycopg://postgres@127.0.0.1:55433/registry_1e5
    .venv/bin/python benchmarks/registry_load.py --patients 100000 --sites 50 \\
        --sqlite-file /work/bench/registry_1e5.db

What is loaded (issue #15: "enrol 1 000 000 patients through the real enrolment path")
    A fresh database (PostgreSQL: created on the server if missing; a database or file
    that already holds tables is refused unless ``--replace``), migrated with the Alembic
    schema (``kit.migrate.upgrade``), ``--sites`` sites added with ``add_site`` (time zones
    over Europe). Patient i (study id ``R<i+1>``, 7 digits) goes to site i mod sites.

    Each patient is decided in memory by ``_registry_history.PatientHistory``: the demo's
    draw (``surveillance demo --patients-per-site``: ages 5-17, SLE/SSc/JDM, infused over
    the past 15 years, CAR-T protocol ``cd19-car-t-pediatric-autoimmune`` at its current
    version), ``check_enrolment`` and the calendar from the real engine through
    ``plan_calendar`` + ``assessment_rows`` (one engine run per patient, no templates), the
    history as the demo records it (completed in the window or missed ~4 %, a few percent
    of the last 120 days' work left overdue, typed results, CRS ~10 %, ICANS ~2 %, recent
    serious infections ~0.5 % as cases, ~3 % withdrawn and ~1 % deceased with what
    ``change_status`` does to their calendar); every re-plan the services would make is
    the engine run again and its difference applied. Its docstring says where this is not
    the services' exact equivalent.

How it is written (what pg_restore does)
    The keys, indexes, foreign keys and triggers of the loaded tables are read from the
    catalog and dropped (``_registry_store``); ``--jobs`` worker processes each compute
    and write their share of chunks of ``--chunk`` patients (PostgreSQL: ``COPY`` per
    table, one transaction per chunk, several workers at once; SQLite: ``executemany``,
    one writer at a time). A chunk takes its id ranges, its feed sequence numbers and its
    place in the audit chain under one lock, in one sequential pass: the audit rows are
    hashed exactly as ``kit.audit`` chains them (their content is computed outside the
    lock). Then the definitions are created again (foreign keys validate every row; the
    alert-scan triggers exist again), the id sequences are set, the chain's checkpoint is
    written with ``audit.checkpoint_now``, and the database is analysed (PostgreSQL:
    ``VACUUM (ANALYZE)``). The alert scan has no marks afterwards: its first scan is full.

    Before anything is written the disk the load needs is projected from the bytes per
    patient measured (``BYTES_PER_PATIENT``: ~276 kB on PostgreSQL, so ~276 GB for 10^6);
    if it exceeds the free space of the database's disk the loader says so in one line
    and exits with status 2.

Speed (benchmarks/RESULTS.md): 20 000 patients on PostgreSQL in 566 s on the shared 2-CPU
box (13.4 M rows; 27 000 rows/s while loading). The time goes into computing each
patient's history (~10-18 ms of CPU: ~2.6 engine runs, ~180 outcome and audit rows with
their JSON), not into COPY: 10^6 patients take hours here (and the disk projected above).

Prints progress on stderr, readable figures, then one JSON object on the last line:
seconds per phase, rows per table, rows/s, bytes per assessment row per relation, and the
projection to 1 000 000 patients (time and disk).
"""

from __future__ import annotations

import argparse
import hashlib
import multiprocessing as mp
import os
import queue
import shutil
import sqlite3
import sys
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
from _common import NOW, emit, is_postgres_url, libpq_url, tree_cpu_s
from _registry_history import PatientHistory, PatientRows
from _registry_store import (
    TABLES,
    Catalog,
    pg_catalog,
    pg_drop,
    pg_recreate,
    pg_set_sequences,
    pg_sizes,
    pg_write,
    sqlite_catalog,
    sqlite_drop,
    sqlite_recreate,
    sqlite_sizes,
    sqlite_write,
)
from psycopg import sql
from sqlalchemy.engine import make_url

import rules
from surveillance.kit import audit, migrate
from surveillance.kit.db import make_engine, write_session
from surveillance.records.patients import Site
from surveillance.records.sites import add_site

# Bytes of database per patient, measured with this loader at 100 000 patients (all
# indexes, the history and the audit trail included; 283 kB on PostgreSQL at 20 000): the
# disk check's projection. ~310 assessment, ~180 outcome and ~180 audit rows per patient.
BYTES_PER_PATIENT = {"postgresql": 276_000, "sqlite": 274_000}
MILLION = 1_000_000
# (city, IANA zone, country): the sites' time zones, spread over Europe.
PLACES = (
    ("Rome", "Europe/Rome", "IT"), ("Berlin", "Europe/Berlin", "DE"),
    ("Paris", "Europe/Paris", "FR"), ("Madrid", "Europe/Madrid", "ES"),
    ("London", "Europe/London", "GB"), ("Lisbon", "Europe/Lisbon", "PT"),
    ("Amsterdam", "Europe/Amsterdam", "NL"), ("Brussels", "Europe/Brussels", "BE"),
    ("Vienna", "Europe/Vienna", "AT"), ("Zurich", "Europe/Zurich", "CH"),
    ("Stockholm", "Europe/Stockholm", "SE"), ("Oslo", "Europe/Oslo", "NO"),
    ("Helsinki", "Europe/Helsinki", "FI"), ("Copenhagen", "Europe/Copenhagen", "DK"),
    ("Warsaw", "Europe/Warsaw", "PL"), ("Prague", "Europe/Prague", "CZ"),
    ("Budapest", "Europe/Budapest", "HU"), ("Athens", "Europe/Athens", "GR"),
    ("Dublin", "Europe/Dublin", "IE"), ("Bucharest", "Europe/Bucharest", "RO"),
    ("Sofia", "Europe/Sofia", "BG"), ("Vilnius", "Europe/Vilnius", "LT"),
    ("Riga", "Europe/Riga", "LV"), ("Tallinn", "Europe/Tallinn", "EE"),
    ("Ljubljana", "Europe/Ljubljana", "SI"),
)  # fmt: skip
_COUNTERS = ("assessments", "outcomes", "audit_log", "adverse_event_versions", "events", "feed")


def sites(count: int) -> list[Site]:
    """``count`` sites, e.g. ``IT01`` in Rome, ``DE02`` in Berlin, ... ``IT26`` again."""
    out = []
    for n in range(1, count + 1):
        city, zone, country = PLACES[(n - 1) % len(PLACES)]
        out.append(
            Site(id=f"{country}{n:02d}", name=f"{city} registry site {n} (synthetic)",
                 timezone=zone, country=country)
        )  # fmt: skip
    return out


@dataclass(frozen=True)
class Target:
    url: str  # SQLAlchemy URL
    postgres: bool

    @property
    def sqlite_path(self) -> Path:
        return Path(make_url(self.url).database or "")


# -- preparing the database -----------------------------------------------------------------


class Refused(Exception):
    """The load cannot start: said in one line, exit status 2."""


def free_bytes(target: Target) -> tuple[int, str]:
    """Free space on the database's disk, and the path it was measured at."""
    if target.postgres:
        with psycopg.connect(libpq_url(_server_url(target.url)), autocommit=True) as conn:
            row = conn.execute("SHOW data_directory").fetchone()
        path = Path(row[0]) if row else Path("/")
        host = make_url(target.url).host or "localhost"
        if host not in ("127.0.0.1", "localhost", "::1") or not path.parent.exists():
            path = Path("/")  # a remote server's disk cannot be measured from here
    else:
        path = target.sqlite_path.resolve().parent
    while not path.exists():
        path = path.parent
    try:
        return shutil.disk_usage(path).free, str(path)
    except PermissionError:
        return shutil.disk_usage(path.parent).free, str(path.parent)


def check_disk(target: Target, patients: int) -> dict[str, Any]:
    backend = "postgresql" if target.postgres else "sqlite"
    need = patients * BYTES_PER_PATIENT[backend]
    free, where = free_bytes(target)
    figures = {"projected_bytes": need, "free_bytes": free, "measured_at": where}
    if need > free:
        raise Refused(
            f"refused: {patients} patients need ~{need / 1e9:.0f} GB on {backend} "
            f"({BYTES_PER_PATIENT[backend] / 1000:.0f} kB per patient, all indexes and the "
            f"audit trail included) but {where} has {free / 1e9:.0f} GB free"
        )
    return figures


def server_pid(target: Target) -> int | None:
    """The PostgreSQL server's process id, when it runs on this machine (its CPU is then
    measured: the part of the load the loader cannot make faster); None otherwise."""
    if not target.postgres or make_url(target.url).host not in ("127.0.0.1", "localhost", "::1"):
        return None
    with psycopg.connect(libpq_url(target.url), autocommit=True) as conn:
        row = conn.execute("SHOW data_directory").fetchone()
    try:
        return int((Path(row[0]) / "postmaster.pid").read_text().split()[0]) if row else None
    except (OSError, ValueError, IndexError):
        return None


def _server_url(url: str) -> str:
    return make_url(url).set(database="postgres").render_as_string(hide_password=False)


def prepare(target: Target, replace: bool) -> None:
    """A fresh, empty database: refuse one that holds tables unless ``replace``."""
    if target.postgres:
        name = make_url(target.url).database
        assert name
        with psycopg.connect(libpq_url(_server_url(target.url)), autocommit=True) as conn:
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (name,)
            ).fetchone()
            if exists and not replace and _pg_has_tables(target.url):
                raise Refused(f"refused: database {name} is not empty (use --replace)")
            if exists and replace:
                conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))
                exists = None
            if not exists:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return
    path = target.sqlite_path
    if path.exists() and path.stat().st_size > 0:
        if not replace:
            raise Refused(f"refused: {path} exists and is not empty (use --replace)")
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    path.parent.mkdir(parents=True, exist_ok=True)


def _pg_has_tables(url: str) -> bool:
    with psycopg.connect(libpq_url(url)) as conn:
        row = conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").fetchone()
    return bool(row and row[0])


def migrate_and_add_sites(target: Target, site_list: list[Site]) -> None:
    engine = make_engine(target.url)
    try:
        migrate.upgrade(engine)
        with write_session(engine) as session:
            for site in site_list:
                add_site(session, site_id=site.id, name=site.name, timezone=site.timezone,
                         country=site.country)  # fmt: skip
    finally:
        engine.dispose()


# -- the workers ----------------------------------------------------------------------------


@dataclass
class Shared:
    """What the workers share: the lock that orders chunks, id counters, the chain's head."""

    turn: Any  # Condition over ``next_chunk``: chunks are placed in patient order
    next_chunk: Any  # multiprocessing Value: the chunk whose turn it is
    sqlite_lock: Any
    counters: Any  # multiprocessing Array of _COUNTERS
    head: Any  # multiprocessing Array('c', 64): the last hash written ('' = genesis)
    progress: Any  # Queue of ("chunk", patients, rows, counts) / ("done", figures)


def place(number: int, chunk: list[PatientRows], shared: Shared) -> dict[str, list[dict[str, Any]]]:
    """Chunk ``number``'s ids, feed numbers and audit hashes, taken in one sequential pass in
    chunk order (so the same arguments give the same database, down to the chain's head)."""
    sizes = (
        sum(len(p.assessments) for p in chunk),
        sum(len(p.outcomes) for p in chunk),
        sum(len(p.audit) for p in chunk),
        sum(len(p.versions) for p in chunk),
        sum(len(p.events) for p in chunk),
    )
    contents = [a.content for p in chunk for a in p.audit]
    chained: list[tuple[str, str]] = []
    with shared.turn:
        shared.turn.wait_for(lambda: shared.next_chunk.value == number)
        start = list(shared.counters[:])
        for i, size in enumerate(sizes):
            shared.counters[i] += size
        shared.counters[5] += sizes[3]  # one feed entry per version
        previous = shared.head.value.decode() or audit.GENESIS_HASH
        for content in contents:  # exactly ``audit._append``'s hash
            digest = hashlib.sha256((previous + content).encode()).hexdigest()
            chained.append((previous, digest))
            previous = digest
        shared.head.value = previous.encode()
        shared.next_chunk.value = number + 1
        shared.turn.notify_all()
    return _with_ids(chunk, start, chained)


def _with_ids(
    chunk: list[PatientRows], start: list[int], chained: list[tuple[str, str]]
) -> dict[str, list[dict[str, Any]]]:
    next_assessment, next_outcome, next_audit, next_version, next_event, next_feed = start
    rows: dict[str, list[dict[str, Any]]] = {name: [] for name in TABLES}
    chain = iter(chained)
    for p in chunk:
        base = next_assessment
        for a in p.assessments:
            a["id"] += base
        next_assessment += len(p.assessments)
        for o in p.outcomes:
            next_outcome += 1
            o["id"] = next_outcome
            o["assessment_id"] += base
        for e in p.events:
            next_event += 1
            e["id"] = next_event
        for v in p.versions:
            next_version += 1
            next_feed += 1
            v["id"], v["sequence"] = next_version, next_feed
        for a in p.audit:
            next_audit += 1
            previous, digest = next(chain)
            a.row.update(id=next_audit, previous_hash=previous, hash=digest)
            rows["audit_log"].append(a.row)
        rows["patients"].append(p.patient)
        rows["infusions"].append(p.infusion)
        rows["assessments"] += p.assessments
        rows["outcomes"] += p.outcomes
        rows["patient_events"] += p.events
        rows["adverse_event_cases"] += p.cases
        rows["adverse_event_versions"] += p.versions
        rows["alerts"] += p.alerts
    return rows


def work(
    worker: int, jobs: int, options: dict[str, Any], site_list: list[Site], shared: Shared
) -> None:
    """Worker ``worker``: chunks worker, worker + jobs, ... computed, placed and written."""
    registry = rules.ProtocolRegistry.from_directory()
    target: Target = options["target"]
    patients, size, seed, now = options["patients"], options["chunk"], options["seed"], NOW
    pg: psycopg.Connection[Any] | None = None
    lite: sqlite3.Connection | None = None
    if target.postgres:
        pg = psycopg.connect(libpq_url(target.url))
        pg.execute("SET synchronous_commit = off")
        pg.commit()
    else:
        lite = sqlite3.connect(target.sqlite_path, timeout=600, isolation_level=None)
        lite.execute("PRAGMA synchronous = OFF")
    engine_s = place_s = write_s = 0.0
    cpu_started = time.process_time()  # this worker's CPU: steadier on a shared machine
    for chunk_start in range(worker * size, patients, jobs * size):
        started = time.perf_counter()
        numbers = range(chunk_start, min(chunk_start + size, patients))
        chunk = [
            PatientHistory(n, site=site_list[n % len(site_list)], registry=registry, now=now,
                           seed=seed).run()
            for n in numbers
        ]  # fmt: skip
        computed = time.perf_counter()
        rows = place(chunk_start // size, chunk, shared)
        placed = time.perf_counter()
        if pg is not None:
            with pg.transaction():
                written = pg_write(pg, rows)
        else:
            assert lite is not None
            with shared.sqlite_lock:
                lite.execute("BEGIN IMMEDIATE")
                written = sqlite_write(lite, rows)
                lite.execute("COMMIT")
        engine_s += computed - started
        place_s += placed - computed
        write_s += time.perf_counter() - placed
        counts: dict[str, int] = {}
        for p in chunk:
            for key, value in p.counts.items():
                counts[key] = counts.get(key, 0) + value
        shared.progress.put(("chunk", len(chunk), written, counts))
    if pg is not None:
        pg.close()
    if lite is not None:
        lite.close()
    cpu_s = time.process_time() - cpu_started
    shared.progress.put(
        ("done", {"engine_s": engine_s, "place_s": place_s, "write_s": write_s, "cpu_s": cpu_s})
    )


# -- the run --------------------------------------------------------------------------------


class Progress:
    """One line on stderr, redrawn: patients, patients/s, rows/s, ETA."""

    def __init__(self, total: int) -> None:
        self.total, self.done, self.rows = total, 0, 0
        self.started = time.perf_counter()

    def add(self, patients: int, rows: int) -> None:
        self.done += patients
        self.rows += rows
        elapsed = max(time.perf_counter() - self.started, 1e-9)
        speed = self.done / elapsed
        eta = (self.total - self.done) / speed if speed else 0
        sys.stderr.write(
            f"\r{self.done:>9}/{self.total} patients  {speed:7.0f} patients/s  "
            f"{self.rows / elapsed:9.0f} rows/s  ETA {eta:6.0f} s "
        )
        sys.stderr.flush()

    def close(self) -> None:
        sys.stderr.write("\n")


def load(target: Target, args: argparse.Namespace, site_list: list[Site]) -> dict[str, Any]:
    context = mp.get_context("spawn")
    shared = Shared(
        turn=context.Condition(),
        next_chunk=context.Value("q", 0),
        sqlite_lock=context.Lock(),
        counters=context.Array("q", len(_COUNTERS)),
        head=context.Array("c", 64),
        progress=context.Queue(),
    )
    options = {"target": target, "patients": args.patients, "chunk": args.chunk,
               "seed": args.seed}  # fmt: skip
    jobs = max(1, min(args.jobs, (args.patients + args.chunk - 1) // args.chunk))
    workers = [
        context.Process(target=work, args=(w, jobs, options, site_list, shared), daemon=True)
        for w in range(jobs)
    ]
    for process in workers:
        process.start()
    progress = Progress(args.patients)
    finished: list[dict[str, float]] = []
    counts: dict[str, int] = {}
    while len(finished) < jobs:
        try:
            message = shared.progress.get(timeout=5)
        except queue.Empty:
            if any(p.exitcode not in (None, 0) for p in workers):
                raise RuntimeError("a loader worker failed (its error is above)") from None
            continue
        if message[0] == "chunk":
            _, patients, rows, chunk_counts = message
            progress.add(patients, rows)
            for key, value in chunk_counts.items():
                counts[key] = counts.get(key, 0) + value
        else:
            finished.append(message[1])
    progress.close()
    for process in workers:
        process.join()
    head = shared.head.value.decode()
    return {
        "jobs": jobs,
        "worker_engine_s": [round(f["engine_s"], 1) for f in finished],
        # Waiting for the chunk's turn, then ids, feed numbers and hashes (sequential).
        "worker_place_s": [round(f["place_s"], 1) for f in finished],
        "worker_write_s": [round(f["write_s"], 1) for f in finished],
        "worker_cpu_s": [round(f["cpu_s"], 1) for f in finished],
        "history": counts,
        "audit_rows": shared.counters[2],
        "feed_entries": shared.counters[5],
        "audit_head": head,
    }


def catalog_and_drop(target: Target) -> Catalog:
    if target.postgres:
        with psycopg.connect(libpq_url(target.url)) as conn:
            catalog = pg_catalog(conn)
            pg_drop(conn, catalog)
        return catalog
    with sqlite3.connect(target.sqlite_path, isolation_level=None) as lite:
        catalog = sqlite_catalog(lite)
        sqlite_drop(lite, catalog)
    return catalog


def rebuild(target: Target, catalog: Catalog) -> None:
    if target.postgres:
        with psycopg.connect(libpq_url(target.url)) as conn:
            pg_recreate(conn, catalog)
            pg_set_sequences(conn)
        return
    lite = sqlite3.connect(target.sqlite_path, isolation_level=None)
    try:
        sqlite_recreate(lite, catalog)
    finally:
        lite.close()


def checkpoint(target: Target, at: datetime) -> None:
    """The chain's head as ``audit`` checkpoints it (so ``audit verify`` sees the trail whole)."""
    engine = make_engine(target.url)
    try:
        with write_session(engine) as session:
            audit.checkpoint_now(session, at)
    finally:
        engine.dispose()


def analyze(target: Target) -> None:
    if target.postgres:
        with psycopg.connect(libpq_url(target.url), autocommit=True) as conn:
            conn.execute("VACUUM (ANALYZE)")
        return
    lite = sqlite3.connect(target.sqlite_path, isolation_level=None)
    try:
        lite.execute("ANALYZE")
    finally:
        lite.close()


def measure(target: Target) -> tuple[dict[str, int], dict[str, int]]:
    """Rows per loaded table and bytes per relation."""
    if target.postgres:
        with psycopg.connect(libpq_url(target.url)) as conn:
            counts = {
                t: conn.execute(
                    sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(t))
                ).fetchone()[0]  # type: ignore[index]
                for t in TABLES
            }
            return counts, pg_sizes(conn)
    lite = sqlite3.connect(target.sqlite_path)
    try:
        counts = {t: lite.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES}
        return counts, sqlite_sizes(lite)
    finally:
        lite.close()


def run(target: Target, args: argparse.Namespace) -> dict[str, Any]:
    figures: dict[str, Any] = {"benchmark": "registry_load", "patients": args.patients,
                               "sites": args.sites, "backend": "postgresql" if target.postgres
                               else "sqlite", "now": NOW.isoformat()}  # fmt: skip
    figures["disk_check"] = check_disk(target, args.patients)
    prepare(target, args.replace)
    site_list = sites(args.sites)
    phases: dict[str, float] = {}
    started = time.perf_counter()
    migrate_and_add_sites(target, site_list)
    catalog = catalog_and_drop(target)
    phases["schema_s"] = time.perf_counter() - started
    figures["dropped"] = catalog.count()
    server = server_pid(target)
    server_cpu: dict[str, float] = {}
    cpu_mark = tree_cpu_s(server) if server else None

    def server_used(phase: str) -> None:
        nonlocal cpu_mark
        now_cpu = tree_cpu_s(server) if server else None
        if cpu_mark is not None and now_cpu is not None:
            server_cpu[phase] = round(now_cpu - cpu_mark, 2)
        cpu_mark = now_cpu

    mark = time.perf_counter()
    figures.update(load(target, args, site_list))
    phases["load_s"] = time.perf_counter() - mark
    server_used("load_s")
    mark = time.perf_counter()
    rebuild(target, catalog)
    phases["rebuild_s"] = time.perf_counter() - mark
    server_used("rebuild_s")
    mark = time.perf_counter()
    checkpoint(target, NOW)
    phases["checkpoint_s"] = time.perf_counter() - mark
    server_used("checkpoint_s")  # counts the audit trail's rows: a full read of it
    mark = time.perf_counter()
    analyze(target)
    phases["analyze_s"] = time.perf_counter() - mark
    server_used("analyze_s")
    # The server's own CPU per phase (COPY, index and key builds, the checkpoint's count,
    # VACUUM ANALYZE): on a 2-CPU box it shares the CPUs with the loader's workers. The
    # whole cluster's processes are counted (autovacuum, other databases' sessions too).
    figures["server_cpu_s"] = server_cpu
    total_s = time.perf_counter() - started
    phases["total_s"] = total_s
    figures["phases"] = {k: round(v, 1) for k, v in phases.items()}
    # The workers' time, summed: computing (engine + history + audit content) and writing.
    figures["phases"]["engine_s_all_workers"] = round(sum(figures["worker_engine_s"]), 1)
    figures["phases"]["place_s_all_workers"] = round(sum(figures["worker_place_s"]), 1)
    figures["phases"]["copy_s_all_workers"] = round(sum(figures["worker_write_s"]), 1)
    counts, sizes = measure(target)
    rows = sum(counts.values())
    assessments = counts["assessments"]
    figures["rows"] = counts
    figures["rows_total"] = rows
    figures["rows_per_s_load"] = round(rows / phases["load_s"])
    figures["rows_per_s_overall"] = round(rows / total_s)
    figures["patients_per_s_overall"] = round(args.patients / total_s, 1)
    figures["assessments_per_patient"] = round(assessments / args.patients, 1)
    figures["bytes"] = sizes
    figures["bytes_per_assessment_row"] = {
        name: round(size / assessments, 1) for name, size in sizes.items() if assessments
    }
    per_patient = sizes["database"] / args.patients
    figures["bytes_per_patient"] = round(per_patient)
    figures["projection_1e6"] = {
        "seconds": round(total_s / args.patients * MILLION),
        "hours": round(total_s / args.patients * MILLION / 3600, 2),
        "disk_gb": round(per_patient * MILLION / 1e9, 1),
        "assumes": "linear in patients (index builds are n log n: a little optimistic)",
        # The workers' CPU alone, spread over the jobs: what the load phase would take with
        # the CPUs to ourselves (the server's COPY and index builds come on top).
        "load_seconds_from_worker_cpu": round(
            sum(figures["worker_cpu_s"]) / figures["jobs"] / args.patients * MILLION
        ),
    }
    figures["worker_cpu_ms_per_patient"] = round(
        sum(figures["worker_cpu_s"]) / args.patients * 1000, 2
    )
    if server_cpu:
        server_s = sum(server_cpu.values())
        figures["server_cpu_ms_per_patient"] = round(server_s / args.patients * 1000, 2)
        # Every CPU second the load took, client and server, spread over this machine's
        # CPUs: the fastest a load this size could be here, with nothing else running.
        cpus = os.cpu_count() or 1
        figures["projection_1e6"]["cpu_bound_hours_here"] = round(
            (sum(figures["worker_cpu_s"]) + server_s) / cpus / args.patients * MILLION / 3600, 2
        )
        figures["projection_1e6"]["server_only_hours_here"] = round(
            server_s / cpus / args.patients * MILLION / 3600, 2
        )
    return figures


def report(figures: dict[str, Any]) -> None:
    p = figures["phases"]
    print(
        f"loaded {figures['patients']} patients at {figures['sites']} sites "
        f"({figures['backend']}) in {p['total_s']} s: schema {p['schema_s']} s, "
        f"load {p['load_s']} s (workers: compute {p['engine_s_all_workers']} s, turn and "
        f"chain {p['place_s_all_workers']} s, write {p['copy_s_all_workers']} s), rebuild "
        f"{p['rebuild_s']} s, analyze {p['analyze_s']} s"
    )
    print(f"history: {figures['history']}")
    print(f"rows: {figures['rows']} ({figures['rows_total']} in all)")
    print(
        f"rows/s: {figures['rows_per_s_load']} while loading, {figures['rows_per_s_overall']} "
        f"overall; {figures['assessments_per_patient']} assessments per patient"
    )
    for name, value in figures["bytes_per_assessment_row"].items():
        print(f"  bytes per assessment row, {name}: {value}")
    proj = figures["projection_1e6"]
    print(
        f"projection for 1 000 000 patients: {proj['hours']} h, {proj['disk_gb']} GB "
        f"({figures['bytes_per_patient']} bytes per patient)"
    )
    if "server_cpu_ms_per_patient" in figures:
        print(
            f"CPU a patient: loader workers {figures['worker_cpu_ms_per_patient']} ms, "
            f"PostgreSQL server {figures['server_cpu_ms_per_patient']} ms "
            f"({figures['server_cpu_s']}); CPU-bound 10^6 here: "
            f"{proj['cpu_bound_hours_here']} h (the server's part alone "
            f"{proj['server_only_hours_here']} h)"
        )
    print(f"audit head: {figures['audit_head']} ({figures['audit_rows']} rows)")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--patients", type=int, default=100_000)
    parser.add_argument("--sites", type=int, default=50)
    parser.add_argument("--database-url", help="a PostgreSQL URL (the database is created)")
    parser.add_argument("--sqlite-file", type=Path, help="a SQLite file to create")
    parser.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--chunk", type=int, default=200, help="patients per transaction")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--replace", action="store_true", help="drop a non-empty database")
    args = parser.parse_args()
    if args.patients <= 0 or args.sites <= 0 or args.chunk <= 0:
        parser.error("--patients, --sites and --chunk must be positive")
    if (args.database_url is None) == (args.sqlite_file is None):
        parser.error("give exactly one of --database-url (PostgreSQL) and --sqlite-file")
    if args.database_url is not None and not is_postgres_url(args.database_url):
        parser.error("--database-url must be a PostgreSQL URL (use --sqlite-file for SQLite)")
    target = (
        Target(args.database_url, postgres=True)
        if args.database_url
        else Target(f"sqlite:///{args.sqlite_file}", postgres=False)
    )
    try:
        figures = run(target, args)
    except Refused as refused:
        print(str(refused), file=sys.stderr)
        raise SystemExit(2) from None
    report(figures)
    emit(figures)


if __name__ == "__main__":
    main()
