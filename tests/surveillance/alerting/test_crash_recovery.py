"""Issue 4 §6, seventh proof: a dispatcher process killed with SIGKILL in the middle of a
batch loses nothing. After its claims expire a new dispatcher delivers every alert; a
receiver de-duplicating by ``webhook-id`` sees each alert, and the ones the dead process
had already sent (unrecorded) come again with the same id."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from datetime import timedelta
from pathlib import Path

from sqlalchemy import Engine, select
from support.alert_support import (
    Clock,
    add_webhook,
    alerts,
    baseline,
    config,
    drain,
    scan_on,
    setup_cohort,
)
from support.peers import Receiver

import rules
from surveillance.alerting.dispatch import CLAIM_LEASE
from surveillance.alerting.models import OutgoingMail
from surveillance.kit.db import read_session

REPO = Path(__file__).resolve().parents[3]
PATIENTS = [f"ROM-{n:03d}" for n in range(1, 31)]

# A dispatcher loop in its own process: batches of 10, 4 sending threads, no SMTP
# (emails go to the outgoing-mail table), the clock stopped at argv[2].
DISPATCHER = textwrap.dedent(
    """
    import sys
    from datetime import datetime
    import rules
    from surveillance.alerting.dispatch import DispatchConfig, dispatch
    from surveillance.kit.db import make_engine

    engine = make_engine(sys.argv[1])
    now = datetime.fromisoformat(sys.argv[2])
    config = DispatchConfig(registry=rules.ProtocolRegistry.from_directory(), base_url="https://ltfu.example",
                            smtp=None, workers=4, webhook_timeout=10,
                            webhook_allow_private=True)
    while dispatch(engine, now=lambda: now, config=config, limit=10).claimed:
        pass
    print("finished", flush=True)
    """
)


def test_a_dispatcher_killed_mid_batch_loses_no_alert(
    engine: Engine,
    registry: rules.ProtocolRegistry,
    receiver: Receiver,
    clock: Clock,
    tmp_path: Path,
) -> None:
    setup_cohort(engine, registry, PATIENTS)
    add_webhook(engine, receiver, clock())
    scan_on(engine, clock, baseline(engine, PATIENTS[0]).window_end + timedelta(days=1))
    webhook_ids = {a.id for a in alerts(engine, channel="webhook")}
    email_ids = {a.id for a in alerts(engine, channel="email")}
    assert len(webhook_ids) == len(email_ids) == len(PATIENTS)
    receiver.script = [(200, {}, 0.4)]  # a slow receiver: a batch takes a while

    log = (tmp_path / "dispatcher.log").open("w")
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            DISPATCHER,
            engine.url.render_as_string(hide_password=False),
            clock().isoformat(),
        ],
        cwd=REPO,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while len(receiver.requests) < 8:
            assert process.poll() is None, (tmp_path / "dispatcher.log").read_text()
            assert time.monotonic() < deadline, "the dispatcher sent nothing"
            time.sleep(0.005)
        # A request has just arrived and waits for its answer: its batch is in flight.
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
        log.close()
    assert process.returncode == -signal.SIGKILL
    time.sleep(0.5)  # let the receiver finish the requests it was answering
    receiver.script = [(200, {}, 0.0)]

    at_kill = {a.id: a.status for a in alerts(engine)}
    received_before = set(receiver.ids())
    in_flight = {i for i, status in at_kill.items() if status == "sending"}
    sent_before = {i for i, status in at_kill.items() if status == "sent"}
    assert in_flight, "the kill should have interrupted a batch"
    assert 0 < len(received_before) < len(webhook_ids)
    assert in_flight & received_before, "some of the interrupted batch had reached the receiver"

    # Until its claims expire, nobody takes the dead process's alerts (the rest are sent).
    dispatching = config(registry, None)
    clock.advance(timedelta(minutes=1))
    drain(engine, clock, dispatching)
    assert {a.id for a in alerts(engine, status="sending")} == in_flight

    # After the lease: a new dispatcher delivers them all.
    clock.advance(CLAIM_LEASE)
    drain(engine, clock, dispatching)

    everything = alerts(engine)
    assert {a.status for a in everything} == {"sent"}
    assert {a.id for a in everything} == webhook_ids | email_ids  # nothing lost, nothing else
    ids = receiver.ids()
    assert set(ids) == webhook_ids  # the receiver, de-duplicating by webhook-id, has them all
    # At least once: what the dead process had sent but not recorded comes again, same id;
    # what it had recorded as sent does not.
    for alert_id in in_flight & received_before:
        assert ids.count(alert_id) == 2
    for alert_id in sent_before & webhook_ids:
        assert ids.count(alert_id) == 1
    with read_session(engine) as session:
        written = list(session.execute(select(OutgoingMail.alert_id)).scalars())
    assert set(written) == email_ids
    assert len(written) == len(email_ids)  # recorded in the same transaction as "sent"
