"""Corrections of RCL results and the alerts that follow (on SQLite and PostgreSQL).

A negative corrected to positive is a first positive: the serious case it opens queues its
alert in the same transaction, under an id fixed by the case. A positive corrected to
negative cancels the work it started, and an overdue alert already queued for that work is
cancelled by the dispatcher when it re-checks the cause (nothing reaches the SMTP server or
the webhook receiver). A completed test corrected to missed changes the calendar by exactly
what the result had changed.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
from sqlalchemy import Engine, select
from sqlmodel import Session
from support.alert_fixtures import clock
from support.alert_support import (
    Clock,
    add_sites_and_staff,
    add_webhook,
    alerts,
    attempts,
    config,
    drain,
    mails,
    scan_on,
    smtp_config,
    webhook_bodies,
)
from support.factories import ACTOR, add_sites, assessment_row, enroll_committed, record, rows_of
from support.peers import Receiver, SmtpInbox, receiver, smtp_server

import rules
from surveillance.adverse_events.cases import nullify_case
from surveillance.adverse_events.results import RecordedResult, correct_outcome
from surveillance.calendar.sync import StoredAssessment
from surveillance.kit.db import read_session, write_session
from surveillance.records.adverse_events import AdverseEventCase
from surveillance.records.outbox import Alert

__all__ = ["clock", "receiver", "smtp_server"]  # fixtures used here

STUDY = "ROM-101"
KEY = f"{STUDY}:1:rcl_test:1"  # the month-3 RCL test
CASE = f"{STUDY}-AE01"
SERIOUS_EMAIL = f"adverse_event.serious:{CASE}:0:0:email:site:Rome:investigator"
STARTED_BY_POSITIVE = ("rcl_confirm", "rcl_intensified", "rcl_positive_report")


class Rollback(Exception):
    """Raised inside a transaction to undo it."""


def _correct(
    engine: Engine,
    registry: rules.ProtocolRegistry,
    now: datetime,
    key: str = KEY,
    **fields: object,
) -> RecordedResult:
    with write_session(engine) as session:
        return _correct_in(session, registry, now, key, **fields)


def _correct_in(
    session: Session, registry: rules.ProtocolRegistry, now: datetime, key: str, **fields: object
) -> RecordedResult:
    study_id, infusion, rule, occurrence = key.rsplit(":", 3)
    version = assessment_row(session, study_id, rule, int(occurrence), int(infusion)).version
    return correct_outcome(
        session,
        key=key,
        actor=ACTOR,
        registry=registry,
        now=now,
        expected_version=version,
        **{"reason": "transcription error", **fields},  # type: ignore[arg-type]
    )


def _cases(engine: Engine) -> list[str]:
    with read_session(engine) as session:
        return list(session.execute(select(AdverseEventCase.case_id)).scalars())  # type: ignore[call-overload]


def _serious_alerts(engine: Engine) -> list[str]:
    return [a.id for a in alerts(engine, kind="adverse_event.serious")]


# -- (a) negative corrected to positive ------------------------------------------------------


def test_a_negative_corrected_to_positive_queues_the_serious_alert_in_the_same_transaction(
    engine: Engine, registry: rules.ProtocolRegistry, now: datetime
) -> None:
    add_sites(engine)
    enroll_committed(engine, registry, now)
    with write_session(engine) as session:
        record(session, registry, now, KEY, result="Negative")
    assert _serious_alerts(engine) == []

    # Rolled back after the correction: neither the case nor its alert is left behind.
    def correct_then_roll_back() -> None:
        with write_session(engine) as session:
            corrected = _correct_in(session, registry, now, KEY, result="Positive")
            assert corrected.case is not None
            assert corrected.case.case.case_id == CASE
            queued = session.get(Alert, SERIOUS_EMAIL)  # visible inside the transaction
            assert queued is not None
            assert (queued.status, queued.case_id, queued.case_version) == ("pending", CASE, 1)
            raise Rollback

    with pytest.raises(Rollback):
        correct_then_roll_back()
    assert _cases(engine) == []
    assert _serious_alerts(engine) == []
    with read_session(engine) as session:
        assert assessment_row(session, STUDY, "rcl_test", 1).result == "negative"

    # Committed: the case and its alert, under the id the case fixes.
    corrected = _correct(engine, registry, now, result="Positive")
    assert corrected.case is not None
    assert _cases(engine) == [CASE]
    assert _serious_alerts(engine) == [SERIOUS_EMAIL]
    [queued] = alerts(engine, id=SERIOUS_EMAIL)
    assert (queued.kind, queued.channel, queued.recipient, queued.status) == (
        "adverse_event.serious",
        "email",
        "site:Rome:investigator",
        "pending",
    )
    assert (queued.case_id, queued.case_version, queued.as_of) == (CASE, 1, now.date())


def test_positive_corrected_to_negative_and_back_opens_no_second_case_nor_alert(
    engine: Engine, registry: rules.ProtocolRegistry, now: datetime
) -> None:
    """The case a positive opened stays open through a correction to negative (only a
    person nullifies it): correcting back to positive is the same finding, not a new one."""
    add_sites(engine)
    enroll_committed(engine, registry, now)
    with write_session(engine) as session:
        record(session, registry, now, KEY, result="Positive")
    assert (_cases(engine), _serious_alerts(engine)) == ([CASE], [SERIOUS_EMAIL])
    _correct(engine, registry, now, result="Negative")
    again = _correct(engine, registry, now, result="Positive")
    assert again.case is None
    assert (_cases(engine), _serious_alerts(engine)) == ([CASE], [SERIOUS_EMAIL])


def test_a_positive_again_after_its_case_was_nullified_opens_a_new_case(
    engine: Engine, registry: rules.ProtocolRegistry, now: datetime
) -> None:
    """A person nullified the first case (the positive was an error); a later correction
    back to positive is a finding again, and opens (and alerts) a case of its own."""
    add_sites(engine)
    enroll_committed(engine, registry, now)
    with write_session(engine) as session:
        record(session, registry, now, KEY, result="Positive")
    _correct(engine, registry, now, result="Negative")
    with write_session(engine) as session:
        nullify_case(
            session, case_id=CASE, reason="lab error", actor=ACTOR, registry=registry, now=now
        )
    again = _correct(engine, registry, now, result="Positive")
    assert again.case is not None
    second = f"{STUDY}-AE02"
    assert _cases(engine) == [CASE, second]
    assert _serious_alerts(engine) == [SERIOUS_EMAIL, SERIOUS_EMAIL.replace(CASE, second)]


# -- (b) an overdue alert for work a corrected positive had started --------------------------

# Infused 2026-08-01: the month-3 RCL test is due 2026-11-01, before the alerting clock's
# start (2026-11-25), so the work a positive starts that day is overdue by then.
RECENT = date(2026, 8, 1)
POSITIVE_ON = date(2026, 11, 1)


def test_an_overdue_alert_for_work_a_corrected_positive_started_is_not_sent(
    engine: Engine,
    registry: rules.ProtocolRegistry,
    smtp_server: SmtpInbox,
    receiver: Receiver,
    clock: Clock,
) -> None:
    with write_session(engine) as session:
        add_sites_and_staff(session)
    enroll_committed(engine, registry, clock(), infusion_date=RECENT)
    add_webhook(engine, receiver, clock())
    with write_session(engine) as session:
        record(session, registry, clock(), KEY, on=POSITIVE_ON, result="Positive")

    scan_on(engine, clock, clock().date())
    with read_session(engine) as session:
        started = [r for rule in STARTED_BY_POSITIVE for r in rows_of(session, STUDY, rule)]
        overdue_work = {r.id: r.assessment for r in started if r.window_end < clock().date()}
    # The same-day report (D0) and the culture confirmation (D14) closed undone.
    assert sorted(overdue_work.values()) == ["rcl_confirm", "rcl_positive_report"]
    waiting = [a for a in alerts(engine) if a.assessment_id in overdue_work]
    # Overdue, both; the report, 24 days past its window, is escalated to investigators too.
    assert {(overdue_work[a.assessment_id or 0], a.kind, a.channel, a.status) for a in waiting} == {
        *{
            (rule, "assessment.overdue", channel, "pending")
            for rule in ("rcl_confirm", "rcl_positive_report")
            for channel in ("email", "webhook")
        },
        *{
            ("rcl_positive_report", "assessment.escalated", channel, "pending")
            for channel in ("email", "webhook")
        },
    }

    clock.advance(timedelta(hours=1))
    corrected = _correct(engine, registry, clock(), result="Negative")
    assert {row.id for row in corrected.change.cancelled} >= set(overdue_work)
    report = drain(engine, clock, config(registry, smtp_config(smtp_server)))

    for waited in waiting:
        [after] = alerts(engine, id=waited.id)
        reason = after.cancel_reason or ""
        assert (after.status, after.sent_at) == ("cancelled", None)
        assert reason.startswith("the assessment was cancelled meanwhile (result corrected on ")
        assert [(t.outcome, t.detail) for t in attempts(engine, waited.id)] == [
            ("cancelled", reason)
        ]
    assert report.cancelled == len(waiting)
    delivered_mail = set(mails(smtp_server))
    delivered_hooks = {body["data"].get("assessment") for body in webhook_bodies(receiver)}
    assert not delivered_mail & {a.id for a in waiting}
    assert not delivered_hooks & set(STARTED_BY_POSITIVE), delivered_hooks
    # The dispatcher did run: the serious case (kept open) and other overdue work went out.
    assert SERIOUS_EMAIL in delivered_mail
    assert report.sent > 0


# -- (c) completed corrected to missed --------------------------------------------------------


def _identities(rows: list[StoredAssessment]) -> set[tuple[str, int]]:
    return {(r.assessment, r.occurrence) for r in rows}


def test_a_positive_corrected_to_missed_cancels_exactly_what_it_started(
    engine: Engine, registry: rules.ProtocolRegistry, now: datetime
) -> None:
    add_sites(engine)
    enroll_committed(engine, registry, now)
    with write_session(engine) as session:
        record(session, registry, now, KEY, on=date(2024, 4, 30), result="Positive")
        started = {
            (r.assessment, r.occurrence, r.status)
            for rule in STARTED_BY_POSITIVE
            for r in rows_of(session, STUDY, rule)
        }
    series = 2024043000  # triggered on 2024-04-30: occurrences 2024043001, ...
    assert started == {
        ("rcl_confirm", series + 1, "pending"),
        *{("rcl_intensified", series + n, "pending") for n in (1, 2, 3)},
        ("rcl_positive_report", series + 1, "pending"),
    }

    change = _correct(engine, registry, now, outcome="missed").change

    assert _identities(change.cancelled) == {(rule, n) for rule, n, _ in started}
    assert (change.added, change.moved, change.reinstated, change.relabelled) == ([], [], [], [])
    with read_session(engine) as session:
        row = assessment_row(session, STUDY, "rcl_test", 1)
        assert (row.status, row.result) == ("missed", None)
        for rule in STARTED_BY_POSITIVE:
            assert {r.status for r in rows_of(session, STUDY, rule)} == {"cancelled"}
    assert _cases(engine) == [CASE]  # the case stays: a person nullifies it


def test_the_last_negative_of_year_one_corrected_to_missed_swaps_archive_for_testing(
    engine: Engine, registry: rules.ProtocolRegistry, now: datetime
) -> None:
    """All three first-year tests negative: yearly samples are archived, not tested. The
    month-12 one corrected to missed: the year is no longer all negative, so the 14
    archive samples (years 2 to 15) are cancelled and the 14 yearly tests come back."""
    add_sites(engine)
    enroll_committed(engine, registry, now)
    with write_session(engine) as session:
        for occurrence in (1, 2, 3):
            record(session, registry, now, f"{STUDY}:1:rcl_test:{occurrence}", result="negative")
        archive = {(r.occurrence, r.status) for r in rows_of(session, STUDY, "rcl_archive")}
        yearly = {(r.occurrence, r.status) for r in rows_of(session, STUDY, "rcl_yearly_test")}
    years = range(1, 15)  # occurrences 1..14: years 2 to 15
    assert archive == {(n, "pending") for n in years}
    assert yearly == {(n, "cancelled") for n in years}

    change = _correct(engine, registry, now, f"{STUDY}:1:rcl_test:3", outcome="missed").change

    assert _identities(change.cancelled) == {("rcl_archive", n) for n in years}
    assert {(stored.assessment, stored.occurrence) for stored, _ in change.reinstated} == {
        ("rcl_yearly_test", n) for n in years
    }
    assert (change.added, change.moved, change.relabelled) == ([], [], [])
    with read_session(engine) as session:
        assert {r.status for r in rows_of(session, STUDY, "rcl_archive")} == {"cancelled"}
        assert {r.status for r in rows_of(session, STUDY, "rcl_yearly_test")} == {"pending"}
