"""Every web page at 1 000 demo patients per site: server time against the page's own SQL.

    .venv/bin/python benchmarks/pages.py [--patients-per-site 1000] [--runs 30]
        [--sqlite-file PATH] [--postgres | --database-url postgresql+psycopg://...]
        [--no-sqlite] [--only NAME ...]

The database
    The larger demo, ``surveillance demo --patients-per-site N`` (``load_large_demo``:
    the services, with the bulk of the history written in batches), loaded at the fixed
    benchmark date, plus one signed-in user per role (Rome nurse and investigator,
    pharmacovigilance, admin). The load time is printed. ``--sqlite-file`` reuses (or
    keeps) a loaded SQLite file between runs: a reused file is migrated to head first.
    Then one alert scan, digests and dispatch at the benchmark date (mail goes to the
    outgoing-mail table), so the mail pages have content.

What is timed
    Each page in ``PAGES`` (a name, a role and a path whose ``{site}``, ``{patient}``,
    ``{trail}``, ``{case}`` and ``{mail}`` are filled from the data: the patient with the
    most rows, the one with the longest audit trail, the newest serious case, the newest
    mail) is requested ``--runs`` times after
    ``--warmup`` untimed requests, through the real application (``create_app``) in this
    process with the user's session cookie. Server time: from the request entering the
    application to its last body byte (an ASGI wrapper), so the test client's transport
    is not counted.
    Baseline ("raw"): the SELECT statements the page sent, captured once with a
    ``before_cursor_execute`` listener and replayed through a plain driver cursor
    (sqlite3 / psycopg) on one connection with ``fetchall()``: the page's database work
    alone. Printed: median and p95 of both, the ratio page/raw of the medians, and the
    number of statements (a number that grows with the data is an N+1).
    Target: each page under 100 ms median.

To add a page, add a ``Page`` to ``PAGES`` (and a placeholder to ``placeholders`` if its
path needs one). Prints a table, then the figures as one JSON object on the last line.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
from _common import (
    NOW,
    create_database,
    drop_database,
    emit,
    is_postgres_url,
    libpq_url,
    postgres_server,
    summary_ms,
)
from fastapi.testclient import TestClient
from sqlalchemy import Engine, event, text

import rules
from surveillance.accounts import auth
from surveillance.cli.demo_large import load_large_demo
from surveillance.config import Settings, get_settings
from surveillance.http.app import create_app
from surveillance.kit import migrate
from surveillance.kit.db import make_engine, write_session
from surveillance.main import alert_jobs, build_runtime

PASSWORD = "benchmark password 2026"
USERS = {
    "nurse": ("nurse.rome@bench.invalid", ["Rome"]),
    "investigator": ("investigator.rome@bench.invalid", ["Rome"]),
    "pharmacovigilance": ("pv@bench.invalid", []),
    "admin": ("admin@bench.invalid", []),
}


@dataclass(frozen=True)
class Page:
    name: str
    role: str
    path: str  # with {site}, {patient}, {trail}, {case}, {mail}, {later} placeholders


PAGES = (
    Page("dashboard (nurse)", "nurse", "/dashboard"),
    Page("dashboard (investigator)", "investigator", "/dashboard"),
    Page("dashboard (pharmacovigilance)", "pharmacovigilance", "/dashboard"),
    Page("dashboard (admin)", "admin", "/dashboard"),
    Page("due list", "nurse", "/sites/{site}/due"),
    Page("due list, overdue only", "nurse", "/sites/{site}/due?status=overdue"),
    Page("due list, 90 days on", "nurse", "/sites/{site}/due?on={later}"),
    Page("patient (most rows)", "nurse", "/patients/{patient}"),
    Page("patient (most rows), investigator", "investigator", "/patients/{patient}"),
    Page("patient (longest audit trail)", "nurse", "/patients/{trail}"),
    Page("patient audit trail (longest)", "nurse", "/patients/{trail}/audit"),
    Page("site adverse events", "investigator", "/sites/{site}/adverse-events"),
    Page("case", "investigator", "/adverse-events/{case}"),
    Page("results to review", "investigator", "/sites/{site}/results-to-review"),
    Page("mail (admin)", "admin", "/mail"),
    Page("mail item (admin)", "admin", "/mail/{mail}"),
    Page("alerts (admin)", "admin", "/admin/alerts"),
    Page("access", "nurse", "/access"),
)


# -- the database ------------------------------------------------------------------------


def load(url: str, patients_per_site: int, seed: int) -> dict[str, Any]:
    engine = make_engine(url)
    try:
        migrate.upgrade(engine)
        registry = rules.ProtocolRegistry.from_directory()
        started = time.perf_counter()
        with write_session(engine) as session:
            summary = load_large_demo(
                session, registry=registry, now=NOW, patients_per_site=patients_per_site,
                seed=seed,
            )  # fmt: skip
        load_s = time.perf_counter() - started
        with write_session(engine) as session:
            for role, (email, sites) in USERS.items():
                auth.add_user(session, email=email, role=role, sites=sites, actor="benchmark")
                auth.set_password(session, email=email, password=PASSWORD, actor="benchmark")
        with engine.connect() as connection:
            connection.execute(text("ANALYZE"))
            connection.commit()
    finally:
        engine.dispose()
    print(f"  loaded in {load_s:.1f} s: {summary}", flush=True)
    return {"load_s": round(load_s, 1), "summary": summary.__dict__, "alerts": alert_round(url)}


def alert_round(url: str) -> dict[str, Any]:
    """The alert scan, digests and dispatch at the benchmark date, so the mail pages have
    content (no SMTP host: mail goes to the outgoing-mail table)."""
    jobs = alert_jobs(build_runtime(Settings(database_url=url), clock=lambda: NOW))
    started = time.perf_counter()
    report = jobs.scan_once()
    digests = jobs.run_digests()
    sent = 0
    for _ in range(100):  # dispatch works in batches
        batch = jobs.run_dispatch()
        sent += batch.sent
        if not batch.claimed:
            break
    jobs.engine.dispose()
    figures = {
        "created": dict(report.created),
        "digests": digests,
        "sent": sent,
        "seconds": round(time.perf_counter() - started, 1),
    }
    print(f"  alert scan and dispatch: {figures}", flush=True)
    return figures


def prepare_reused(url: str) -> dict[str, Any]:
    """A kept file: migrate it to head (new indexes) and run the alerts if it has no mail."""
    engine = make_engine(url)
    figures: dict[str, Any] = {}
    try:
        before = migrate.current_revision(engine)
        migrate.upgrade(engine)
        if (after := migrate.current_revision(engine)) != before:
            with engine.connect() as connection:
                connection.execute(text("ANALYZE"))
                connection.commit()
            print(f"  migrated {before} -> {after}", flush=True)
            figures["migrated"] = [before, after]
        with engine.connect() as connection:
            mail = connection.exec_driver_sql("SELECT count(*) FROM outgoing_mail").scalar()
    finally:
        engine.dispose()
    if not mail:
        figures["alerts"] = alert_round(url)
    return figures


def placeholders(engine: Engine, site: str) -> dict[str, str]:
    queries = {
        "patient": (
            "SELECT p.study_id FROM patients p JOIN assessments a ON a.patient_id = p.id "
            f"WHERE p.site_id = '{site}' GROUP BY p.study_id ORDER BY count(*) DESC LIMIT 1"
        ),
        "trail": (  # the longest audit trail: the patient page shows its newest rows
            "SELECT p.study_id FROM patients p JOIN audit_log l ON l.patient_id = p.id "
            f"WHERE p.site_id = '{site}' GROUP BY p.study_id ORDER BY count(*) DESC LIMIT 1"
        ),
        "case": (  # the newest serious case (the newest of any if none is serious)
            "SELECT case_id FROM adverse_event_cases "
            f"WHERE site_id = '{site}' ORDER BY serious DESC, awareness_date DESC, case_id DESC "
            "LIMIT 1"
        ),
        "mail": "SELECT max(id) FROM outgoing_mail",
    }
    values = {"site": site, "later": (NOW.date() + timedelta(days=90)).isoformat()}
    with engine.connect() as connection:
        for name, query in queries.items():
            try:
                values[name] = str(connection.exec_driver_sql(query).scalar())
            except Exception as exc:  # a table another branch renames
                print(f"  no {name}: {exc.__class__.__name__}")
                connection.rollback()
                values[name] = "none"
    return values


def counts(engine: Engine) -> dict[str, int]:
    tables = ("patients", "assessments", "outcomes", "audit_log", "adverse_event_cases")
    with engine.connect() as connection:
        return {t: int(connection.exec_driver_sql(f"SELECT count(*) FROM {t}").scalar() or 0)
                for t in tables}  # fmt: skip


# -- timing -----------------------------------------------------------------------------------


class ServerTimer:
    """ASGI wrapper: time from the request entering the app to its last body message."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.last = 0.0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()

        async def timed_send(message: Any) -> None:
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body"):
                self.last = time.perf_counter() - started

        await self.app(scope, receive, timed_send)


