"""What a protocol declares for the application: which results open a safety case, which
assessments are the yearly contact, which category is a reporting duty."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path

import pytest

from rules import Protocol, ProtocolRegistry, load_protocol

ProtocolText = Callable[..., str]
WriteProtocol = Callable[..., Path]


def test_every_rcl_rule_and_no_other_opens_a_safety_case(registry: ProtocolRegistry) -> None:
    # The rows the application matched by name ("rcl_*") before protocols declared it.
    # 1.1 adds the test of the archived samples after a death (an RCL test too).
    after_death = {"archived_samples_test_after_death"}
    declaring: dict[tuple[str, str], set[str]] = {}
    for protocol in registry.all():
        key = (protocol.id, protocol.version)
        declaring[key] = {
            rule_id for rule_id, rule in protocol.rules.items() if rule.spec.opens_safety_case
        }
        rcl = {r for r in protocol.rules if r.startswith("rcl_")}
        assert declaring[key] == rcl | (after_death & set(protocol.rules))
    assert len(declaring[("cd19-car-t-pediatric-autoimmune", "1.0")]) == 8
    assert len(declaring[("cd19-car-t-pediatric-autoimmune", "1.1")]) == 9
    assert declaring[("aav-liver-5-year", "1.0")] == set()


@pytest.mark.parametrize(
    ("result", "opens"),
    [
        ("positive", True),
        ("Positive", True),
        ("  POSITIVE \n", True),
        ("negative", False),
        ("positive?", False),
        ("", False),
    ],
)
def test_a_positive_rcl_result_opens_the_case_compared_stripped_and_in_any_case(
    car_t: Protocol, result: str, opens: bool
) -> None:
    for rule_id in ("rcl_test", "rcl_yearly_test", "rcl_baseline", "rcl_on_indication"):
        assert (car_t.safety_case(rule_id, result) is not None) is opens, rule_id


def test_other_rules_and_unknown_rules_open_no_case(car_t: Protocol) -> None:
    assert car_t.safety_case("car_persistence", "positive") is None
    assert car_t.safety_case("no_such_rule", "positive") is None


def test_the_positive_rcl_case_reads_as_it_always_did(car_t: Protocol) -> None:
    case = car_t.safety_case("rcl_test", "positive")
    assert case is not None
    assert case.term == "Replication-competent lentivirus (RCL) detected"
    assert case.narrative_for("ROM-001:1:rcl_test:2", date(2026, 3, 4)) == (
        "Positive RCL result recorded for ROM-001:1:rcl_test:2, sample of 2026-03-04. Recorded "
        "automatically as a serious safety event; confirmation by culture assay and "
        "intensified testing are scheduled by the protocol. Add a follow-up version "
        "with the clinical details."
    )


def test_the_yearly_contacts_of_the_bundled_protocols(registry: ProtocolRegistry) -> None:
    car_t = registry.get("cd19-car-t-pediatric-autoimmune")
    aav = registry.get("aav-liver-5-year")
    assert car_t.yearly_contacts == ("ltfu_exam", "ltfu_exam_pediatric", "ltfu_contact")
    assert aav.yearly_contacts == ("aav_ltfu_exam",)


def test_the_reporting_category_of_the_bundled_protocols(registry: ProtocolRegistry) -> None:
    assert [p.reporting_category for p in registry.all()] == ["safety-reporting"] * 3
    assert registry.reporting_categories() == frozenset({"safety-reporting"})


def test_a_protocol_that_declares_nothing(
    protocol_text: ProtocolText, write_protocol: WriteProtocol, tmp_path: Path
) -> None:
    protocol = load_protocol(write_protocol(protocol_text()))
    assert protocol.yearly_contacts == ()
    assert protocol.reporting_category is None
    assert protocol.safety_case("visit", "positive") is None
    assert ProtocolRegistry.from_directory(tmp_path).reporting_categories() == frozenset()


def test_declarations_of_a_small_protocol(
    protocol_text: ProtocolText, write_protocol: WriteProtocol, tmp_path: Path
) -> None:
    text = protocol_text(
        replace={
            "reporting_category: null\n": "reporting_category: core\n",
            "    category: core\n": "    category: core\n    yearly_contact: true\n"
            "    result: {type: coded, values: {detected: Detected, positive: Positive, "
            "negative: Negative}}\n"
            "    opens_safety_case:\n      when: {one_of: [detected, positive]}\n"
            "      term: Vector detected\n      narrative: Seen in {assessment}.\n",
        }
    )
    protocol = load_protocol(write_protocol(text))
    assert protocol.yearly_contacts == ("visit",)
    assert protocol.reporting_category == "core"
    case = protocol.safety_case("visit", "Detected")
    assert case is not None
    assert case.narrative_for("A-1:1:visit:1", date(2025, 1, 2)) == "Seen in A-1:1:visit:1."
    assert ProtocolRegistry.from_directory(tmp_path).reporting_categories() == {"core"}
