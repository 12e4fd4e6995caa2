"""The admins' daily digest carries the audit chain's anchor out of the database, and
``audit verify --expect-head`` checks the trail against a mailed one: deleting the newest
rows and rewriting the checkpoints to match is still reported.

Real parts: a SQLite file and a PostgreSQL database, the SMTP server (aiosmtpd), the
installed ``surveillance`` command in a child process."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, text
from sqlmodel import select
from support.alert_support import (
    ACTOR,
    ADMIN,
    Clock,
    alert,
    config,
    drain,
    mails,
    setup_cohort,
    smtp_config,
    text_part,
)
from support.peers import SmtpInbox

import rules
from surveillance.accounts import auth
from surveillance.accounts.models import User
from surveillance.alerting import audit_digest
from surveillance.alerting.jobs import AlertJobs
from surveillance.config import Settings
from surveillance.kit import audit
from surveillance.kit.db import read_session, write_session
from surveillance.kit.i18n import format_day, use_locale

SCRIPT = Path(sys.executable).parent / "surveillance"
DAY = datetime(2026, 12, 2, tzinfo=UTC).date()
SEVEN_UTC = datetime(2026, 12, 2, 7, 0, tzinfo=UTC)
ITALIAN_ADMIN = "admin.it@test.invalid"
VERIFY = re.compile(r"surveillance audit verify --expect-head ([0-9a-f]{64}) --expect-count (\d+)")


def _jobs(engine: Engine, registry: rules.ProtocolRegistry, clock: Clock) -> AlertJobs:
    settings = Settings(
        _env_file=None, database_url=engine.url.render_as_string(hide_password=False)
    )  # type: ignore[call-arg]
    return AlertJobs(engine=engine, settings=settings, registry=registry, clock=clock)


def _admins(engine: Engine) -> None:
    """A second admin who reads Italian (the first reads English)."""
    with write_session(engine) as session:
        auth.add_user(session, email=ITALIAN_ADMIN, role="admin", sites=[], actor=ACTOR)
        user = session.execute(select(User).where(User.email == ITALIAN_ADMIN)).scalar_one()
        assert user.id is not None
        auth.set_locale(session, user_id=user.id, locale="it", actor=ACTOR, now=SEVEN_UTC)


def _digest_mails(inbox: SmtpInbox, day: str) -> dict[str, Message]:
    """Recipient -> the admins' digest of ``day`` they received."""
    deliveries = mails(inbox)[f"digest.admins:{day}:email:admins"]
    return {to: mime for recipients, mime in deliveries for to in recipients}


def _subject(mime: Message) -> str:
    return " ".join(str(mime["Subject"]).split())  # long headers arrive folded


def _head(engine: Engine) -> audit.AuditCheckpoint:
    with read_session(engine) as session:
        head = audit.last_checkpoint(session)
    assert head is not None
    return head


