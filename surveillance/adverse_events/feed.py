"""The pharmacovigilance feed: every case version, in the order it was committed.

A version is written with a temporary negative ``sequence`` (no page shows it: cursors
are >= 0) and numbered at its transaction's commit, under the writers' lock
(``kit.commit_order``), which the commit releases. So sequence n+1 can only be given once
n is committed: a reader that sees n+1 has seen n, and a consumer paging by
``sequence > cursor`` never skips an entry that commits late. Numbering at commit rather
than when the version is written keeps the lock to the commit's few statements: writers
recording cases for different patients run at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, func, select
from sqlmodel import Session, col

import rules
from surveillance.adverse_events.views import VersionRecord, case_content, product_of
from surveillance.errors import InvalidInput
from surveillance.kit import commit_order
from surveillance.kit.bounds import is_id
from surveillance.kit.sqltypes import table_of
from surveillance.records.adverse_events import AdverseEventCase, AdverseEventVersion
from surveillance.records.patients import Patient, Site

DEFAULT_PAGE = 100
MAX_PAGE = 1000


def number_at_commit(session: Session, version: AdverseEventVersion) -> None:
    """Give ``version`` (not yet added) its feed position when its transaction commits.

    Until then its sequence is minus a number no other writer's version has (its id, taken
    from the id sequence on PostgreSQL; SQLite has one writer at a time): a placeholder
    that two writers shared would make the second wait on the unique index for the first.
    """
    serial = commit_order.defer(session, _NUMBERING, version)
    if session.get_bind().dialect.name == "postgresql":
        version.id = session.execute(
            select(func.nextval(func.pg_get_serial_sequence(_VERSIONS, "id")))
        ).scalar_one()
        version.sequence = -version.id
    else:
        version.sequence = -serial


def _number(session: Session, versions: list[AdverseEventVersion]) -> None:
    """The versions written in this transaction, in order, after the last committed one
    (under the writers' lock: the next writer to number sees these committed)."""
    last = session.execute(select(func.max(AdverseEventVersion.sequence))).scalar()
    sequence = max(int(last or 0), 0)
    for version in versions:
        sequence += 1
        version.sequence = sequence
    session.flush()


_VERSIONS = "adverse_event_versions"
_NUMBERING = commit_order.Deferred("feed sequence", _number)


def parse_cursor(cursor: str | None) -> int:
    """The sequence after which a page starts: "" or None is the beginning."""
    if not cursor:
        return 0
    if not is_id(cursor):
        raise InvalidInput(f"cursor {cursor[:40]!r} is not a cursor from this feed", field="cursor")
    return int(cursor)


@dataclass(frozen=True)
class FeedPage:
    entries: list[dict[str, Any]]
    next_cursor: str  # ask with this next (the same cursor when nothing was new)
    caught_up: bool  # fewer entries than asked for: the consumer has everything so far


def feed_page(
    session: Session, *, after: int, limit: int, registry: rules.ProtocolRegistry
) -> FeedPage:
    """One page: an index range scan on the sequence, one statement."""
    versions = table_of(AdverseEventVersion)
    entries = _entries(
        session,
        _with_context(select(*versions.c))
        .where(col(AdverseEventVersion.sequence) > after)
        .order_by(col(AdverseEventVersion.sequence))
        .limit(limit),
        registry,
    )
    last = entries[-1]["sequence"] if entries else after
    return FeedPage(entries, str(last), caught_up=len(entries) < limit)


def case_entries(
    session: Session, case_id: str, *, registry: rules.ProtocolRegistry
) -> list[dict[str, Any]]:
    """Every version of one case as a feed entry, oldest first; none if no such case."""
    versions = table_of(AdverseEventVersion)
    return _entries(
        session,
        _with_context(select(*versions.c))
        .where(col(AdverseEventVersion.case_id) == case_id)
        .order_by(col(AdverseEventVersion.version)),
        registry,
    )


def _with_context(statement: Select[Any]) -> Select[Any]:
    """The patient, site and protocol a version's feed entry carries."""
    return (
        statement.add_columns(
            col(Patient.study_id),
            col(Patient.sex),
            col(Patient.birth_date),
            col(Patient.protocol_id),
            col(Patient.protocol_version),
            col(AdverseEventCase.site_id),
            col(Site.country),
        )
        .join(AdverseEventCase, col(AdverseEventCase.case_id) == col(AdverseEventVersion.case_id))
        .join(Patient, col(Patient.id) == col(AdverseEventCase.patient_id))
        .join(Site, col(Site.id) == col(AdverseEventCase.site_id))
    )


def _entries(
    session: Session, statement: Select[Any], registry: rules.ProtocolRegistry
) -> list[dict[str, Any]]:
    products: dict[tuple[str, str], dict[str, str]] = {}  # few per page: look up once
    entries = []
    # Core rows (no ORM result handling: a third of a page at 100 entries).
    for row in session.connection().execute(statement).all():
        key = (row.protocol_id, row.protocol_version)
        if key not in products:
            products[key] = product_of(registry, *key)
        content = case_content(
            row,
            study_id=row.study_id,
            site_id=row.site_id,
            country=row.country,
            sex=row.sex,
            birth_date=row.birth_date,
            protocol_id=row.protocol_id,
            protocol_version=row.protocol_version,
            registry=registry,
            product=products[key],
        )
        entries.append(feed_entry(row, content))
    return entries


def feed_entry(version: VersionRecord, content: dict[str, Any]) -> dict[str, Any]:
    return {
        "sequence": version.sequence,
        "case_id": version.case_id,
        "version": version.version,
        "change": version.change,
        "last_info_date": version.last_info_date.isoformat(),
        "recorded_at": content["recorded_at"],  # the same moment, formatted once
        "case": content,
    }
