"""Issue 4 §6, fourth proof: scanning twice, or in two OS processes at the same moment,
creates each alert once (deterministic ids + INSERT ... ON CONFLICT DO NOTHING)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from datetime import timedelta
from pathlib import Path

from sqlalchemy import Engine, func, select
from support.alert_support import (
    INFUSED,
    START,
    Clock,
    add_sites_and_staff,
    add_webhook,
    alerts,
    enroll_aav,
    scan_on,
)
from support.peers import Receiver

import rules
from surveillance.kit.db import read_session, write_session
from surveillance.records.outbox import Alert

REPO = Path(__file__).resolve().parents[3]
ROME = [f"ROM-{n:03d}" for n in range(1, 21)]
ERLANGEN = [f"ERL-{n:03d}" for n in range(1, 21)]
# Day 21 after the baseline window closed: overdue rows, a level-1 escalation round 1,
# and (weekly tests from day 9) more overdue rows.
AS_OF = INFUSED + timedelta(days=20)


def cohort(engine: Engine, registry: rules.ProtocolRegistry, receiver: Receiver) -> None:
    with write_session(engine) as session:
        add_sites_and_staff(session)
        enroll_aav(session, registry, ROME)
        enroll_aav(session, registry, ERLANGEN, site_id="Erlangen")
    add_webhook(engine, receiver, START)
    add_webhook(engine, receiver, START, events=("assessment.escalated",), site_id="Erlangen")


def counts(engine: Engine) -> tuple[int, int, int]:
    """(rows, distinct ids, distinct (kind, assessment, level, channel, recipient))."""
    with read_session(engine) as session:
        rows = session.execute(select(func.count()).select_from(Alert)).scalar_one()
        ids = session.execute(select(func.count(func.distinct(Alert.id)))).scalar_one()
        natural = session.execute(
            select(func.count()).select_from(
                select(Alert.kind, Alert.assessment_id, Alert.level, Alert.channel, Alert.recipient)
                .distinct()
                .subquery()
            )
        ).scalar_one()
    return rows, ids, natural


def test_scanning_twice_creates_nothing_new(
    engine: Engine, registry: rules.ProtocolRegistry, receiver: Receiver, clock: Clock
) -> None:
    cohort(engine, registry, receiver)
    first = scan_on(engine, clock, AS_OF)
    kinds = {kind for kind, count in first.created.items() if count}
    assert kinds == {"assessment.overdue", "assessment.escalated"}
    before = alerts(engine)

    clock.advance(timedelta(minutes=15))  # the next scheduled run, same day
    second = scan_on(engine, clock, AS_OF)

    assert second.total == 0
    assert [(a.id, a.created_at) for a in alerts(engine)] == [(a.id, a.created_at) for a in before]
    rows, ids, natural = counts(engine)
    assert rows == ids == natural == first.total
    # 40 patients: one email to the nurses and one webhook per overdue row; the Erlangen-only
    # endpoint hears escalations only, and only Erlangen's.
    by_recipient = {
        (a.kind, a.channel, a.recipient.split(":")[1] if a.channel == "email" else a.recipient)
        for a in before
    }
    assert ("assessment.overdue", "email", "Rome") in by_recipient
    assert ("assessment.overdue", "email", "Erlangen") in by_recipient


# Each process: import, connect, say "ready", wait for "go", scan in one transaction and
# keep it open a moment before committing, so the two transactions overlap.
SCANNER = textwrap.dedent(
    """
    import json, sys, time
    from datetime import date, datetime
    from sqlalchemy import text
    from surveillance.alerting.scan import scan
    from surveillance.kit.db import make_engine, write_session

    url, now, on = sys.argv[1], datetime.fromisoformat(sys.argv[2]), date.fromisoformat(sys.argv[3])
    engine = make_engine(url)
    with engine.connect() as connection:
        connection.execute(text("SELECT 1"))
    print("ready", flush=True)
    sys.stdin.readline()
    began = time.time()
    with write_session(engine) as session:
        report = scan(session, now=now, overrides={}, on=on)
        scanned = time.time()
        time.sleep(0.3)
    print(json.dumps({"began": began, "scanned": scanned, "committed": time.time(),
                      "created": report.total}), flush=True)
    """
)


def test_two_processes_scanning_at_once_create_each_alert_once(
    engine: Engine, registry: rules.ProtocolRegistry, receiver: Receiver, clock: Clock
) -> None:
    cohort(engine, registry, receiver)
    clock.to_day(AS_OF)
    url = engine.url.render_as_string(hide_password=False)
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", SCANNER, url, clock().isoformat(), AS_OF.isoformat()],
            cwd=REPO,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    try:
        for process in processes:
            assert process.stdout is not None
            assert process.stdout.readline().strip() == "ready"
        for process in processes:  # both at once
            assert process.stdin is not None
            process.stdin.write("go\n")
            process.stdin.flush()
        results = []
        for process in processes:
            out, err = process.communicate(timeout=120)
            assert process.returncode == 0, err
            results.append(json.loads(out.strip().splitlines()[-1]))
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()

    # The two scans really overlapped: each began before the other committed.
    first, second = results
    assert first["began"] < second["committed"]
    assert second["began"] < first["committed"]
    rows, ids, natural = counts(engine)
    assert rows > 0
    assert rows == ids == natural == first["created"] + second["created"]
    # And the same as one scan alone would have written: a further scan adds nothing.
    assert scan_on(engine, clock, AS_OF).total == 0
