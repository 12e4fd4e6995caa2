"""Emails in each recipient's language: labels from the catalogs, dates in words of that
language, assessment names from the protocol file; one message per language, all with the
alert's id as Message-ID (a recipient gets one of them)."""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import Engine, update
from sqlmodel import col
from support.alert_support import (
    ROME_NURSES,
    Clock,
    alerts,
    baseline,
    config,
    drain,
    mails,
    scan_on,
    setup_cohort,
    smtp_config,
    text_part,
)
from support.peers import SmtpInbox

import rules
from surveillance.accounts.models import User
from surveillance.alerting.messages import render_email
from surveillance.kit.db import write_session
from surveillance.records.outbox import Alert, AlertKind

RCL = "Replication-competent lentivirus (RCL) test of PBMC"
OVERDUE = {
    "study_id": "ROM-101",
    "site": "Rome",
    "key": "ROM-101:1:rcl_test:2",
    "assessment": "rcl_test",
    "name": RCL,
    "due": "2026-12-03",
    "window_start": "2026-11-03",
    "window_end": "2027-01-02",
    "days_overdue": 15,
    "level": 0,
    "as_of": "2027-01-17",
    "patient_url": "https://ltfu.example/patients/ROM-101",
}


def _alert(kind: AlertKind) -> Alert:
    return Alert(
        id=f"{kind.value}:1:0:0:email:site:Rome:investigator",
        kind=kind.value,
        level=0,
        channel="email",
        recipient="site:Rome:investigator",
        as_of=date(2027, 1, 17),
    )


def test_an_overdue_email_to_an_italian_investigator_is_italian() -> None:
    terms = rules.ProtocolRegistry.from_directory().name_translations()
    subject, text, html = render_email(
        _alert(AlertKind.assessment_overdue), OVERDUE, locale="it", terms=terms
    )
    assert subject.startswith("[LTFU] In ritardo: ROM-101 Test per lentivirus competente")
    assert "(scadenza 3 dic 2026, in ritardo di 15 giorni)" in subject
    assert text.startswith("Una valutazione è in ritardo a Rome.")
    assert "Valutazione: Test per lentivirus competente per la replicazione (RCL) su PBMC" in text
    assert "Scadenza: 3 dic 2026" in text
    assert "Finestra: dal 3 nov 2026 al 2 gen 2027" in text
    assert "In ritardo di: 15 giorni" in text
    assert html is not None
    assert '<html lang="it">' in html
    assert "Una valutazione è <strong>in ritardo</strong> a Rome." in html


def test_a_digest_in_german() -> None:
    data = {
        "site": "Erlangen",
        "date": "2026-12-03",
        "opening": [],
        "this_week": [dict(OVERDUE, window_start="2026-12-01")],
        "due_list_url": "https://ltfu.example/sites/Erlangen/due",
    }
    terms = rules.ProtocolRegistry.from_directory().name_translations()
    subject, text, _ = render_email(_alert(AlertKind.digest), data, locale="de", terms=terms)
    assert subject == "[LTFU] Erlangen 3. Dez. 2026: 0 öffnen heute, 1 fällig diese Woche"
    assert text.startswith("Guten Morgen. Nachbeobachtung in Erlangen am 3. Dez. 2026:")
    assert "Test auf replikationskompetente Lentiviren (RCL) in PBMC" in text
    assert "fällig 3. Dez. 2026, Zeitfenster 1. Dez. 2026 bis 2. Jan. 2027" in text


def test_a_name_without_a_translation_stays_as_the_protocol_writes_it() -> None:
    data = dict(OVERDUE, name="Liver function tests")
    _, text, _ = render_email(_alert(AlertKind.assessment_overdue), data, locale="it", terms={})
    assert "Valutazione: Liver function tests" in text


def test_through_smtp_each_nurse_reads_her_own_language(
    engine: Engine, registry: rules.ProtocolRegistry, smtp_server: SmtpInbox, clock: Clock
) -> None:
    setup_cohort(engine, registry)
    italian, english = ROME_NURSES
    with write_session(engine) as session:
        session.execute(update(User).where(col(User.email) == italian).values(locale="it"))
    target = baseline(engine)
    scan_on(engine, clock, target.window_end + timedelta(days=1))
    [email] = alerts(engine, channel="email")

    report = drain(engine, clock, config(registry, smtp_config(smtp_server)))

    assert report.sent == 1
    by_reader = {to[0]: mime for to, mime in mails(smtp_server)[email.id]}  # one per language
    assert [to for to, _ in mails(smtp_server)[email.id]] == [[english], [italian]]
    assert by_reader[italian]["Subject"].startswith("[LTFU] In ritardo: ROM-101 ")
    assert "Una valutazione è in ritardo a Rome." in text_part(by_reader[italian])
    assert by_reader[english]["Subject"].startswith("[LTFU] Overdue: ROM-101 ")
    assert "An assessment is overdue at Rome." in text_part(by_reader[english])
    assert by_reader[italian]["Message-ID"] == by_reader[english]["Message-ID"]
