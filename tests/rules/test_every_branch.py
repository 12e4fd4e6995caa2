"""Every ``on_result`` branch of every shipped protocol, driven by typed results.

The cases come from the bundled registry (``support.branches``): a branch added to a
protocol file later is tested here without a new line. For each branch, the results a
nurse would type that satisfy it start its ``start`` assessments and drop its ``stop``
ones after the result; the nearest values that do not satisfy it change neither. Then
every quantity rule reads each accepted unit to the same canonical number, and back.
"""

from __future__ import annotations

import math
from decimal import Decimal

import pytest
from support.branches import (
    BranchCase,
    Scenario,
    branch_cases,
    branch_count,
    canonical_text,
    quantity_text,
    scenario,
)

from rules import PlannedAssessment, Protocol, ProtocolRegistry, QuantityResult
from rules._results import UNITS, accepted_units, parse_unit

REGISTRY = ProtocolRegistry.from_directory()
CASES = branch_cases(REGISTRY)

Identity = tuple[int, str, int]


def _ids(plan: list[PlannedAssessment], rule: str) -> dict[Identity, PlannedAssessment]:
    return {(p.infusion, p.assessment, p.occurrence): p for p in plan if p.assessment == rule}


@pytest.fixture(params=CASES, ids=[case.id for case in CASES])
def case(request: pytest.FixtureRequest) -> Scenario:
    chosen: BranchCase = request.param
    return scenario(REGISTRY, chosen)


def test_every_shipped_branch_is_a_case() -> None:
    assert len(CASES) == branch_count(REGISTRY)
    assert len({c.id for c in CASES}) == len(CASES)
    # The shipped protocols had 8 when this was written; fewer means cases were lost.
    assert len(CASES) >= 8


def test_the_typed_values_read_to_what_the_condition_tests(case: Scenario) -> None:
    protocol = REGISTRY.get(case.case.protocol, case.case.version)
    condition = case.branch.when or case.branch.when_all
    assert condition is not None
    for typed in (*case.before, *case.satisfying, *case.failing):
        assert protocol.read_result(typed.assessment, typed.text) == typed.read
        assert protocol.is_stored_result(typed.assessment, typed.read), typed
    assert all(condition.matches(t.read) for t in case.satisfying)
    assert not all(condition.matches(t.read) for t in case.failing)
    if case.branch.when is not None:
        assert not any(condition.matches(t.read) for t in case.failing)


def test_satisfying_results_start_and_stop_what_the_branch_names(case: Scenario) -> None:
    protocol = REGISTRY.get(case.case.protocol, case.case.version)
    before = case.plan(protocol, ())
    after = case.plan(protocol, case.satisfying)
    fired = case.fired_on
    for target in case.branch.start:
        new = _ids(after, target).keys() - _ids(before, target).keys()
        assert new, f"{case.case.id}: {target} was not started"
        assert all(_ids(after, target)[i].due >= fired for i in new), target
    for target in case.branch.stop:
        later = [p for p in _ids(after, target).values() if p.due > fired]
        assert later == [], f"{case.case.id}: {target} still planned after {fired}"


def test_the_nearest_failing_results_start_and_stop_nothing_of_it(case: Scenario) -> None:
    protocol = REGISTRY.get(case.case.protocol, case.case.version)
    before = case.plan(protocol, ())
    after = case.plan(protocol, case.failing)
    for target in case.branch.start:
        assert _ids(after, target).keys() == _ids(before, target).keys(), target
    for target in case.branch.stop:
        last = max(t.on for t in case.failing)
        later = [p for p in _ids(after, target).values() if p.due > last]
        assert later, f"{case.case.id}: {target} stopped by a result that does not satisfy it"
        assert _ids(after, target).keys() == _ids(before, target).keys(), target


WHEN_ALL = [
    c for c in CASES if REGISTRY.get(c.protocol, c.version).branches(c.rule)[c.index].when_all
]


