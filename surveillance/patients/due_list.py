"""The nurse's list: what is overdue, due and coming up at a site on a given day.

States are derived, never stored: ``overdue`` after the window closed, ``due`` inside
it, ``upcoming`` before it opens. Each state is read in index order with a limit (the
partial indexes on pending rows), so the list costs the same at 10 or 100 000 patients;
a page is one statement, a branch per state. Long lists are paged with a keyset cursor
(state, sort date, assessment id), never OFFSET.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from functools import cache, lru_cache
from typing import Any, NamedTuple, cast

from sqlalchemy import (
    ColumnElement,
    CompoundSelect,
    Date,
    Integer,
    Select,
    String,
    and_,
    bindparam,
    false,
    literal,
    literal_column,
    or_,
    select,
    union_all,
)
from sqlalchemy.orm import aliased
from sqlmodel import Session, col

import rules
from surveillance.errors import InvalidInput
from surveillance.kit.bounds import parse_id
from surveillance.protocols.registry import assessment_name
from surveillance.records.patients import (
    FOLLOWED_STATUSES,
    Assessment,
    AssessmentStatus,
    Patient,
    assessment_key,
)

# Patients whose calendars still call for work (lost to follow-up: keep trying).
DEFAULT_HORIZON_DAYS = 30


class DueState(StrEnum):
    overdue = "overdue"
    due = "due"
    upcoming = "upcoming"


_ORDER = tuple(DueState)


def derive_state(on: date, window_start: date, window_end: date) -> DueState:
    if on > window_end:
        return DueState.overdue
    if on >= window_start:
        return DueState.due
    return DueState.upcoming


@dataclass(frozen=True)
class DueCursor:
    """Where a page ended: the last row's state, the date it sorts by and its id.

    Encoded as an opaque URL-safe string; a cursor that does not decode is bad input.
    """

    state: DueState
    sort_on: date
    assessment_id: int

    def encode(self) -> str:
        text = f"{self.state.value}|{self.sort_on.isoformat()}|{self.assessment_id}"
        return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, cursor: str) -> DueCursor:
        try:
            padded = cursor + "=" * (-len(cursor) % 4)
            state, sort_on, assessment_id = base64.urlsafe_b64decode(padded).decode().split("|")
            return cls(
                DueState(state), date.fromisoformat(sort_on), parse_id(assessment_id, "cursor")
            )
        except (ValueError, UnicodeDecodeError, binascii.Error) as exc:
            raise InvalidInput(
                f"cursor {cursor[:40]!r} is not one this list gave out: use next_cursor as returned"
            ) from exc


# Dates in a stored reason that identify the patient when the list leaves the system (a
# CSV mailed around, a calendar feed synced to a cloud calendar): the birth date and the
# infusion date, and the dates of the events a rule was started by.
_BORN = re.compile(r" \(born \d{4}-\d{2}-\d{2}\)")
_ON_DATE = re.compile(r" (?:on|of) \d{4}-\d{2}-\d{2}\b")
_ANY_DATE = re.compile(r"\b\d{4}-\d{2}-\d{2}\b")


def public_reason(reason: str) -> str:
    """``reason`` with no dates: "18th birthday (born 2008-11-29)" is "18th birthday",
    "Month 12 after infusion of 2024-01-31" is "Month 12 after infusion"."""
    text = _ON_DATE.sub("", _BORN.sub("", reason))
    return _ANY_DATE.sub("[date]", text)


class DueItem(NamedTuple):
    """One row of the list (a named tuple: pages build dozens per request)."""

    key: str
    study_id: str
    assessment: str
    name: str
    category: str
    due_on: date
    window_start: date
    window_end: date
    state: DueState
    days_overdue: int
    reason: str
    assessment_id: int
    appointment_on: date | None
    version: int  # the ETag an outcome recorded from this list must carry (If-Match)
    updated_at: datetime | None = None  # the row's last change (the calendar feed's LAST-MODIFIED)

    @property
    def public_reason(self) -> str:
        """The reason without the dates that identify the patient (see ``public_reason``)."""
        return public_reason(self.reason)

    def as_dict(self) -> dict[str, Any]:
        """The row as the command line's JSON carries it: the reason without identifying dates
        (the CSV of every export is ``due_csv``)."""
        return {
            "key": self.key,
            "study_id": self.study_id,
            "assessment": self.assessment,
            "name": self.name,
            "category": self.category,
            "state": self.state.value,
            "due": self.due_on.isoformat(),
            "window_start": self.window_start.isoformat(),
            "window_end": self.window_end.isoformat(),
            "days_overdue": self.days_overdue,
            "reason": self.public_reason,
        }

    def cursor(self) -> DueCursor:
        """The keyset position of this row (upcoming rows sort by window start)."""
        sort_on = self.window_start if self.state is DueState.upcoming else self.window_end
        return DueCursor(self.state, sort_on, self.assessment_id)


@dataclass(frozen=True)
class DueWindow:
    """Which pending rows a list shows: everything overdue on ``on``, plus the rows due
    or upcoming whose window overlaps [``start``, ``end``] (default: ``on`` to 30 days on)."""

    on: date
    start: date
    end: date

    @classmethod
    def around(
        cls,
        on: date,
        start: date | None = None,
        end: date | None = None,
        horizon_days: int = DEFAULT_HORIZON_DAYS,
    ) -> DueWindow:
        start = start or on
        end = end or max(on, start) + timedelta(days=horizon_days)
        if end < start:
            raise InvalidInput(f"'from' ({start}) must not be after 'to' ({end})")
        return cls(on, start, end)


class _Row(NamedTuple):
    """What a due-list query reads of each assessment; the select is built from these names
    (``study_id`` from the patient, the rest from the assessment), so the two cannot drift
    (``_items`` unpacks a row in this order)."""

    id: int
    study_id: str
    infusion_number: int
    assessment: str
    occurrence: int
    category: str
    due_on: date
    window_start: date
    window_end: date
    appointment_on: date | None
    version: int
    updated_at: datetime
    reason: str
    protocol_id: str
    protocol_version: str
    state: int  # the state's place in the list (its branch of the page's statement)


_COLUMNS: tuple[Any, ...] = tuple(
    col(getattr(Patient if name == "study_id" else Assessment, name)) for name in _Row._fields[:-1]
)


_PATIENT = aliased(Patient)
# The column itself as the condition: ``listed`` on PostgreSQL, ``listed = 1`` on SQLite,
# each its index's predicate as written (``records.patients``), so the planner can use it.
_LISTED = cast(ColumnElement[bool], col(Assessment.listed))


def _constant(value: str) -> ColumnElement[str]:
    """A status written into the SQL: it matches the partial indexes' ``status = 'pending'``
    as text, and needs no per-execution expansion of an IN list."""
    assert value.isidentifier()
    return literal_column(f"'{value}'", String)


def _followed(reporting: tuple[str, ...], postgres: bool) -> ColumnElement[bool]:
    """The row's patient is still followed (a reporting clock stays on the list whatever
    the patient's status).

    PostgreSQL: a filter on the joined patient, checked on the primary-key probe the join
    makes anyway. A correlated EXISTS there is planned as a hashed SubPlan (an EXISTS under
    an OR cannot become a semi-join): a scan of every patient of every site before the
    first row, ~14 ms per statement at 20 000 patients (issue 15, EXPLAIN ANALYZE BUFFERS).

    SQLite: a correlated EXISTS on the primary key. A filter on the joined patients makes
    SQLite (3.38+) build a Bloom filter over the whole patients table before the first row
    (~20 ms at 100 000 patients), although the index-ordered scan stops after a page; the
    EXISTS is one primary-key probe per row.
    """
    statuses = [_constant(status) for status in FOLLOWED_STATUSES]
    if postgres:
        return or_(_reporting_clock(reporting), col(Patient.status).in_(statuses))
    followed = (
        select(literal(1))
        .where(col(_PATIENT.id) == col(Assessment.patient_id), col(_PATIENT.status).in_(statuses))
        .exists()
    )
    return or_(_reporting_clock(reporting), followed)


def _reporting_clock(categories: tuple[str, ...]) -> ColumnElement[bool]:
    """The row's category is one the protocols declare a reporting duty (written into the
    SQL like the statuses; a protocol's categories are [a-z0-9_-] words)."""
    written = []
    for category in categories:
        assert category.replace("-", "_").isidentifier()
        written.append(literal_column(f"'{category}'", String))
    if not written:
        return false()
    column = col(Assessment.category)
    return column == written[0] if len(written) == 1 else column.in_(written)