def sign_in(client: TestClient, role: str) -> None:
    client.cookies.clear()
    client.get("/login")
    token = client.cookies.get("ltfu_login_csrf")
    response = client.post(
        "/login", data={"email": USERS[role][0], "password": PASSWORD, "csrf_token": token}
    )
    assert response.status_code in (302, 303), (role, response.status_code, response.text[:300])


def captured_selects(engine: Engine, call: Callable[[], object]) -> list[tuple[str, Any]]:
    sent: list[tuple[str, Any]] = []

    def listener(
        _c: Any, _cur: Any, statement: str, parameters: Any, _ctx: Any, _many: bool
    ) -> None:
        if statement.lstrip().upper().startswith(("SELECT", "WITH")):
            sent.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", listener)
    try:
        call()
    finally:
        event.remove(engine, "before_cursor_execute", listener)
    return sent


def bench(url: str, label: str, args: argparse.Namespace) -> dict[str, Any]:
    runtime = build_runtime(Settings(database_url=url), clock=lambda: NOW)
    timer = ServerTimer(create_app(runtime))
    client = TestClient(timer, follow_redirects=False)  # type: ignore[arg-type]
    engine = runtime.engine
    values = placeholders(engine, "Rome")
    postgres = engine.dialect.name == "postgresql"
    raw_conn: Any = (
        psycopg.connect(libpq_url(url)) if postgres else sqlite3.connect(url.split("///", 1)[1])
    )
    cursor = raw_conn.cursor()
    figures: dict[str, Any] = {"placeholders": values, "pages": {}}
    signed_in = None
    pages = [p for p in PAGES if not args.only or any(o in p.name for o in args.only)]
    print(f"[{label}] {'page':<36} {'median':>8} {'p95':>8} {'raw':>8} {'ratio':>6} {'sql':>4}")
    for page in pages:
        if signed_in != page.role:
            sign_in(client, page.role)
            signed_in = page.role
        path = page.path.format(**values)

        def get(path: str = path) -> int:
            return client.get(path).status_code

        status = get()
        if status != 200:
            print(f"[{label}] {page.name:<36} HTTP {status} at {path}: skipped")
            figures["pages"][page.name] = {"path": path, "status": status}
            continue
        statements = captured_selects(engine, get)

        def raw(statements: list[tuple[str, Any]] = statements) -> None:
            for sql, params in statements:
                cursor.execute(sql, params)
                cursor.fetchall()
            if postgres:
                raw_conn.rollback()

        server: list[float] = []
        for number in range(args.warmup + args.runs):
            get()
            if number >= args.warmup:
                server.append(timer.last)
        raw_times: list[float] = []
        for number in range(args.warmup + args.runs):
            started = time.perf_counter()
            raw()
            if number >= args.warmup:
                raw_times.append(time.perf_counter() - started)
        app_ms, raw_ms = summary_ms(server), summary_ms(raw_times)
        ratio = round(app_ms["median_ms"] / raw_ms["median_ms"], 1) if raw_ms["median_ms"] else None
        figures["pages"][page.name] = {
            "path": path,
            "role": page.role,
            "statements": len(statements),
            "server": app_ms,
            "raw": raw_ms,
            "ratio_median": ratio,
            "under_100ms": app_ms["median_ms"] < 100,
        }
        print(
            f"[{label}] {page.name:<36} {app_ms['median_ms']:8.1f} {app_ms['p95_ms']:8.1f} "
            f"{raw_ms['median_ms']:8.2f} {ratio!s:>6} {len(statements):>4}",
            flush=True,
        )
    raw_conn.close()
    client.close()
    engine.dispose()
    medians = [p["server"]["median_ms"] for p in figures["pages"].values() if "server" in p]
    figures["all_under_100ms"] = all(m < 100 for m in medians)
    figures["median_of_medians_ms"] = round(statistics.median(medians), 1) if medians else None
    return figures


