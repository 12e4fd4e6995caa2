"""The nurse's list: what is overdue, due and coming up at a site on a given day.

States are derived, never stored: ``overdue`` after the window closed, ``due`` inside
it, ``upcoming`` before it opens. Each state is read in index order with a limit (the
partial indexes on pending rows), so the list costs the same at 10 or 100 000 patients.
Long lists are paged with a keyset cursor (state, sort date, assessment id), never OFFSET.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from functools import cache, lru_cache
from typing import Any, NamedTuple

from sqlalchemy import (
    ColumnElement,
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
    (``study_id`` from the patient, the rest from the assessment), so the two cannot drift."""

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


_COLUMNS: tuple[Any, ...] = tuple(
    col(getattr(Patient if name == "study_id" else Assessment, name)) for name in _Row._fields
)


_PATIENT = aliased(Patient)


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


def _bound(
    site_id: str,
    on: date,
    state: DueState,
    until: date,
    limit: int,
    after: DueCursor | None,
    since: date | None,
    registry: rules.ProtocolRegistry,
    postgres: bool,
) -> tuple[Select[Any], dict[str, Any]]:
    """The state's prepared statement and the values of its parameters."""
    keyset = after is not None and after.state is state
    opens_late = state is DueState.upcoming and since is not None and since > on
    values: dict[str, Any] = {"site_id": site_id, "on": on, "until": until, "limit": limit}
    if state is DueState.due:
        values.update(on=max(on, since or on), until=min(on, until))
    if opens_late:
        values["since"] = since
    if keyset:
        assert after is not None
        values.update(after_on=after.sort_on, after_id=after.assessment_id)
    reporting = tuple(sorted(registry.reporting_categories()))
    return _statement(state, keyset, opens_late, reporting, postgres), values


@cache
def _statement(
    state: DueState, keyset: bool, opens_late: bool, reporting: tuple[str, ...], postgres: bool
) -> Select[Any]:
    """Built once per shape: building a Select costs more than running it from an index."""
    window_end, window_start = col(Assessment.window_end), col(Assessment.window_start)
    on, until = bindparam("on", type_=Date), bindparam("until", type_=Date)
    where: list[ColumnElement[bool]] = [
        col(Assessment.site_id) == bindparam("site_id"),
        col(Assessment.status) == _constant(AssessmentStatus.pending.value),
        _followed(reporting, postgres),
    ]
    if state is DueState.overdue:  # longest overdue first
        sort = window_end
        where.append(window_end < on)
    elif state is DueState.due:  # the window closing soonest first (on: max(on, since))
        sort = window_end
        where += [window_end >= on, window_start <= until]
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
        select(*_COLUMNS)
        .join(Patient, col(Patient.id) == col(Assessment.patient_id))
        .where(and_(*where))
        .order_by(sort, col(Assessment.id))
        .limit(bindparam("limit", type_=Integer))
    )


# A page is a few hundred index-ordered rows. At 10^5 patients the planner overestimates
# the pending rows whose window has closed and picks a parallel plan for the overdue rows:
# starting its workers took ~7 of the statement's 8 ms (the same rows: ~1 ms without).
SERIAL_PLANS = "SET LOCAL max_parallel_workers_per_gather = 0"


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
    connection = session.connection()
    postgres = connection.dialect.name == "postgresql"
    if postgres:
        connection.exec_driver_sql(SERIAL_PLANS)
    items: list[DueItem] = []
    for state in _ORDER:
        if state not in states or (
            after is not None and _ORDER.index(state) < _ORDER.index(after.state)
        ):
            continue
        remaining = limit - len(items)
        if remaining <= 0:
            break
        statement, values = _bound(
            site_id,
            window.on,
            state,
            window.end,
            remaining,
            after,
            window.start,
            registry,
            postgres,
        )
        # Core (no ORM row handling), all rows in one fetch.
        rows = connection.execute(statement, values).all()
        items += _items(rows, window.on, state, registry)
    return items


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


def _items(rows: Any, on: date, state: DueState, registry: rules.ProtocolRegistry) -> list[DueItem]:
    # Named tuples, not SQLAlchemy rows: attribute access on a Row costs ~7x more, and
    # this loop is most of a page's cost.
    overdue = state is DueState.overdue
    return [
        DueItem(
            assessment_key(r.study_id, r.infusion_number, r.assessment, r.occurrence),
            r.study_id,
            r.assessment,
            _name(registry, r.protocol_id, r.protocol_version, r.assessment),
            r.category,
            r.due_on,
            r.window_start,
            r.window_end,
            state,
            (on - r.window_end).days if overdue else 0,
            r.reason,
            r.id,
            r.appointment_on,
            r.version,
            r.updated_at,
        )
        for r in map(_Row._make, rows)
    ]


@lru_cache(maxsize=4096)
def _name(registry: rules.ProtocolRegistry, protocol_id: str, version: str, assessment: str) -> str:
    return assessment_name(registry, protocol_id, version, assessment)
