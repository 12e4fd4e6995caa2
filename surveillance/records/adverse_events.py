"""Adverse-event tables: a case, its versions (each a feed entry), and acknowledgements.

A version is never changed once written: a follow-up or a nullification is a new one.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from surveillance.kit.clock import utc_now
from surveillance.kit.sqltypes import utc_column


class AdverseEventCase(SQLModel, table=True):
    """One case and its latest state, for lists; the versions hold the history."""

    __tablename__ = "adverse_event_cases"
    __table_args__ = (
        UniqueConstraint("patient_id", "number"),
        Index("ix_adverse_event_cases_site_awareness", "site_id", "awareness_date"),
    )

    case_id: str = Field(primary_key=True, max_length=48)  # ROM-001-AE01: pseudonymous
    patient_id: int = Field(foreign_key="patients.id", index=True)
    number: int  # 1, 2, ... per patient
    site_id: str = Field(max_length=40)
    version: int  # the latest version: the ETag that If-Match must carry
    status: str = Field(max_length=12)
    term: str = Field(max_length=250)
    category: str = Field(max_length=20)
    grade: int | None = None
    serious: bool
    onset_date: date
    awareness_date: date
    outcome: str = Field(max_length=30)
    created_at: datetime = Field(default_factory=utc_now, sa_column=utc_column())
    updated_at: datetime = Field(default_factory=utc_now, sa_column=utc_column())


class AdverseEventVersion(SQLModel, table=True):
    """Everything known about a case at one version; also one entry of the feed.

    ``sequence`` is given at commit, under the writers' lock, so sequences become
    visible in order, without gaps (see ``feed.number_at_commit``).
    """

    __tablename__ = "adverse_event_versions"
    __table_args__ = (UniqueConstraint("case_id", "version"),)

    id: int | None = Field(default=None, primary_key=True)
    case_id: str = Field(foreign_key="adverse_event_cases.case_id", max_length=48)
    version: int
    sequence: int = Field(unique=True)  # the feed's order: commit order
    change: str = Field(max_length=12)
    onset_date: date
    end_date: date | None = None
    awareness_date: date  # day 0 of the reporting clocks
    last_info_date: date  # E2B C.1.5: date of the most recent information
    term: str = Field(max_length=250)
    meddra_code: str | None = Field(default=None, max_length=8)
    meddra_version: str | None = Field(default=None, max_length=8)
    category: str = Field(max_length=20)
    grade: int | None = None
    grade_scale: str | None = Field(default=None, max_length=10)
    serious: bool
    seriousness_criteria: str = Field(default="", max_length=200)  # comma-separated
    relatedness: str = Field(max_length=20)
    expected: bool
    outcome: str = Field(max_length=30)
    narrative: str | None = None
    pre_existing: bool = False  # onset before the first infusion
    reporter_qualification: str = Field(max_length=30)
    source: str | None = Field(default=None, max_length=200)  # e.g. the positive RCL test
    nullify_reason: str | None = None
    recorded_by: str = Field(max_length=254)
    recorded_at: datetime = Field(sa_column=utc_column())


class FeedAcknowledgement(SQLModel, table=True):
    """A safety system's E2B-style answer to one version; later answers are added, not
    written over."""

    __tablename__ = "adverse_event_acks"
    __table_args__ = (Index("ix_adverse_event_acks_case_version", "case_id", "version"),)

    id: int | None = Field(default=None, primary_key=True)
    case_id: str = Field(foreign_key="adverse_event_cases.case_id", max_length=48)
    version: int
    consumer: str = Field(max_length=254)  # the pharmacovigilance user's email
    status: str = Field(max_length=2)
    message: str | None = None
    received_at: datetime = Field(sa_column=utc_column())
