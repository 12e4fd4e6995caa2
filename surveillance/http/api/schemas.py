"""Request and response bodies of the API (names follow Create / Public)."""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field

from surveillance.http.api.effects_schemas import EffectsPublic
from surveillance.http.api.timestamps import UtcDatetime
from surveillance.http.inputs import Day, MultiLine, SingleLine


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PatientCreate(_Body):
    study_id: SingleLine = Field(
        examples=["ROM-009"], description="Pseudonymous study id, never a name."
    )
    site: SingleLine = Field(examples=["Rome"])
    birth_date: Day = Field(description="On or after 1900-01-01, not in the future.")
    sex: Literal["F", "M"]
    diagnosis: SingleLine = Field(examples=["sle"])
    protocol: SingleLine = Field(examples=["cd19-car-t-pediatric-autoimmune"])
    infusion_date: Day = Field(description="On or after 1990-01-01, not in the future.")


class InfusionCreate(_Body):
    infusion_date: Day = Field(description="On or after 1990-01-01, not in the future.")


class StatusChange(_Body):
    status: Literal["deceased", "withdrawn", "lost_to_follow_up", "transferred", "active"]
    date: Day
    reason: SingleLine = Field(min_length=1)
    to_site: SingleLine | None = Field(default=None, description="For transferred: the new site.")


class OutcomeCreate(_Body):
    outcome: Literal["completed", "missed", "not_done"]
    date: Day
    result: SingleLine | None = Field(
        default=None, description="Typed by the assessment's result type (see result_type)."
    )
    reason: SingleLine | None = None
    note: MultiLine | None = Field(
        default=None, max_length=2000, description="Free text beside the result; never branched on."
    )


class CorrectionCreate(_Body):
    """What was recorded, corrected: give what changes; the rest stays as recorded."""

    reason: SingleLine = Field(min_length=1, description="Why (kept in the audit trail).")
    outcome: Literal["completed", "missed", "not_done"] | None = None
    date: Day | None = None
    result: SingleLine | None = None
    note: MultiLine | None = Field(
        default=None, max_length=2000, description="Replaces the note; an empty string clears it."
    )


class RescheduleRequest(_Body):
    date: Day
    reason: SingleLine | None = None


class ResultValuePublic(BaseModel):
    code: str = Field(description="What is stored and branched on.")
    label: str


class ResultTypePublic(BaseModel):
    """What a result of this assessment may be; anything else is refused (422)."""

    type: str = Field(description="coded, quantity, ordinal, date or none.")
    values: list[ResultValuePublic] | None = Field(
        default=None, description="coded and ordinal: the values accepted."
    )
    unit: str | None = Field(default=None, description="quantity: the unit it is stored in.")
    accepts: list[str] | None = Field(
        default=None, description="quantity: units it may be entered in (converted)."
    )
    min: float | None = None
    max: float | None = None
    decimals: int | None = Field(default=None, description="quantity: the precision kept.")


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
    state: str = Field(
        description="status, or for pending: upcoming, due or overdue on the date asked"
    )
    performed_on: date | None
    result: str | None
    note: str | None = Field(default=None, description="Free text beside the result.")
    result_as_entered: str | None = Field(
        default=None,
        description="Free text stored before results were typed that matched no declared "
        "value: awaiting an investigator's correction to a typed result.",
    )
    started_by_corrected_result: str | None = Field(
        default=None,
        description="Done work that a result later corrected had started: which correction.",
    )
    protocol_deviation: bool
    protocol: str
    protocol_version: str
    reason: str
    status_reason: str | None
    version: int
    result_type: ResultTypePublic | None = Field(
        default=None,
        description="What its result may be (to build the form); null: a free-text remark.",
    )


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


class AssessmentChangeResult(BaseModel):
    assessment: AssessmentPublic
    change: CalendarChangePublic
    effects: EffectsPublic = Field(description="What the save started, stopped and opened.")


class SitePublic(BaseModel):
    id: str
    name: str
    timezone: str = Field(
        description="IANA time zone: 'today' at the site is the local date there."
    )


