"""The admins' daily digest: the audit chain's anchor and a check of the chain, every day.

The anchor (the newest checkpoint: row count, head row, head hash, time) leaves the
database in an email: an admin who keeps these mails holds a copy of the head that no one
with only database access can rewrite, and ``surveillance audit verify --expect-head HASH
--expect-count N`` checks the trail against any of them. It is sent every day, alerts or
not: a day without it is a day whose head exists nowhere else, and a digest that stops
coming is itself a sign to look.

The check runs in a read transaction (a long trail never holds up the writers), then the
alert is queued with its data already frozen: the mail says what was true at digest time.

How much is checked (``CheckPolicy``): up to ``whole_daily_up_to_rows`` rows, the whole
trail every day. A registry's trail is far longer (~180 rows a patient: 18 M rows at 10^5
patients took 8 minutes to check, 10^6 would take over an hour every day), so beyond that
each digest checks the rows added since the previous digest, linked to the head that digest
checked and mailed, and a stretch of the older trail sized so that every row is checked
again within ``whole_within_days`` days (rows are only ever appended: an edit or deletion
of an old row is still found, within that many days rather than the next morning). The
stretches are read a chunk at a time, so no snapshot is held for the whole check. A digest
that found a problem makes the next one check the whole trail again, and ``surveillance
audit verify`` always checks all of it.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
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


@dataclass(frozen=True)
class CheckPolicy:
    """How much of the trail each day's digest checks (see the module's docstring)."""

    whole_daily_up_to_rows: int = 2_000_000  # ~1 minute to check here
    whole_within_days: int = 7


def previous_check(session: Session, day: date, within_days: int) -> dict[str, Any] | None:
    """What the latest digest of the ``within_days`` before ``day`` checked through (its
    ``checked`` record, with ``days_ago``), if it found the trail intact; None otherwise
    (check it whole)."""
    for back in range(1, within_days + 1):
        earlier = session.get(Alert, alert_id(day - timedelta(days=back)))
        if earlier is None or earlier.payload is None:
            continue
        checked = json.loads(earlier.payload).get("checked") or {}
        return {**checked, "days_ago": back} if "through_id" in checked else None
    return None


def anchor_report(
    session: Session, *, now: datetime, day: date, policy: CheckPolicy | None = None
) -> dict[str, Any]:
    """The newest checkpoint and a check of the chain against it (on PostgreSQL a change
    committed meanwhile may make that a later one): the whole chain, or the rows added
    since the last digest and a stretch of the older ones (``CheckPolicy``)."""
    policy = policy or CheckPolicy()
    checkpoint = audit.last_checkpoint(session)
    anchor: dict[str, Any] | None = None
    if checkpoint is not None:
        anchor = {
            "row_count": checkpoint.row_count,
            "head_id": checkpoint.head_id,
            "head_hash": checkpoint.head_hash,
            "at": _aware(checkpoint.at).isoformat(timespec="seconds"),
        }
    previous = previous_check(session, day, policy.whole_within_days)
    if anchor is None or previous is None or anchor["row_count"] <= policy.whole_daily_up_to_rows:
        breaks = audit.verify_chain(session)
        if anchor is not None and not breaks:
            # verify_chain read the newest checkpoint again (maybe a later one): the head the
            # next digest goes on from must hold what this one mails.
            breaks += _head_breaks(session, anchor["head_id"], anchor["head_hash"], "checkpoint")
        checked: dict[str, Any] = {"whole": True}
        if anchor is not None and not breaks:
            checked.update(_through(anchor), rolling_after_id=0)
    else:
        breaks, checked = _since_and_rolling(session, anchor, previous, policy)
    first = breaks[0] if breaks else None
    return {
        "checked_at": now.astimezone(UTC).isoformat(timespec="seconds"),
        "anchor": anchor,
        "intact": not breaks,
        "problems": len(breaks),
        "first_problem": None
        if first is None
        else {"row": first.entry_id, "kind": first.kind.value, "detail": first.problem},
        "checked": checked,
    }


def _through(anchor: dict[str, Any]) -> dict[str, Any]:
    """Where the next digest goes on from: this digest's anchor, checked."""
    return {
        "through_id": anchor["head_id"],
        "through_hash": anchor["head_hash"],
        "through_count": anchor["row_count"],
    }


