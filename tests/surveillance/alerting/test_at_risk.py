"""Loss to follow-up risk: two consecutive yearly contacts missed (or still undone after
their window) -> the site's investigators and ``patient.follow_up_at_risk``."""

from __future__ import annotations

from datetime import date

from sqlalchemy import Engine
from standardwebhooks.webhooks import Webhook
from support.alert_support import (
    ACTOR,
    ROME_INVESTIGATOR,
    START,
    Clock,
    add_sites_and_staff,
    add_webhook,
    alerts,
    assessment,
    config,
    drain,
    enroll_aav,
    mails,
    smtp_config,
    text_part,
)
from support.peers import Receiver, SmtpInbox

import rules
from surveillance.adverse_events.results import record_outcome
from surveillance.alerting.policy import parse_overrides
from surveillance.alerting.scan import scan
from surveillance.kit.db import read_session, write_session
from surveillance.records.patients import Assessment

KIND = "patient.follow_up_at_risk"
INFUSED = date(2024, 6, 1)  # yearly exams due 2025-06-01 and 2026-06-01, both closed at START


def cohort(engine: Engine, registry: rules.ProtocolRegistry, first_year: str) -> None:
    with write_session(engine) as session:
        add_sites_and_staff(session)
        enroll_aav(session, registry, ["ROM-101"], infused=INFUSED)
    first = assessment(engine, "ROM-101", "aav_ltfu_exam", 1)
    record(engine, registry, first.key, first_year, first.window_end)


def record(
    engine: Engine, registry: rules.ProtocolRegistry, key: str, outcome: str, on: date
) -> None:
    reason = "no answer by phone or letter" if outcome == "missed" else None
    with write_session(engine) as session:
        record_outcome(
            session,
            key=key,
            outcome=outcome,
            on=on,
            reason=reason,
            actor=ACTOR,
            registry=registry,
            now=START,
        )


def scan_now(engine: Engine, clock: Clock, registry: rules.ProtocolRegistry) -> None:
    with write_session(engine) as session:
        scan(session, now=clock(), overrides={}, registry=registry)


def test_two_missed_yearly_contacts_tell_the_investigators(
    engine: Engine,
    registry: rules.ProtocolRegistry,
    smtp_server: SmtpInbox,
    receiver: Receiver,
    clock: Clock,
) -> None:
    cohort(engine, registry, "missed")
    _, secret = add_webhook(engine, receiver, clock(), events=(KIND,))
    scan_now(engine, clock, registry)
    last = assessment(engine, "ROM-101", "aav_ltfu_exam", 2)

    made = alerts(engine, kind=KIND)
    assert [(a.channel, a.assessment_id) for a in made] == [
        ("email", last.id),
        ("webhook", last.id),
    ]
    assert made[0].recipient == "site:Rome:investigator"
    drain(engine, clock, config(registry, smtp_config(smtp_server)))

    [(recipients, mime)] = mails(smtp_server)[made[0].id]
    assert recipients == [ROME_INVESTIGATOR]
    assert mime["Subject"] == "[LTFU] At risk of loss to follow-up: ROM-101"
    assert f"[{last.key}]" in text_part(mime)
    [hook] = [r for r in receiver.requests if r.headers["webhook-id"] == made[1].id]
    payload = Webhook(secret).verify(hook.body, hook.headers)
    assert payload["type"] == KIND
    assert payload["data"]["study_id"] == "ROM-101"
    # Scanning again: nothing new.
    scan_now(engine, clock, registry)
    assert [a.id for a in alerts(engine, kind=KIND)] == [a.id for a in made]


def test_one_missed_contact_is_not_a_risk(
    engine: Engine, registry: rules.ProtocolRegistry, clock: Clock
) -> None:
    cohort(engine, registry, "completed")
    scan_now(engine, clock, registry)
    assert alerts(engine, kind=KIND) == []


def test_a_contact_recorded_before_sending_cancels_the_risk_alert(
    engine: Engine, registry: rules.ProtocolRegistry, smtp_server: SmtpInbox, clock: Clock
) -> None:
    cohort(engine, registry, "missed")
    scan_now(engine, clock, registry)
    [waiting] = alerts(engine, kind=KIND)
    last = assessment(engine, "ROM-101", "aav_ltfu_exam", 2)
    record(engine, registry, last.key, "completed", START.date())  # reached at last

    drain(engine, clock, config(registry, smtp_config(smtp_server)))

    [cancelled] = alerts(engine, kind=KIND)
    assert cancelled.status == "cancelled"
    assert cancelled.cancel_reason == "the last yearly contact was recorded as completed meanwhile"
    assert waiting.id not in mails(smtp_server)


def test_an_alert_policy_may_name_other_yearly_contacts_than_the_protocol(
    engine: Engine, registry: rules.ProtocolRegistry, clock: Clock
) -> None:
    cohort(engine, registry, "missed")
    overrides = parse_overrides('{"protocol:aav-liver-5-year": {"yearly_contacts": ["aav_alt"]}}')
    with write_session(engine) as session:
        scan(session, now=clock(), overrides=overrides, registry=registry)
    made = alerts(engine, kind=KIND)
    assert made
    with read_session(engine) as session:
        alerted = [session.get(Assessment, a.assessment_id) for a in made]
        rules_alerted = {row.assessment for row in alerted if row is not None}
    # The liver tests left undone after their windows, not the missed yearly exams.
    assert rules_alerted == {"aav_alt"}


def test_the_scan_counts_the_risk_alerts_it_wrote(
    engine: Engine, registry: rules.ProtocolRegistry, receiver: Receiver, clock: Clock
) -> None:
    """The risk query starts WITH (a CTE), for which SQLite's driver reports no row count."""
    cohort(engine, registry, "missed")
    add_webhook(engine, receiver, clock(), events=(KIND,))
    with write_session(engine) as session:
        first = scan(session, now=clock(), overrides={}, registry=registry)
    with write_session(engine) as session:
        again = scan(session, now=clock(), overrides={}, registry=registry)
    assert first.created[KIND] == len(alerts(engine, kind=KIND)) == 2  # an email, a webhook
    assert again.created[KIND] == 0
