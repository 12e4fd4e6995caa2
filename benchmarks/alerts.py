"""Alerts at scale: the worker process, scans at 100 000 patients, and dispatch throughput.

    .venv/bin/python benchmarks/alerts.py --sqlite-file /tmp/bench-data/due-100k.db
        [--postgres-loaded postgresql+psycopg://...] [--as-of 2026-02-15]
        [--deliveries 2000] [--workers 8] [--no-worker] [--no-scan]

Worker (for each loaded database given)
    The real worker process, ``surveillance worker`` (``python -m surveillance.cli
    worker`` in a child process: ``surveillance.cli.main``, what the console script
    calls, with logging configured at INFO so its scan lines show; its clock stopped at
    ``--as-of`` with the command's hidden ``--today``), started on the database as
    loaded (no scan mark, no job lease, the outbox as the loader left it). It runs its
    scheduler's jobs as in production: at start the alert scan (the first one is full:
    no scan marks yet; then the daily full scan, the safety net, as on any first run of
    the day) and the admins' digest, and every few seconds the dispatch. This script
    watches the job leases (``job_leases``) from outside: the scan's seconds are from
    its lease being taken to its completion, the same for the full scan; it waits until
    the dispatch has recorded delivery attempts after the scan, then reads the worker's
    peak resident set (``VmHWM``) and stops it (SIGTERM). Its log is kept in the figures
    (last lines). The outbox is put back as it was afterwards (what it wrote deleted),
    here and after the scans below.

Scan (in this process)
    Reuses a database built by ``benchmarks/due_list.py --keep`` (100 000 CAR-T patients,
    ~23 million assessment rows, history recorded up to 2026-01-15) or another loader
    (``registry_load.py``), on SQLite (``--sqlite-file``) or PostgreSQL
    (``--postgres-loaded``). Scanning "as of" a
    later day turns everything still pending whose window closed into overdue work, so
    the scan has tens of thousands of alerts to write. Prints the seconds of one scan
    (it is a handful of set-based ``INSERT ... SELECT`` statements, whatever the number
    of patients), the alerts written, and the time of a second scan (which writes
    nothing). The scan's rows are deleted afterwards so the file can be reused.

    Scans are incremental (issue 15): the first is full (no scan marks yet); then a
    second scan the same day with nothing changed, the same as a full scan (the cost of
    every scan before), a scan a day later, a full scan after it (the reference: it must
    write nothing), and a scan after ``--touched`` patients had a row rewritten. Each
    prints its seconds per kind. ``--deliveries 0`` skips the dispatch part.

Dispatch
    ``--deliveries`` webhook alerts to a receiver on 127.0.0.1 (a ThreadingHTTPServer in
    this process answering 200), sent by ``surveillance.alerting.dispatch.dispatch``
    (claims, re-checks, signs, records every attempt), beside the ceiling: the same
    number of signed POSTs sent by a raw httpx loop on as many worker threads, each with
    its own client, and no database. Figures: deliveries per second and the ratio.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Engine, delete, func, insert, select, update
from sqlmodel import col

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import notifications
import rules
from benchmarks._common import ROOT, emit, peak_rss_mib
from surveillance.alerting.dispatch import DispatchConfig, dispatch
from surveillance.alerting.models import OutgoingMail, ScanChange, ScanMark
from surveillance.alerting.scan import scan
from surveillance.kit import migrate
from surveillance.kit.db import make_engine, read_session, write_session
from surveillance.kit.leases import JobLease
from surveillance.kit.sqltypes import table_of
from surveillance.protocols.registry import registry_for
from surveillance.records.outbox import Alert, DeliveryAttempt, WebhookEndpoint
from surveillance.records.patients import Assessment


class _Ok(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length") or 0))
        self.send_response(200)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


def bench_scan(url: str, as_of: date, touched: int) -> dict[str, Any]:
    engine = make_engine(url)
    migrate.upgrade(engine)
    now = datetime.now(UTC)
    registry = registry_for(rules.BUNDLED_PROTOCOLS)
    loaded = _outbox(engine)
    _forget_scans(engine, loaded)  # a kept database: its first scan here is a full one

    def timed(name: str, on: date, *, full: bool = False) -> dict[str, Any]:
        started = time.perf_counter()
        with write_session(engine) as session:
            report = scan(session, now=now, overrides={}, registry=registry, on=on, full=full)
        seconds = time.perf_counter() - started
        mode = "full" if full or not report.incremental_groups else "incremental"
        print(
            f"{name} (as of {on}, {mode}): {report.total} alerts in {seconds:.2f} s "
            f"({report.created}); per kind {_rounded(report.seconds)}; "
            f"{report.changed_patients} patients changed",
            flush=True,
        )
        return {
            "as_of": on.isoformat(),
            "mode": mode,
            "alerts": report.total,
            "by_kind": report.created,
            "seconds": round(seconds, 3),
            "seconds_by_kind": _rounded(report.seconds),
            "changed_patients": report.changed_patients,
        }

    next_day = as_of + timedelta(days=1)
    figures = {
        "first_scan": timed("first scan", as_of),
        "second_scan_nothing_changed": timed("second scan, nothing changed", as_of),
        "second_scan_full": timed("second scan, full (as before)", as_of, full=True),
        "next_day": timed("a day later", next_day),
        "next_day_full": timed("a day later, full again (must write 0)", next_day, full=True),
    }
    _touch(engine, touched)
    figures[f"after_{touched}_patients_changed"] = timed(
        f"after {touched} patients changed", next_day
    )
    with read_session(engine) as session:
        patients = session.execute(
            select(func.count()).select_from(select(Alert.patient_id).distinct().subquery())
        ).scalar_one()
    figures["patients_alerted"] = patients
    _forget_scans(engine, loaded)
    return figures


def _rounded(seconds: dict[str, float]) -> dict[str, float]:
    return {kind: round(s, 3) for kind, s in seconds.items()}


def _touch(engine: Engine, patients: int) -> None:
    """Rewrite one assessment row of each of the first ``patients`` patients (as a write
    path would): the triggers list them for the next scan."""
    with write_session(engine) as session:
        first = select(Assessment.patient_id).distinct().order_by(Assessment.patient_id)
        ids = list(session.execute(first.limit(patients)).scalars())
        session.execute(
            update(Assessment)
            .where(col(Assessment.patient_id).in_(ids), col(Assessment.occurrence) == 1)
            .values(version=Assessment.version + 1)
        )


Outbox = dict[str, list[dict[str, Any]]]  # table name -> its rows
_OUTBOX = (Alert, DeliveryAttempt, OutgoingMail)  # parents first


def _outbox(engine: Engine) -> Outbox:
    """The outbox as it is (a loader may write alerts: e.g. the emails of serious cases)."""
    with read_session(engine) as session:
        return {
            table_of(model).name: [
                dict(row._mapping) for row in session.execute(select(table_of(model)))
            ]
            for model in _OUTBOX
        }


def _forget_scans(engine: Engine, outbox: Outbox) -> None:
    """Put the outbox back as it was (``outbox``: what the scans, digests and dispatch
    wrote goes) and delete the scan marks, the changes and the alert jobs' leases, so
    the database can be reused and the next scan is a full one."""
    with write_session(engine) as session:
        for model in (*reversed(_OUTBOX), ScanMark, ScanChange):
            session.execute(delete(model))
        session.execute(delete(JobLease).where(col(JobLease.name).like("alerts.%")))
        for model in _OUTBOX:
            if rows := outbox[table_of(model).name]:
                session.execute(insert(table_of(model)), rows)


# The real command line (``cli.main`` sends the "alert scan: ..." lines to stderr).
WORKER = """
import sys
sys.argv[0] = "surveillance"
from surveillance.cli import main
main()
"""


def bench_worker(url: str, on: date, timeout: float) -> dict[str, Any]:
    """Run ``surveillance worker`` on the loaded database until it has scanned and
    dispatched once; its timings (seen from the job leases) and peak RSS."""
    engine = make_engine(url)
    migrate.upgrade(engine)
    loaded = _outbox(engine)
    _forget_scans(engine, loaded)
    workdir = Path(tempfile.mkdtemp(prefix="bench-worker-"))
    log_path = workdir / "worker.log"
    env = {
        **os.environ,
        "SURVEILLANCE_DATABASE_URL": url,
        "SURVEILLANCE_DATA_DIR": str(workdir),  # its key file etc., not the user's
        "PYTHONPATH": str(ROOT),
    }
    command = [sys.executable, "-c", WORKER, "worker", "--today", on.isoformat()]
    seen: dict[str, float] = {}
    started = time.perf_counter()
    with log_path.open("w") as log:
        process = subprocess.Popen(
            command, cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        while time.perf_counter() - started < timeout:
            if process.poll() is not None:
                raise RuntimeError(
                    f"the worker exited with {process.returncode}:\n{log_path.read_text()}"
                )
            _watch(engine, seen, time.perf_counter() - started)
            if "dispatch_after_scan" in seen:
                break
            time.sleep(0.1)
        figures: dict[str, Any] = {"peak_rss_mib": peak_rss_mib(process.pid)}
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=120)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    with read_session(engine) as session:
        by_kind: dict[str, int] = dict(
            session.execute(select(col(Alert.kind), func.count()).group_by(col(Alert.kind))).all()
        )
        attempts = session.execute(select(func.count()).select_from(DeliveryAttempt)).scalar_one()
    lines = log_path.read_text().splitlines()
    _forget_scans(engine, loaded)
    engine.dispose()
    figures.update(
        {
            "as_of": on.isoformat(),
            "timed_out": "dispatch_after_scan" not in seen,
            "seconds_from_start": {name: round(at, 2) for name, at in seen.items()},
            "scan_s": _between(seen, "scan_taken", "scan_done"),
            "full_scan_s": _between(seen, "full_scan_taken", "full_scan_done"),
            "alerts_by_kind": by_kind,
            "delivery_attempts": attempts,
            # Its scan lines and errors (one warning per failed delivery is left out).
            "log": [line for line in lines if "alert scan" in line or " ERROR " in line][-20:],
            "log_lines": len(lines),
        }
    )
    print(
        f"worker (as of {on}): scan {figures['scan_s']} s, full scan {figures['full_scan_s']} s, "
        f"{sum(by_kind.values())} alerts, {attempts} delivery attempts; "
        f"peak RSS {figures['peak_rss_mib']} MiB",
        flush=True,
    )
    shutil.rmtree(workdir, ignore_errors=True)
    return figures


def _watch(engine: Engine, seen: dict[str, float], at: float) -> None:
    """Note when each alert job's lease is first seen taken, and completed."""
    with read_session(engine) as session:
        leases = {
            lease.name: lease
            for lease in session.execute(
                select(JobLease).where(col(JobLease.name).like("alerts.%"))
            ).scalars()
        }
        # Once both scans are done: has the dispatch been through their alerts?
        scanned = "full_scan_done" in seen
        attempts = (
            session.execute(select(func.count()).select_from(DeliveryAttempt)).scalar_one()
            if scanned
            else 0
        )
        alerts = (
            session.execute(select(func.count()).select_from(Alert)).scalar_one() if scanned else 1
        )
    for name, key in (("alerts.scan", "scan"), ("alerts.scan.full", "full_scan")):
        lease = leases.get(name)
        if lease is not None:
            seen.setdefault(f"{key}_taken", at)
            if lease.last_completed_at is not None:
                seen.setdefault(f"{key}_done", at)
    if attempts or not alerts:
        seen.setdefault("dispatch_after_scan", at)


