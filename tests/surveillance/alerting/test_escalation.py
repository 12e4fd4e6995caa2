"""Issue 4 §6, second proof: still undone 14 days after the window closed -> the site's
investigators (email) and ``assessment.escalated``; at 60 days the admins; weekly
reminders until an investigator acknowledges, and an acknowledgement holds only until
the next level."""

from __future__ import annotations

from datetime import timedelta
from email.header import decode_header, make_header
from email.message import Message

import pytest
from sqlalchemy import Engine
from standardwebhooks.webhooks import Webhook
from support.alert_support import (
    ADMIN,
    ROME_INVESTIGATOR,
    ROME_NURSES,
    Clock,
    add_webhook,
    alert,
    alerts,
    attempts,
    baseline,
    config,
    drain,
    mails,
    scan_on,
    setup_cohort,
    smtp_config,
)
from support.peers import Receiver, SmtpInbox

import rules
from surveillance.accounts import auth
from surveillance.alerting import operations
from surveillance.errors import Conflict, Forbidden
from surveillance.kit.db import write_session


def acknowledge(
    engine: Engine, key: str, level: int, clock: Clock, who: str = ROME_INVESTIGATOR
) -> None:
    with write_session(engine) as session:
        user = auth.principal_for(session, auth.get_user(session, who))
        operations.acknowledge(
            session, key=key, level=level, note="spoke to the family", user=user, now=clock()
        )


def test_escalation_levels_weekly_reminders_and_acknowledgement(
    engine: Engine,
    registry: rules.ProtocolRegistry,
    smtp_server: SmtpInbox,
    receiver: Receiver,
    clock: Clock,
) -> None:
    setup_cohort(engine, registry)
    endpoint_id, secret = add_webhook(engine, receiver, clock())
    target = baseline(engine)
    closed = target.window_end
    dispatching = config(registry, smtp_config(smtp_server))
    prefix = f"assessment.escalated:{target.id}:"

    def ours() -> list[tuple[str, int, str, str, str]]:
        """(kind, level, round, channel, as of) of the target's alerts, in order."""
        rows = alerts(engine, assessment_id=target.id)
        return sorted(
            (a.kind, a.level, a.id.split(":")[3], a.channel, str((a.as_of - closed).days))
            for a in rows
        )

    # Every day from the day after the window closed to day 67: scan, then dispatch.
    for days in range(1, 68):
        scan_on(engine, clock, closed + timedelta(days=days))
        if days == 23:  # after the first weekly reminder: the investigator acknowledges
            acknowledge(engine, target.key, 1, clock)
        drain(engine, clock, dispatching)

    both = ("email", "webhook")
    expected = (
        [("assessment.escalated", 1, "0", channel, "14") for channel in both]
        + [("assessment.escalated", 1, "1", channel, "21") for channel in both]
        + [("assessment.escalated", 2, "0", channel, "60") for channel in both]
        + [("assessment.escalated", 2, "1", channel, "67") for channel in both]
        + [("assessment.overdue", 0, "0", channel, "1") for channel in both]
    )
    # No level-1 round 2 at day 28 (acknowledged), nothing before day 14, level 2 at 60.
    assert ours() == sorted(expected)

    received = mails(smtp_server)
    ours_mailed = {alert_id: d for alert_id, d in received.items() if alert_id.startswith(prefix)}
    investigator_mail = f"{prefix}1:0:email:site:Rome:investigator"
    assert sorted(ours_mailed) == sorted(
        [
            investigator_mail,
            f"{prefix}1:1:email:site:Rome:investigator",
            f"{prefix}2:0:email:admins",
            f"{prefix}2:1:email:admins",
        ]
    )
    [(recipients, mime)] = ours_mailed[investigator_mail]
    assert recipients == [ROME_INVESTIGATOR]
    assert "Escalation 1" in _subject(mime)
    assert "14 days overdue" in _subject(mime)
    [(recipients, mime)] = ours_mailed[f"{prefix}2:0:email:admins"]
    assert recipients == [ADMIN]
    assert "Escalation 2" in _subject(mime)
    assert "60 days overdue" in _subject(mime)
    # The nurses were told once, the day after the window closed, never about escalations.
    [(recipients, _)] = received[f"assessment.overdue:{target.id}:0:0:email:site:Rome:nurse"]
    assert recipients == sorted(ROME_NURSES)

    hooks = [r for r in receiver.requests if r.headers["webhook-id"].startswith(prefix)]
    levels = []
    for request in hooks:
        payload = Webhook(secret).verify(request.body, request.headers)
        assert payload["type"] == "assessment.escalated"
        assert payload["data"]["key"] == target.key
        levels.append((payload["data"]["level"], payload["data"]["days_overdue"]))
    assert sorted(levels) == [(1, 14), (1, 21), (2, 60), (2, 67)]
    assert {r.headers["webhook-id"].rsplit(":", 1)[1] for r in hooks} == {endpoint_id}


def test_an_acknowledgement_cancels_the_reminder_waiting_to_be_sent(
    engine: Engine, registry: rules.ProtocolRegistry, smtp_server: SmtpInbox, clock: Clock
) -> None:
    setup_cohort(engine, registry)
    target = baseline(engine)
    scan_on(engine, clock, target.window_end + timedelta(days=14))
    waiting = alert(engine, f"assessment.escalated:{target.id}:1:0:email:site:Rome:investigator")
    assert waiting.status == "pending"

    acknowledge(engine, target.key, 1, clock)
    drain(engine, clock, config(registry, smtp_config(smtp_server)))

    cancelled = alert(engine, waiting.id)
    assert cancelled.status == "cancelled"
    assert cancelled.cancel_reason == f"acknowledged by {ROME_INVESTIGATOR}: spoke to the family"
    assert [(a.outcome, a.detail) for a in attempts(engine, waiting.id)] == [
        ("cancelled", cancelled.cancel_reason)
    ]
    assert waiting.id not in mails(smtp_server)


def test_only_investigators_and_admins_acknowledge_once_per_level(
    engine: Engine, registry: rules.ProtocolRegistry, clock: Clock
) -> None:
    setup_cohort(engine, registry)
    target = baseline(engine)
    with pytest.raises(Forbidden):
        acknowledge(engine, target.key, 1, clock, who=ROME_NURSES[0])
    acknowledge(engine, target.key, 1, clock)
    with pytest.raises(Conflict, match="already acknowledged"):
        acknowledge(engine, target.key, 1, clock, who=ADMIN)
    acknowledge(engine, target.key, 2, clock, who=ADMIN)  # the next level is its own


def _subject(mime: Message) -> str:
    """The subject as a reader sees it: encoded words decoded, folded lines joined."""
    return " ".join(str(make_header(decode_header(mime["Subject"]))).split())