@pytest.mark.parametrize("chosen", WHEN_ALL, ids=[c.id for c in WHEN_ALL])
def test_when_all_needs_every_planned_occurrence(chosen: BranchCase) -> None:
    """A 'when_all' branch does not fire on a year with one result still missing."""
    case = scenario(REGISTRY, chosen)
    assert len(case.satisfying) > 1
    protocol = REGISTRY.get(chosen.protocol)
    before = case.plan(protocol, ())
    partial = case.plan(protocol, case.satisfying[:-1])
    for target in case.branch.start:
        assert _ids(partial, target).keys() == _ids(before, target).keys(), target


# -- units -------------------------------------------------------------------------------

QUANTITY_RULES = [
    (protocol.id, rule_id)
    for protocol in REGISTRY.all()
    for rule_id in protocol.rules
    if isinstance(protocol.result_type(rule_id), QuantityResult)
]


def _quantity(protocol: Protocol, rule_id: str) -> QuantityResult:
    spec = protocol.result_type(rule_id)
    assert isinstance(spec, QuantityResult)
    return spec


def _sample_values(protocol: Protocol, rule_id: str) -> list[Decimal]:
    """The range's ends, its middle, and every threshold a branch compares with (both sides)."""
    spec = _quantity(protocol, rule_id)
    step = Decimal(1).scaleb(-spec.decimals)
    low, high = Decimal(repr(spec.min)), Decimal(repr(spec.max))
    values = {low, high, ((low + high) / 2).quantize(step)}
    for branch in protocol.branches(rule_id):
        condition = branch.when or branch.when_all
        assert condition is not None
        for threshold in (condition.below, condition.at_least):
            if threshold is not None:
                values |= {Decimal(repr(threshold)), Decimal(repr(threshold)) - step}
    return sorted(v for v in values if low <= v <= high)


def test_every_quantity_rule_is_covered() -> None:
    assert {rule for _, rule in QUANTITY_RULES} >= {"immunoglobulins", "car_persistence", "aav_alt"}


@pytest.mark.parametrize(("protocol_id", "rule_id"), QUANTITY_RULES)
def test_a_quantity_typed_in_any_accepted_unit_reads_the_same(
    protocol_id: str, rule_id: str
) -> None:
    protocol = REGISTRY.get(protocol_id)
    spec = _quantity(protocol, rule_id)
    for value in _sample_values(protocol, rule_id):
        expected = canonical_text(spec, value)
        read = {
            unit: protocol.read_result(rule_id, quantity_text(spec, value, unit))
            for unit in accepted_units(spec)
        }
        assert set(read.values()) == {expected}, (value, read)


@pytest.mark.parametrize(("protocol_id", "rule_id"), QUANTITY_RULES)
def test_the_canonical_number_converts_back_to_what_was_typed(
    protocol_id: str, rule_id: str
) -> None:
    protocol = REGISTRY.get(protocol_id)
    spec = _quantity(protocol, rule_id)
    canonical = parse_unit(spec.unit)
    for value in _sample_values(protocol, rule_id):
        for unit in accepted_units(spec):
            typed = quantity_text(spec, value, unit)
            magnitude = float(typed.split()[0])
            stored = float(protocol.read_result(rule_id, typed))
            back = UNITS.Quantity(stored, canonical).to(parse_unit(unit)).magnitude
            assert math.isclose(back, magnitude, rel_tol=1e-9, abs_tol=1e-12), (typed, back)


def test_grams_per_litre_and_milligrams_per_decilitre_differ_by_a_hundred() -> None:
    """The one conversion the shipped protocols rely on, stated outright (not via pint)."""
    protocol = REGISTRY.get("cd19-car-t-pediatric-autoimmune")
    assert protocol.read_result("immunoglobulins", "3.99 g/L") == "399"
    assert protocol.read_result("immunoglobulins", "399 mg/dL") == "399"
    assert protocol.read_result("immunoglobulins", "4 g/L") == "400"
