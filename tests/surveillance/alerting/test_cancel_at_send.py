"""Issue 4 §6, third proof: the cause is checked again at send time. An assessment
recorded done, a patient who died, withdrew or moved to another site between the scan and
the dispatch -> the waiting alerts are cancelled with the reason recorded; nothing is sent."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta

import pytest
from sqlalchemy import Engine, event
from support.alert_support import (
    ACTOR,
    Clock,
    Row,
    add_webhook,
    alerts,
    attempts,
    aware,
    baseline,
    config,
    drain,
    scan_on,
    setup_cohort,
    smtp_config,
)
from support.peers import Receiver, SmtpInbox

import rules
from surveillance.adverse_events.results import record_outcome
from surveillance.kit.db import write_session
from surveillance.patients.changes import change_status

Change = Callable[[Engine, rules.ProtocolRegistry, Row, Clock], None]


def completed(engine: Engine, registry: rules.ProtocolRegistry, row: Row, clock: Clock) -> None:
    with write_session(engine) as session:
        record_outcome(
            session,
            key=row.key,
            outcome="completed",
            on=row.window_end,
            actor=ACTOR,
            registry=registry,
            now=clock(),
        )


def status(new: str, to_site: str | None = None) -> Change:
    def change(engine: Engine, registry: rules.ProtocolRegistry, row: Row, clock: Clock) -> None:
        with write_session(engine) as session:
            change_status(
                session,
                study_id="ROM-101",
                status=new,
                on=clock().date(),
                reason="told by phone",
                actor=ACTOR,
                registry=registry,
                now=clock(),
                to_site=to_site,
            )

    return change


CASES = {
    "completed": (completed, "the assessment was recorded as completed meanwhile"),
    "missed": (
        lambda e, r, row, c: _record(e, r, row, c, "missed"),
        "the assessment was recorded as missed meanwhile",
    ),
    "deceased": (status("deceased"), "patient ROM-101 is deceased"),
    "withdrawn": (status("withdrawn"), "patient ROM-101 is withdrawn"),
    "transferred": (
        status("transferred", to_site="Erlangen"),
        "patient ROM-101 transferred to Erlangen",
    ),
}


def _record(
    engine: Engine, registry: rules.ProtocolRegistry, row: Row, clock: Clock, outcome: str
) -> None:
    with write_session(engine) as session:
        record_outcome(
            session,
            key=row.key,
            outcome=outcome,
            on=row.window_end,
            reason="did not come",
            actor=ACTOR,
            registry=registry,
            now=clock(),
        )


@pytest.mark.parametrize("case", list(CASES))
def test_an_alert_whose_cause_went_away_is_cancelled_with_the_reason(
    case: str,
    engine: Engine,
    registry: rules.ProtocolRegistry,
    smtp_server: SmtpInbox,
    receiver: Receiver,
    clock: Clock,
) -> None:
    change, reason = CASES[case]
    setup_cohort(engine, registry)
    add_webhook(engine, receiver, clock())
    target = baseline(engine)
    day_after: date = target.window_end + timedelta(days=1)
    scan_on(engine, clock, day_after)
    waiting = alerts(engine, assessment_id=target.id)
    assert {(a.channel, a.status) for a in waiting} == {
        ("email", "pending"),
        ("webhook", "pending"),
    }

    clock.advance(timedelta(hours=1))
    change(engine, registry, target, clock)
    report = drain(engine, clock, config(registry, smtp_config(smtp_server)))

    assert report.cancelled == 2
    assert report.sent == 0
    for cancelled in alerts(engine, assessment_id=target.id):
        assert cancelled.status == "cancelled"
        assert cancelled.cancel_reason == reason
        assert cancelled.sent_at is None
        [attempt] = attempts(engine, cancelled.id)
        assert (attempt.outcome, attempt.detail, aware(attempt.attempted_at)) == (
            "cancelled",
            reason,
            clock(),
        )
    assert smtp_server.messages == []
    assert receiver.requests == []

    # A later scan does not bring the cancelled alerts back; only a patient still followed
    # (moved to Erlangen) is now Erlangen's nurses' to chase.
    scan_on(engine, clock, day_after + timedelta(days=1))
    later = {
        (a.site_id, a.channel, a.recipient, a.status)
        for a in alerts(engine, assessment_id=target.id)
    }
    rome = {(s, c, r, st) for s, c, r, st in later if s == "Rome"}
    assert {st for *_, st in rome} == {"cancelled"}
    assert len(rome) == 2
    new = later - rome
    if case == "transferred":
        assert new == {("Erlangen", "email", "site:Erlangen:nurse", "pending")}
    else:
        assert new == set()


def test_an_alert_whose_cause_still_holds_is_sent(
    engine: Engine,
    registry: rules.ProtocolRegistry,
    smtp_server: SmtpInbox,
    receiver: Receiver,
    clock: Clock,
) -> None:
    """The control for the cases above: with nothing changed, both are delivered."""
    setup_cohort(engine, registry)
    add_webhook(engine, receiver, clock())
    target = baseline(engine)
    scan_on(engine, clock, target.window_end + timedelta(days=1))
    clock.advance(timedelta(hours=1))
    report = drain(engine, clock, config(registry, smtp_config(smtp_server)))
    assert (report.sent, report.cancelled) == (2, 0)
    assert len(smtp_server.messages) == 1
    assert len(receiver.requests) == 1


def _statements_to_dispatch(
    engine: Engine, registry: rules.ProtocolRegistry, smtp_server: SmtpInbox, patients: int
) -> tuple[int, int]:
    """(alerts sent, SELECTs sent to the database while preparing them)."""
    clock = Clock()
    study_ids = [f"ROM-{n}" for n in range(101, 101 + patients)]
    setup_cohort(engine, registry, study_ids)
    scan_on(engine, clock, baseline(engine).window_end + timedelta(days=1))
    selects: list[str] = []

    def count(conn: object, cursor: object, statement: str, *args: object) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            selects.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        report = drain(engine, clock, config(registry, smtp_config(smtp_server)))
    finally:
        event.remove(engine, "before_cursor_execute", count)
    return report.sent, len(selects)


@pytest.mark.parametrize("patients", [2, 12])
def test_the_causes_and_recipients_are_read_once_per_chunk_not_per_alert(
    patients: int,
    engine: Engine,
    registry: rules.ProtocolRegistry,
    smtp_server: SmtpInbox,
) -> None:
    """The re-check reads each alert's assessment and patient, and each email its group's
    recipients: loaded for the chunk (a few statements), not once per alert."""
    sent, selects = _statements_to_dispatch(engine, registry, smtp_server, patients)
    assert sent >= patients  # at least one overdue email per patient
    assert selects <= 20, selects  # two patients or twelve: the same few statements
