"""The audit trail: written in the same transaction as the change it records.

Rows are chained: ``hash = sha256(previous_hash + canonical content)``. Editing or
deleting any row changes every later hash, which ``verify_chain`` detects.

Deleting the newest rows leaves a shorter chain that is still whole, so the chain alone
cannot tell. Every change therefore also appends a checkpoint (the row count and the
head's id and hash) to ``audit_checkpoints``, a separate append-only table: a trail
shorter than its latest checkpoint, or whose row at the checkpoint's head has another
hash, is reported like any other break.

Rows are recorded during the change and chained at its commit (``kit.commit_order``):
under the writers' lock, so the chain's order is the commit order, and writers wait for
each other only for that short part.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import func, insert, select
from sqlmodel import Field, Session, SQLModel, col

from surveillance.kit import commit_order
from surveillance.kit.bulk import insert_rows
from surveillance.kit.clock import utc_now
from surveillance.kit.sqltypes import table_of, utc_column


class AuditEntry(SQLModel, table=True):
    """Append-only trail of every change to clinical data.

    Each row carries a hash of its own content and of the previous row, so an edited
    or deleted row breaks the chain (``surveillance audit verify``).
    """

    __tablename__ = "audit_log"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=utc_now, sa_column=utc_column())
    actor: str = Field(max_length=200)
    action: str = Field(max_length=60)  # enroll, record_outcome, calendar_change, ...
    entity: str = Field(max_length=40)  # patient, assessment, infusion, ...
    entity_key: str = Field(max_length=200)
    patient_id: int | None = Field(default=None, foreign_key="patients.id", index=True)
    reason: str | None = None
    old_values: str | None = None  # JSON
    new_values: str | None = None  # JSON
    previous_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64)


class AuditCheckpoint(SQLModel, table=True):
    """The head of the audit chain after each change (append-only): the anchor that
    makes deleting the newest audit rows visible."""

    __tablename__ = "audit_checkpoints"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=utc_now, sa_column=utc_column())
    row_count: int
    head_id: int
    head_hash: str = Field(max_length=64)


GENESIS_HASH = "0" * 64
# Made once: ``json.dumps`` with options builds a new encoder per call, and every audit row
# encodes three times (its old and new values, then the content its hash covers). Same
# output as ``json.dumps`` with these options, byte for byte (the chain depends on it).
_CONTENT_JSON = json.JSONEncoder(sort_keys=True, separators=(",", ":"))
_VALUES_JSON = json.JSONEncoder(sort_keys=True, default=str)


def _canonical(entry: Any) -> str:
    return hashed_content(
        entry.at, entry.actor, entry.action, entry.entity, entry.entity_key, entry.patient_id,
        entry.reason, entry.old_values, entry.new_values,
    )  # fmt: skip


def hashed_content(
    at: datetime,
    actor: str,
    action: str,
    entity: str,
    entity_key: str,
    patient_id: int | None,
    reason: str | None,
    old_values: str | None,
    new_values: str | None,
) -> str:
    """The text a row's hash covers; the registry loader hashes its rows with this very
    function, so its chain is the one ``record`` would have written."""
    at = at.astimezone(UTC) if at.tzinfo else at.replace(tzinfo=UTC)
    content = {
        "at": at.isoformat(timespec="microseconds"),
        "actor": actor,
        "action": action,
        "entity": entity,
        "entity_key": entity_key,
        "patient_id": patient_id,
        "reason": reason,
        "old_values": old_values,
        "new_values": new_values,
    }
    return _CONTENT_JSON.encode(content)


def _digest(previous_hash: str, entry: Any) -> str:
    """``entry``: an ``AuditEntry`` or a row with its columns."""
    return hashlib.sha256((previous_hash + _canonical(entry)).encode()).hexdigest()


def _json(values: dict[str, Any] | None) -> str | None:
    return None if values is None else _VALUES_JSON.encode(values)


def record(
    session: Session,
    *,
    actor: str,
    action: str,
    entity: str,
    entity_key: str,
    patient_id: int | None = None,
    reason: str | None = None,
    old: dict[str, Any] | None = None,
    new: dict[str, Any] | None = None,
    at: datetime | None = None,
) -> None:
    """Append one audit row to the chain, inside the caller's transaction (written and
    chained at its commit; a read of the trail before then writes it first)."""
    row = unchained_row(
        at or utc_now(), actor, action, entity, entity_key, patient_id, reason, old, new
    )
    commit_order.defer(session, _CHAIN, [row])


def unchained_row(
    at: datetime,
    actor: str,
    action: str,
    entity: str,
    entity_key: str,
    patient_id: int | None,
    reason: str | None,
    old: dict[str, Any] | None,
    new: dict[str, Any] | None,
) -> dict[str, Any]:
    """The row as a dict, before its place in the chain (no model instance per row: ~10x
    faster for a cohort's rows); the registry loader builds its rows with this very function."""
    return {
        "at": at.astimezone(UTC),
        "actor": actor,
        "action": action,
        "entity": entity,
        "entity_key": entity_key,
        "patient_id": patient_id,
        "reason": reason,
        "old_values": _json(old),
        "new_values": _json(new),
    }


def _append(session: Session, batches: list[list[dict[str, Any]]]) -> None:
    """Chain the rows recorded in this transaction after the head, in the order they
    were recorded, and checkpoint the new head (under the writers' lock)."""
    previous = (
        session.execute(
            select(col(AuditEntry.hash)).order_by(col(AuditEntry.id).desc()).limit(1)
        ).scalar()
        or GENESIS_HASH
    )
    rows = []
    for batch in batches:
        for recorded in batch:
            row = {**recorded, "previous_hash": previous}  # a copy: a savepoint may undo it
            content = hashed_content(
                row["at"], row["actor"], row["action"], row["entity"], row["entity_key"],
                row["patient_id"], row["reason"], row["old_values"], row["new_values"],
            )  # fmt: skip
            row["hash"] = previous = hashlib.sha256((previous + content).encode()).hexdigest()
            rows.append(row)
    if len(rows) > _FEW:
        insert_rows(session, table_of(AuditEntry), rows)
        head_id = session.execute(select(func.max(col(AuditEntry.id)))).scalar_one()
    else:  # a change's few rows: one INSERT (a COPY costs more round trips), its id back
        inserted = session.execute(insert(table_of(AuditEntry)).returning(col(AuditEntry.id)), rows)
        head_id = max(inserted.scalars().all())
    _checkpoint(session, added=len(rows), head_id=head_id, head_hash=previous, at=rows[-1]["at"])


_FEW = 20


_CHAIN = commit_order.Deferred(
    "audit chain", _append, frozenset({"audit_log", "audit_checkpoints"})
)


def _checkpoint(
    session: Session, *, added: int, head_id: int, head_hash: str, at: datetime
) -> None:
    """Append the chain's new head (under the chain's lock, in the change's transaction)."""
    last = session.execute(
        select(col(AuditCheckpoint.row_count)).order_by(col(AuditCheckpoint.id).desc()).limit(1)
    ).scalar()
    if last is None:  # the first checkpoint: count what is there (once)
        count = session.execute(select(func.count()).select_from(AuditEntry)).scalar_one()
    else:
        count = last + added
    checkpoint = {"at": at, "row_count": count, "head_id": head_id, "head_hash": head_hash}
    session.execute(insert(table_of(AuditCheckpoint)), [checkpoint])  # one row: no COPY


def checkpoint_now(session: Session, at: datetime) -> None:
    """A checkpoint of the chain as it is (the migration that adds checkpoints does it)."""
    head = session.execute(
        select(col(AuditEntry.id), col(AuditEntry.hash))
        .order_by(col(AuditEntry.id).desc())
        .limit(1)
    ).first()
    if head is not None:
        count = session.execute(select(func.count()).select_from(AuditEntry)).scalar_one()
        insert_rows(
            session,
            table_of(AuditCheckpoint),
            [{"at": at, "row_count": count, "head_id": head[0], "head_hash": head[1]}],
        )


class Problem(StrEnum):
    """What kind of break: the admins' digest says each in its reader's language."""

    edited = "edited"  # a row's content no longer matches its hash
    unlinked = "unlinked"  # a row does not name its predecessor's hash
    replaced = "replaced"  # the row at the last checkpoint has another hash
    truncated = "truncated"  # the trail ends before its last checkpoint's head
    miscounted = "miscounted"  # rows up to the checkpoint's head counted differently
    # Against a head kept outside the database (``audit verify --expect-head``).
    shorter_than_expected = "shorter_than_expected"
    not_the_expected_head = "not_the_expected_head"


@dataclass(frozen=True)
class ChainBreak:
    entry_id: int
    problem: str
    kind: Problem


@dataclass(frozen=True)
class ExpectedHead:
    """A head recorded outside the database (a mailed digest, ``audit head``): the trail's
    row number ``row_count`` must have ``head_hash``. Its hash commits to every earlier row,
    so this catches rows deleted from the end even when the checkpoints were rewritten."""

    head_hash: str
    row_count: int | None = None  # None: the row may be anywhere in the trail


def verify_chain(session: Session, expect: ExpectedHead | None = None) -> list[ChainBreak]:
    """Every place where the chain does not hold: edited, deleted or reordered rows, and
    rows deleted from its end (the chain shorter than its latest checkpoint, or than the
    ``expect``ed head)."""
    breaks: list[ChainBreak] = []
    expected_previous = GENESIS_HASH
    anchor = last_checkpoint(session)
    count = count_at_anchor = 0
    anchor_seen = False
    found = False  # the expected head is where it should be
    id_at_expected = 0  # the id of the row at the expected head's place
    for entry in _entries(session):
        assert entry.id is not None
        count += 1
        if expect is not None and count == expect.row_count:
            id_at_expected = entry.id
        if expect is not None and not found:
            found = _is_expected(expect, entry, count)
        if anchor is not None and entry.id == anchor.head_id:
            anchor_seen, count_at_anchor = True, count
            if entry.hash != anchor.head_hash:
                breaks.append(
                    ChainBreak(
                        entry.id, "the row at the last checkpoint was replaced", Problem.replaced
                    )
                )
        breaks += _row_breaks(entry, expected_previous)
        expected_previous = entry.hash
    if anchor is not None and not anchor_seen:
        breaks.append(
            ChainBreak(
                anchor.head_id,
                f"the trail ends before its last checkpoint ({count} rows, "
                f"{anchor.row_count} checkpointed up to row {anchor.head_id}): "
                "the newest rows were deleted",
                Problem.truncated,
            )
        )
    elif anchor is not None and count_at_anchor != anchor.row_count and not breaks:
        breaks.append(
            ChainBreak(
                anchor.head_id,
                f"{count_at_anchor} rows up to row {anchor.head_id} where the last checkpoint "
                f"counted {anchor.row_count}: rows were deleted or added",
                Problem.miscounted,
            )
        )
    if expect is not None and not found:
        breaks.append(_expected_head_missing(expect, count, id_at_expected))
    return breaks


def _row_breaks(entry: Any, expected_previous: str) -> list[ChainBreak]:
    """A row that does not name the hash before it, or whose content is not its hash."""
    found = []
    if entry.previous_hash != expected_previous:
        found.append(
            ChainBreak(
                entry.id,
                "previous hash does not match: a row before it was deleted or edited",
                Problem.unlinked,
            )
        )
    if _digest(entry.previous_hash, entry) != entry.hash:
        found.append(
            ChainBreak(
                entry.id, "content does not match its hash: the row was edited", Problem.edited
            )
        )
    return found


# Rows read per statement when a stretch of the trail is checked, the read transaction
# ended after each: no snapshot is held for the whole stretch (on PostgreSQL a long one
# holds back vacuum everywhere; on SQLite it keeps the WAL from being checkpointed).
SEGMENT_CHUNK_ROWS = 20_000


@dataclass(frozen=True)
class SegmentCheck:
    """What checking consecutive rows of the trail found."""

    breaks: list[ChainBreak]
    rows: int
    first_id: int | None  # None: no row in the stretch
    last_id: int | None
    last_hash: str  # the hash the row after the stretch must name


def verify_segment(
    session: Session,
    *,
    after_id: int,
    after_hash: str,
    through_id: int | None = None,
    limit: int | None = None,
) -> SegmentCheck:
    """The rows after ``after_id`` (up to ``through_id`` and at most ``limit`` of them, or to
    the end), each checked against its content and linked to the one before it, the first
    to ``after_hash``: the chain as ``verify_chain`` checks it, for a stretch of it. Reads
    ``SEGMENT_CHUNK_ROWS`` at a time and ends the session's (read) transaction after each."""
    table = table_of(AuditEntry)
    breaks: list[ChainBreak] = []
    expected, cursor, rows, first_id = after_hash, after_id, 0, None
    while limit is None or rows < limit:
        size = SEGMENT_CHUNK_ROWS if limit is None else min(SEGMENT_CHUNK_ROWS, limit - rows)
        statement = select(table).where(table.c.id > cursor).order_by(table.c.id).limit(size)
        if through_id is not None:
            statement = statement.where(table.c.id <= through_id)
        chunk = session.execute(statement).all()
        for entry in chunk:
            breaks += _row_breaks(entry, expected)
            expected = entry.hash
        if not chunk:
            break
        first_id = chunk[0].id if first_id is None else first_id
        cursor, rows = chunk[-1].id, rows + len(chunk)
        session.rollback()  # between chunks: no snapshot kept from one statement to the next
        if len(chunk) < size:
            break
    return SegmentCheck(breaks, rows, first_id, cursor if rows else None, expected)


def hash_of(session: Session, entry_id: int) -> str | None:
    """The hash row ``entry_id`` holds; None if there is no such row."""
    table = table_of(AuditEntry)
    found: str | None = session.execute(select(table.c.hash).where(table.c.id == entry_id)).scalar()
    return found


def hash_through(session: Session, entry_id: int) -> str:
    """The hash of the last row up to ``entry_id`` (the genesis hash before the first): what
    the row after ``entry_id`` must name."""
    table = table_of(AuditEntry)
    found = session.execute(
        select(table.c.hash).where(table.c.id <= entry_id).order_by(table.c.id.desc()).limit(1)
    ).scalar()
    return found or GENESIS_HASH


def _is_expected(expect: ExpectedHead, entry: Any, count: int) -> bool:
    matches: bool = entry.hash == expect.head_hash
    return matches if expect.row_count is None else matches and count == expect.row_count


def _expected_head_missing(expect: ExpectedHead, count: int, entry_id: int) -> ChainBreak:
    if expect.row_count is not None and count < expect.row_count:
        return ChainBreak(
            0,
            f"the trail has {count} rows, fewer than the {expect.row_count} of the expected "
            f"head {expect.head_hash}: the newest rows were deleted",
            Problem.shorter_than_expected,
        )
    where = f"row number {expect.row_count}" if expect.row_count is not None else "no row"
    verb = "does not have" if expect.row_count is not None else "has"
    return ChainBreak(
        entry_id,
        f"{where} {verb} the expected head's hash {expect.head_hash}: the trail up to that "
        "head was rewritten, or rows before it were deleted",
        Problem.not_the_expected_head,
    )


def last_checkpoint(session: Session) -> AuditCheckpoint | None:
    """The chain's head as last recorded (to keep a copy of outside the database)."""
    return session.execute(
        select(AuditCheckpoint).order_by(col(AuditCheckpoint.id).desc()).limit(1)
    ).scalar()


def _entries(session: Session) -> Iterator[Any]:
    """The trail's rows, oldest first, as plain rows with the model's column names (no ORM
    object per row: verifying a long trail is ~3x faster)."""
    table = table_of(AuditEntry)
    statement = select(table).order_by(table.c.id).execution_options(yield_per=1000)
    yield from session.execute(statement)


@dataclass(frozen=True)
class AuditFact:
    """One audit row to append in bulk (e.g. a cohort enrolment)."""

    actor: str
    action: str
    entity: str
    entity_key: str
    patient_id: int | None
    reason: str | None
    new: dict[str, Any] | None
    old: dict[str, Any] | None = None


def record_many(session: Session, facts: list[AuditFact], at: datetime) -> None:
    """Append many rows to the chain (chained at commit with one set-based insert)."""
    if not facts:
        return
    rows = [
        unchained_row(
            at, f.actor, f.action, f.entity, f.entity_key, f.patient_id, f.reason, f.old, f.new
        )
        for f in facts
    ]
    commit_order.defer(session, _CHAIN, rows, size=len(rows))


def patient_trail(
    session: Session, *, patient_id: int, newest_first: bool = False, limit: int | None = None
) -> list[AuditEntry]:
    """The audit rows about one patient, oldest first (the API) or the latest ``limit``
    newest first (the patient page); one indexed query."""
    order = col(AuditEntry.id).desc() if newest_first else col(AuditEntry.id)
    statement = select(AuditEntry).where(col(AuditEntry.patient_id) == patient_id).order_by(order)
    return list(session.execute(statement.limit(limit)).scalars())


@dataclass(frozen=True)
class TrailPage:
    """One page of a patient's trail, newest first, and where the pages beside it start."""

    entries: list[AuditEntry]
    newer: int | None  # the first id after this page: ``after=`` of the newer page
    older: int | None  # the last id of this page: ``before=`` of the older page


def patient_trail_page(
    session: Session,
    *,
    patient_id: int,
    size: int,
    before: int | None = None,
    after: int | None = None,
) -> TrailPage:
    """``size`` rows of a patient's trail, newest first: the newest, those older than the
    id ``before``, or those newer than the id ``after`` (keyset paging: an index range,
    however deep the page)."""
    mine = col(AuditEntry.patient_id) == patient_id
    statement = select(AuditEntry).where(mine)
    if after is not None:
        statement = statement.where(col(AuditEntry.id) > after).order_by(col(AuditEntry.id))
    else:
        if before is not None:
            statement = statement.where(col(AuditEntry.id) < before)
        statement = statement.order_by(col(AuditEntry.id).desc())
    entries = list(session.execute(statement.limit(size + 1)).scalars())
    more = len(entries) > size
    entries = entries[:size]
    if after is not None:
        entries.reverse()
    if not entries:
        return TrailPage([], None, None)
    newest, oldest = entries[0].id, entries[-1].id
    assert newest is not None
    assert oldest is not None

    def exists(condition: Any) -> bool:
        found = select(col(AuditEntry.id)).where(mine, condition).limit(1)
        return session.execute(found).first() is not None

    has_newer = more if after is not None else exists(col(AuditEntry.id) > newest)
    has_older = more if after is None else exists(col(AuditEntry.id) < oldest)
    return TrailPage(entries, newest if has_newer else None, oldest if has_older else None)


def patient_trail_count(session: Session, *, patient_id: int) -> int:
    statement = select(func.count()).where(col(AuditEntry.patient_id) == patient_id)
    return int(session.execute(statement).scalar_one())


def entry_dict(entry: AuditEntry) -> dict[str, Any]:
    """An audit row as the API and pages show it (old and new values decoded)."""
    at = entry.at if entry.at.tzinfo else entry.at.replace(tzinfo=UTC)  # SQLite drops the zone
    return {
        "at": at,
        "actor": entry.actor,
        "action": entry.action,
        "entity": entry.entity,
        "key": entry.entity_key,
        "reason": entry.reason,
        "old": None if entry.old_values is None else json.loads(entry.old_values),
        "new": None if entry.new_values is None else json.loads(entry.new_values),
        "hash": entry.hash,
    }
