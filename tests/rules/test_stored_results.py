"""Whether a stored result is already in its declared type's canonical form: what the
mapping of results stored as free text before results were typed skips."""

from __future__ import annotations

import doctest

import pytest

from rules import Protocol, ProtocolRegistry, _results


@pytest.fixture(scope="module")
def car_t() -> Protocol:
    return ProtocolRegistry.from_directory().get("cd19-car-t-pediatric-autoimmune", "1.0")


def test_the_examples_in_the_docstrings_run() -> None:
    failures, attempted = doctest.testmod(_results, raise_on_error=False, verbose=False)
    assert attempted > 0
    assert failures == 0


@pytest.mark.parametrize(
    ("rule", "value", "stored"),
    [
        ("rcl_test", "positive", True),
        ("rcl_test", "sample_not_evaluable", True),
        ("rcl_test", "Positive", False),
        ("rcl_test", " positive", False),
        ("rcl_test", "Positive by qPCR", False),
        ("immunoglobulins", "350", True),
        ("immunoglobulins", "0", True),
        ("immunoglobulins", "350 mg/dL", False),
        ("immunoglobulins", "350.0", False),  # decimals: 0
        ("immunoglobulins", "40000", False),  # out of range
        ("immunoglobulins", "low", False),
        ("car_persistence", "1.20", True),  # decimals: 2
        ("car_persistence", "1.2", False),
        ("tanner_staging", "5", True),
        ("tanner_staging", "05", False),
        ("tanner_staging", "6", False),
        ("tanner_staging", "stage 5", False),
        ("bcell_cd19", "whatever was typed", True),  # undeclared: a free-text remark
    ],
)
def test_is_stored_result(car_t: Protocol, rule: str, value: str, stored: bool) -> None:
    assert car_t.is_stored_result(rule, value) is stored


def test_every_value_read_is_stored_as_read(car_t: Protocol) -> None:
    """What ``read_result`` returns is canonical: mapping it again changes nothing."""
    for rule, typed in [
        ("rcl_test", " Positive "),
        ("immunoglobulins", "3.5 g/L"),
        ("car_persistence", "1.234"),
        ("tanner_staging", " 3 "),
    ]:
        assert car_t.is_stored_result(rule, car_t.read_result(rule, typed))
