"""Email delivery through the outbox: an SMTP server down then up (issue 4 §6, sixth
proof), no SMTP configured (the outgoing-mail table), nobody to send to, what a mail says."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import Engine, select
from support.alert_support import (
    ADMIN,
    ROME_NURSES,
    STAFF,
    Clock,
    add_sites_and_staff,
    alert,
    alerts,
    attempts,
    aware,
    baseline,
    config,
    drain,
    enroll_aav,
    mails,
    scan_on,
    setup_cohort,
    smtp_config,
    text_part,
)
from support.peers import SmtpInbox, free_port, running_smtp_server

import rules
from surveillance.alerting.dispatch import dispatch
from surveillance.alerting.models import OutgoingMail
from surveillance.kit.db import read_session, write_session
from surveillance.kit.i18n import format_day


def one_overdue_email(engine: Engine, registry: rules.ProtocolRegistry, clock: Clock) -> str:
    setup_cohort(engine, registry)
    target = baseline(engine)
    scan_on(engine, clock, target.window_end + timedelta(days=1))
    [email] = alerts(engine, channel="email")
    return email.id


def test_smtp_server_down_then_up_is_delivered_after_the_retry_delay(
    engine: Engine, registry: rules.ProtocolRegistry, clock: Clock
) -> None:
    alert_id = one_overdue_email(engine, registry, clock)
    port = free_port()  # nothing listens here yet
    dispatching = config(registry, smtp_config(port=port))
    start = clock()

    report = drain(engine, clock, dispatching)
    assert (report.claimed, report.retrying, report.sent) == (1, 1, 0)
    waiting = alert(engine, alert_id)
    assert waiting.status == "pending"
    assert aware(waiting.next_attempt_at) == start + timedelta(seconds=5)
    assert "unreachable" in (waiting.last_error or "")

    with running_smtp_server(port) as inbox:
        clock.advance(timedelta(seconds=4))
        assert dispatch(engine, now=clock, config=dispatching).claimed == 0  # before the delay
        clock.advance(timedelta(seconds=1))
        report = drain(engine, clock, dispatching)

    assert report.sent == 1
    sent = alert(engine, alert_id)
    assert (sent.status, sent.attempts) == ("sent", 2)
    rows = attempts(engine, alert_id)
    assert [a.outcome for a in rows] == ["transient", "sent"]
    assert [aware(a.attempted_at) - start for a in rows] == [timedelta(0), timedelta(seconds=5)]
    assert rows[0].detail is not None
    assert f"127.0.0.1:{port} unreachable" in rows[0].detail
    assert rows[1].status_code == 250
    assert list(mails(inbox)) == [alert_id]


def test_an_overdue_mail_names_the_study_id_assessment_dates_and_link(
    engine: Engine, registry: rules.ProtocolRegistry, smtp_server: SmtpInbox, clock: Clock
) -> None:
    alert_id = one_overdue_email(engine, registry, clock)
    drain(engine, clock, config(registry, smtp_config(smtp_server)))

    [(recipients, mime)] = mails(smtp_server)[alert_id]
    assert recipients == sorted(ROME_NURSES)
    target = baseline(engine)
    assert mime["Subject"].startswith("[LTFU] Overdue: ROM-101 ")
    assert "1 days overdue" in mime["Subject"]
    text = text_part(mime)
    assert f"[{target.key}]" in text
    opened = target.window_end - timedelta(days=29)
    assert f"Window: {format_day(opened)} to {format_day(target.window_end)}" in text
    assert "https://ltfu.example/patients/ROM-101" in text
    html = [p for p in mime.walk() if p.get_content_type() == "text/html"]
    assert len(html) == 1
    assert (
        '<a href="https://ltfu.example/patients/ROM-101">'
        in html[0].get_payload(decode=True).decode()
    )


def test_without_smtp_mail_is_written_to_the_outgoing_mail_table(
    engine: Engine, registry: rules.ProtocolRegistry, clock: Clock
) -> None:
    alert_id = one_overdue_email(engine, registry, clock)
    report = drain(engine, clock, config(registry, None))

    assert report.sent == 1
    assert alert(engine, alert_id).status == "sent"
    with read_session(engine) as session:
        [written] = session.execute(select(OutgoingMail)).scalars().all()
    assert written.alert_id == alert_id
    assert written.to == ", ".join(sorted(ROME_NURSES))
    assert written.subject.startswith("[LTFU] Overdue: ROM-101 ")
    assert "https://ltfu.example/patients/ROM-101" in written.text_body
    assert written.html_body is not None
    assert "<table" in written.html_body
    assert aware(written.written_at) == clock()
    [attempt] = attempts(engine, alert_id)
    assert attempt.outcome == "sent"
    assert "outgoing-mail page" in (attempt.detail or "")


def test_nobody_to_send_to_fails_with_a_clear_message(
    engine: Engine, registry: rules.ProtocolRegistry, smtp_server: SmtpInbox, clock: Clock
) -> None:
    # Rome has an investigator but no nurse.
    staff = [s for s in STAFF if s[0] not in ROME_NURSES]
    with write_session(engine) as session:
        add_sites_and_staff(session, staff)
        enroll_aav(session, registry, ["ROM-101"])
    scan_on(engine, clock, baseline(engine).window_end + timedelta(days=1))
    [email] = alerts(engine, channel="email")
    drain(engine, clock, config(registry, smtp_config(smtp_server)))

    failed = alert(engine, email.id)
    assert failed.status == "failed"
    assert failed.last_error == "no active user to send it to (check the site's staff)"
    assert [(a.outcome, a.detail) for a in attempts(engine, email.id)] == [
        ("permanent", failed.last_error)
    ]
    # The admins hear of it.
    [(recipients, mime)] = mails(smtp_server)[f"alert.failed:{email.id}"]
    assert recipients == [ADMIN]
    assert "check the site's staff" in text_part(mime)


def test_a_refused_mailbox_is_a_permanent_failure(
    engine: Engine, registry: rules.ProtocolRegistry, smtp_server: SmtpInbox, clock: Clock
) -> None:
    alert_id = one_overdue_email(engine, registry, clock)
    smtp_server.refuse_with = "550 mailbox unavailable"
    report = drain(engine, clock, config(registry, smtp_config(smtp_server)))
    assert report.failed >= 1
    failed = alert(engine, alert_id)
    assert failed.status == "failed"
    assert [(a.outcome, a.status_code) for a in attempts(engine, alert_id)] == [("permanent", 550)]