def _included(states: tuple[DueState, ...], after: DueCursor | None) -> tuple[DueState, ...]:
    """The states a page reads, in list order: those asked for, from the cursor's on."""
    first = _ORDER.index(after.state) if after is not None else 0
    return tuple(state for state in _ORDER[first:] if state in states)


def _values(site_id: str, window: DueWindow, limit: int, after: DueCursor | None) -> dict[str, Any]:
    """The parameters of a page's statement (each state's branch reads its own)."""
    on = window.on
    values: dict[str, Any] = {
        "site_id": site_id,
        "on": on,
        "until": window.end,
        "since": window.start,
        # The due rows' window overlaps [max(on, from), min(on, to)].
        "due_from": max(on, window.start),
        "due_until": min(on, window.end),
        "limit": limit,
    }
    if after is not None:
        values.update(after_on=after.sort_on, after_id=after.assessment_id)
    return values


@cache
def _page_statement(
    states: tuple[DueState, ...],
    keyset: DueState | None,
    opens_late: bool,
    reporting: tuple[str, ...],
    postgres: bool,
) -> CompoundSelect[Any] | Select[Any]:
    """One statement for a page: each state's branch read in index order with the page's
    limit, in list order (overdue, due, upcoming), the whole cut at the limit.

    A page costs one round trip, not one per state. Each branch is a subquery with its own
    ORDER BY and LIMIT; the outer LIMIT stops reading as soon as the page is full (the later
    branches are never executed), so the list relies on the branches being read in order:
    PostgreSQL's Append and SQLite's compound select both read them in order when the plan
    is serial, which every pooled connection is (``kit.db``: no parallel plans). ``due_list``
    checks the order of what comes back all the same.
    """
    branches: list[Select[Any]] = []
    for state in states:
        rows = _statement(state, state is keyset, opens_late, reporting, postgres)
        # The subquery's own columns, typed (SQLite returns dates as text to a bare *).
        branches.append(select(*rows.subquery(f"{state.value}_rows").c))
    if len(branches) == 1:
        return branches[0]
    return union_all(*branches).limit(bindparam("limit", type_=Integer))


