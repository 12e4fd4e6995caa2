"""Typed results: each assessment the engine branches on declares what its result is, a
nurse's entry is read into that form or refused, and conditions must name values the type
can produce (checked when the protocol is loaded)."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import pytest
from support.protocols import declared_result

from rules import (
    InvalidResult,
    PatientFacts,
    Protocol,
    ProtocolError,
    ProtocolRegistry,
    RecordedResult,
    build_calendar,
    load_protocol,
)

CHILD = PatientFacts(date(2014, 6, 15), "sle")
INFUSED = date(2024, 1, 31)


@pytest.fixture(scope="module")
def car_t() -> Protocol:
    return ProtocolRegistry.from_directory().get("cd19-car-t-pediatric-autoimmune", "1.0")


@pytest.fixture(scope="module")
def aav() -> Protocol:
    return ProtocolRegistry.from_directory().get("aav-liver-5-year")


@pytest.mark.parametrize(
    ("typed", "read"),
    [
        ("positive", "positive"),
        (" Positive ", "positive"),
        ("NEGATIVE", "negative"),
        ("Sample not evaluable", "sample_not_evaluable"),
        ("sample-not-evaluable", "sample_not_evaluable"),
        ("indeterminate", "indeterminate"),
    ],
)
def test_a_coded_result_is_read_as_its_code(car_t: Protocol, typed: str, read: str) -> None:
    assert car_t.read_result("rcl_test", typed) == read


@pytest.mark.parametrize("typed", ["Positive by qPCR", "pos", "+", "detected", ""])
def test_a_coded_result_outside_the_list_is_refused_with_the_list(
    car_t: Protocol, typed: str
) -> None:
    with pytest.raises(InvalidResult) as refused:
        car_t.read_result("rcl_test", typed)
    assert "negative (Negative), positive (Positive), indeterminate" in str(refused.value)


@pytest.mark.parametrize(
    ("typed", "read"),
    [
        ("350 mg/dL", "350"),
        ("350mg/dl", "350"),
        ("3.5 g/L", "350"),
        ("3.54 g/L", "354"),
        ("0.4 g/L", "40"),
        ("5000 mg/dL", "5000"),
    ],
)
def test_a_quantity_is_converted_to_its_canonical_unit(
    car_t: Protocol, typed: str, read: str
) -> None:
    assert car_t.read_result("immunoglobulins", typed) == read


@pytest.mark.parametrize(
    ("typed", "reason"),
    [
        ("350", "'350' needs a unit: one of mg/dL, g/L"),
        ("40000 mg/dL", "outside the plausible range 0 to 5000 mg/dL"),
        ("-3 g/L", "outside the plausible range"),
        ("350 mg", "unit 'mg' is not accepted here: use mg/dL, g/L"),
        ("350 furlongs", "unit 'furlongs' is not accepted here"),
        ("350 cells/uL", "unit 'cells/uL' is not accepted here"),
        ("low", "'low' is not a number with a unit (mg/dL, g/L)"),
        # Unit text pint fails to tokenize or evaluate is an unknown unit, not a traceback.
        ("350 mg/(", "unit 'mg/(' is not accepted here"),
        ("350 )", "unit ')' is not accepted here"),
        ("350 mg**", "unit 'mg**' is not accepted here"),
        ("350 1/0", "unit '1/0' is not accepted here"),
    ],
)
def test_a_quantity_without_its_unit_or_out_of_range_is_refused(
    car_t: Protocol, typed: str, reason: str
) -> None:
    with pytest.raises(InvalidResult, match=re.escape(reason)):
        car_t.read_result("immunoglobulins", typed)


def test_a_bare_number_is_read_in_the_only_unit_accepted(car_t: Protocol, aav: Protocol) -> None:
    assert car_t.read_result("car_persistence", "1.234") == "1.23"
    assert car_t.read_result("car_persistence", "1.2 %") == "1.20"
    assert aav.read_result("aav_alt", "1.55") == "1.6"  # one decimal kept, half to even
    assert aav.read_result("aav_alt", "2 ULN") == "2.0"


@pytest.mark.parametrize(("typed", "read"), [("1", "1"), ("5", "5"), (" 3 ", "3")])
def test_an_ordinal_is_a_whole_level(car_t: Protocol, typed: str, read: str) -> None:
    assert car_t.read_result("tanner_staging", typed) == read


@pytest.mark.parametrize("typed", ["stage 5", "0", "6", "4.5", "V"])
def test_an_ordinal_outside_its_levels_is_refused(car_t: Protocol, typed: str) -> None:
    with pytest.raises(InvalidResult, match="is not a whole number from 1 to 5"):
        car_t.read_result("tanner_staging", typed)


def test_an_undeclared_result_is_a_remark_kept_as_typed(car_t: Protocol) -> None:
    assert car_t.read_result("ltfu_exam", "  well, no new findings ") == "well, no new findings"
    assert car_t.read_result("no_such_rule", " seen ") == "seen"  # no KeyError


def test_every_result_the_shipped_protocols_branch_on_is_declared() -> None:
    for protocol in ProtocolRegistry.from_directory().all():
        for rule_id, rule in protocol.rules.items():
            if rule.spec.on_result or rule.spec.opens_safety_case:
                assert protocol.result_type(rule_id) is not None, (protocol.id, rule_id)


def _igg(value: str) -> list[RecordedResult]:
    return [RecordedResult(1, "immunoglobulins", 1, date(2024, 3, 1), value)]


def test_igg_typed_in_either_unit_starts_the_same_replacement(car_t: Protocol) -> None:
    """Stored in mg/dL, the branch 'below 400' holds whatever unit the nurse typed."""
    low = [car_t.read_result("immunoglobulins", t) for t in ("350 mg/dL", "3.5 g/L")]
    high = car_t.read_result("immunoglobulins", "4.5 g/L")
    plans = [build_calendar(car_t, CHILD, [INFUSED], results=_igg(v)) for v in (*low, high)]
    started = [{a.assessment for a in p} - {a.assessment for a in plans[2]} for p in plans]
    assert started[0] == started[1] != set()
    assert started[2] == set()


def test_a_positive_rcl_typed_in_capitals_starts_confirmation(car_t: Protocol) -> None:
    value = car_t.read_result("rcl_test", "POSITIVE")
    result = [RecordedResult(1, "rcl_test", 1, date(2024, 4, 30), value)]
    calendar = build_calendar(car_t, CHILD, [INFUSED], results=result)
    assert {"rcl_confirm", "rcl_intensified", "rcl_positive_report"} <= {
        a.assessment for a in calendar
    }
    assert car_t.safety_case("rcl_test", value) is not None


def test_tanner_stage_five_stops_staging(car_t: Protocol) -> None:
    plain = build_calendar(car_t, CHILD, [INFUSED])
    staged = build_calendar(
        car_t,
        CHILD,
        [INFUSED],
        results=[RecordedResult(1, "tanner_staging", 2, date(2025, 2, 1), "5")],
    )
    count = [sum(a.assessment == "tanner_staging" for a in p) for p in (plain, staged)]
    assert count[1] < count[0]


# -- refused when the protocol is loaded --------------------------------------------------

VISIT = "    window: [-7, 7]\n"


def _with(result: str, branch: str) -> dict[str, str]:
    return {VISIT: f"{VISIT}{result}    on_result:\n      - {branch}\n"}


@pytest.mark.parametrize(
    ("result", "branch", "field", "reason"),
    [
        (
            "",
            "{when: {equals: positive}, stop: [visit]}",
            "result",
            "declare what its result is",
        ),
        (
            "    result: {type: coded, values: {negative: Neg, positive: Pos}}\n",
            "{when: {equals: postive}, stop: [visit]}",
            "on_result[0].when",
            "'postive' is not one of its coded values (negative, positive)",
        ),
        (
            "    result: {type: coded, values: {negative: Neg, positive: Pos}}\n",
            "{when: {below: 3}, stop: [visit]}",
            "on_result[0].when",
            "a coded result has no order",
        ),
        (
            '    result: {type: quantity, unit: "mg/dL", min: 0, max: 10}\n',
            "{when: {equals: '5'}, stop: [visit]}",
            "on_result[0].when",
            "a quantity is compared with 'below', 'at_least', 'at_most' or 'above'",
        ),
        (
            "    result: {type: ordinal, min: 1, max: 5}\n",
            "{when_all: {equals: '6'}, stop: [visit]}",
            "on_result[0].when_all",
            "'6' is not a level from 1 to 5",
        ),
        (
            "    result: {type: date}\n",
            "{when: {equals: '2024-01-01'}, stop: [visit]}",
            "on_result[0].when",
            "a date result cannot be branched on",
        ),
        (
            '    result: {type: quantity, unit: "mg/dL", accepts: [g/L, parsecs], '
            "min: 0, max: 10}\n",
            "{when: {below: 3}, stop: [visit]}",
            "result.accepts[1]",
            "cannot be converted to 'mg/dL'",
        ),
        (
            '    result: {type: quantity, unit: "mg/dL", accepts: [g/L, "blorbs"], '
            "min: 0, max: 10}\n",
            "{when: {below: 3}, stop: [visit]}",
            "result.accepts[1]",
            "unknown unit 'blorbs'",
        ),
        (
            '    result: {type: quantity, unit: "wibble", min: 0, max: 10}\n',
            "{when: {below: 3}, stop: [visit]}",
            "result.unit",
            "unknown unit 'wibble'",
        ),
    ],
)
def test_a_condition_its_result_cannot_meet_is_refused_at_load(
    protocol_text: object,
    write_protocol: object,
    result: str,
    branch: str,
    field: str,
    reason: str,
) -> None:
    text = protocol_text(replace=_with(result, branch))  # type: ignore[operator]
    path: Path = write_protocol(text)  # type: ignore[operator]
    with pytest.raises(ProtocolError) as refused:
        load_protocol(path)
    error = refused.value
    assert (error.source, error.assessment, error.field) == (str(path), "visit", field)
    assert reason in error.reason


@pytest.mark.parametrize(
    ("result", "reason"),
    [
        ("    result: {type: coded, values: {only: Only}}\n", "at least 2 items"),
        ('    result: {type: quantity, unit: "%", min: 5, max: 5}\n', "min (5) must be below"),
        ("    result: {type: ordinal, min: 1, max: 5, labels: {7: Seven}}\n", "outside 1 to 5"),
        ("    result: {type: percentage}\n", "type"),
    ],
)
def test_a_malformed_result_type_is_refused_at_load(
    protocol_text: object, write_protocol: object, result: str, reason: str
) -> None:
    text = protocol_text(replace={VISIT: f"{VISIT}{result}"})  # type: ignore[operator]
    path = write_protocol(text)  # type: ignore[operator]
    with pytest.raises(ProtocolError) as refused:
        load_protocol(path)
    assert refused.value.assessment == "visit"
    assert str(refused.value.field).startswith("result")
    assert reason in refused.value.reason


def test_the_test_helper_declares_what_its_conditions_need() -> None:
    assert "coded" in declared_result("{when: {equals: positive}}")
    assert "ordinal" in declared_result("{when: {equals: '5'}}")
    assert "quantity" in declared_result("{when: {below: 400}}")
