"""``surveillance worker`` as an operator (or ``benchmarks/alerts.py``) runs it: the console
script in a child process on a SQLite file, stopped with SIGTERM. Its hidden ``--today``
stops the jobs' clock at a day, so a database loaded as of that day is scanned as of it.
Invoked in-process (as the other CLI tests invoke commands) it leaves the test process's
logging and signal handling as it found them."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from sqlalchemy import select
from support.alert_support import add_sites_and_staff, enroll_aav
from support.cli_runtime import forget_cli_runtime
from typer.testing import CliRunner

import rules
from surveillance.cli import app
from surveillance.kit import migrate
from surveillance.kit.db import make_engine, read_session, write_session
from surveillance.kit.leases import JobLease
from surveillance.records.outbox import Alert

SCRIPT = Path(sys.executable).parent / "surveillance"
INFUSED = date(2024, 3, 1)  # long past: scanned as of the real day, far more is overdue


def test_worker_scans_as_of_its_today(tmp_path: Path, registry: rules.ProtocolRegistry) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    engine = make_engine(url)
    migrate.upgrade(engine)
    with write_session(engine) as session:
        add_sites_and_staff(session)
        now = datetime(INFUSED.year, INFUSED.month, INFUSED.day, 12, tzinfo=UTC)
        enroll_aav(session, registry, ["ROM-101", "ROM-102"], infused=INFUSED, now=now)
    environment = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("SURVEILLANCE_") and k != "DATABASE_URL"
    }
    environment |= {"DATABASE_URL": url, "SURVEILLANCE_DATA_DIR": str(tmp_path / "data")}
    output = tmp_path / "worker.out"
    with output.open("wb") as printed:
        process = subprocess.Popen(
            [str(SCRIPT), "worker", "--today", INFUSED.isoformat()],
            cwd=tmp_path,
            env=environment,
            stdout=printed,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 90
        while True:  # the scan runs at start; its lease records when it completed
            assert process.poll() is None, output.read_text()
            assert time.monotonic() < deadline, f"no scan in 90 s: {output.read_text()}"
            with read_session(engine) as session:
                lease = session.get(JobLease, "alerts.scan")
                if lease is not None and lease.last_completed_at is not None:
                    completed = lease.last_completed_at
                    break
            time.sleep(0.2)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
    assert process.returncode == 0, output.read_text()
    printed_text = output.read_text()
    assert "alert worker running" in printed_text
    # The scan's own log line reaches the operator (INFO, on stderr).
    assert "INFO surveillance.alerts: alert scan: assessment.overdue=2" in printed_text
    # The jobs' clock: noon UTC of --today, not the machine's time.
    assert completed.replace(tzinfo=UTC) == datetime(2024, 3, 1, 12, tzinfo=UTC)
    with read_session(engine) as session:
        alerts = session.execute(
            select(Alert.kind, Alert.as_of).where(Alert.kind == "assessment.overdue")
        ).all()
    engine.dispose()
    # As of that day only the baseline windows have closed: one email per patient (the
    # real day, years later, finds far more, as of itself).
    assert len(alerts) == 2
    assert {as_of for _, as_of in alerts} == {INFUSED}


def test_an_in_process_worker_adds_no_log_handler_and_gives_sigterm_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only the process's entry point (``cli.main``) sends the ``surveillance`` log to
    stderr: ``worker`` invoked in-process, stopped by SIGTERM as an operator stops it,
    adds no handler to the process-wide logger (one would outlive the invocation and
    write into whatever stream it captured)."""
    logger = logging.getLogger("surveillance")
    monkeypatch.setattr(logger, "handlers", [])  # whatever an earlier test left
    level = logger.level
    for name in [k for k in os.environ if k.startswith("SURVEILLANCE_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'x.db'}")
    monkeypatch.setenv("SURVEILLANCE_DATA_DIR", str(tmp_path / "data"))
    forget_cli_runtime()
    original = signal.getsignal(signal.SIGTERM)

    def stop_once_it_listens() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # never SIGTERM before the worker's own handler
            if signal.getsignal(signal.SIGTERM) is not original:
                os.kill(os.getpid(), signal.SIGTERM)
                return
            time.sleep(0.05)

    stopper = threading.Thread(target=stop_once_it_listens, daemon=True)
    stopper.start()
    try:
        result = CliRunner().invoke(app, ["worker", "--today", INFUSED.isoformat()])
    finally:
        stopper.join(timeout=60)
        forget_cli_runtime()
    assert result.exit_code == 0, result.output
    assert "alert worker running" in result.output
    assert logger.handlers == []
    assert logger.level == level
    assert signal.getsignal(signal.SIGTERM) is original
