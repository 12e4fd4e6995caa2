"""Request and response bodies of the API (names follow Create / Public)."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PatientCreate(_Body):
    study_id: str = Field(examples=["ROM-009"], description="Pseudonymous study id, never a name.")
    site: str = Field(examples=["Rome"])
    birth_date: date
    sex: Literal["F", "M"]
    diagnosis: str = Field(examples=["sle"])
    protocol: str = Field(examples=["cd19-car-t-pediatric-autoimmune"])
    infusion_date: date


class InfusionCreate(_Body):
    infusion_date: date


class StatusChange(_Body):
    status: Literal["deceased", "withdrawn", "lost_to_follow_up", "transferred", "active"]
    date: date
    reason: str = Field(min_length=1)
    to_site: str | None = Field(default=None, description="For transferred: the new site.")


class OutcomeCreate(_Body):
    outcome: Literal["completed", "missed", "not_done"]
    date: date
    result: str | None = None
    reason: str | None = None


class RescheduleRequest(_Body):
    date: date
    reason: str | None = None


class AssessmentPublic(BaseModel):
    key: str
    infusion: int
    assessment: str
    name: str
    category: str
    occurrence: int
    due: date
    window_start: date
    window_end: date
    appointment: date | None
    status: str
    state: str = Field(description="status, or for pending: upcoming, due or overdue on the date asked")
    performed_on: date | None
    result: str | None
    protocol_deviation: bool
    protocol: str
    protocol_version: str
    reason: str
    status_reason: str | None
    version: int


class PatientPublic(BaseModel):
    study_id: str
    site: str
    birth_date: date
    sex: str
    diagnosis: str
    protocol: str
    protocol_version: str
    status: str
    status_on: date | None
    status_reason: str | None
    infusions: list[date]
    version: int


class CalendarChangePublic(BaseModel):
    summary: str
    added: list[dict[str, str]]
    moved: list[dict[str, str]]
    cancelled: list[dict[str, str]]
    reinstated: list[dict[str, str]]


class PatientWithCalendar(BaseModel):
    patient: PatientPublic
    calendar: list[AssessmentPublic]


class PatientChangeResult(BaseModel):
    patient: PatientPublic
    change: CalendarChangePublic
