"""The clinical record of a patient: sites, patients, infusions, the materialized calendar
(assessments), outcomes and events.

Derived states (upcoming / due / overdue) are never stored: they come from the window dates
and the site's local date when a list is asked for."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import Index, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from surveillance.errors import InvalidInput
from surveillance.kit.bounds import is_id
from surveillance.kit.clock import local_date, utc_now
from surveillance.kit.sqltypes import utc_column


class PatientStatus(StrEnum):
    active = "active"
    deceased = "deceased"
    withdrawn = "withdrawn"
    lost_to_follow_up = "lost_to_follow_up"
    transferred = "transferred"
    completed = "completed"


# Patients whose calendar is still followed: their pending work is due, listed and alerted.
# Lost to follow-up stays here on purpose: the site is still expected to find them.
FOLLOWED_STATUSES = (PatientStatus.active.value, PatientStatus.lost_to_follow_up.value)
# Statuses no change leads out of (``patients.changes.change_status`` refuses them any).
ENDED_STATUSES = (PatientStatus.deceased.value, PatientStatus.withdrawn.value)


class AssessmentStatus(StrEnum):
    pending = "pending"
    completed = "completed"
    missed = "missed"
    not_done = "not_done"
    cancelled = "cancelled"
    # Added by an amendment after its window had closed: never owed (not overdue, not
    # missed); the reason says which amendment. The calendar sync leaves it as it is.
    not_required = "not_required"


class Outcome(StrEnum):
    completed = "completed"
    missed = "missed"
    not_done = "not_done"


# The outcome of the history row an undo adds (``surveillance.patients.undo``): the
# recording before it was taken back by its author. Not an ``Outcome``: nobody records it.
UNDONE = "undone"


class Site(SQLModel, table=True):
    __tablename__ = "sites"

    id: str = Field(primary_key=True, max_length=40)
    name: str = Field(max_length=200)
    timezone: str = Field(max_length=64)  # IANA, e.g. Europe/Rome: "today" is local there
    # ISO 3166-1 alpha-2, e.g. IT: the only place detail a pharmacovigilance feed carries.
    country: str | None = Field(default=None, max_length=2)

    def today(self, now: datetime) -> date:
        """The date it is here at ``now``: the day every due, overdue and future check uses."""
        return local_date(now, self.timezone)


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
    enrolled_at: datetime = Field(default_factory=utc_now, sa_column=utc_column())
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
    recorded_at: datetime = Field(default_factory=utc_now, sa_column=utc_column())


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
        # The due list's overdue and due rows: pending and listed. A patient who died or
        # withdrew keeps the rows due before, pending for good; at 10^6 patients they are
        # most of a site's oldest overdue rows, read and dropped on every page (migration
        # 0014, ``patients.listing``).
        Index(
            "ix_assessments_listed_site_window_end",
            "site_id",
            "window_end",
            "id",
            sqlite_where=text("status = 'pending' AND listed = 1"),
            postgresql_where=text("status = 'pending' AND listed"),
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
        # The dashboard's on-time rate: completed and missed rows per site, read from the
        # index alone (it holds every column the rate needs; migration 0008).
        Index(
            "ix_assessments_site_status_window",
            "site_id",
            "status",
            "window_end",
            "window_start",
            "performed_on",
        ),
        # The dashboard's risk of loss: the yearly contacts of a site, ranked per patient,
        # read from the index alone (migration 0008).
        Index(
            "ix_assessments_site_rule_status_window",
            "site_id",
            "assessment",
            "status",
            "window_end",
            "patient_id",
        ),
        # Results to review: the few rows whose free text awaits a typed value.
        Index(
            "ix_assessments_to_review_site_performed",
            "site_id",
            "performed_on",
            "id",
            sqlite_where=text("result_as_entered IS NOT NULL"),
            postgresql_where=text("result_as_entered IS NOT NULL"),
        ),
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
    result: str | None = None  # typed: what the engine branches on (see the rule's result)
    note: str | None = None  # free text beside the result, never branched on
    # Free text stored before results were typed that matched no declared value: kept here
    # (result empty) until an investigator corrects it to a typed one (migration 0007).
    result_as_entered: str | None = None
    # Done work planned because of a result that was corrected afterwards: what corrected it.
    started_by_corrected_result: str | None = None
    protocol_deviation: bool = False  # done outside its window
    # Turned false, while pending, when the patient dies or withdraws, unless the row is a
    # reporting duty (owed whatever the status): the due list's index leaves it out
    # (``patients.listing``). Never false for a followed patient's row; true is always safe.
    listed: bool = Field(default=True, sa_column_kwargs={"server_default": text("true")})
    appointment_on: date | None = None  # booked by the nurse inside the window (reschedule)
    # Bumped by every change: the ETag that If-Match must carry. The server default matches
    # migration 0002 (which needs it to add the column to existing rows).
    version: int = Field(default=1, sa_column_kwargs={"server_default": "1"})
    updated_at: datetime = Field(default_factory=utc_now, sa_column=utc_column())


class OutcomeRecord(SQLModel, table=True):
    """Every outcome ever recorded for an assessment; rows are only ever added.

    ``outcome`` is an ``Outcome`` value, or ``UNDONE`` for the row an undo adds (the
    assessment is pending again; ``performed_on`` repeats the undone recording's date)."""

    __tablename__ = "outcomes"
    # The due list's "undo" offers: one user's recordings of the last minutes (migration 0008).
    __table_args__ = (Index("ix_outcomes_recorded_by_at", "recorded_by", "recorded_at"),)

    id: int | None = Field(default=None, primary_key=True)
    assessment_id: int = Field(foreign_key="assessments.id", index=True)
    outcome: str = Field(max_length=20)
    performed_on: date
    result: str | None = None
    note: str | None = None
    reason: str | None = None
    protocol_deviation: bool = False
    recorded_by: str = Field(max_length=200)
    recorded_at: datetime = Field(default_factory=utc_now, sa_column=utc_column())


class PatientEvent(SQLModel, table=True):
    """Events that change the calendar: new malignancy, death, withdrawal, ..."""

    __tablename__ = "patient_events"

    id: int | None = Field(default=None, primary_key=True)
    patient_id: int = Field(foreign_key="patients.id", index=True)
    kind: str = Field(max_length=40)
    occurred_on: date
    note: str | None = None
    recorded_by: str = Field(max_length=200)
    recorded_at: datetime = Field(default_factory=utc_now, sa_column=utc_column())


def assessment_key(study_id: str, infusion_number: int, assessment: str, occurrence: int) -> str:
    """The key nurses type and URLs carry: ``ROM-001:1:rcl_test:2``."""
    return f"{study_id}:{infusion_number}:{assessment}:{occurrence}"


@dataclass(frozen=True)
class AssessmentRef:
    study_id: str
    infusion_number: int
    assessment: str
    occurrence: int

    @classmethod
    def parse(cls, key: str) -> AssessmentRef:
        """``ROM-001:1:rcl_test:2`` -> its parts; ``InvalidInput`` if it is not a key."""
        parts = key.rsplit(":", 3)
        numbers = parts[1::2] if len(parts) == 4 else []
        if len(numbers) != 2 or not all(_small_number(n) for n in numbers):
            raise InvalidInput(
                f"{key!r} is not an assessment key: "
                "expected STUDY-ID:infusion:assessment:occurrence, "
                "e.g. ROM-001:1:rcl_test:2"
            )
        return cls(parts[0], int(parts[1]), parts[2], int(parts[3]))


def _small_number(text: str) -> bool:
    return is_id(text)