def test_the_admins_get_the_anchor_and_the_check_every_morning_in_their_language(
    engine: Engine, registry: rules.ProtocolRegistry, smtp_server: SmtpInbox
) -> None:
    setup_cohort(engine, registry)
    _admins(engine)
    clock = Clock(SEVEN_UTC - timedelta(minutes=1))
    jobs = _jobs(engine, registry, clock)
    assert jobs.run_admin_digest() == 0  # before 07:00 UTC
    clock.advance(timedelta(minutes=1))
    assert jobs.run_admin_digest() == 1
    assert jobs.run_admin_digest() == 0  # once a day
    head = _head(engine)
    drain(engine, clock, config(registry, smtp_config(smtp_server)))
    assert alert(engine, f"digest.admins:{DAY}:email:admins").status == "sent"

    received = _digest_mails(smtp_server, DAY.isoformat())
    assert set(received) == {ADMIN, ITALIAN_ADMIN}
    english, italian = text_part(received[ADMIN]), text_part(received[ITALIAN_ADMIN])
    assert _subject(received[ADMIN]) == (
        f"[LTFU] Audit trail {format_day(DAY)}: intact, {head.row_count} rows, "
        f"head {head.head_hash[:12]}"
    )
    for body in (english, italian):
        lines = [line.split(": ")[-1] for line in body.splitlines()[2:6]]
        assert lines[1:] == [str(head.row_count), str(head.head_id), head.head_hash]
        found = VERIFY.search(body)
        assert found is not None
        assert found.groups() == (head.head_hash, str(head.row_count))
    assert "the chain is intact." in english
    assert "Keep this email." in english
    with use_locale("it"):
        day_it = format_day(DAY)
    assert _subject(received[ITALIAN_ADMIN]) == (
        f"[LTFU] Registro di audit {day_it}: integro, {head.row_count} righe, "
        f"testa {head.head_hash[:12]}"
    )
    assert "la catena è integra" in italian
    assert "Keep this email." not in italian

    # The next day, with nothing else to tell, the admins get the anchor again.
    clock.advance(timedelta(days=1))
    assert jobs.run_admin_digest() == 1
    drain(engine, clock, config(registry, smtp_config(smtp_server)))
    next_day = (DAY + timedelta(days=1)).isoformat()
    assert set(_digest_mails(smtp_server, next_day)) == {ADMIN, ITALIAN_ADMIN}


def test_the_digest_reports_a_broken_chain(
    engine: Engine, registry: rules.ProtocolRegistry, smtp_server: SmtpInbox
) -> None:
    setup_cohort(engine, registry)
    with engine.begin() as connection:  # the newest row deleted, its checkpoint kept
        connection.execute(text("DELETE FROM audit_log WHERE id = (SELECT max(id) FROM audit_log)"))
    clock = Clock(SEVEN_UTC)
    assert _jobs(engine, registry, clock).run_admin_digest() == 1
    drain(engine, clock, config(registry, smtp_config(smtp_server)))
    [mime] = _digest_mails(smtp_server, DAY.isoformat()).values()
    assert _subject(mime) == f"[LTFU] Audit trail {format_day(DAY)}: 1 problem(s) found"
    body = text_part(mime)
    assert "1 problem(s) found. The first:" in body
    assert "the newest rows were deleted" in body
    assert "surveillance audit verify`" in body


