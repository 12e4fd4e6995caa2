"""Request and response bodies of adverse events and the pharmacovigilance feed.

The JSON names are the ones safety systems map to ICH E2B(R3); keep them stable.
"""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from surveillance.adverse_events.facts import CaseFacts
from surveillance.http.api.timestamps import UtcDatetime
from surveillance.http.inputs import ColumnInt, Day, MultiLine, SingleLine
from surveillance.records.adverse_event_vocabulary import (
    AckStatus,
    CaseOutcome,
    Category,
    GradeScale,
    Relatedness,
    ReporterQualification,
    Seriousness,
)


class AdverseEventCreate(BaseModel):
    """A case as now known. A follow-up sends the whole case again, with what changed."""

    model_config = ConfigDict(extra="forbid")

    onset_date: Day
    end_date: Day | None = None
    awareness_date: Day = Field(
        description="The day the site first learned of it: day 0 of the reporting clocks."
    )
    term: SingleLine = Field(max_length=250, examples=["Cytokine release syndrome"])
    meddra_code: SingleLine | None = Field(default=None, examples=["10052015"])
    meddra_version: SingleLine | None = Field(default=None, examples=["27.1"])
    category: Category
    grade: int | None = Field(default=None, ge=1, le=5)
    grade_scale: GradeScale | None = None
    serious: bool
    seriousness_criteria: list[Seriousness] = Field(default_factory=list)
    relatedness: Relatedness
    expected: bool
    outcome: CaseOutcome
    narrative: MultiLine | None = None
    reporter_qualification: ReporterQualification | None = Field(
        default=None, description="Default: physician for investigators, else other HCP."
    )
    last_info_date: Day | None = Field(
        default=None, description="Date of the most recent information (default: today)."
    )

    def facts(self, default_reporter: ReporterQualification) -> CaseFacts:
        return CaseFacts(
            onset_date=self.onset_date,
            awareness_date=self.awareness_date,
            term=self.term,
            category=self.category,
            serious=self.serious,
            relatedness=self.relatedness,
            expected=self.expected,
            outcome=self.outcome,
            end_date=self.end_date,
            meddra_code=self.meddra_code,
            meddra_version=self.meddra_version,
            grade=self.grade,
            grade_scale=self.grade_scale,
            seriousness_criteria=tuple(self.seriousness_criteria),
            narrative=self.narrative,
            reporter_qualification=self.reporter_qualification or default_reporter,
            last_info_date=self.last_info_date,
        )


class NullifyRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: SingleLine = Field(min_length=1, examples=["entered for the wrong patient"])


class CaseVersionPublic(BaseModel):
    case_id: str
    version: int
    status: Literal["open", "nullified"]
    nullify_reason: str | None
    study_id: str
    site: str
    site_country: str | None
    sex: str
    age_at_onset_years: int
    product: dict[str, str]
    onset_date: date
    end_date: date | None
    awareness_date: date
    last_info_date: date
    term: str
    meddra_code: str | None
    meddra_version: str | None
    category: Category
    grade: int | None
    grade_scale: GradeScale | None
    serious: bool
    seriousness_criteria: list[Seriousness]
    relatedness: Relatedness
    expected: bool
    outcome: CaseOutcome
    narrative: str | None
    pre_existing: bool = Field(description="Onset before the first infusion.")
    reporter_qualification: ReporterQualification
    source: str | None = Field(description="What created it, e.g. a positive RCL test.")
    recorded_at: UtcDatetime


class DeadlinePublic(BaseModel):
    key: str
    assessment: str
    name: str
    due: date
    status: str
    overdue: bool
    performed_on: date | None
    status_reason: str | None


class CaseDetail(BaseModel):
    case_id: str
    version: int
    status: Literal["open", "nullified"]
    current: CaseVersionPublic
    versions: list[CaseVersionPublic] = Field(description="Every version, oldest first.")
    reporting_deadlines: list[DeadlinePublic]


class CaseChangeResult(CaseDetail):
    calendar_change: dict[str, Any] = Field(description="What the change did to the calendar.")
    patient_status: str


class CaseSummary(BaseModel):
    case_id: str
    version: int
    status: str
    study_id: str
    site: str
    term: str
    category: str
    grade: int | None
    serious: bool
    onset_date: date
    awareness_date: date
    outcome: str
    updated_at: UtcDatetime


class FeedEntry(BaseModel):
    sequence: int
    case_id: str
    version: int
    change: Literal["created", "updated", "nullified"]
    last_info_date: date
    recorded_at: UtcDatetime
    case: CaseVersionPublic


class FeedPagePublic(BaseModel):
    entries: list[FeedEntry]
    next_cursor: str = Field(description="Ask with ?cursor= this next; kept when caught up.")


class AckCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    case_id: SingleLine = Field(max_length=48)
    version: ColumnInt = Field(ge=1)
    status: AckStatus = Field(description="AA accepted, AE accepted with errors, AR rejected.")
    message: MultiLine | None = None


class AckPublic(BaseModel):
    case_id: str
    version: int
    status: AckStatus
    message: str | None
    consumer: str
    received_at: UtcDatetime