def _between(seen: dict[str, float], start: str, end: str) -> float | None:
    return round(seen[end] - seen[start], 2) if start in seen and end in seen else None


def bench_dispatch(deliveries: int, workers: int, workdir: Path) -> dict[str, Any]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Ok)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url_hook = f"http://127.0.0.1:{server.server_address[1]}/hooks"
    path = workdir / "dispatch.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    engine = make_engine(f"sqlite:///{path}")
    migrate.upgrade(engine)
    now = datetime.now(UTC)
    secret = notifications.new_webhook_secret()
    with write_session(engine) as session:
        session.add(
            WebhookEndpoint(
                id="wh_bench", url=url_hook, event_types="digest", secret=secret, created_at=now
            )
        )
        for n in range(deliveries):
            session.add(
                Alert(
                    id=f"digest:bench:{n}:webhook:wh_bench",
                    kind="digest",
                    level=0,
                    channel="webhook",
                    recipient="wh_bench",
                    site_id=None,
                    as_of=now.date(),
                    payload=f'{{"n": {n}}}',
                    next_attempt_at=now,
                    created_at=now,
                )
            )
    config = DispatchConfig(
        registry=registry_for(rules.BUNDLED_PROTOCOLS),
        base_url="http://127.0.0.1",
        smtp=None,
        workers=workers,
        webhook_allow_private=True,
    )
    started = time.perf_counter()
    sent = 0
    while sent < deliveries:
        report = dispatch(engine, now=lambda: datetime.now(UTC), config=config, limit=500)
        if report.claimed == 0:
            break
        sent += report.sent
    app_s = time.perf_counter() - started
    with read_session(engine) as session:
        attempts = session.execute(select(func.count()).select_from(DeliveryAttempt)).scalar_one()

    messages = [
        notifications.WebhookMessage(
            url=url_hook,
            message_id=f"raw-{n}",
            event_type="digest",
            timestamp=now,
            data={"n": n},
            secrets=(secret,),
        )
        for n in range(deliveries)
    ]
    local = threading.local()

    def post(message: notifications.WebhookMessage) -> None:
        client = getattr(local, "client", None)
        if client is None:
            client = local.client = httpx.Client()
        notifications.send_webhook(client, message, allow_private=True)

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(post, messages))
    raw_s = time.perf_counter() - started
    server.shutdown()
    app_rate, raw_rate = sent / app_s, deliveries / raw_s
    print(
        f"dispatch: {sent} webhooks in {app_s:.2f} s = {app_rate:,.0f}/s "
        f"({attempts} attempt rows); "
        f"raw httpx, {workers} threads: {raw_rate:,.0f}/s; ratio {app_rate / raw_rate:.2f}"
    )
    return {
        "deliveries": sent,
        "workers": workers,
        "app_per_s": round(app_rate, 1),
        "raw_httpx_per_s": round(raw_rate, 1),
        "ratio": round(app_rate / raw_rate, 3),
        "attempt_rows": attempts,
        "target_half_of_raw": app_rate >= raw_rate / 2,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--sqlite-file", type=Path, help="a database kept by benchmarks/due_list.py --keep"
    )
    parser.add_argument(
        "--postgres-loaded", metavar="URL", help="a loaded PostgreSQL database (SQLAlchemy URL)"
    )
    parser.add_argument("--no-worker", action="store_true", help="skip the worker process")
    parser.add_argument("--no-scan", action="store_true", help="skip the in-process scans")
    parser.add_argument(
        "--worker-timeout", type=float, default=3600, help="seconds to wait for the worker"
    )
    parser.add_argument("--as-of", type=date.fromisoformat, default=date(2026, 2, 15))
    parser.add_argument(
        "--touched", type=int, default=500, help="patients changed before the last scan"
    )
    parser.add_argument("--deliveries", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp"))
    args = parser.parse_args()
    figures: dict[str, Any] = {"benchmark": "alerts"}
    stores = []
    if args.sqlite_file:
        if not args.sqlite_file.exists():
            parser.error(f"no database at {args.sqlite_file}")
        stores.append(("sqlite", f"sqlite:///{args.sqlite_file}"))
    if args.postgres_loaded:
        stores.append(("postgresql", args.postgres_loaded))
    for store, url in stores:
        # The worker first: its first scan is that of a freshly loaded database.
        if not args.no_worker:
            figures[f"worker_{store}"] = bench_worker(url, args.as_of, args.worker_timeout)
        if not args.no_scan:
            figures[f"scan_{store}"] = bench_scan(url, args.as_of, args.touched)
    if args.deliveries:
        figures["dispatch"] = bench_dispatch(args.deliveries, args.workers, args.workdir)
    emit(figures)


if __name__ == "__main__":
    main()