class DueItemPublic(BaseModel):
    """Read straight from ``due_list.DueItem`` attributes (its ``due_on`` is ``due`` here)."""

    model_config = ConfigDict(from_attributes=True)

    key: str
    study_id: str
    assessment: str
    name: str
    category: str
    state: Literal["overdue", "due", "upcoming"]
    # The attribute name first: from attributes, a missing one costs an exception per row.
    due: date = Field(validation_alias=AliasChoices("due_on", "due"))
    window_start: date
    window_end: date
    days_overdue: int
    # As every list that leaves the page: without the birth and infusion dates.
    reason: str = Field(validation_alias=AliasChoices("public_reason", "reason"))
    appointment: date | None = Field(validation_alias=AliasChoices("appointment_on", "appointment"))
    version: int = Field(description="Send as If-Match to record this assessment's outcome.")


class DueListQuery(_Body):
    """The due list's query parameters (unknown ones are refused, so a typo is not ignored)."""

    status: list[Literal["overdue", "due", "upcoming"]] = Field(
        default=[], description="Only these states (repeat the parameter for several)."
    )
    on: Day | None = Field(
        default=None,
        description="The day states are judged on; default today there. From 1990-01-01 "
        "to 20 years after today.",
    )
    from_: Day | None = Field(
        default=None, alias="from", description="Due/upcoming windows ending on or after."
    )
    to: Day | None = Field(
        default=None, description="Due/upcoming windows opening by; default 30 days on."
    )
    limit: int | None = Field(
        default=None, ge=1, le=5000, description="Rows; default 50 (CSV: 5000)."
    )
    cursor: SingleLine | None = Field(default=None, description="next_cursor of the previous page.")
    format: Literal["json", "csv"] = "json"


class DuePagePublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    items: list[DueItemPublic]
    next_cursor: str | None = Field(
        description="Pass as ?cursor= for the next page; null on the last page."
    )


class ProtocolSummaryPublic(BaseModel):
    id: str
    version: str
    title: str
    product: str
    follow_up: str = Field(examples=["Y15 from the last infusion"])
    assessments: int


class ScheduleEntryPublic(BaseModel):
    when: str = Field(examples=["M3, M6, M12", "every Y1 from Y2 to Y15"])
    window: str = Field(examples=["−30/+30 days"])


class BranchPublic(BaseModel):
    when: str
    every_occurrence: bool = Field(description="True: every planned occurrence must match.")
    start: list[str]
    stop: list[str]
    note: str | None


class EvidencePublic(BaseModel):
    basis: str
    sources: list[str]
    note: str | None


class RulePublic(BaseModel):
    id: str
    name: str
    category: str
    anchor: str
    starts: str
    schedule: list[ScheduleEntryPublic]
    time_points: int
    applies_to: dict[str, Any]
    result: ResultTypePublic | None = Field(
        description="What its result is; null: a free-text remark, never branched on."
    )
    on_result: list[BranchPublic]
    evidence: EvidencePublic
    description: str | None


class ProtocolPublic(ProtocolSummaryPublic):
    description: str | None
    diagnoses: dict[str, str]
    references: dict[str, dict[str, Any]]
    events: dict[str, dict[str, Any]]
    rules: list[RulePublic]


class PlannedAssessmentPublic(BaseModel):
    """One row of ``surveillance calendar --format json``."""

    key: str
    infusion: int
    assessment: str
    name: str
    category: str
    occurrence: int
    due: date
    window_start: date
    window_end: date
    protocol: str
    protocol_version: str
    reason: str
    basis: str


class AuditEntryPublic(BaseModel):
    at: UtcDatetime
    actor: str
    action: str
    entity: str
    key: str
    reason: str | None
    old: dict[str, Any] | None
    new: dict[str, Any] | None
    hash: str = Field(description="sha256 of the previous row's hash and this row's content.")


class ResultToReviewPublic(BaseModel):
    """A result stored as free text before results were typed that matched no declared
    value: correct it to a typed one (``POST /assessments/{key}/corrections``, with a reason
    and ``If-Match: "{version}"``) and it leaves the list."""

    key: str = Field(examples=["ROM-001:1:rcl_test:2"])
    study_id: str
    assessment: str = Field(description="The protocol's rule id.")
    name: str
    performed_on: date
    as_entered: str = Field(description="The text as it was stored.", examples=["Positive by qPCR"])
    expects: str = Field(
        description="What a typed value is.",
        examples=["one of negative, positive, indeterminate, sample_not_evaluable"],
    )
    recorded_by: str | None = Field(description="Who entered the text (when known).")
    recorded_at: UtcDatetime | None
    version: int = Field(description="The assessment's version: its ETag for a correction.")
