"""Builders and readers for the alerting tests: staff, a small AAV cohort, a clock that
tests move by hand, dispatch until the outbox is quiet, and what the peers received.

Plain functions taking the engine (or session) they use, so a test reads as its story.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from email.message import Message
from typing import Any
from urllib.parse import unquote

from sqlalchemy import Engine, select
from sqlmodel import Session

import notifications
import rules
from support.peers import Receiver, SmtpInbox
from surveillance.accounts import auth
from surveillance.adverse_events.facts import CaseFacts
from surveillance.alerting import endpoints
from surveillance.alerting.dispatch import DispatchConfig, DispatchReport, dispatch
from surveillance.alerting.scan import ScanReport, scan
from surveillance.kit.db import read_session, write_session
from surveillance.patients.enrolment import Enrolment, enroll
from surveillance.protocols.registry import registry_for
from surveillance.records import sites
from surveillance.records.adverse_event_vocabulary import (
    CaseOutcome,
    Category,
    GradeScale,
    Relatedness,
    Seriousness,
)
from surveillance.records.outbox import Alert, DeliveryAttempt, WebhookEndpoint
from surveillance.records.patients import Assessment, Patient, assessment_key

ACTOR = "test"
BASE_URL = "https://ltfu.example"
AAV = "aav-liver-5-year"
# A fixed start: noon UTC on Wednesday 2026-11-25 (as tests/conftest.py NOW).
START = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
# An AAV patient infused on INFUSED has one assessment whose window closed before the
# infusion (the baseline, window end INFUSED - 1 day); nothing else closes until day 9.
INFUSED = START.date()
BASELINE_END = INFUSED - timedelta(days=1)

ROME_NURSES = ("nurse1.rome@test.invalid", "nurse2.rome@test.invalid")
ROME_INVESTIGATOR = "investigator.rome@test.invalid"
ERLANGEN_NURSE = "nurse.erlangen@test.invalid"
ADMIN = "admin@test.invalid"
STAFF = (
    (ROME_NURSES[0], "nurse", ["Rome"]),
    (ROME_NURSES[1], "nurse", ["Rome"]),
    (ROME_INVESTIGATOR, "investigator", ["Rome"]),
    (ERLANGEN_NURSE, "nurse", ["Erlangen"]),
    ("investigator.erlangen@test.invalid", "investigator", ["Erlangen"]),
    ("pv@test.invalid", "pharmacovigilance", []),
    (ADMIN, "admin", []),
)

# A serious infection (hospitalisation): a case with a sponsor notice and safety reports due.
INFECTION = CaseFacts(
    onset_date=date(2026, 11, 22),
    awareness_date=date(2026, 11, 23),
    term="Pneumonia",
    category=Category.infection,
    grade=3,
    grade_scale=GradeScale.ctcae_v5,
    serious=True,
    seriousness_criteria=(Seriousness.hospitalization,),
    relatedness=Relatedness.possibly_related,
    expected=False,
    outcome=CaseOutcome.recovering,
    narrative="Admitted with fever and a right lower lobe consolidation.",
)


class Clock:
    """A clock the test moves: ``clock()`` is "now" for every component given it."""

    def __init__(self, start: datetime = START) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> datetime:
        self.now += delta
        return self.now

    def to_day(self, day: date, at: time = time(12)) -> datetime:
        """Noon UTC (by default) of ``day``."""
        self.now = datetime.combine(day, at, tzinfo=UTC)
        return self.now


def add_sites_and_staff(
    session: Session, staff: Iterable[tuple[str, str, list[str]]] = STAFF
) -> None:
    sites.add_site(session, site_id="Rome", name="Rome", timezone="Europe/Rome")
    sites.add_site(session, site_id="Erlangen", name="Erlangen", timezone="Europe/Berlin")
    add_staff(session, staff)


def add_staff(session: Session, staff: Iterable[tuple[str, str, list[str]]] = STAFF) -> None:
    for email, role, user_sites in staff:
        auth.add_user(session, email=email, role=role, sites=user_sites, actor=ACTOR)


def enroll_aav(
    session: Session,
    registry: rules.ProtocolRegistry,
    study_ids: Iterable[str],
    *,
    site_id: str = "Rome",
    infused: date = INFUSED,
    now: datetime = START,
) -> dict[str, int]:
    """Adults with haemophilia A on the AAV protocol; returns study id -> patient id."""
    wanted = [
        Enrolment(study_id, site_id, date(1990, 1, 1), "M", "hemophilia_a", AAV, infused)
        for study_id in study_ids
    ]
    return enroll(session, wanted, registry=registry, now=now, actor=ACTOR)


def setup_cohort(
    engine: Engine, registry: rules.ProtocolRegistry, study_ids: Iterable[str] = ("ROM-101",)
) -> None:
    """Sites, staff and AAV patients at Rome, committed."""
    with write_session(engine) as session:
        add_sites_and_staff(session)
        enroll_aav(session, registry, study_ids)


@dataclass(frozen=True)
class Row:
    """An assessment as the tests name it."""

    id: int
    patient_id: int
    key: str
    site_id: str
    window_end: date


def assessment(engine: Engine, study_id: str, rule: str, occurrence: int = 1) -> Row:
    with read_session(engine) as session:
        found, patient = session.execute(
            select(Assessment, Patient)
            .join(Patient, Patient.id == Assessment.patient_id)  # type: ignore[arg-type]
            .where(
                Patient.study_id == study_id,
                Assessment.assessment == rule,
                Assessment.occurrence == occurrence,
            )
        ).one()
        assert found.id is not None
        assert patient.id is not None
        key = assessment_key(study_id, found.infusion_number, rule, occurrence)
        return Row(found.id, patient.id, key, found.site_id, found.window_end)


def baseline(engine: Engine, study_id: str = "ROM-101") -> Row:
    return assessment(engine, study_id, "aav_baseline")


def add_webhook(
    engine: Engine,
    receiver: Receiver,
    now: datetime,
    events: tuple[str, ...] = ("assessment.overdue", "assessment.escalated"),
    site_id: str | None = None,
) -> tuple[str, str]:
    """(endpoint id, secret) of a new endpoint pointing at the loopback receiver."""
    with write_session(engine) as session:
        created = endpoints.add_endpoint(
            session,
            url=receiver.url,
            events=list(events),
            site_id=site_id,
            allow_private=True,
            actor=ACTOR,
            now=now,
        )
        return created.endpoint.id, created.secret


def endpoint(engine: Engine, endpoint_id: str) -> WebhookEndpoint:
    with read_session(engine) as session:
        found = session.get(WebhookEndpoint, endpoint_id)
        assert found is not None
        return found


def smtp_config(
    inbox: SmtpInbox | None = None, *, port: int | None = None
) -> notifications.SmtpConfig:
    return notifications.SmtpConfig(
        host="127.0.0.1",
        port=port if port is not None else inbox.port if inbox else 25,
        starttls=False,
        timeout=5,
        from_address="ltfu@ltfu.example",
    )


def config(
    registry: rules.ProtocolRegistry,
    smtp: notifications.SmtpConfig | None,
    *,
    workers: int = 8,
    webhook_timeout: float = 5.0,
) -> DispatchConfig:
    return DispatchConfig(
        registry=registry,
        base_url=BASE_URL,
        smtp=smtp,
        workers=workers,
        webhook_timeout=webhook_timeout,
        webhook_allow_private=True,  # the receivers listen on 127.0.0.1
    )


def scan_on(engine: Engine, clock: Clock, day: date, **overrides: Any) -> ScanReport:
    """Move the clock to noon UTC of ``day`` and scan as of that day (bundled protocols)."""
    clock.to_day(day)
    registry = registry_for(rules.BUNDLED_PROTOCOLS)
    with write_session(engine) as session:
        return scan(session, now=clock(), overrides=overrides, registry=registry, on=day)


def drain(
    engine: Engine, clock: Clock, dispatch_config: DispatchConfig, rounds: int = 20
) -> DispatchReport:
    """Dispatch until nothing is claimable now (admin alerts made meanwhile included)."""
    total = DispatchReport()
    for _ in range(rounds):
        report = dispatch(engine, now=clock, config=dispatch_config)
        if report.claimed == 0:
            return total
        for name in ("claimed", "sent", "retrying", "failed", "cancelled", "held"):
            setattr(total, name, getattr(total, name) + getattr(report, name))
        total.errors += report.errors
    raise AssertionError(f"the outbox did not quieten in {rounds} dispatch rounds")


def alerts(engine: Engine, **where: Any) -> list[Alert]:
    """Alerts matching ``column=value`` filters, ordered by id."""
    with read_session(engine) as session:
        statement = select(Alert).order_by(Alert.id)  # type: ignore[arg-type]
        for name, value in where.items():
            statement = statement.where(getattr(Alert, name) == value)
        return list(session.execute(statement).scalars())


def alert(engine: Engine, alert_id: str) -> Alert:
    with read_session(engine) as session:
        found = session.get(Alert, alert_id)
        assert found is not None, f"no alert {alert_id}"
        return found


def attempts(engine: Engine, alert_id: str) -> list[DeliveryAttempt]:
    with read_session(engine) as session:
        return list(
            session.execute(
                select(DeliveryAttempt)
                .where(DeliveryAttempt.alert_id == alert_id)
                .order_by(DeliveryAttempt.id)  # type: ignore[arg-type]
            ).scalars()
        )


def aware(moment: datetime) -> datetime:
    """A stored time as an aware UTC datetime (SQLite gives them back naive, in UTC)."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def message_alert_id(mime: Message) -> str:
    """The alert id an email carries in its Message-ID (``<%-escaped-alert-id@domain>``)."""
    unfolded = "".join(str(mime["Message-ID"]).split())  # long headers arrive folded
    return unquote(unfolded.strip("<>").rsplit("@", 1)[0])


def mails(inbox: SmtpInbox) -> dict[str, list[tuple[list[str], Message]]]:
    """Alert id -> the deliveries of it (recipients, message) the SMTP server accepted."""
    found: dict[str, list[tuple[list[str], Message]]] = {}
    for envelope, mime in list(inbox.messages):
        found.setdefault(message_alert_id(mime), []).append((sorted(envelope.rcpt_tos), mime))
    return found


def text_part(mime: Message) -> str:
    for part in mime.walk():
        if part.get_content_type() == "text/plain":
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            return payload.decode()
    raise AssertionError("no text/plain part")


def webhook_bodies(receiver: Receiver) -> list[dict[str, Any]]:
    return [json.loads(r.body) for r in list(receiver.requests)]
