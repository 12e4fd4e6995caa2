"""Every ``on_result`` branch of the shipped protocols, as a scenario a test can drive.

``branch_cases()`` reads the bundled registry, so a branch added to a protocol file later is
covered without editing a test. ``scenario(case)`` builds, for one branch, a patient the
rule applies to, the results that must come first (a rule that only runs once something
started it), and two sets of the branch's own results, typed as a nurse would type them:
one that satisfies the branch condition and its nearest counterpart that does not (the
next value on the other side of a threshold, another code, one result short of "all").

Condition forms handled (``rules/_schema.py``): ``equals`` and ``one_of`` on coded and
ordinal results, ``below``, ``at_least``, ``at_most`` and ``above`` on quantities, each
under ``when`` (one result matches; ``only_at`` some time points) or ``when_all`` (every
planned occurrence has a matching result). Every version of every protocol is covered. A form not
handled here raises ``NotImplementedError`` when the cases are generated, so a new form
fails loudly instead of being skipped.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

import rules
from rules import (
    CodedResult,
    OrdinalResult,
    PatientFacts,
    PlannedAssessment,
    Protocol,
    QuantityResult,
    RecordedEvent,
    RecordedResult,
    build_calendar,
)
from rules._results import UNITS, accepted_units, parse_unit
from rules._schema import AssessmentRule, Branch, Condition

# Long enough ago that a year of results (the when_all form) is in the past at the fixed
# "now" of the database tests (2026-11-25), as in tests/support/factories.py.
INFUSED = date(2024, 1, 31)
DEFAULT_AGE = 10  # years at infusion when nothing constrains it (a child: paediatric rules)


@dataclass(frozen=True)
class BranchCase:
    """One branch: ``protocol``'s rule ``rule``, its ``index``-th ``on_result`` entry."""

    protocol: str
    version: str
    rule: str
    index: int

    @property
    def id(self) -> str:
        return f"{self.protocol}-{self.version}:{self.rule}:{self.index}"


@dataclass(frozen=True)
class Typed:
    """A result as the nurse types it (``text``) and as the protocol must read it (``read``)."""

    assessment: str
    occurrence: int
    on: date
    text: str
    read: str

    def recorded(self, infusion: int = 1) -> RecordedResult:
        return RecordedResult(infusion, self.assessment, self.occurrence, self.on, self.read)


@dataclass(frozen=True)
class Scenario:
    case: BranchCase
    branch: Branch
    facts: PatientFacts
    infusions: tuple[date, ...]
    events: tuple[RecordedEvent, ...]
    before: tuple[Typed, ...]  # results that put the rule in the calendar
    satisfying: tuple[Typed, ...]
    failing: tuple[Typed, ...]

    @property
    def fired_on(self) -> date:
        """The day the branch fires when satisfied: its last result's date."""
        return max(t.on for t in self.satisfying)

    def plan(self, protocol: Protocol, results: tuple[Typed, ...]) -> list[PlannedAssessment]:
        recorded = [t.recorded() for t in (*self.before, *results)]
        return build_calendar(protocol, self.facts, self.infusions, recorded, self.events)


def registry() -> rules.ProtocolRegistry:
    return rules.ProtocolRegistry.from_directory()


def branch_count(registry: rules.ProtocolRegistry) -> int:
    """How many branches the registry's protocols declare, counted straight from the specs."""
    return sum(
        len(rule.on_result) for protocol in registry.all() for rule in protocol.spec.assessments
    )


def branch_cases(registry: rules.ProtocolRegistry) -> list[BranchCase]:
    cases = [
        BranchCase(protocol.id, protocol.version, rule_id, index)
        for protocol in registry.all()
        for rule_id, rule in protocol.rules.items()
        for index, _ in enumerate(rule.spec.on_result)
    ]
    for case in cases:  # refuse a form this generator cannot drive, now, not silently
        protocol = registry.get(case.protocol, case.version)
        _values(protocol, case.rule, _condition(protocol.branches(case.rule)[case.index]))
    return cases