# -- runs -------------------------------------------------------------------------------------


def run_sqlite(args: argparse.Namespace) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    if args.sqlite_file is not None and args.sqlite_file.exists():
        print(f"[sqlite] reusing {args.sqlite_file} (no load)")
        path = args.sqlite_file
        figures["reused"] = str(path)
        figures.update(prepare_reused(f"sqlite:///{path}"))
    else:
        path = args.sqlite_file or Path(tempfile.mkdtemp(prefix="bench-pages-")) / "pages.db"
        print(f"[sqlite] loading {args.patients_per_site} patients per site into {path}")
        figures.update(load(f"sqlite:///{path}", args.patients_per_site, args.seed))
    url = f"sqlite:///{path}"
    try:
        engine = make_engine(url)
        figures["counts"] = counts(engine)
        engine.dispose()
        figures["database_mb"] = round(path.stat().st_size / 1e6, 1)
        print(f"[sqlite] {figures['counts']}, {figures['database_mb']} MB", flush=True)
        figures.update(bench(url, "sqlite", args))
    finally:
        if args.sqlite_file is None:
            for child in path.parent.iterdir():
                child.unlink()
            path.parent.rmdir()
    return figures


def run_postgres(args: argparse.Namespace) -> dict[str, Any]:
    url = args.database_url if is_postgres_url(args.database_url) else None
    with postgres_server(url) as server:
        name = f"bench_pages_{os.getpid()}"
        db_url = create_database(server, name)
        try:
            print(f"[postgresql] loading {args.patients_per_site} patients per site into {name}")
            figures = load(db_url, args.patients_per_site, args.seed)
            engine = make_engine(db_url)
            figures["counts"] = counts(engine)
            engine.dispose()
            figures.update(bench(db_url, "postgresql", args))
            return figures
        finally:
            drop_database(server, name)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--patients-per-site", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument(
        "--only", "--pages", nargs="*", default=[], help="pages whose name contains one"
    )
    parser.add_argument(
        "--database-url",
        default=get_settings().database_url,
        help="a PostgreSQL URL adds a PostgreSQL run (default: DATABASE_URL as the app reads it)",
    )
    parser.add_argument(
        "--postgres", action="store_true", help="run on a throwaway PostgreSQL cluster"
    )
    parser.add_argument("--no-sqlite", action="store_true")
    parser.add_argument(
        "--sqlite-file",
        type=Path,
        default=None,
        help="SQLite file to use: loaded if missing, reused as it is if present; never deleted",
    )
    args = parser.parse_args()
    figures: dict[str, Any] = {
        "benchmark": "pages",
        "patients_per_site": args.patients_per_site,
        "runs": args.runs,
        "on": NOW.date().isoformat(),
    }
    if not args.no_sqlite:
        figures["sqlite"] = run_sqlite(args)
    if args.postgres or is_postgres_url(args.database_url):
        figures["postgresql"] = run_postgres(args)
    emit(figures)


if __name__ == "__main__":
    main()
