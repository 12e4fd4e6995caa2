"""Tables. Derived states (upcoming / due / overdue) are never stored: they come from the
window dates and the site's local date when a list is asked for."""

from __future__ import annotations

from datetime import UTC, date, datetime
from enum import StrEnum
from typing import cast

from sqlalchemy import Column, DateTime, Index, MetaData, Table, UniqueConstraint, text
from sqlmodel import Field, SQLModel

# Stable constraint names, so migrations name the same things on SQLite and PostgreSQL.
SQLModel.metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
    }
)


# The largest value of an Integer column on PostgreSQL (and what SQLite's driver accepts
# safely): ids, versions and sequences from outside are checked against it first.
MAX_INTEGER = 2**31 - 1


def utc_now() -> datetime:
    return datetime.now(UTC)


def _utc_column() -> Column[datetime]:
    return Column(DateTime(timezone=True), nullable=False)


def table_of(model: type[SQLModel]) -> Table:
    """A table model's ``Table`` (SQLModel does not declare ``__table__`` for type checkers)."""
    return cast(Table, model.__table__)  # type: ignore[attr-defined]


class PatientStatus(StrEnum):
    active = "active"
    deceased = "deceased"
    withdrawn = "withdrawn"
    lost_to_follow_up = "lost_to_follow_up"
    transferred = "transferred"
    completed = "completed"


class AssessmentStatus(StrEnum):
    pending = "pending"
    completed = "completed"
    missed = "missed"
    not_done = "not_done"
    cancelled = "cancelled"


class Outcome(StrEnum):
    completed = "completed"
    missed = "missed"
    not_done = "not_done"


class Site(SQLModel, table=True):
    __tablename__ = "sites"

    id: str = Field(primary_key=True, max_length=40)
    name: str = Field(max_length=200)
    timezone: str = Field(max_length=64)  # IANA, e.g. Europe/Rome: "today" is local there
    # ISO 3166-1 alpha-2, e.g. IT: the only place detail a pharmacovigilance feed carries.
    country: str | None = Field(default=None, max_length=2)


class Patient(SQLModel, table=True):
    __tablename__ = "patients"

    id: int | None = Field(default=None, primary_key=True)
    study_id: str = Field(max_length=32, unique=True)  # pseudonymous, never a name
    site_id: str = Field(foreign_key="sites.id", index=True, max_length=40)
    birth_date: date
    sex: str = Field(max_length=1)
    diagnosis: str = Field(max_length=40)
    protocol_id: str = Field(max_length=80)
    protocol_version: str = Field(max_length=20)
    status: str = Field(default=PatientStatus.active.value, max_length=20)
    status_on: date | None = None
    status_reason: str | None = None
    enrolled_at: datetime = Field(default_factory=utc_now, sa_column=_utc_column())
    # Bumped by every change: the ETag that If-Match must carry. The server default matches
    # migration 0002 (which needs it to add the column to existing rows).
    version: int = Field(default=1, sa_column_kwargs={"server_default": "1"})


class Infusion(SQLModel, table=True):
    __tablename__ = "infusions"
    __table_args__ = (UniqueConstraint("patient_id", "number"),)

    id: int | None = Field(default=None, primary_key=True)
    patient_id: int = Field(foreign_key="patients.id")
    number: int
    infused_on: date
    protocol_version: str = Field(max_length=20)
    recorded_at: datetime = Field(default_factory=utc_now, sa_column=_utc_column())


class Assessment(SQLModel, table=True):
    """The materialized calendar: one row per (patient, infusion, rule, occurrence)."""

    __tablename__ = "assessments"
    __table_args__ = (
        UniqueConstraint(
            "patient_id",
            "infusion_number",
            "assessment",
            "occurrence",
            name="uq_assessments_identity",
        ),
        # The nurse's due list and the overdue scan read pending rows only; partial
        # indexes keep them small however long the completed history grows.
        Index(
            "ix_assessments_pending_site_window_end",
            "site_id",
            "window_end",
            "id",  # the pages' keyset order (migration 0004)
            sqlite_where=text("status = 'pending'"),
            postgresql_where=text("status = 'pending'"),
        ),
        Index(
            "ix_assessments_pending_site_window_start",
            "site_id",
            "window_start",
            "id",
            sqlite_where=text("status = 'pending'"),
            postgresql_where=text("status = 'pending'"),
        ),
        # The alert scan's loss-to-follow-up check reads one rule's recent rows per site.
        Index("ix_assessments_site_rule_due", "site_id", "assessment", "due_on"),
    )

    id: int | None = Field(default=None, primary_key=True)
    # Its key, STUDY-ID:infusion:assessment:occurrence, is derived (see ``assessment_key``);
    # the unique constraint above is its index.
    patient_id: int = Field(foreign_key="patients.id")
    site_id: str = Field(max_length=40)  # copied from the patient: the due list filters on it
    infusion_number: int
    assessment: str = Field(max_length=64)
    occurrence: int
    category: str = Field(max_length=64)
    due_on: date
    window_start: date
    window_end: date
    protocol_id: str = Field(max_length=80)
    protocol_version: str = Field(max_length=20)
    reason: str
    status: str = Field(default=AssessmentStatus.pending.value, max_length=20)
    status_reason: str | None = None  # why it was cancelled, moved or not done
    performed_on: date | None = None
    result: str | None = None
    protocol_deviation: bool = False  # done outside its window
    appointment_on: date | None = None  # booked by the nurse inside the window (reschedule)
    # Bumped by every change: the ETag that If-Match must carry. The server default matches
    # migration 0002 (which needs it to add the column to existing rows).
    version: int = Field(default=1, sa_column_kwargs={"server_default": "1"})
    updated_at: datetime = Field(default_factory=utc_now, sa_column=_utc_column())