def _since_and_rolling(
    session: Session, anchor: dict[str, Any], previous: dict[str, Any], policy: CheckPolicy
) -> tuple[list[audit.ChainBreak], dict[str, Any]]:
    """The rows added since the previous digest, linked to the head it checked and ending at
    the anchor after as many rows as it counts; then the next stretch of the older rows."""
    through_id, through_count = previous["through_id"], previous["through_count"]
    days = previous.get("days_ago", 1)
    breaks: list[audit.ChainBreak] = []
    head_id = anchor["head_id"]
    if head_id < through_id:
        breaks.append(
            audit.ChainBreak(
                through_id,
                f"the newest checkpoint's head, row {head_id}, comes before row {through_id}, "
                "which the last digest checked: rows were deleted and the checkpoints rewritten",
                audit.Problem.truncated,
            )
        )
        return breaks, {"whole": False}
    # Both heads where they were, with their hashes: the one the last digest checked (and
    # mailed) and the newest checkpoint's, whether or not rows were added in between.
    breaks += _head_breaks(session, through_id, previous["through_hash"], "last digest")
    if head_id != through_id:
        breaks += _head_breaks(session, head_id, anchor["head_hash"], "checkpoint")
    new = audit.verify_segment(
        session, after_id=through_id, after_hash=previous["through_hash"], through_id=head_id
    )
    breaks += new.breaks
    if through_count + new.rows != anchor["row_count"]:
        breaks.append(
            audit.ChainBreak(
                head_id,
                f"{through_count + new.rows} rows up to row {head_id} where the last checkpoint "
                f"counted {anchor['row_count']}: rows were deleted or added",
                audit.Problem.miscounted,
            )
        )
    # The older rows, a stretch a day: from where the previous digest's stretch ended, to the
    # head that digest checked; then from the first row again.
    start = previous.get("rolling_after_id", 0)
    start = start if 0 < start < through_id else 0
    older = audit.verify_segment(
        session,
        after_id=start,
        after_hash=audit.hash_through(session, start),  # the genesis hash from the start
        through_id=through_id,
        # A share of the trail for each day since the last digest: days without one are
        # made up, so a pass still takes ``whole_within_days`` days, not that many digests.
        limit=max(1, math.ceil(anchor["row_count"] * days / policy.whole_within_days)),
    )
    breaks += older.breaks
    checked: dict[str, Any] = {
        "whole": False,
        "new_rows": new.rows,
        "older_rows": older.rows,
        "older_from": older.first_id,
        "older_to": older.last_id,
        "within_days": policy.whole_within_days,
    }
    if not breaks:
        ended = older.last_id is None or older.last_id >= through_id
        checked.update(_through(anchor), rolling_after_id=0 if ended else older.last_id)
    return sorted(breaks, key=lambda b: b.entry_id), checked


def _head_breaks(
    session: Session, entry_id: int, expected: str, whose: str
) -> list[audit.ChainBreak]:
    """The row a head names must still be there with the head's hash."""
    found = audit.hash_of(session, entry_id)
    if found is None:
        return [
            audit.ChainBreak(
                entry_id,
                f"row {entry_id}, the {whose}'s head, is gone: the newest rows were deleted",
                audit.Problem.truncated,
            )
        ]
    if found != expected:
        return [
            audit.ChainBreak(
                entry_id,
                f"row {entry_id}, the {whose}'s head, has another hash than it had: replaced",
                audit.Problem.replaced,
            )
        ]
    return []


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
