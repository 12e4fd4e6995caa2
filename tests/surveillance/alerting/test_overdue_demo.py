"""Issue 4 §6, first proof: on the demo cohort, move the day past a window's end ->
exactly one overdue email reaches the SMTP server (to the site's nurses) and exactly one
signed webhook reaches the receiver."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

from sqlalchemy import Engine, select
from standardwebhooks.webhooks import Webhook
from support.alert_support import (
    BASE_URL,
    START,
    Clock,
    Row,
    add_webhook,
    alerts,
    attempts,
    config,
    drain,
    mails,
    scan_on,
    smtp_config,
    text_part,
)
from support.peers import Receiver, SmtpInbox

import rules
from surveillance.kit.db import read_session
from surveillance.kit.i18n import format_day
from surveillance.records.patients import Assessment, Patient, assessment_key

ROME_NURSE = "nurse.rome@demo.invalid"  # the one Rome nurse of create_demo_users


def pick_target(engine: Engine, registry: rules.ProtocolRegistry) -> tuple[Row, str]:
    """A pending Rome assessment whose window is still open at START and is the only
    pending one to close on its last day (so the day after, it alone turns overdue)."""
    with read_session(engine) as session:
        pending = session.execute(
            select(Assessment, Patient.study_id)
            .join(Patient, Patient.id == Assessment.patient_id)  # type: ignore[arg-type]
            .where(Assessment.status == "pending")
            .order_by(Assessment.window_end, Assessment.id)  # type: ignore[arg-type]
        ).all()
    closing_on = Counter(row.window_end for row, _ in pending)
    yearly_contacts = {rule for p in registry.all() for rule in p.yearly_contacts}
    for row, study_id in pending:
        if (
            row.site_id == "Rome"
            and row.window_end > START.date()
            and closing_on[row.window_end] == 1
            and row.assessment not in yearly_contacts
            and row.category != "safety-reporting"  # a reporting clock escalates in a day
        ):
            key = assessment_key(study_id, row.infusion_number, row.assessment, row.occurrence)
            return Row(row.id, row.patient_id, key, row.site_id, row.window_end), study_id
    raise AssertionError("the demo cohort has no pending Rome assessment closing alone")


def test_the_day_after_a_window_closes_one_email_and_one_signed_webhook(
    demo_engine: Engine,
    registry: rules.ProtocolRegistry,
    smtp_server: SmtpInbox,
    receiver: Receiver,
    clock: Clock,
) -> None:
    engine = demo_engine
    endpoint_id, secret = add_webhook(engine, receiver, clock())
    target, study_id = pick_target(engine, registry)
    last_day = target.window_end
    dispatching = config(registry, smtp_config(smtp_server))

    # As of its last day the window is still open: nothing for it. The rest of the
    # demo's backlog (overdue since before) is delivered now, to start the next day clean.
    scan_on(engine, clock, last_day)
    assert alerts(engine, assessment_id=target.id) == []
    drain(engine, clock, dispatching)
    assert smtp_server.messages, "the demo backlog should have produced mail"
    assert not [a for a in mails(smtp_server) if f":{target.id}:" in a]
    smtp_server.messages.clear()
    receiver.requests.clear()

    scan_on(engine, clock, last_day + timedelta(days=1))
    created = alerts(engine, assessment_id=target.id)
    assert [(a.kind, a.level, a.channel, a.recipient) for a in created] == [
        ("assessment.overdue", 0, "email", "site:Rome:nurse"),
        ("assessment.overdue", 0, "webhook", endpoint_id),
    ]
    email_alert, webhook_alert = created
    drain(engine, clock, dispatching)

    # Exactly one overdue email in the whole inbox, about the target, to Rome's nurse.
    received = mails(smtp_server)
    overdue = {
        alert_id: d
        for alert_id, d in received.items()
        if alert_id.startswith("assessment.overdue:")
    }
    assert list(overdue) == [email_alert.id]
    [(recipients, mime)] = overdue[email_alert.id]
    assert recipients == [ROME_NURSE]
    assert study_id in mime["Subject"]
    assert "1 days overdue" in mime["Subject"]
    body = text_part(mime)
    assert target.key in body
    assert f"to {format_day(last_day)}" in body  # the window, in words
    assert f"{BASE_URL}/patients/{study_id}" in body
    # Anything else that day is another assessment's escalation reminder, never the target.
    others = {alert_id.split(":", 1)[0] for alert_id in received if alert_id != email_alert.id}
    assert others <= {"assessment.escalated"}
    assert not [a for a in received if f":{target.id}:" in a and a != email_alert.id]

    # Exactly one overdue webhook, signed with the endpoint's secret, carrying the alert id.
    hooks = [
        r for r in receiver.requests if r.headers["webhook-id"].startswith("assessment.overdue:")
    ]
    assert [r.headers["webhook-id"] for r in hooks] == [webhook_alert.id]
    payload = Webhook(secret).verify(hooks[0].body, hooks[0].headers)
    assert payload["type"] == "assessment.overdue"
    assert payload["data"]["key"] == target.key
    assert payload["data"]["study_id"] == study_id
    assert payload["data"]["days_overdue"] == 1
    assert payload["data"]["window_end"] == last_day.isoformat()

    for sent in (email_alert, webhook_alert):
        assert [(a.outcome) for a in attempts(engine, sent.id)] == ["sent"]
        assert [a.status for a in alerts(engine, id=sent.id)] == ["sent"]

    # The same day again: the scan creates nothing new, nothing more is sent for it.
    smtp_server.messages.clear()
    receiver.requests.clear()
    again = scan_on(engine, clock, last_day + timedelta(days=1))
    assert again.total == 0
    drain(engine, clock, dispatching)
    assert smtp_server.messages == []
    assert receiver.requests == []
