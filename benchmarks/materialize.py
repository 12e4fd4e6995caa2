"""Enrolment throughput: ``surveillance.patients.enrolment.enroll`` against the raw driver.

    .venv/bin/python benchmarks/materialize.py [--patients 10000] [--batch 1000]
        [--database-url postgresql+psycopg://...] [--postgres] [--no-sqlite] [--profile]

What runs
    ``--patients`` random CAR-T patients (seeded: ages 5-17, SLE/SSc/JDM, infused on a
    random day of 2018-2025, two sites) are enrolled into a fresh, migrated database
    through ``enroll()``, ``--batch`` patients per ``write_session`` transaction (one
    ``BEGIN IMMEDIATE`` ... ``COMMIT`` on SQLite).

    SQLite always (a fresh file in a temporary directory; ``--no-sqlite`` skips it).
    PostgreSQL as well when ``--database-url`` (default: ``DATABASE_URL`` as the
    application reads it) is a PostgreSQL URL, or with ``--postgres``, which starts a
    throwaway cluster with ``tests/pg_cluster.py``. On PostgreSQL the URL is only used
    to reach the server: fresh databases are created beside it (this needs CREATEDB)
    and dropped at the end (``--keep`` keeps them).

How time is split
    * enroll: wall time of the whole ``with write_session(engine): enroll(...)`` block,
      commit included.
    * engine: ``rules.build_calendar`` is wrapped for the duration of the run by a
      function that times each call (two ``perf_counter`` calls, well under 1 us, against
      ~3 ms per calendar) and keeps the returned plans. ``enroll`` looks the function up
      on the ``rules`` module, so it is exactly the engine time spent inside enroll, with
      no calendar computed twice.
    * storage = enroll - engine: validation, the duplicate check, building row dicts,
      SQLAlchemy Core ``executemany``/``COPY`` of patients, infusions and assessments,
      the hash-chained audit rows, and the commit.

Raw baseline (same process, interleaved batch by batch, so both databases have the
same size when each batch is written)
    A second fresh database (a third on PostgreSQL), migrated with the same Alembic
    schema, so the same tables, constraints and (partial) indexes. After each enroll
    batch, the very rows it wrote for patients, infusions and assessments (the rows
    ``assessment_rows`` builds from the captured plans, with the patient ids enroll
    got) are written in one transaction with the driver alone:
    * SQLite: ``sqlite3`` ``executemany`` of an INSERT, same pragmas as the app (WAL,
      synchronous=NORMAL, foreign_keys=ON), ``BEGIN IMMEDIATE`` ... ``COMMIT``.
    * PostgreSQL: psycopg ``executemany`` and, in another database, ``COPY FROM STDIN``.
    Values are converted to what the driver needs (on SQLite, with SQLAlchemy's own
    bind processors, so the stored bytes match) before the clock starts. The raw side
    writes no audit rows (one per patient, <0.5 % of the rows).

Rates are assessment rows per second (the 3 other rows per patient are not counted).
``storage_vs_raw`` = storage rows/s / raw rows/s (target: >= 0.5, i.e. within 2x);
``end_to_end_vs_raw`` uses enroll time including the engine. The same split is also
kept in this process's CPU time (``cpu``, ``storage_vs_raw_cpu``), which is steadier
when other work shares the machine; on PostgreSQL it leaves out the server's CPU.

Prints progress lines, then the figures as one JSON object on the last line.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import random
import sqlite3
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Protocol

import psycopg
from _common import (
    CAR_T,
    NOW,
    SITES,
    Stopwatch,
    create_database,
    drop_database,
    emit,
    is_postgres_url,
    libpq_url,
    postgres_server,
    random_patient,
    rate,
)
from sqlalchemy import Engine, Table
from sqlalchemy.engine import Dialect

import rules
from surveillance.calendar.sync import assessment_rows
from surveillance.config import get_settings
from surveillance.kit import migrate
from surveillance.kit.db import make_engine, write_session
from surveillance.patients.enrolment import Enrolment, enroll
from surveillance.records.patients import Assessment, Infusion, Patient, PatientStatus
from surveillance.records.sites import add_site

ACTOR = "benchmark"
PATIENTS: Table = Patient.__table__  # type: ignore[attr-defined]
INFUSIONS: Table = Infusion.__table__  # type: ignore[attr-defined]
ASSESSMENTS: Table = Assessment.__table__  # type: ignore[attr-defined]

Row = dict[str, Any]


@dataclass
class Batch:
    """What one enroll call wrote, as row dicts keyed by column name."""

    patients: list[Row]
    infusions: list[Row]
    assessments: list[Row]


class RawWriter(Protocol):
    name: str

    def write(self, batch: Batch) -> None: ...

    def close(self) -> None: ...


# -- capturing the engine inside enroll ---------------------------------------------------


@dataclass
class EngineSpy:
    """Times every ``rules.build_calendar`` call and keeps the plans, in call order."""

    watch: Stopwatch = field(default_factory=Stopwatch)
    plans: list[list[rules.PlannedAssessment]] = field(default_factory=list)

    @contextmanager
    def installed(self) -> Iterator[None]:
        real = rules.build_calendar

        def timed(
            protocol: rules.Protocol,
            patient: rules.PatientFacts,
            infusions: Sequence[date],
            results: Iterable[rules.RecordedResult] = (),
            events: Iterable[rules.RecordedEvent] = (),
        ) -> list[rules.PlannedAssessment]:
            start, cpu_start = time.perf_counter(), time.process_time()
            plan = real(protocol, patient, infusions, results, events)
            self.watch.seconds += time.perf_counter() - start
            self.watch.cpu_seconds += time.process_time() - cpu_start
            self.plans.append(plan)
            return plan

        rules.build_calendar = timed
        try:
            yield
        finally:
            rules.build_calendar = real


# -- raw writers ---------------------------------------------------------------------------


def _columns(rows: list[Row]) -> list[str]:
    return list(rows[0])


def _insert_sql(table: Table, columns: list[str], placeholder: str) -> str:
    names = ", ".join(f'"{c}"' for c in columns)
    marks = ", ".join([placeholder] * len(columns))
    return f'INSERT INTO "{table.name}" ({names}) VALUES ({marks})'


def _tables(batch: Batch) -> list[tuple[Table, list[Row]]]:
    return [
        (PATIENTS, batch.patients),
        (INFUSIONS, batch.infusions),
        (ASSESSMENTS, batch.assessments),
    ]


class SqliteExecutemany:
    name = "sqlite3_executemany"

    def __init__(self, path: Path, dialect: Dialect) -> None:
        self.dialect = dialect
        self.watch = Stopwatch()
        self.conn = sqlite3.connect(path, isolation_level=None, timeout=30)
        for pragma in (
            "journal_mode=WAL",
            "busy_timeout=30000",
            "foreign_keys=ON",
            "synchronous=NORMAL",
        ):
            self.conn.execute(f"PRAGMA {pragma}")
        self._processors: dict[tuple[str, str], Callable[[Any], Any] | None] = {}

    def _convert(self, table: Table, columns: list[str], rows: list[Row]) -> list[tuple[Any, ...]]:
        """Python values -> what SQLAlchemy would hand to sqlite3 (ISO strings, 0/1)."""
        processors = []
        for name in columns:
            key = (table.name, name)
            if key not in self._processors:
                column_type = table.c[name].type.dialect_impl(self.dialect)
                self._processors[key] = column_type.bind_processor(self.dialect)
            processors.append(self._processors[key])
        return [
            tuple(
                v if p is None or v is None else p(v)
                for p, v in zip(processors, row.values(), strict=True)
            )
            for row in rows
        ]

    def write(self, batch: Batch) -> None:
        prepared = []
        for table, rows in _tables(batch):
            columns = _columns(rows)
            prepared.append((_insert_sql(table, columns, "?"), self._convert(table, columns, rows)))
        with self.watch.running():
            self.conn.execute("BEGIN IMMEDIATE")
            for statement, values in prepared:
                self.conn.executemany(statement, values)
            self.conn.execute("COMMIT")

    def close(self) -> None:
        self.conn.close()


class PostgresExecutemany:
    name = "psycopg_executemany"

    def __init__(self, url: str) -> None:
        self.watch = Stopwatch()
        self.conn = psycopg.connect(libpq_url(url))

    def write(self, batch: Batch) -> None:
        prepared = []
        for table, rows in _tables(batch):
            columns = _columns(rows)
            prepared.append((_insert_sql(table, columns, "%s"), [tuple(r.values()) for r in rows]))
        with self.watch.running():
            with self.conn.transaction(), self.conn.cursor() as cursor:
                for statement, values in prepared:
                    cursor.executemany(statement, values)

    def close(self) -> None:
        self.conn.close()


class PostgresCopy:
    name = "psycopg_copy"

    def __init__(self, url: str) -> None:
        self.watch = Stopwatch()
        self.conn = psycopg.connect(libpq_url(url))

    def write(self, batch: Batch) -> None:
        prepared = []
        for table, rows in _tables(batch):
            columns = _columns(rows)
            names = ", ".join(f'"{c}"' for c in columns)
            prepared.append(
                (f'COPY "{table.name}" ({names}) FROM STDIN', [tuple(r.values()) for r in rows])
            )
        with self.watch.running():
            with self.conn.transaction(), self.conn.cursor() as cursor:
                for statement, values in prepared:
                    with cursor.copy(statement) as copy:
                        for value in values:
                            copy.write_row(value)

    def close(self) -> None:
        self.conn.close()


# -- the run -------------------------------------------------------------------------------


def prepare(engine: Engine) -> None:
    """Migrate a fresh database and add the sites."""
    migrate.upgrade(engine)
    with write_session(engine) as session:
        for site_id, name, timezone in SITES:
            add_site(session, site_id=site_id, name=name, timezone=timezone)


def enrolments(patients: int, batch: int, seed: int) -> Iterator[list[Enrolment]]:
    rng = random.Random(seed)
    for start in range(0, patients, batch):
        chunk = []
        for number in range(start, min(start + batch, patients)):
            p = random_patient(rng, number, CAR_T)
            chunk.append(
                Enrolment(
                    p.study_id,
                    p.site_id,
                    p.birth_date,
                    p.sex,
                    p.diagnosis,
                    p.protocol_id,
                    p.infusion_date,
                )
            )
        yield chunk


def batch_rows(
    chunk: list[Enrolment], patient_ids: dict[str, int], plans: list[list[rules.PlannedAssessment]]
) -> Batch:
    """The rows enroll wrote for ``chunk``, rebuilt from the captured plans."""
    assert len(plans) == len(chunk), "enroll computed one calendar per patient"
    version = plans[0][0].protocol_version if plans and plans[0] else "1.0"
    patients = [
        {
            "id": patient_ids[e.study_id],
            "study_id": e.study_id,
            "site_id": e.site_id,
            "birth_date": e.birth_date,
            "sex": e.sex,
            "diagnosis": e.diagnosis,
            "protocol_id": e.protocol_id,
            "protocol_version": version,
            "status": PatientStatus.active.value,
            "enrolled_at": NOW,
        }
        for e in chunk
    ]
    infusions = [
        {
            "patient_id": patient_ids[e.study_id],
            "number": 1,
            "infused_on": e.infusion_date,
            "protocol_version": version,
            "recorded_at": NOW,
        }
        for e in chunk
    ]
    assessments = [
        row
        for e, plan in zip(chunk, plans, strict=True)
        for row in assessment_rows(patient_ids[e.study_id], e.site_id, plan, NOW)
    ]
    return Batch(patients, infusions, assessments)


def run(
    label: str,
    engine: Engine,
    raw: list[Any],
    args: argparse.Namespace,
    profiler: cProfile.Profile | None,
) -> dict[str, Any]:
    registry = rules.ProtocolRegistry.from_directory()
    spy = EngineSpy()
    total = Stopwatch()
    rows = patients = 0
    report_every = max(1, args.patients // args.batch // 10)
    started = time.perf_counter()
    with spy.installed():
        for number, chunk in enumerate(enrolments(args.patients, args.batch, args.seed), start=1):
            spy.plans.clear()
            with total.running():
                if profiler is not None:
                    profiler.enable()
                with write_session(engine) as session:
                    ids = enroll(session, chunk, registry=registry, now=NOW, actor=ACTOR)
                if profiler is not None:
                    profiler.disable()
            batch = batch_rows(chunk, ids, spy.plans)
            for writer in raw:
                writer.write(batch)
            rows += len(batch.assessments)
            patients += len(chunk)
            if number % report_every == 0 or patients == args.patients:
                storage = total.seconds - spy.watch.seconds
                raw_rates = ", ".join(f"{w.name} {rate(rows, w.watch.seconds):,.0f}" for w in raw)
                print(
                    f"[{label}] {patients:>7} patients {rows:>9} rows  "
                    f"enroll {rate(rows, total.seconds):>9,.0f} rows/s  "
                    f"storage {rate(rows, storage):>9,.0f} rows/s  raw: {raw_rates} rows/s  "
                    f"({time.perf_counter() - started:.0f} s)",
                    flush=True,
                )
    engine_s = spy.watch.seconds
    storage_s = total.seconds - engine_s
    storage_rate = rate(rows, storage_s)
    end_to_end = rate(rows, total.seconds)
    figures: dict[str, Any] = {
        "patients": patients,
        "assessment_rows": rows,
        "rows_per_patient": round(rows / patients, 2),
        "batch": args.batch,
        "enroll_s": round(total.seconds, 3),
        "engine_s": round(engine_s, 3),
        "storage_s": round(storage_s, 3),
        "end_to_end_rows_per_s": end_to_end,
        "storage_rows_per_s": storage_rate,
        "engine_rows_per_s": rate(rows, engine_s),
        "raw": {},
    }
    storage_cpu = total.cpu_seconds - spy.watch.cpu_seconds
    figures["cpu"] = {
        "enroll_s": round(total.cpu_seconds, 3),
        "engine_s": round(spy.watch.cpu_seconds, 3),
        "storage_s": round(storage_cpu, 3),
    }
    for writer in raw:
        raw_rate = rate(rows, writer.watch.seconds)
        figures["raw"][writer.name] = {
            "seconds": round(writer.watch.seconds, 3),
            "rows_per_s": raw_rate,
            "storage_vs_raw": round(storage_rate / raw_rate, 3),
            "end_to_end_vs_raw": round(end_to_end / raw_rate, 3),
            "cpu_s": round(writer.watch.cpu_seconds, 3),
            # Same ratio on this process's CPU time: steadier on a busy machine, but on
            # PostgreSQL it leaves out the server's work (client CPU only).
            "storage_vs_raw_cpu": round(writer.watch.cpu_seconds / storage_cpu, 3),
        }
    best = max(figures["raw"].values(), key=lambda r: r["rows_per_s"])
    figures["storage_within_2x_of_fastest_raw"] = best["storage_vs_raw"] >= 0.5
    print(
        f"[{label}] engine {engine_s:.1f} s, storage {storage_s:.1f} s, "
        f"enroll {total.seconds:.1f} s"
    )
    print(
        f"[{label}] rows/s: end-to-end {end_to_end:,.0f}, storage {storage_rate:,.0f}, "
        f"engine {figures['engine_rows_per_s']:,.0f}"
    )
    print(
        f"[{label}] CPU time of this process: engine {spy.watch.cpu_seconds:.1f} s, "
        f"storage {storage_cpu:.1f} s"
    )
    for name, raw_figures in figures["raw"].items():
        print(
            f"[{label}] raw {name}: {raw_figures['rows_per_s']:,.0f} rows/s; "
            f"storage/raw = {raw_figures['storage_vs_raw']:.2f}, "
            f"end-to-end/raw = {raw_figures['end_to_end_vs_raw']:.2f}; "
            f"on CPU time: raw {raw_figures['cpu_s']:.1f} s, "
            f"storage/raw = {raw_figures['storage_vs_raw_cpu']:.2f}"
        )
    return figures


def run_sqlite(args: argparse.Namespace, profiler: cProfile.Profile | None) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="bench-materialize-", dir=args.workdir))
    app_path, raw_path = workdir / "enroll.db", workdir / "raw.db"
    engine = make_engine(f"sqlite:///{app_path}")
    raw_engine = make_engine(f"sqlite:///{raw_path}")
    try:
        prepare(engine)
        prepare(raw_engine)
        raw_engine.dispose()
        writer = SqliteExecutemany(raw_path, engine.dialect)
        try:
            figures = run("sqlite", engine, [writer], args, profiler)
        finally:
            writer.close()
            engine.dispose()  # the last connection checkpoints the WAL into the file
        figures["database_mb"] = {
            "enroll": round(_sqlite_size(app_path) / 1e6, 1),
            "raw": round(_sqlite_size(raw_path) / 1e6, 1),
        }
        return figures
    finally:
        engine.dispose()
        if args.keep:
            print(f"[sqlite] kept {workdir}")
        else:
            for path in workdir.iterdir():
                path.unlink()
            workdir.rmdir()


def _sqlite_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))


def run_postgres(args: argparse.Namespace, profiler: cProfile.Profile | None) -> dict[str, Any]:
    url = args.database_url if is_postgres_url(args.database_url) else None
    with postgres_server(url) as server:
        prefix = f"bench_materialize_{os.getpid()}"
        names = {role: f"{prefix}_{role}" for role in ("enroll", "raw_executemany", "raw_copy")}
        urls = {role: create_database(server, name) for role, name in names.items()}
        engine = make_engine(urls["enroll"])
        writers: list[Any] = []
        try:
            for role in names:
                other = make_engine(urls[role])
                prepare(other)
                other.dispose()
            writers = [PostgresExecutemany(urls["raw_executemany"]), PostgresCopy(urls["raw_copy"])]
            figures = run("postgresql", engine, writers, args, profiler)
            with engine.connect() as connection:
                server_version = connection.exec_driver_sql("SHOW server_version").scalar()
            figures["server_version"] = server_version
            return figures
        finally:
            for writer in writers:
                writer.close()
            engine.dispose()
            if not args.keep:
                for name in names.values():
                    drop_database(server, name)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--patients", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=1000, help="patients per enroll transaction")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument(
        "--database-url",
        default=get_settings().database_url,
        help="a PostgreSQL URL adds a PostgreSQL run (default: DATABASE_URL as the app reads it)",
    )
    parser.add_argument(
        "--postgres", action="store_true", help="run on a throwaway PostgreSQL cluster"
    )
    parser.add_argument("--no-sqlite", action="store_true", help="skip the SQLite run")
    parser.add_argument(
        "--workdir", type=Path, default=None, help="where the SQLite files go (default: $TMPDIR)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the databases")
    parser.add_argument(
        "--profile", action="store_true", help="cProfile the enroll calls; prints the top functions"
    )
    parser.add_argument("--profile-top", type=int, default=30)
    args = parser.parse_args()
    if args.patients <= 0 or args.batch <= 0:
        parser.error("--patients and --batch must be positive")

    figures: dict[str, Any] = {
        "benchmark": "materialize",
        "protocol": CAR_T,
        "patients": args.patients,
        "batch": args.batch,
        "seed": args.seed,
        "profiled": args.profile,
    }
    backends: list[
        tuple[str, Callable[[argparse.Namespace, cProfile.Profile | None], dict[str, Any]]]
    ] = []
    if not args.no_sqlite:
        backends.append(("sqlite", run_sqlite))
    if args.postgres or is_postgres_url(args.database_url):
        backends.append(("postgresql", run_postgres))
    if not backends:
        parser.error(
            "nothing to run: --no-sqlite without --postgres or a PostgreSQL --database-url"
        )
    for name, runner in backends:
        profiler = cProfile.Profile() if args.profile else None
        figures[name] = runner(args, profiler)
        if profiler is not None:
            _print_profile(name, profiler, args.profile_top)
    emit(figures)


def _print_profile(label: str, profiler: cProfile.Profile, top: int) -> None:
    for order in ("tottime", "cumulative"):
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).strip_dirs().sort_stats(order).print_stats(top)
        print(f"[{label}] cProfile of enroll, by {order}:")
        print(out.getvalue())


if __name__ == "__main__":
    main()
