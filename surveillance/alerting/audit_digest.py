"""The admins' daily digest: the audit chain's anchor and a check of the chain, every day.

The anchor (the newest checkpoint: row count, head row, head hash, time) leaves the
database in an email: an admin who keeps these mails holds a copy of the head that no one
with only database access can rewrite, and ``surveillance audit verify --expect-head HASH
--expect-count N`` checks the trail against any of them. It is sent every day, alerts or
not: a day without it is a day whose head exists nowhere else, and a digest that stops
coming is itself a sign to look.

The check runs in a read transaction (a long trail never holds up the writers), then the
alert is queued with its data already frozen: the mail says what was true at digest time.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from typing import Any

from sqlmodel import Session

from surveillance.alerting.policy import DEFAULT_POLICY
from surveillance.kit import audit
from surveillance.records.outbox import Alert, AlertKind, Channel

ADMINS = "admins"
# The hour (UTC) from which the day's digest is made: admins serve every site.
DIGEST_HOUR_UTC = DEFAULT_POLICY.digest_hour


def digest_day(now: datetime) -> date | None:
    """The UTC day whose digest is due at ``now``, or None before the digest hour."""
    moment = now.astimezone(UTC)
    return moment.date() if moment.hour >= DIGEST_HOUR_UTC else None


def alert_id(day: date) -> str:
    return f"{AlertKind.admin_digest.value}:{day.isoformat()}:{Channel.email.value}:{ADMINS}"


def already_made(session: Session, day: date) -> bool:
    return session.get(Alert, alert_id(day)) is not None


def anchor_report(session: Session, *, now: datetime) -> dict[str, Any]:
    """The newest checkpoint and a verification of the whole chain (against its newest
    checkpoint: on PostgreSQL a change committed meanwhile may make that a later one)."""
    checkpoint = audit.last_checkpoint(session)
    anchor = None
    if checkpoint is not None:
        anchor = {
            "row_count": checkpoint.row_count,
            "head_id": checkpoint.head_id,
            "head_hash": checkpoint.head_hash,
            "at": _aware(checkpoint.at).isoformat(timespec="seconds"),
        }
    breaks = audit.verify_chain(session)
    first = breaks[0] if breaks else None
    return {
        "checked_at": now.astimezone(UTC).isoformat(timespec="seconds"),
        "anchor": anchor,
        "intact": not breaks,
        "problems": len(breaks),
        "first_problem": None
        if first is None
        else {"row": first.entry_id, "kind": first.kind.value, "detail": first.problem},
    }


def queue(session: Session, *, day: date, now: datetime, report: dict[str, Any]) -> int:
    """The day's digest to the admins, its data frozen (1), unless already queued (0)."""
    if already_made(session, day):
        return 0
    session.add(
        Alert(
            id=alert_id(day),
            kind=AlertKind.admin_digest.value,
            level=0,
            channel=Channel.email.value,
            recipient=ADMINS,
            as_of=day,
            payload=json.dumps({"date": day.isoformat(), **report}),
            next_attempt_at=now,
            created_at=now,
        )
    )
    session.flush()
    return 1


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
