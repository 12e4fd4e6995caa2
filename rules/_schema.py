"""The shape of a protocol file, checked field by field when it is loaded.

Only the structure of each field is checked here; rules that span fields or
assessments (windows, references, cycles) are checked in ``_validate``.
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from string import Formatter
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ._offsets import Offset

Identifier = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=64)]
Category = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]*$", max_length=64)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _offset(value: object) -> Offset:
    if isinstance(value, Offset):
        return value
    return Offset.parse(str(value))


class Anchor(StrEnum):
    infusion = "infusion"  # the (last) infusion date of the segment
    birth = "birth"  # the patient's birth date (age-based rules, e.g. re-consent at 18)
    trigger = "trigger"  # the date of the result or event that started the assessment


class Basis(StrEnum):
    regulatory = "regulatory"  # required by a regulator's guidance or regulation
    guideline = "guideline"  # a published consensus or registry requirement
    local_default = "local-default"  # our reasoned default: editable configuration


class Window(_Strict):
    """Days before and after the due date in which doing it counts as on time."""

    before: int
    after: int

    @model_validator(mode="before")
    @classmethod
    def _from_pair(cls, value: object) -> object:
        if isinstance(value, list | tuple):
            if len(value) != 2:
                raise ValueError("a window is two numbers: [days before (<= 0), days after (>= 0)]")
            return {"before": value[0], "after": value[1]}
        return value

    def describe(self) -> str:
        before = "0" if self.before == 0 else f"−{-self.before}"
        return f"{before}/+{self.after} days"


class TimePoints(_Strict):
    """Either a list of offsets (``at``) or a recurrence (``every`` from ``from`` to ``to``)."""

    at: tuple[Offset, ...] | None = None
    every: Offset | None = None
    start: Offset | None = Field(default=None, alias="from")
    until: Offset | None = Field(default=None, alias="to")
    window: Window | None = None

    @field_validator("at", mode="before")
    @classmethod
    def _parse_list(cls, value: object) -> object:
        if value is None:
            return None
        if not isinstance(value, list | tuple):
            value = [value]
        return tuple(_offset(item) for item in value)

    @field_validator("every", "start", "until", mode="before")
    @classmethod
    def _parse_one(cls, value: object) -> object:
        return None if value is None else _offset(value)

    @model_validator(mode="after")
    def _one_form(self) -> TimePoints:
        recurrence = (self.every, self.start, self.until)
        if self.at is not None and any(part is not None for part in recurrence):
            raise ValueError("use either 'at' (a list of offsets) or 'every'/'from'/'to', not both")
        if self.at is None and any(part is None for part in recurrence):
            raise ValueError("a recurrence needs all of 'every', 'from' and 'to'")
        if self.at is not None and not self.at:
            raise ValueError("'at' lists no offsets")
        return self


class Condition(_Strict):
    """A test on one recorded result value (text compared case-insensitively)."""

    equals: str | None = None
    one_of: tuple[str, ...] | None = None
    below: float | None = None
    at_least: float | None = None
    at_most: float | None = None
    above: float | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Condition:
        given = [v for v in (self.equals, self.one_of, *self.bounds()) if v is not None]
        if len(given) != 1:
            raise ValueError(
                "give exactly one of 'equals', 'one_of', 'below', 'at_least', 'at_most', 'above'"
            )
        return self

    def bounds(self) -> tuple[float | None, ...]:
        """The numeric comparisons (all None for a text condition)."""
        return (self.below, self.at_least, self.at_most, self.above)

    def is_numeric(self) -> bool:
        return any(bound is not None for bound in self.bounds())

    def matches(self, value: str) -> bool:
        text = value.strip().lower()
        if self.equals is not None:
            return text == self.equals.strip().lower()
        if self.one_of is not None:
            return text in {option.strip().lower() for option in self.one_of}
        try:
            number = float(text)
        except ValueError:
            return False
        if self.below is not None:
            return number < self.below
        if self.at_most is not None:
            return number <= self.at_most
        if self.above is not None:
            return number > self.above
        assert self.at_least is not None
        return number >= self.at_least

    def describe(self) -> str:
        if self.equals is not None:
            return self.equals
        if self.one_of is not None:
            return " or ".join(self.one_of)
        if self.below is not None:
            return f"below {self.below:g}"
        if self.at_most is not None:
            return f"at most {self.at_most:g}"
        if self.above is not None:
            return f"above {self.above:g}"
        return f"at least {self.at_least:g}"


class CodedResult(_Strict):
    """One of a closed list of codes (``code: label``); the engine branches on the code."""

    type: Literal["coded"]
    values: dict[Identifier, str] = Field(min_length=2)


class QuantityResult(_Strict):
    """A number in ``unit`` (stored so); ``accepts`` are the units a nurse may type it in,
    converted on entry. ``min``/``max``: plausible bounds in ``unit``; ``decimals`` kept."""

    type: Literal["quantity"]
    unit: str = Field(min_length=1)
    accepts: tuple[str, ...] = ()
    min: float
    max: float
    decimals: int = Field(default=0, ge=0, le=6)

    @model_validator(mode="after")
    def _bounds(self) -> QuantityResult:
        if self.min >= self.max:
            raise ValueError(f"min ({self.min:g}) must be below max ({self.max:g})")
        return self


class OrdinalResult(_Strict):
    """A whole number from ``min`` to ``max`` (a Tanner stage, a CTCAE grade)."""

    type: Literal["ordinal"]
    min: int
    max: int
    labels: dict[int, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _range(self) -> OrdinalResult:
        if self.min >= self.max:
            raise ValueError(f"min ({self.min}) must be below max ({self.max})")
        outside = [level for level in self.labels if not self.min <= level <= self.max]
        if outside:
            raise ValueError(f"labels for levels outside {self.min} to {self.max}: {outside}")
        return self


class DateResult(_Strict):
    """A date (e.g. when a sample was archived)."""

    type: Literal["date"]


class NoResult(_Strict):
    """An exam that records no result."""

    type: Literal["none"]


ResultType = Annotated[
    CodedResult | QuantityResult | OrdinalResult | DateResult | NoResult,
    Field(discriminator="type"),
]


class Branch(_Strict):
    """What a recorded result changes in the future calendar."""

    when: Condition | None = None  # any one result of this assessment matches
    when_all: Condition | None = None  # every planned occurrence has a matching result
    # Only results of these time points of the assessment fire the branch ("CD4 <= 200 at
    # month 3"); none: any result. Scheduled (not triggered) assessments only.
    only_at: tuple[Offset, ...] | None = None
    start: tuple[Identifier, ...] = ()
    stop: tuple[Identifier, ...] = ()
    note: str | None = None

    @field_validator("only_at", mode="before")
    @classmethod
    def _parse_points(cls, value: object) -> object:
        if value is None:
            return None
        if not isinstance(value, list | tuple):
            value = [value]
        return tuple(_offset(item) for item in value)

    @model_validator(mode="after")
    def _shape(self) -> Branch:
        if (self.when is None) == (self.when_all is None):
            raise ValueError("give exactly one of 'when' and 'when_all'")
        if self.only_at is not None and self.when_all is not None:
            raise ValueError("'only_at' goes with 'when' (a 'when_all' looks at every result)")
        if self.only_at is not None and not self.only_at:
            raise ValueError("'only_at' lists no time points")
        if not self.start and not self.stop:
            raise ValueError("a branch must 'start' or 'stop' at least one assessment")
        return self


# What a safety case's narrative may name: the assessment key and the date of the result.
NARRATIVE_PLACEHOLDERS = ("assessment", "date")


class SafetyCase(_Strict):
    """A result that is a serious safety event in its own right (a positive RCL test).

    Recording it opens a serious adverse-event case: ``term`` is its verbatim term, and
    ``narrative`` its first narrative, which may name ``{assessment}`` (the key, e.g.
    ``ROM-001:1:rcl_test:2``) and ``{date}`` (the day of the result).
    """

    when: Condition
    term: str = Field(min_length=1, max_length=250)  # an adverse event's term: 250 at most
    narrative: str = Field(min_length=1)

    @field_validator("narrative")
    @classmethod
    def _known_placeholders(cls, value: str) -> str:
        # Checked here, so that filling it in when a result is recorded cannot fail.
        allowed = " and ".join(f"{{{name}}}" for name in NARRATIVE_PLACEHOLDERS)
        try:
            parts = list(Formatter().parse(value))
        except ValueError as exc:  # a lone brace
            raise ValueError(f"{exc}; write {{{{ or }}}} for a brace in the text") from exc
        for _, name, spec, conversion in parts:
            if name is not None and name not in NARRATIVE_PLACEHOLDERS:
                raise ValueError(
                    f"unknown placeholder {{{name}}}: the narrative may name {allowed}"
                )
            if spec or conversion:
                raise ValueError(f"write a placeholder plainly ({allowed}), without a format")
        return value

    def narrative_for(self, assessment: str, on: date) -> str:
        return self.narrative.format(assessment=assessment, date=on.isoformat())


class AppliesTo(_Strict):
    diagnoses: tuple[Identifier, ...] | None = None
    age_from: int | None = Field(default=None, ge=0, le=120)  # years at the due date, inclusive
    age_below: int | None = Field(default=None, ge=1, le=120)  # years at the due date, exclusive

    @model_validator(mode="after")
    def _range(self) -> AppliesTo:
        if self.age_from is not None and self.age_below is not None:
            if self.age_from >= self.age_below:
                raise ValueError(
                    f"age_from ({self.age_from}) must be below age_below ({self.age_below})"
                )
        return self


class Evidence(_Strict):
    basis: Basis
    sources: tuple[str, ...] = Field(min_length=1)
    note: str | None = None


class AssessmentRule(_Strict):
    id: Identifier
    name: str = Field(min_length=1)
    # The name in Italian and in German, shown to users who chose those languages; without
    # one they read ``name`` (English). Other languages need a new field here.
    name_it: str | None = Field(default=None, min_length=1)
    name_de: str | None = Field(default=None, min_length=1)
    category: Category
    anchor: Anchor = Anchor.infusion
    starts: Literal["with_infusion", "when_started"] = "with_infusion"
    schedule: tuple[TimePoints, ...] = Field(min_length=1)
    window: Window | None = None
    applies_to: AppliesTo = AppliesTo()
    # What its result is; required where the engine branches on it (``on_result``,
    # ``opens_safety_case``). Undeclared: a free-text remark, never branched on.
    result: ResultType | None = None
    on_result: tuple[Branch, ...] = ()
    # Kept when death or withdrawal ends follow-up: a reporting duty or an autopsy request
    # started on or before that day still has to be done (trigger-anchored rules only).
    after_follow_up_ends: bool = False
    # Scheduled on past the end of the study calendar (the hand-over after year 15: a
    # yearly malignancy question; Tanner staging until stage 5): its time points may lie
    # after ``follow_up.duration`` and its windows are not closed at the end. Death or
    # withdrawal still end it (infusion-anchored rules only).
    after_study: bool = False
    # Its occurrences are the patient's yearly contact: two missed in a row put the
    # patient at risk of being lost to follow-up.
    yearly_contact: bool = False
    opens_safety_case: SafetyCase | None = None
    evidence: Evidence
    description: str | None = None

    def names(self) -> dict[str, str]:
        """The name in each language it has, by locale code (always ``en``)."""
        translated = {"it": self.name_it, "de": self.name_de}
        return {"en": self.name} | {code: text for code, text in translated.items() if text}


class EventRule(_Strict):
    description: str = Field(min_length=1)
    start: tuple[Identifier, ...] = ()
    stop: tuple[Identifier, ...] = ()
    end_follow_up: bool = False


class ReferenceKind(StrEnum):
    """What a reference is: only a regulator's own text can make a row ``regulatory``."""

    regulation = "regulation"  # a law or regulation (21 CFR 312.32, Regulation 536/2014)
    guidance = "guidance"  # a regulator's guidance or communication (FDA, EMA, PRAC)
    registry = "registry"  # a registry's rules and manuals (CIBMTR, EBMT forms)
    guideline = "guideline"  # a published professional consensus (ASTCT, EBMT/ISCT)
    literature = "literature"  # a journal paper, case series or review
    trial = "trial"  # a trial's registration or protocol (one sponsor's design)
    summary = "summary"  # a secondary summary of another text (news, book, blog)