def _condition(branch: Branch) -> Condition:
    condition = branch.when if branch.when is not None else branch.when_all
    assert condition is not None
    return condition


# -- values --------------------------------------------------------------------------------


def _values(protocol: Protocol, rule_id: str, condition: Condition) -> tuple[str, str]:
    """(typed text that satisfies ``condition``, the nearest typed text that does not)."""
    spec = protocol.result_type(rule_id)
    if isinstance(spec, CodedResult):
        wanted = _named(condition)
        if wanted is None:
            raise NotImplementedError(f"{rule_id}: a coded result compared by order")
        code_in = wanted[0]
        code_out = next(code for code in spec.values if code not in wanted)
        return spec.values[code_in], spec.values[code_out]  # typed as their labels
    if isinstance(spec, OrdinalResult):
        wanted = _named(condition)
        if wanted is None:
            raise NotImplementedError(f"{rule_id}: an ordinal compared by order")
        level_in = int(wanted[0])
        levels = [n for n in range(spec.min, spec.max + 1) if str(n) not in wanted]
        level_out = min(levels, key=lambda n: abs(n - level_in))  # the nearest other level
        return _level_text(spec, level_in), _level_text(spec, level_out)
    if isinstance(spec, QuantityResult):
        step = Decimal(1).scaleb(-spec.decimals)  # the smallest difference the rule keeps
        if condition.below is not None:
            threshold = Decimal(repr(condition.below))
            inside, outside = threshold - step, threshold
        elif condition.at_least is not None:
            threshold = Decimal(repr(condition.at_least))
            inside, outside = threshold, threshold - step
        elif condition.at_most is not None:
            threshold = Decimal(repr(condition.at_most))
            inside, outside = threshold, threshold + step
        elif condition.above is not None:
            threshold = Decimal(repr(condition.above))
            inside, outside = threshold + step, threshold
        else:
            raise NotImplementedError(f"{rule_id}: a quantity compared by name")
        return quantity_text(spec, inside), quantity_text(spec, outside)
    raise NotImplementedError(f"{rule_id}: cannot branch on a {type(spec).__name__}")


def _named(condition: Condition) -> tuple[str, ...] | None:
    if condition.equals is not None:
        return (condition.equals,)
    return condition.one_of


def _level_text(spec: OrdinalResult, level: int) -> str:
    return spec.labels.get(level, f" {level} ")  # a label if it has one; else the digit


def typing_unit(spec: QuantityResult) -> str:
    """The unit a nurse would type: an accepted unit other than the stored one if any."""
    others = [u for u in accepted_units(spec) if parse_unit(u) != parse_unit(spec.unit)]
    return others[0] if others else accepted_units(spec)[0]


def quantity_text(spec: QuantityResult, canonical: Decimal, unit: str | None = None) -> str:
    """``canonical`` (in the rule's unit) written in ``unit`` (default: ``typing_unit``)."""
    unit = unit or typing_unit(spec)
    value = UNITS.Quantity(float(canonical), parse_unit(spec.unit)).to(parse_unit(unit))
    return f"{value.magnitude:.12g} {unit}"


def canonical_text(spec: QuantityResult, canonical: Decimal) -> str:
    return format(canonical.quantize(Decimal(1).scaleb(-spec.decimals)), "f")


# -- scenarios -----------------------------------------------------------------------------