@cache
def _statement(
    state: DueState, keyset: bool, opens_late: bool, reporting: tuple[str, ...], postgres: bool
) -> Select[Any]:
    """One state's rows, index-ordered with the page's limit (built once per shape:
    building a Select costs more than running it from an index)."""
    window_end, window_start = col(Assessment.window_end), col(Assessment.window_start)
    on, until = bindparam("on", type_=Date), bindparam("until", type_=Date)
    where: list[ColumnElement[bool]] = [
        col(Assessment.site_id) == bindparam("site_id"),
        col(Assessment.status) == _constant(AssessmentStatus.pending.value),
        _followed(reporting, postgres),
    ]
    if state is DueState.overdue:  # longest overdue first
        sort = window_end
        # Listed rows only (their own index): a site's oldest overdue rows are mostly
        # those of patients who died or withdrew, read and dropped otherwise
        # (``patients.listing``; the patient is still checked above).
        where += [window_end < on, _LISTED]
    elif state is DueState.due:  # the window closing soonest first
        sort = window_end
        where += [
            window_end >= bindparam("due_from", type_=Date),
            window_start <= bindparam("due_until", type_=Date),
            _LISTED,
        ]
    else:  # opening soonest first
        sort = window_start
        where += [window_start > on, window_start <= until]
        if opens_late:
            where.append(window_end >= bindparam("since", type_=Date))
    if keyset:
        # ``sort >= d`` alone bounds the index range; the OR only breaks ties on the id.
        after_on = bindparam("after_on", type_=Date)
        where += [
            sort >= after_on,
            or_(sort > after_on, col(Assessment.id) > bindparam("after_id", type_=Integer)),
        ]
    return (
        select(*_COLUMNS, literal_column(str(_ORDER.index(state)), Integer).label("state"))
        .join(Patient, col(Patient.id) == col(Assessment.patient_id))
        .where(and_(*where))
        .order_by(sort, col(Assessment.id))
        .limit(bindparam("limit", type_=Integer))
    )


