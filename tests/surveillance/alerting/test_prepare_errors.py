"""One alert that cannot even be prepared must not hold up the rest of the batch."""

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlmodel import Session, col

import rules
from surveillance.accounts import auth
from surveillance.alerting import dispatch as dispatch_module
from surveillance.alerting.dispatch import DispatchConfig, dispatch
from surveillance.kit.db import read_session, write_session
from surveillance.records.outbox import Alert, DeliveryAttempt

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
# What the dispatcher itself writes for an admin alert (see dispatch._tell_admins).
GOOD_PAYLOAD = {
    "what": "An alert could not be delivered after 7 attempt(s).",
    "failed_alert": "assessment.overdue:1:0:0:webhook:wh_x",
    "channel": "webhook",
    "recipient": "wh_x",
    "attempts": 7,
    "error": "503 from receiver",
}


def _admin_alert(alert_id: str, payload: str) -> Alert:
    return Alert(
        id=alert_id, kind="alert.failed", level=0, channel="email", recipient="admins",
        as_of=NOW.date(), payload=payload, next_attempt_at=NOW, created_at=NOW,
    )  # fmt: skip


def test_a_broken_alert_is_recorded_and_retried_while_the_others_are_sent(
    engine: Engine, registry: rules.ProtocolRegistry
) -> None:
    with write_session(engine) as session:
        auth.add_user(session, email="admin@example.org", role="admin", sites=[], actor="test")
        session.add(_admin_alert("alert.failed:good", json.dumps(GOOD_PAYLOAD)))
        session.add(_admin_alert("alert.failed:broken", "{not json"))

    config = DispatchConfig(
        registry=registry, base_url="http://127.0.0.1", smtp=None, webhook_allow_private=True
    )
    report = dispatch(engine, now=lambda: NOW, config=config)

    assert (report.claimed, report.sent, report.retrying) == (2, 1, 1)
    with read_session(engine) as session:
        good = session.get(Alert, "alert.failed:good")
        broken = session.get(Alert, "alert.failed:broken")
        attempts = (
            session.execute(
                select(DeliveryAttempt).where(DeliveryAttempt.alert_id == "alert.failed:broken")
            )
            .scalars()
            .all()
        )
    assert good is not None
    assert good.status == "sent"
    assert broken is not None
    assert (broken.status, broken.attempts, broken.claimed_until) == ("pending", 1, None)
    assert broken.next_attempt_at.replace(tzinfo=UTC) > NOW
    assert [(a.outcome, "internal error" in (a.detail or "")) for a in attempts] == [
        ("transient", True)
    ]


def test_a_delivery_that_cannot_be_recorded_stays_claimed_and_the_rest_are_recorded(
    engine: Engine, registry: rules.ProtocolRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """More alerts than one transaction records (``CHUNK``), one of which fails to be
    written: the others of its chunk and the next chunk are recorded; that one stays
    claimed, to be sent again (same id) when its claim runs out."""
    count = dispatch_module.CHUNK + 10
    with write_session(engine) as session:
        auth.add_user(session, email="admin@example.org", role="admin", sites=[], actor="test")
        for n in range(count):
            session.add(_admin_alert(f"alert.failed:{n:03}", json.dumps(GOOD_PAYLOAD)))
    unlucky = "alert.failed:007"
    write_outgoing = dispatch_module._write_outgoing

    def failing(session: Session, alert_id: str, *args: Any) -> None:
        if alert_id == unlucky:
            raise RuntimeError("disk full")
        write_outgoing(session, alert_id, *args)

    monkeypatch.setattr(dispatch_module, "_write_outgoing", failing)
    config = DispatchConfig(
        registry=registry, base_url="http://127.0.0.1", smtp=None, webhook_allow_private=True
    )
    report = dispatch(engine, now=lambda: NOW, config=config)

    assert (report.claimed, report.sent) == (count, count - 1)
    with read_session(engine) as session:
        rows = session.execute(select(col(Alert.id), col(Alert.status))).all()
        statuses: dict[str, str] = dict(rows)
        attempted = set(session.execute(select(col(DeliveryAttempt.alert_id))).scalars())
        stuck = session.get(Alert, unlucky)
    assert {s for a, s in statuses.items() if a != unlucky} == {"sent"}
    assert unlucky not in attempted
    assert len(attempted) == count - 1
    assert stuck is not None
    assert (stuck.status, stuck.attempts) == ("sending", 0)
    assert stuck.claimed_until is not None
