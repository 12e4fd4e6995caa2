"""What a result starts and stops (``adverse_events.effects.Effects``), as the API says it:
the answer of a preview and part of the answer of a real save."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _FromEffects(BaseModel):
    # Read straight from the service's frozen dataclasses.
    model_config = ConfigDict(from_attributes=True)


class PlannedPublic(_FromEffects):
    key: str
    assessment: str = Field(description="The protocol rule id.")
    name: str
    due: date
    window_start: date
    window_end: date


class MovedPublic(_FromEffects):
    key: str
    assessment: str
    name: str
    from_due: date
    to_due: date


class OpenedCaseDeadlinePublic(_FromEffects):
    key: str = Field(description="The reporting assessment (it appears on the due list).")
    name: str
    due: date


class OpenedCasePublic(_FromEffects):
    term: str
    serious: bool
    deadlines: list[OpenedCaseDeadlinePublic] = Field(
        description="The case's reporting clocks, earliest first."
    )


class EffectsPublic(_FromEffects):
    """What saving this result does beyond the row itself (a preview: would do)."""

    key: str
    outcome: Literal["completed", "missed", "not_done", "pending"] = Field(
        description="The assessment's status after the change (pending: an undo)."
    )
    result: str | None = Field(description="As stored: the code the protocol branches on.")
    result_unit: str | None = Field(
        default=None, description="A quantity's unit: the result is a number in it."
    )
    performed_on: date | None
    corrected: bool = Field(description="A correction of a recorded outcome.")
    starts: list[PlannedPublic] = Field(description="Assessments added or reinstated.")
    stops: list[PlannedPublic] = Field(description="Pending assessments cancelled.")
    moves: list[MovedPublic]
    safety_case: OpenedCasePublic | None = Field(
        description="The safety case the result opens (e.g. a positive RCL test), or null."
    )
    protocol_deviation: bool = Field(description="Completed outside the assessment's window.")
    window_start: date
    window_end: date
    summary: str = Field(
        examples=[
            "positive: starts RCL confirmation by culture assay, 3 × RCL test, intensified "
            "monthly after a positive result; opens a serious safety case (Replication-"
            "competent lentivirus (RCL) detected) with 3 reports due 2024-04-30 to 2024-05-15"
        ],
        description='One line for the nurse; "nothing else changes in the calendar" when so.',
    )