class ListOrderLost(RuntimeError):
    """A page's rows came back out of list order: the database read the branches of its
    statement in an order the statement's limit cannot rely on (e.g. a parallel plan), so
    the limit may have cut the wrong rows. A defect to fix, never a page to show."""


def due_list(
    session: Session,
    *,
    site_id: str,
    on: date,
    registry: rules.ProtocolRegistry,
    states: tuple[DueState, ...] = (DueState.overdue, DueState.due, DueState.upcoming),
    horizon_days: int = DEFAULT_HORIZON_DAYS,
    limit: int = 500,
    window: DueWindow | None = None,
    after: DueCursor | None = None,
) -> list[DueItem]:
    """Overdue first, then due, then upcoming within ``horizon_days`` (or ``window``);
    at most ``limit`` rows, starting after ``after`` when given."""
    window = window or DueWindow.around(on, horizon_days=horizon_days)
    included = _included(states, after)
    if not included or limit <= 0:
        return []
    connection = session.connection()
    statement = _page_statement(
        included,
        after.state if after is not None else None,
        window.start > window.on,
        tuple(sorted(registry.reporting_categories())),
        connection.dialect.name == "postgresql",
    )
    # Core (no ORM row handling), all rows in one fetch.
    rows = connection.execute(statement, _values(site_id, window, limit, after)).all()
    return _items(rows, window.on, registry)


@dataclass(frozen=True)
class DuePage:
    items: list[DueItem]
    next_cursor: str | None


def due_page(
    session: Session,
    *,
    site_id: str,
    window: DueWindow,
    registry: rules.ProtocolRegistry,
    states: tuple[DueState, ...] = tuple(DueState),
    limit: int,
    after: DueCursor | None = None,
) -> DuePage:
    """One page of the list; ``next_cursor`` is None on the last page."""
    items = due_list(
        session,
        site_id=site_id,
        on=window.on,
        registry=registry,
        states=states,
        limit=limit + 1,
        window=window,
        after=after,
    )
    if len(items) <= limit:
        return DuePage(items, None)
    return DuePage(items[:limit], items[limit - 1].cursor().encode())


def _items(rows: Any, on: date, registry: rules.ProtocolRegistry) -> list[DueItem]:
    # Rows unpacked in the order of ``_Row`` (unpacking a row costs a fraction of
    # attribute access on it), into named tuples: this loop is most of a page's cost.
    items = []
    last = (0, date.min, 0)
    overdue, upcoming = _ORDER.index(DueState.overdue), _ORDER.index(DueState.upcoming)
    for (
        row_id, study_id, infusion_number, assessment, occurrence, category, due_on,
        window_start, window_end, appointment_on, version, updated_at, reason,
        protocol_id, protocol_version, place,
    ) in rows:  # fmt: skip
        position = (place, window_start if place == upcoming else window_end, row_id)
        if position < last:
            raise ListOrderLost(f"row {position} came after {last}")
        last = position
        items.append(
            DueItem(
                assessment_key(study_id, infusion_number, assessment, occurrence),
                study_id,
                assessment,
                _name(registry, protocol_id, protocol_version, assessment),
                category,
                due_on,
                window_start,
                window_end,
                _ORDER[place],
                (on - window_end).days if place == overdue else 0,
                reason,
                row_id,
                appointment_on,
                version,
                updated_at,
            )
        )
    return items


@lru_cache(maxsize=4096)
def _name(registry: rules.ProtocolRegistry, protocol_id: str, version: str, assessment: str) -> str:
    return assessment_name(registry, protocol_id, version, assessment)
