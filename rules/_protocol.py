"""A loaded protocol: the checked file plus every rule's time points expanded once."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

from ._compiled import CompiledRule, compile_rule
from ._offsets import Offset
from ._results import is_canonical, parse_result
from ._schema import (
    AssessmentRule,
    Branch,
    EventRule,
    ProtocolFile,
    ResultType,
    SafetyCase,
    TimePoints,
    Window,
)

# A recurrence longer than this is almost surely a typo (daily for 15 years is 5 479).
MAX_TIME_POINTS_PER_ASSESSMENT = 6000

_FAMILY = {"D": "D", "W": "D", "M": "M", "Y": "M"}
_IN_BASE = {"D": 1, "W": 7, "M": 1, "Y": 12}


@dataclass(frozen=True)
class TimePoint:
    """One scheduled point of a rule; ``number`` is its stable occurrence number."""

    number: int
    offset: Offset
    window: Window


@dataclass(frozen=True)
class Rule:
    """An assessment rule with its time points expanded, in schedule order."""

    spec: AssessmentRule
    points: tuple[TimePoint, ...]

    @property
    def id(self) -> str:
        return self.spec.id

    @cached_property
    def compiled(self) -> CompiledRule:
        """The rule resolved for the engine, once (protocols are loaded once, used often)."""
        return compile_rule(self)


@dataclass(frozen=True)
class Protocol:
    """A validated protocol, ready for ``build_calendar``.

    ``order`` lists rule ids so that every rule comes after the rules whose results
    can start or stop it (branches form no cycle, so such an order exists).
    """

    spec: ProtocolFile
    source: str
    rules: dict[str, Rule]
    order: tuple[str, ...]
    starters: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return self.spec.id

    @property
    def version(self) -> str:
        return self.spec.version

    @property
    def title(self) -> str:
        return self.spec.title

    @property
    def events(self) -> dict[str, EventRule]:
        return self.spec.events

    @property
    def reporting_category(self) -> str | None:
        """The category of the regulatory reporting clocks (owed whatever the patient's status)."""
        return self.spec.reporting_category

    @property
    def yearly_contacts(self) -> tuple[str, ...]:
        """The rules whose occurrences are the patient's yearly contact."""
        return tuple(rule_id for rule_id, rule in self.rules.items() if rule.spec.yearly_contact)

    def result_type(self, rule_id: str) -> ResultType | None:
        """What the rule's result is, or None: undeclared (or no such rule), a free-text
        remark the engine never branches on."""
        rule = self.rules.get(rule_id)
        return rule.spec.result if rule is not None else None

    def read_result(self, rule_id: str, text: str) -> str:
        """``text`` as the rule's declared result type reads it (a code, a number in the
        canonical unit, a level, an ISO date); ``InvalidResult`` if the type refuses it.
        An undeclared result is kept as typed (stripped): the engine never branches on it.
        """
        spec = self.result_type(rule_id)
        return text.strip() if spec is None else parse_result(spec, text)

    def is_stored_result(self, rule_id: str, value: str) -> bool:
        """Whether ``value`` is a result of the rule as ``read_result`` stores it (nothing
        to read again). Any text is, for an undeclared result (a free-text remark); none
        is, for a rule that records no result (``type: none``)."""
        spec = self.result_type(rule_id)
        return spec is None or is_canonical(spec, value)

    def branches(self, rule_id: str) -> tuple[Branch, ...]:
        return self.rules[rule_id].spec.on_result

    def safety_case(self, rule_id: str, result: str) -> SafetyCase | None:
        """The safety case this result of the rule opens, or None (also for an unknown rule)."""
        rule = self.rules.get(rule_id)
        declared = rule.spec.opens_safety_case if rule is not None else None
        if declared is None or not declared.when.matches(result):
            return None
        return declared


def expand_time_points(entry: TimePoints) -> list[Offset]:
    """The offsets an entry names, in order; recurrences include both ends.

    ``every: M6, from: M18, to: Y5`` gives M18, M24, ..., M60. Units of one family mix
    (weeks with days, years with months); days with months do not, because a month
    has no fixed number of days. Raises ``ValueError`` with the reason.
    """
    if entry.at is not None:
        return list(entry.at)
    assert entry.every is not None
    assert entry.start is not None
    assert entry.until is not None
    parts = (entry.every, entry.start, entry.until)
    families = {_FAMILY[part.unit] for part in parts}
    if len(families) != 1:
        raise ValueError("'every', 'from' and 'to' mix days/weeks with months/years")
    step, first, last = (part.amount * _IN_BASE[part.unit] for part in parts)
    if step <= 0:
        raise ValueError(f"'every' must be positive: {entry.every}")
    if first > last:
        raise ValueError(f"'from' ({entry.start}) is after 'to' ({entry.until})")
    count = (last - first) // step + 1
    if count > MAX_TIME_POINTS_PER_ASSESSMENT:
        raise ValueError(f"the recurrence makes {count} time points (more than 6000)")
    unit = _coarsest_unit(parts)
    scale = _IN_BASE[unit]
    return [Offset(unit, (first + k * step) // scale) for k in range(count)]


def _coarsest_unit(parts: tuple[Offset, ...]) -> str:
    """Years if every part is whole years, weeks if whole weeks; else months or days."""
    family = _FAMILY[parts[0].unit]
    coarse = "Y" if family == "M" else "W"
    if all(part.unit == coarse for part in parts):
        return coarse
    return family