# Regulatory reporting clocks (the protocol's safety-reporting rules): due whatever the
# patient's status, since a death does not stop the duty to report it.
REPORTING_CATEGORY = "safety-reporting"


class OutcomeRecord(SQLModel, table=True):
    """Every outcome ever recorded for an assessment; rows are only ever added."""

    __tablename__ = "outcomes"

    id: int | None = Field(default=None, primary_key=True)
    assessment_id: int = Field(foreign_key="assessments.id", index=True)
    outcome: str = Field(max_length=20)
    performed_on: date
    result: str | None = None
    reason: str | None = None
    protocol_deviation: bool = False
    recorded_by: str = Field(max_length=200)
    recorded_at: datetime = Field(default_factory=utc_now, sa_column=_utc_column())


class PatientEvent(SQLModel, table=True):
    """Events that change the calendar: new malignancy, death, withdrawal, ..."""

    __tablename__ = "patient_events"

    id: int | None = Field(default=None, primary_key=True)
    patient_id: int = Field(foreign_key="patients.id", index=True)
    kind: str = Field(max_length=40)
    occurred_on: date
    note: str | None = None
    recorded_by: str = Field(max_length=200)
    recorded_at: datetime = Field(default_factory=utc_now, sa_column=_utc_column())


def assessment_key(study_id: str, infusion_number: int, assessment: str, occurrence: int) -> str:
    """The key nurses type and URLs carry: ``ROM-001:1:rcl_test:2``."""
    return f"{study_id}:{infusion_number}:{assessment}:{occurrence}"


class AuditEntry(SQLModel, table=True):
    """Append-only trail of every change to clinical data.

    Each row carries a hash of its own content and of the previous row, so an edited
    or deleted row breaks the chain (``surveillance audit verify``).
    """

    __tablename__ = "audit_log"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=utc_now, sa_column=_utc_column())
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


class Role(StrEnum):
    nurse = "nurse"
    investigator = "investigator"
    pharmacovigilance = "pharmacovigilance"
    admin = "admin"


class User(SQLModel, table=True):
    __tablename__ = "users"

    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(max_length=254, unique=True)
    role: str = Field(max_length=20)
    password_hash: str | None = None  # argon2id; None until a password is set from the CLI
    active: bool = True
    created_at: datetime = Field(default_factory=utc_now, sa_column=_utc_column())


class UserSite(SQLModel, table=True):
    """The sites a nurse or investigator works at (admin and pharmacovigilance have none)."""

    __tablename__ = "user_sites"

    user_id: int = Field(foreign_key="users.id", primary_key=True)
    site_id: str = Field(foreign_key="sites.id", primary_key=True, max_length=40)


class ApiToken(SQLModel, table=True):
    """A bearer token for API clients, or a read-only calendar-feed token for one site.

    Only a SHA-256 hash of the token is stored: tokens are 256-bit random strings, so a
    fast hash is enough and lets each request be checked with one indexed lookup.
    """

    __tablename__ = "api_tokens"

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="users.id", index=True)
    token_hash: str = Field(max_length=64, unique=True)
    prefix: str = Field(max_length=12)  # shown in lists so a token can be told apart
    kind: str = Field(default="api", max_length=10)  # "api" or "feed"
    feed_site_id: str | None = Field(default=None, foreign_key="sites.id", max_length=40)
    created_at: datetime = Field(default_factory=utc_now, sa_column=_utc_column())
    revoked_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))


class WebSession(SQLModel, table=True):
    """A signed-in browser: the cookie holds a random token, the table its hash."""

    __tablename__ = "web_sessions"

    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(max_length=64, unique=True)
    user_id: int = Field(foreign_key="users.id", index=True)
    csrf_token: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=utc_now, sa_column=_utc_column())
    expires_at: datetime = Field(sa_column=_utc_column())
