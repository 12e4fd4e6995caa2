"""Webhook delivery through the outbox: retries with the same ``webhook-id`` (issue 4 §6,
fifth proof), permanent failures told to the admins, ``410 Gone`` disabling the endpoint
and holding its backlog for a replay, secret rotation, an endpoint failing for 5 days."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import Engine
from standardwebhooks.webhooks import Webhook, WebhookVerificationError
from support.alert_support import (
    ACTOR,
    ADMIN,
    Clock,
    add_webhook,
    alert,
    alerts,
    attempts,
    aware,
    baseline,
    config,
    drain,
    endpoint,
    mails,
    scan_on,
    setup_cohort,
    smtp_config,
    text_part,
)
from support.peers import Receiver, SmtpInbox

import notifications
import rules
from surveillance.alerting import endpoints, operations
from surveillance.alerting.dispatch import dispatch
from surveillance.kit.db import read_session, write_session

SECOND = timedelta(seconds=1)


def one_overdue_webhook(
    engine: Engine, registry: rules.ProtocolRegistry, receiver: Receiver, clock: Clock
) -> tuple[str, str]:
    """One patient, one endpoint, the day after the baseline window closed: (alert id, secret)."""
    setup_cohort(engine, registry)
    endpoint_id, secret = add_webhook(engine, receiver, clock())
    target = baseline(engine)
    scan_on(engine, clock, target.window_end + timedelta(days=1))
    [webhook] = alerts(engine, channel="webhook")
    assert webhook.recipient == endpoint_id
    return webhook.id, secret


def test_500_500_200_is_three_attempts_with_the_same_webhook_id(
    engine: Engine,
    registry: rules.ProtocolRegistry,
    smtp_server: SmtpInbox,
    receiver: Receiver,
    clock: Clock,
) -> None:
    alert_id, secret = one_overdue_webhook(engine, registry, receiver, clock)
    receiver.script = [(500, {}, 0.0), (500, {}, 0.0), (200, {}, 0.0)]
    dispatching = config(registry, smtp_config(smtp_server))
    start = clock()

    drain(engine, clock, dispatching)  # attempt 1: 500, next in 5 s
    assert (alert(engine, alert_id).status, len(receiver.requests)) == ("pending", 1)
    clock.advance(4 * SECOND)
    assert dispatch(engine, now=clock, config=dispatching).claimed == 0  # not yet
    clock.advance(SECOND)
    drain(engine, clock, dispatching)  # attempt 2 at +5 s: 500, next in 5 min
    assert len(receiver.requests) == 2
    clock.advance(timedelta(minutes=5) - SECOND)
    assert dispatch(engine, now=clock, config=dispatching).claimed == 0
    clock.advance(SECOND)
    drain(engine, clock, dispatching)  # attempt 3: 200

    done = alert(engine, alert_id)
    assert (done.status, done.attempts, aware(done.sent_at)) == ("sent", 3, clock())  # type: ignore[arg-type]
    rows = attempts(engine, alert_id)
    assert [(a.outcome, a.status_code) for a in rows] == [
        ("transient", 500),
        ("transient", 500),
        ("sent", 200),
    ]
    assert [aware(a.attempted_at) - start for a in rows] == [
        timedelta(0),
        timedelta(seconds=5),
        timedelta(seconds=5, minutes=5),
    ]
    assert receiver.ids() == [alert_id] * 3
    bodies = {r.body for r in receiver.requests}
    assert len(bodies) == 1  # the payload was frozen at the first attempt
    for request in receiver.requests:
        Webhook(secret).verify(request.body, request.headers)


def test_429_retry_after_is_honoured(
    engine: Engine, registry: rules.ProtocolRegistry, receiver: Receiver, clock: Clock
) -> None:
    alert_id, _ = one_overdue_webhook(engine, registry, receiver, clock)
    receiver.script = [(429, {"Retry-After": "600"}, 0.0), (200, {}, 0.0)]
    dispatching = config(registry, None)
    drain(engine, clock, dispatching)
    assert aware(alert(engine, alert_id).next_attempt_at) == clock() + timedelta(minutes=10)
    clock.advance(timedelta(minutes=10) - SECOND)
    assert dispatch(engine, now=clock, config=dispatching).claimed == 0
    clock.advance(SECOND)
    drain(engine, clock, dispatching)
    assert alert(engine, alert_id).status == "sent"


def test_exhausted_retries_fail_tell_the_admins_and_can_be_retried(
    engine: Engine,
    registry: rules.ProtocolRegistry,
    smtp_server: SmtpInbox,
    receiver: Receiver,
    clock: Clock,
) -> None:
    alert_id, _ = one_overdue_webhook(engine, registry, receiver, clock)
    receiver.script = [(503, {}, 0.0)]
    dispatching = config(registry, smtp_config(smtp_server))
    drain(engine, clock, dispatching)
    for delay in notifications.RETRY_SCHEDULE:
        assert alert(engine, alert_id).status == "pending"
        clock.advance(delay)
        drain(engine, clock, dispatching)

    failed = alert(engine, alert_id)
    assert (failed.status, failed.attempts) == ("failed", 1 + len(notifications.RETRY_SCHEDULE))
    assert "503" in (failed.last_error or "")
    with read_session(engine) as session:
        assert [a.id for a in operations.list_alerts(session, status="failed")] == [alert_id]
    [(recipients, mime)] = mails(smtp_server)[f"alert.failed:{alert_id}"]
    assert recipients == [ADMIN]
    assert "8 attempt(s)" in text_part(mime)
    assert alert_id in text_part(mime)

    receiver.script = [(200, {}, 0.0)]
    with write_session(engine) as session:
        operations.retry(session, alert_id, actor=ACTOR, now=clock())
    drain(engine, clock, dispatching)
    assert alert(engine, alert_id).status == "sent"
    assert set(receiver.ids()) == {alert_id}


def test_a_permanent_4xx_fails_at_once_and_tells_the_admins(
    engine: Engine,
    registry: rules.ProtocolRegistry,
    smtp_server: SmtpInbox,
    receiver: Receiver,
    clock: Clock,
) -> None:
    alert_id, _ = one_overdue_webhook(engine, registry, receiver, clock)
    receiver.script = [(400, {}, 0.0)]
    drain(engine, clock, config(registry, smtp_config(smtp_server)))

    failed = alert(engine, alert_id)
    assert (failed.status, failed.attempts) == ("failed", 1)
    assert [(a.outcome, a.status_code) for a in attempts(engine, alert_id)] == [("permanent", 400)]
    admin = alert(engine, f"alert.failed:{alert_id}")
    assert (admin.kind, admin.recipient, admin.status) == ("alert.failed", "admins", "sent")
    [(recipients, mime)] = mails(smtp_server)[admin.id]
    assert recipients == [ADMIN]
    assert "400 from receiver" in text_part(mime)
    assert endpoint(engine, failed.recipient).enabled  # a 400 does not disable the endpoint


def test_410_disables_the_endpoint_holds_its_backlog_and_replay_resends_the_same_ids(
    engine: Engine,
    registry: rules.ProtocolRegistry,
    smtp_server: SmtpInbox,
    receiver: Receiver,
    clock: Clock,
) -> None:
    setup_cohort(engine, registry, ("ROM-101", "ROM-102"))
    endpoint_id, secret = add_webhook(engine, receiver, clock())
    scan_on(engine, clock, baseline(engine).window_end + timedelta(days=1))
    webhook_ids = sorted(a.id for a in alerts(engine, channel="webhook"))
    assert len(webhook_ids) == 2
    # Both go out together: the first to arrive gets a 500 (retried in 5 s), the next a 410.
    receiver.script = [(500, {}, 0.0), (410, {}, 0.0), (200, {}, 0.0)]
    dispatching = config(registry, smtp_config(smtp_server))
    drain(engine, clock, dispatching)

    retrying_id, gone_id = receiver.ids()
    gone = endpoint(engine, endpoint_id)
    assert not gone.enabled
    assert gone.disabled_reason == "the receiver answered 410 Gone"
    assert alert(engine, gone_id).status == "failed"
    disabled_notice = alert(engine, f"webhook.disabled:{endpoint_id}:{clock():%Y%m%d}")
    assert disabled_notice.status == "sent"
    [(recipients, mime)] = mails(smtp_server)[disabled_notice.id]
    assert recipients == [ADMIN]
    assert f"Webhook endpoint {endpoint_id}" in text_part(mime)
    assert "410 Gone" in text_part(mime)

    # The other alert's retry comes after the endpoint was disabled: held, not sent.
    clock.advance(timedelta(seconds=5))
    report = drain(engine, clock, dispatching)
    assert report.held == 1
    held = alert(engine, retrying_id)
    assert held.status == "held"
    assert held.cancel_reason == "webhook endpoint disabled: replay after re-enabling"
    assert len(receiver.requests) == 2
    # A later scan writes nothing for a disabled endpoint.
    scan_on(engine, clock, clock().date() + timedelta(days=1))
    assert sorted(a.id for a in alerts(engine, channel="webhook")) == webhook_ids

    with write_session(engine) as session:
        endpoints.set_enabled(session, endpoint_id, enabled=True, actor=ACTOR, now=clock())
        queued = endpoints.replay(
            session, endpoint_id, since=clock() - timedelta(days=2), actor=ACTOR, now=clock()
        )
    assert queued == 2
    drain(engine, clock, dispatching)

    replayed = receiver.requests[2:]
    assert sorted(r.headers["webhook-id"] for r in replayed) == webhook_ids
    for request in replayed:
        Webhook(secret).verify(request.body, request.headers)
    assert {alert(engine, i).status for i in webhook_ids} == {"sent"}


def test_rotated_secret_both_signatures_verify_for_24_hours(
    engine: Engine, registry: rules.ProtocolRegistry, receiver: Receiver, clock: Clock
) -> None:
    alert_id, old_secret = one_overdue_webhook(engine, registry, receiver, clock)
    endpoint_id = alert(engine, alert_id).recipient
    with write_session(engine) as session:
        new_secret = endpoints.rotate_secret(session, endpoint_id, actor=ACTOR, now=clock()).secret
    assert new_secret != old_secret
    assert new_secret.startswith("whsec_")
    dispatching = config(registry, None)
    rotated_at = clock()

    def deliver(at: timedelta) -> tuple[bytes, dict[str, str]]:
        """Deliver the alert (again, by a replay) ``at`` after the rotation."""
        clock.now = rotated_at + at
        if at:
            with write_session(engine) as session:
                endpoints.replay(
                    session,
                    endpoint_id,
                    since=rotated_at - timedelta(days=1),
                    actor=ACTOR,
                    now=clock(),
                )
        drain(engine, clock, dispatching)
        last = receiver.requests[-1]
        return last.body, last.headers

    for at in (timedelta(0), timedelta(hours=23, minutes=59)):
        body, headers = deliver(at)
        assert len(headers["webhook-signature"].split()) == 2
        Webhook(old_secret).verify(body, headers)
        Webhook(new_secret).verify(body, headers)

    body, headers = deliver(timedelta(hours=24, seconds=1))
    assert len(headers["webhook-signature"].split()) == 1
    Webhook(new_secret).verify(body, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(old_secret).verify(body, headers)
    assert receiver.ids() == [alert_id] * 3


def test_an_endpoint_failing_for_5_days_is_disabled_and_the_admins_told(
    engine: Engine,
    registry: rules.ProtocolRegistry,
    smtp_server: SmtpInbox,
    receiver: Receiver,
    clock: Clock,
) -> None:
    alert_id, _ = one_overdue_webhook(engine, registry, receiver, clock)
    endpoint_id = alert(engine, alert_id).recipient
    receiver.script = [(502, {}, 0.0)]
    dispatching = config(registry, smtp_config(smtp_server))
    first_failure = clock()
    drain(engine, clock, dispatching)
    assert aware(endpoint(engine, endpoint_id).failing_since) == first_failure  # type: ignore[arg-type]

    clock.advance(timedelta(days=4, hours=23))
    drain(engine, clock, dispatching)
    assert endpoint(engine, endpoint_id).enabled  # not yet 5 days
    clock.advance(timedelta(hours=1))
    drain(engine, clock, dispatching)

    disabled = endpoint(engine, endpoint_id)
    assert not disabled.enabled
    assert disabled.disabled_reason is not None
    assert "failing continuously since" in disabled.disabled_reason
    notice = f"webhook.disabled:{endpoint_id}:{clock():%Y%m%d}"
    assert alert(engine, notice).status == "sent"
    assert [r for r, _ in mails(smtp_server)[notice]] == [[ADMIN]]
