"""The scheduled jobs: the daily digest at 07:00 site time, database leases (one process
runs a job at a time), the scan catching up on missed days, the APScheduler wiring."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Engine
from support.alert_support import (
    BASELINE_END,
    INFUSED,
    ROME_NURSES,
    Clock,
    alert,
    alerts,
    aware,
    baseline,
    config,
    drain,
    mails,
    setup_cohort,
    smtp_config,
    text_part,
)
from support.peers import SmtpInbox

import rules
from surveillance.alerting.digests import create_digests
from surveillance.alerting.dispatch import dispatch
from surveillance.alerting.jobs import CATCH_UP_DAYS, AlertJobs
from surveillance.alerting.scan import scan
from surveillance.alerting.scheduler import build_scheduler
from surveillance.config import Settings
from surveillance.kit import leases
from surveillance.kit.db import write_session
from surveillance.kit.i18n import format_day
from surveillance.records import sites

ROME = ZoneInfo("Europe/Rome")
# The AAV patient's first weekly ALT and expression windows open on this day (Monday).
OPENING = INFUSED + timedelta(days=5)


def jobs(
    engine: Engine, registry: rules.ProtocolRegistry, clock: Clock, **settings: object
) -> AlertJobs:
    chosen = Settings(
        _env_file=None, database_url=engine.url.render_as_string(hide_password=False), **settings
    )  # type: ignore[call-arg]
    return AlertJobs(engine=engine, settings=chosen, registry=registry, clock=clock)


def digests_at(engine: Engine, moment: datetime) -> list[str]:
    with write_session(engine) as session:
        before = {a.id for a in alerts(engine, kind="digest")}
        create_digests(session, now=moment, overrides={})
    return sorted({a.id for a in alerts(engine, kind="digest")} - before)


def test_one_digest_per_site_per_day_from_07_00_local_time(
    engine: Engine, registry: rules.ProtocolRegistry, smtp_server: SmtpInbox
) -> None:
    setup_cohort(engine, registry)
    with write_session(engine) as session:  # one hour behind Rome in winter
        sites.add_site(session, site_id="Lisbon", name="Lisbon", timezone="Europe/Lisbon")
    day = OPENING

    def rome(hour: int, minute: int = 0, on: date = day) -> datetime:
        return datetime(on.year, on.month, on.day, hour, minute, tzinfo=ROME)

    assert digests_at(engine, rome(6, 59)) == []
    assert digests_at(engine, rome(7, 0)) == [
        f"digest:Erlangen:{day}:email:site:Erlangen:nurse",
        f"digest:Rome:{day}:email:site:Rome:nurse",
    ]
    assert digests_at(engine, rome(7, 30)) == []  # once a day
    assert digests_at(engine, rome(8, 0)) == [
        f"digest:Lisbon:{day}:email:site:Lisbon:nurse"
    ]  # 07:00 there
    assert digests_at(engine, rome(23, 59)) == []
    next_day = day + timedelta(days=1)
    assert digests_at(engine, rome(6, 59, next_day)) == []
    assert len(digests_at(engine, rome(7, 0, next_day))) == 2

    # Delivered at once (the digest was made with a Rome clock; the dispatcher's is UTC).
    digest_id = f"digest:Rome:{day}:email:site:Rome:nurse"
    assert alert(engine, digest_id).status == "pending"
    made_at = rome(7, 0).astimezone(UTC)
    dispatching = config(registry, smtp_config(smtp_server))
    drain(engine, Clock(made_at), dispatching)
    assert alert(engine, digest_id).status == "sent"
    [(recipients, mime)] = mails(smtp_server)[digest_id]
    assert recipients == sorted(ROME_NURSES)
    assert mime["Subject"] == f"[LTFU] Rome {format_day(day)}: 2 opening today, 3 due this week"
    body = text_part(mime)
    assert "ROM-101: ALT/AST, GGT, bilirubin" in body
    assert "https://ltfu.example/sites/Rome/due" in body


def test_alerts_made_with_a_site_clock_are_due_at_the_same_instant_in_utc(
    engine: Engine, registry: rules.ProtocolRegistry
) -> None:
    setup_cohort(engine, registry)
    rome_noon = datetime(INFUSED.year, INFUSED.month, INFUSED.day, 12, 0, tzinfo=ROME)
    with write_session(engine) as session:
        assert scan(session, now=rome_noon, overrides={}, registry=registry).total == 1
    [made] = alerts(engine)
    assert aware(made.next_attempt_at) == rome_noon
    report = dispatch(engine, now=lambda: rome_noon.astimezone(UTC), config=config(registry, None))
    assert (report.claimed, report.sent) == (1, 1)


def test_the_digest_job_takes_its_own_lease_per_site(
    engine: Engine, registry: rules.ProtocolRegistry
) -> None:
    setup_cohort(engine, registry)
    clock = Clock(
        datetime(OPENING.year, OPENING.month, OPENING.day, 7, 0, tzinfo=ROME).astimezone(UTC)
    )
    job = jobs(engine, registry, clock)
    assert leases.try_acquire(
        engine, "alerts.digest.Rome", now=clock(), ttl=timedelta(minutes=10), holder="other"
    )
    assert job.run_digests("Rome") == 0  # another process is making Rome's digest
    assert job.run_digests("Erlangen") == 1
    assert [a.site_id for a in alerts(engine, kind="digest")] == ["Erlangen"]


def test_a_lease_has_one_holder_until_it_expires(engine: Engine) -> None:
    now = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    ttl = timedelta(minutes=10)
    assert leases.try_acquire(engine, "alerts.scan", now=now, ttl=ttl, holder="a")
    assert not leases.try_acquire(engine, "alerts.scan", now=now, ttl=ttl, holder="b")
    assert not leases.try_acquire(engine, "alerts.scan", now=now + ttl, ttl=ttl, holder="b")
    assert leases.try_acquire(
        engine, "alerts.scan", now=now + timedelta(minutes=5), ttl=ttl, holder="a"
    )  # renewed
    assert not leases.try_acquire(
        engine, "alerts.scan", now=now + ttl + timedelta(seconds=1), ttl=ttl, holder="b"
    )
    later = now + timedelta(minutes=15, seconds=1)
    assert leases.try_acquire(engine, "alerts.scan", now=later, ttl=ttl, holder="b")
    assert not leases.try_acquire(engine, "alerts.scan", now=later, ttl=ttl, holder="a")
    # Released (completed): free at once, and the completion time is kept.
    leases.release(engine, "alerts.scan", now=later, completed=True, holder="b")
    assert leases.last_completed(engine, "alerts.scan") is not None
    assert leases.try_acquire(
        engine, "alerts.scan", now=later + timedelta(seconds=1), ttl=ttl, holder="a"
    )
    # Another holder's release does nothing.
    leases.release(engine, "alerts.scan", now=later, completed=False, holder="b")
    assert not leases.try_acquire(
        engine, "alerts.scan", now=later + timedelta(seconds=2), ttl=ttl, holder="b"
    )


def test_many_holders_racing_for_a_new_lease_one_wins(engine: Engine) -> None:
    now = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    start = threading.Barrier(8)
    won: list[str] = []
    errors: list[BaseException] = []

    def race(holder: str) -> None:
        try:
            start.wait()
            if leases.try_acquire(
                engine, "alerts.dispatch", now=now, ttl=timedelta(minutes=5), holder=holder
            ):
                won.append(holder)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=race, args=(f"worker-{n}",)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert len(won) == 1


def test_the_scan_catches_up_on_each_missed_day(
    engine: Engine, registry: rules.ProtocolRegistry
) -> None:
    setup_cohort(engine, registry)
    clock = Clock()
    clock.to_day(BASELINE_END - timedelta(days=1))
    job = jobs(engine, registry, clock)
    [first] = job.run_scan()
    assert first.as_of == {"Rome": BASELINE_END - timedelta(days=1)}
    assert alerts(engine) == []

    clock.to_day(BASELINE_END + timedelta(days=4))  # down for four days
    reports = job.run_scan()
    assert [r.as_of["Rome"] for r in reports] == [
        BASELINE_END + timedelta(days=n) for n in range(5)
    ]
    # The overdue alert is dated the first day it was overdue, not the day the scan ran.
    target = baseline(engine)
    [email] = alerts(engine, assessment_id=target.id, channel="email")
    assert email.as_of == BASELINE_END + timedelta(days=1)
    assert [r.total for r in reports] == [0, 1, 0, 0, 0]

    assert [r.as_of["Rome"] for r in job.run_scan()] == [clock().date()]  # nothing missed now
    clock.to_day(clock().date() + timedelta(days=60))
    reports = job.run_scan()
    assert len(reports) == CATCH_UP_DAYS + 1  # at most a month back, then today
    assert reports[-1].as_of["Rome"] == clock().date()


def test_the_scan_job_does_nothing_while_another_process_holds_its_lease(
    engine: Engine, registry: rules.ProtocolRegistry
) -> None:
    setup_cohort(engine, registry)
    clock = Clock()
    assert leases.try_acquire(
        engine, "alerts.scan", now=clock(), ttl=timedelta(minutes=10), holder="elsewhere"
    )
    assert jobs(engine, registry, clock).run_scan() == []
    assert alerts(engine) == []
    clock.advance(timedelta(minutes=10, seconds=1))  # its holder died: the lease expires
    assert len(jobs(engine, registry, clock).run_scan()) == 1
    assert alerts(engine) != []


def test_the_dispatch_job_sends_through_the_configured_smtp_server(
    engine: Engine, registry: rules.ProtocolRegistry, smtp_server: SmtpInbox
) -> None:
    setup_cohort(engine, registry)
    clock = Clock()
    job = jobs(
        engine,
        registry,
        clock,
        smtp_host=smtp_server.host,
        smtp_port=smtp_server.port,
        smtp_starttls=False,
        smtp_from="ltfu@ltfu.example",
    )
    job.scan_once()
    report = job.run_dispatch()
    assert (report.claimed, report.sent) == (1, 1)
    [alert_id] = mails(smtp_server)
    assert alert_id.startswith("assessment.overdue:")


def test_the_scheduler_runs_each_job_once_at_a_time_and_catches_up(
    engine: Engine, registry: rules.ProtocolRegistry
) -> None:
    setup_cohort(engine, registry)
    scheduler = build_scheduler(jobs(engine, registry, Clock()))
    found = {job.id: job for job in scheduler.get_jobs()}
    assert set(found) == {
        "alerts.scan",
        "alerts.dispatch",
        "alerts.digest.Rome",
        "alerts.digest.Erlangen",
        "alerts.digest.admins",
    }
    for job in found.values():
        assert job.coalesce is True
        assert job.max_instances == 1
        assert job.misfire_grace_time >= 60
    digest = found["alerts.digest.Rome"]
    assert str(digest.trigger.timezone) == "Europe/Rome"
    assert "hour='7'" in str(digest.trigger)
    assert digest.args == ("Rome",)
    admins = found["alerts.digest.admins"]
    assert str(admins.trigger.timezone) == "UTC"
    assert "hour='7'" in str(admins.trigger)