def _verify(engine: Engine | str, *args: str) -> subprocess.CompletedProcess[str]:
    """``surveillance audit verify ARGS`` as an operator runs it, on ``engine``'s database."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SURVEILLANCE_")}
    url = engine if isinstance(engine, str) else engine.url.render_as_string(hide_password=False)
    env["DATABASE_URL"] = url
    return subprocess.run(
        [str(SCRIPT), "audit", "verify", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _cut_and_rewrite_checkpoints(connection: Connection, keep_through: int) -> int:
    """What someone with the database does to hide a deletion: the rows after
    ``keep_through`` deleted, the checkpoints rewritten to describe the shorter trail (the
    chain and its checkpoints agree again). The rows left."""
    connection.execute(text("DELETE FROM audit_log WHERE id > :id"), {"id": keep_through})
    count: int = connection.execute(text("SELECT count(*) FROM audit_log")).scalar_one()
    connection.execute(text("DELETE FROM audit_checkpoints"))
    connection.execute(
        text(
            "INSERT INTO audit_checkpoints (at, row_count, head_id, head_hash) "
            "SELECT :at, :count, id, hash FROM audit_log "
            "WHERE id = (SELECT max(id) FROM audit_log)"
        ),
        {"at": SEVEN_UTC, "count": count},
    )
    return count


def test_a_mailed_anchor_catches_a_truncation_the_rewritten_checkpoints_hide(
    engine: Engine, registry: rules.ProtocolRegistry, smtp_server: SmtpInbox
) -> None:
    setup_cohort(engine, registry)
    clock = Clock(SEVEN_UTC)
    assert _jobs(engine, registry, clock).run_admin_digest() == 1
    drain(engine, clock, config(registry, smtp_config(smtp_server)))
    [mime] = _digest_mails(smtp_server, DAY.isoformat()).values()
    found = VERIFY.search(text_part(mime))
    assert found is not None
    mailed_hash, mailed_count = found.groups()
    expect = ("--expect-head", mailed_hash, "--expect-count", mailed_count)
    done = _verify(engine, *expect)
    assert (done.returncode, done.stdout.strip()) == (
        0,
        f"audit trail intact, the head {mailed_hash} included",
    ), done.stderr

    # Someone with the database deletes the newest rows, then rewrites the checkpoints
    # to describe the shorter trail: the chain and its checkpoints agree again.
    with engine.begin() as connection:
        newest = connection.execute(text("SELECT max(id) FROM audit_log")).scalar_one()
        count = _cut_and_rewrite_checkpoints(connection, keep_through=newest - 3)
    plain = _verify(engine)
    assert (plain.returncode, plain.stdout.strip()) == (0, "audit trail intact")  # hidden

    done = _verify(engine, *expect)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert done.stderr.splitlines() == [
        f"audit trail: the trail has {count} rows, fewer than the {mailed_count} of the "
        f"expected head {mailed_hash}: the newest rows were deleted"
    ]


def _notes(engine: Engine, actor: str, now: datetime) -> None:
    with write_session(engine) as session:
        for n in range(3):
            audit.record(
                session, actor=actor, action="note", entity="site", entity_key=str(n), at=now
            )


def test_a_mailed_anchor_catches_a_rewritten_trail_of_the_same_length(engine: Engine) -> None:
    """Rows re-written and re-chained from the first one, as many as before: the head at
    the mailed row number has another hash."""
    now = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
    _notes(engine, ACTOR, now)
    head = _head(engine)
    with engine.begin() as connection:
        connection.execute(text("DELETE FROM audit_checkpoints"))
        connection.execute(text("DELETE FROM audit_log"))
    _notes(engine, "forger", now)
    assert _verify(engine).returncode == 0
    done = _verify(engine, "--expect-head", head.head_hash, "--expect-count", str(head.row_count))
    assert done.returncode == 1
    assert f"row number 3 does not have the expected head's hash {head.head_hash}" in done.stderr
    alone = _verify(engine, "--expect-head", head.head_hash)
    assert alone.returncode == 1
    assert "no row has the expected head's hash" in alone.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--expect-count", "3"), "--expect-count needs --expect-head"),
        (("--expect-head", "ab", "--expect-count", "0"), "--expect-count"),
    ],
)
def test_verify_refuses_an_incomplete_expectation(
    tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    done = _verify(f"sqlite:///{tmp_path / 'none.db'}", *args)
    assert done.returncode == 2
    assert message in done.stderr


# -- a long trail: the rows added since the last digest, and a stretch of the older ones ----

SMALL = audit_digest.CheckPolicy(whole_daily_up_to_rows=10, whole_within_days=3)


def _trail(engine: Engine, rows: int, at: datetime) -> None:
    """``rows`` more audit rows, a change of a few rows at a time."""
    with write_session(engine) as session:
        for n in range(rows):
            audit.record(
                session, actor=ACTOR, action="note", entity="site", entity_key=str(n), at=at
            )


def _digest(engine: Engine, day_number: int) -> dict[str, Any]:
    """The report of digest day ``day_number`` (from ``DAY``), queued as the job queues it
    (the next digest goes on from what it checked)."""
    day = DAY + timedelta(days=day_number)
    now = SEVEN_UTC + timedelta(days=day_number)
    with read_session(engine) as session:
        report = audit_digest.anchor_report(session, now=now, day=day, policy=SMALL)
    with write_session(engine) as session:
        assert audit_digest.queue(session, day=day, now=now, report=report) == 1
    return report


def test_a_long_trail_is_checked_a_stretch_a_day_and_whole_within_the_period(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(audit, "SEGMENT_CHUNK_ROWS", 7)  # stretches read over many chunks
    _trail(engine, 60, SEVEN_UTC)
    first = _digest(engine, 0)
    assert first["intact"]
    assert first["checked"]["whole"]  # no digest before it: the whole trail
    head = _head(engine)
    covered: set[int] = set()
    for day in (1, 2, 3):
        _trail(engine, 5, SEVEN_UTC + timedelta(days=day))
        report = _digest(engine, day)
        checked = report["checked"]
        assert report["intact"], report
        assert not checked["whole"]
        assert checked["new_rows"] == 5  # every row added since the last digest
        # A third of the trail a day (less on the day a pass reaches the end).
        assert 0 < checked["older_rows"] <= -(-_head(engine).row_count // 3)
        covered.update(range(checked["older_from"], checked["older_to"] + 1))
    # Within 3 days every row up to the first digest's head was checked again.
    assert covered >= set(range(1, head.head_id + 1))


def test_an_old_row_edited_is_found_within_the_period_then_the_trail_is_checked_whole(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(audit, "SEGMENT_CHUNK_ROWS", 7)
    _trail(engine, 60, SEVEN_UTC)
    assert _digest(engine, 0)["intact"]
    with engine.begin() as connection:  # an old row's reason, changed in the database
        connection.execute(text("UPDATE audit_log SET reason = 'forged' WHERE id = 47"))
    reports = [_digest(engine, day) for day in (1, 2, 3)]
    broken = [r for r in reports if not r["intact"]]
    assert broken, "an edited row went unnoticed for the whole period"
    first = broken[0]
    assert (first["first_problem"]["row"], first["first_problem"]["kind"]) == (47, "edited")
    assert not first["checked"]["whole"]
    after = _digest(engine, 4)  # after a problem, the next digest checks everything
    assert after["checked"]["whole"]
    assert (after["intact"], after["first_problem"]["row"]) == (False, 47)


def test_new_rows_deleted_are_found_the_next_day(engine: Engine) -> None:
    _trail(engine, 60, SEVEN_UTC)
    assert _digest(engine, 0)["intact"]
    _trail(engine, 6, SEVEN_UTC + timedelta(days=1))
    with engine.begin() as connection:  # one of today's rows, from the middle
        middle = connection.execute(text("SELECT max(id) - 2 FROM audit_log")).scalar_one()
        connection.execute(text("DELETE FROM audit_log WHERE id = :id"), {"id": middle})
    report = _digest(engine, 1)
    assert not report["intact"]
    assert (report["first_problem"]["row"], report["first_problem"]["kind"]) == (
        middle + 1,
        "unlinked",
    )


def test_rows_deleted_behind_the_last_digest_with_rewritten_checkpoints_are_found(
    engine: Engine,
) -> None:
    """The newest rows deleted and the checkpoints rewritten to match: the chain and its
    checkpoints agree (a whole check passes), but not with the head the last digest checked."""
    _trail(engine, 60, SEVEN_UTC)
    assert _digest(engine, 0)["intact"]
    with engine.begin() as connection:
        _cut_and_rewrite_checkpoints(connection, keep_through=55)
    with read_session(engine) as session:
        assert audit.verify_chain(session) == []  # what a whole check sees
    report = _digest(engine, 1)
    assert not report["intact"]
    assert report["first_problem"]["kind"] == "truncated"
    assert "rows were deleted and the checkpoints rewritten" in report["first_problem"]["detail"]


def test_the_mail_says_what_was_checked_on_a_long_trail(
    engine: Engine, registry: rules.ProtocolRegistry, smtp_server: SmtpInbox
) -> None:
    setup_cohort(engine, registry)
    _trail(engine, 30, SEVEN_UTC)
    clock = Clock(SEVEN_UTC)
    settings = Settings(
        _env_file=None,
        database_url=engine.url.render_as_string(hide_password=False),
        audit_whole_check_rows=10,
    )  # type: ignore[call-arg]
    jobs = AlertJobs(engine=engine, settings=settings, registry=registry, clock=clock)
    assert jobs.run_admin_digest() == 1
    clock.advance(timedelta(days=1))
    _trail(engine, 4, clock())
    assert jobs.run_admin_digest() == 1
    drain(engine, clock, config(registry, smtp_config(smtp_server)))
    first = text_part(_digest_mails(smtp_server, DAY.isoformat())[ADMIN])
    assert "Checked today" not in first  # the first digest checked the whole trail
    body = text_part(_digest_mails(smtp_server, (DAY + timedelta(days=1)).isoformat())[ADMIN])
    head = _head(engine)
    older = -(-head.row_count // 7)
    assert (
        f"Checked today: the 4 rows added since the last digest and {older} older rows; "
        "every row is checked again within 7 days."
    ) in " ".join(body.split())
    assert "the chain is intact." in body


def test_the_newest_row_deleted_on_a_quiet_day_is_found_the_next_day(engine: Engine) -> None:
    """No row added since the last digest, the newest one deleted, its checkpoint kept."""
    _trail(engine, 60, SEVEN_UTC)
    assert _digest(engine, 0)["intact"]
    with engine.begin() as connection:
        connection.execute(text("DELETE FROM audit_log WHERE id = (SELECT max(id) FROM audit_log)"))
    report = _digest(engine, 1)
    assert not report["intact"]
    assert (report["first_problem"]["row"], report["first_problem"]["kind"]) == (60, "truncated")


def test_a_head_rewritten_with_its_checkpoint_on_a_quiet_day_is_found(engine: Engine) -> None:
    """The newest row edited, its hash computed again and the checkpoint rewritten to match:
    the chain and its checkpoint agree, but not with the head the last digest checked."""
    _trail(engine, 60, SEVEN_UTC)
    assert _digest(engine, 0)["intact"]
    with engine.begin() as connection:
        row = connection.execute(text("SELECT * FROM audit_log WHERE id = 60")).mappings().one()
        content = audit.hashed_content(
            datetime.fromisoformat(str(row["at"])), row["actor"], row["action"], row["entity"],
            row["entity_key"], row["patient_id"], "forged", row["old_values"], row["new_values"],
        )  # fmt: skip
        forged = hashlib.sha256((row["previous_hash"] + content).encode()).hexdigest()
        connection.execute(
            text("UPDATE audit_log SET reason = 'forged', hash = :hash WHERE id = 60"),
            {"hash": forged},
        )
        connection.execute(text("UPDATE audit_checkpoints SET head_hash = :hash"), {"hash": forged})
    with read_session(engine) as session:
        assert audit.verify_chain(session) == []  # what a whole check sees
    report = _digest(engine, 1)
    assert not report["intact"]
    assert (report["first_problem"]["row"], report["first_problem"]["kind"]) == (60, "replaced")


def test_a_checkpoint_that_miscounts_the_new_rows_is_found(engine: Engine) -> None:
    _trail(engine, 60, SEVEN_UTC)
    assert _digest(engine, 0)["intact"]
    _trail(engine, 5, SEVEN_UTC + timedelta(days=1))
    with engine.begin() as connection:
        connection.execute(
            text(
                "UPDATE audit_checkpoints SET row_count = row_count + 1 "
                "WHERE id = (SELECT max(id) FROM audit_checkpoints)"
            )
        )
    report = _digest(engine, 1)
    assert not report["intact"]
    assert report["first_problem"]["kind"] == "miscounted"


def test_days_without_a_digest_are_made_up(engine: Engine) -> None:
    """The worker down for two days: the next digest checks three days' share of the older
    rows, so a pass still takes the period in days, not that many digests."""
    _trail(engine, 60, SEVEN_UTC)
    assert _digest(engine, 0)["intact"]
    with engine.begin() as connection:  # in the last third of the trail
        connection.execute(text("UPDATE audit_log SET reason = 'forged' WHERE id = 50"))
    report = _digest(engine, 3)  # days 1 and 2 had no digest
    assert report["checked"]["older_rows"] == 60
    assert (report["first_problem"]["row"], report["first_problem"]["kind"]) == (50, "edited")