class Reference(_Strict):
    title: str = Field(min_length=1)
    url: str | None = None
    # None: not yet classified; the evidence check then cannot count it as a regulator's text.
    kind: ReferenceKind | None = None


class FollowUp(_Strict):
    duration: Offset
    anchor: Literal["last_infusion", "first_infusion"] = "last_infusion"
    baseline_from: Offset = Offset("D", 0)

    @field_validator("duration", "baseline_from", mode="before")
    @classmethod
    def _parse(cls, value: object) -> object:
        return _offset(value)


class CategoryNames(_Strict):
    """A category's words in Italian and German (the pages show the category's id, e.g.
    ``vector-safety``, to English readers)."""

    name_it: str | None = Field(default=None, min_length=1)
    name_de: str | None = Field(default=None, min_length=1)

    def names(self) -> dict[str, str]:
        translated = {"it": self.name_it, "de": self.name_de}
        return {code: text for code, text in translated.items() if text}


class ProtocolFile(_Strict):
    id: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]*$", max_length=80)]
    version: Annotated[str, Field(pattern=r"^\d+(\.\d+){0,2}$")]
    title: str = Field(min_length=1)
    product: str = Field(min_length=1)
    follow_up: FollowUp
    diagnoses: dict[Identifier, str] = Field(min_length=1)
    references: dict[str, Reference] = Field(min_length=1)
    events: dict[Identifier, EventRule] = Field(default_factory=dict)
    assessments: tuple[AssessmentRule, ...] = Field(min_length=1)
    # The category of the regulatory reporting clocks: due, listed and alerted whatever the
    # patient's status, since a death does not end the duty to report it. Required (null:
    # the protocol has none), so that a file written before the application read it from
    # here is refused rather than silently losing its reporting clocks.
    reporting_category: Category | None
    # The categories' names in other languages; every key must be a category this file uses.
    categories: dict[Category, CategoryNames] = Field(default_factory=dict)
    description: str | None = None

    @model_validator(mode="after")
    def _categories_used(self) -> ProtocolFile:
        used = {rule.category for rule in self.assessments} | {self.reporting_category}
        unknown = sorted(set(self.categories) - used)
        if unknown:
            raise ValueError(
                f"categories names {', '.join(unknown)}, which no assessment of this file has "
                f"(its categories: {', '.join(sorted(c for c in used if c))})"
            )
        return self

    @field_validator("version", mode="before")
    @classmethod
    def _version_text(cls, value: object) -> object:
        # YAML reads `version: 1.0` as a float; accept it as the text it was written as.
        return str(value) if isinstance(value, int | float) else value
