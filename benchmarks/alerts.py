"""Alerts at scale: one scan at 100 000 patients, and dispatch throughput to a local receiver.

    .venv/bin/python benchmarks/alerts.py --sqlite-file /tmp/bench-data/due-100k.db
        [--as-of 2026-02-15] [--deliveries 2000] [--workers 8]

Scan
    Reuses a database built by ``benchmarks/due_list.py --keep`` (100 000 CAR-T patients,
    ~23 million assessment rows, history recorded up to 2026-01-15). Scanning "as of" a
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
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Engine, delete, func, select, update
from sqlmodel import col

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import notifications
import rules
from benchmarks._common import emit
from surveillance.alerting.dispatch import DispatchConfig, dispatch
from surveillance.alerting.models import ScanChange, ScanMark
from surveillance.alerting.scan import scan
from surveillance.kit import migrate
from surveillance.kit.db import make_engine, read_session, write_session
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
    _forget_scans(engine)  # a kept database: its first scan here is a full one

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
    _forget_scans(engine)
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


def _forget_scans(engine: Engine) -> None:
    """Delete the alerts, the scan marks and the changes, so the file can be reused."""
    with write_session(engine) as session:
        for table in (Alert, ScanMark, ScanChange):
            session.execute(delete(table))


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
    parser.add_argument("--as-of", type=date.fromisoformat, default=date(2026, 2, 15))
    parser.add_argument(
        "--touched", type=int, default=500, help="patients changed before the last scan"
    )
    parser.add_argument("--deliveries", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp"))
    args = parser.parse_args()
    figures: dict[str, Any] = {"benchmark": "alerts"}
    if args.sqlite_file:
        figures["scan_sqlite"] = bench_scan(
            f"sqlite:///{args.sqlite_file}", args.as_of, args.touched
        )
    if args.deliveries:
        figures["dispatch"] = bench_dispatch(args.deliveries, args.workers, args.workdir)
    emit(figures)


if __name__ == "__main__":
    main()