def scenario(registry: rules.ProtocolRegistry, case: BranchCase) -> Scenario:
    protocol = registry.get(case.protocol, case.version)
    branch = protocol.branches(case.rule)[case.index]
    facts = _facts(protocol, [case.rule, *branch.start, *branch.stop])
    infusions = (INFUSED,)
    events, before = _put_in_calendar(protocol, facts, infusions, case.rule, ())
    for stopped in branch.stop:  # what a branch stops must be running first
        more_events, more_before = _put_in_calendar(protocol, facts, infusions, stopped, ())
        known = {(t.assessment, t.occurrence) for t in before}
        fresh = tuple(t for t in more_before if (t.assessment, t.occurrence) not in known)
        events = (*events, *(e for e in more_events if e not in events))
        before = (*before, *fresh)
    plan = build_calendar(protocol, facts, infusions, [t.recorded() for t in before], list(events))
    used = {(t.assessment, t.occurrence) for t in before}
    since = max((t.on for t in before), default=None)
    rows = [
        p
        for p in plan
        if p.assessment == case.rule
        and p.infusion == 1
        and (p.assessment, p.occurrence) not in used
        and (since is None or p.due > since)
    ]
    assert rows, f"{case.id}: the rule never appears in the calendar of {facts}"
    good, bad = _values(protocol, case.rule, _condition(branch))
    satisfying: tuple[Typed, ...]
    failing: tuple[Typed, ...]
    if branch.when is not None:
        first = rows[0]
        if branch.only_at is not None:  # a result at one of those time points only
            points = {
                p.number for p in protocol.rules[case.rule].points if p.offset in branch.only_at
            }
            first = next(row for row in rows if row.occurrence in points)
        satisfying = (_typed(protocol, first, good),)
        failing = (_typed(protocol, first, bad),)
    else:  # when_all: a result for every planned occurrence; the counterpart misses one
        satisfying = tuple(_typed(protocol, row, good) for row in rows)
        failing = (*satisfying[:-1], _typed(protocol, rows[-1], bad))
    return Scenario(case, branch, facts, infusions, events, before, satisfying, failing)


def _typed(protocol: Protocol, row: PlannedAssessment, text: str) -> Typed:
    read = protocol.read_result(row.assessment, text)
    return Typed(row.assessment, row.occurrence, row.due, text, read)


def _facts(protocol: Protocol, rule_ids: list[str]) -> PatientFacts:
    """A patient every one of ``rule_ids`` applies to, at infusion and for a while after."""
    diagnosis = next(iter(protocol.spec.diagnoses))
    age_from, age_below = 0, 120
    for rule_id in rule_ids:
        applies = protocol.rules[rule_id].spec.applies_to
        if applies.diagnoses is not None:
            diagnosis = applies.diagnoses[0]
        age_from = max(age_from, applies.age_from or 0)
        age_below = min(age_below, applies.age_below or 120)
    assert age_from < age_below, f"no age satisfies {rule_ids}"
    age = DEFAULT_AGE if age_from <= DEFAULT_AGE < age_below - 1 else age_from
    born = INFUSED.replace(year=INFUSED.year - age)
    return PatientFacts(born, diagnosis, "F")


def _put_in_calendar(
    protocol: Protocol,
    facts: PatientFacts,
    infusions: tuple[date, ...],
    rule_id: str,
    seen: tuple[str, ...],
) -> tuple[tuple[RecordedEvent, ...], tuple[Typed, ...]]:
    """The events and results that make ``rule_id`` planned (none if it runs from the start)."""
    rule: AssessmentRule = protocol.rules[rule_id].spec
    if rule.starts == "with_infusion":
        return (), ()
    assert rule_id not in seen, f"a cycle of starters through {rule_id}"
    for starter_id in protocol.starters.get(rule_id, ()):
        for branch in protocol.branches(starter_id):
            if rule_id not in branch.start or branch.when is None:
                continue
            events, before = _put_in_calendar(
                protocol, facts, infusions, starter_id, (*seen, rule_id)
            )
            plan = build_calendar(
                protocol, facts, infusions, [t.recorded() for t in before], list(events)
            )
            points = {
                p.number
                for p in protocol.rules[starter_id].points
                if branch.only_at is None or p.offset in branch.only_at
            }
            first = next(p for p in plan if p.assessment == starter_id and p.occurrence in points)
            good, _ = _values(protocol, starter_id, branch.when)
            return events, (*before, _typed(protocol, first, good))
    for kind, event in protocol.events.items():  # started by an event only
        if rule_id in event.start and not event.end_follow_up:
            return (RecordedEvent(kind, INFUSED.replace(year=INFUSED.year + 1)),), ()
    raise AssertionError(f"nothing starts {rule_id}")
