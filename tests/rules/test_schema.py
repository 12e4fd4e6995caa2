"""Field-level pieces of a protocol file: windows, conditions, time points (``rules._schema``)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from rules._schema import AppliesTo, Branch, Condition, TimePoints, Window


def test_window_from_a_pair_or_a_mapping() -> None:
    assert Window.model_validate([-7, 14]) == Window(before=-7, after=14)
    assert Window.model_validate({"before": -7, "after": 14}) == Window(before=-7, after=14)


def test_window_needs_two_numbers() -> None:
    with pytest.raises(ValidationError, match="a window is two numbers"):
        Window.model_validate([-7, 0, 7])


@pytest.mark.parametrize(
    ("window", "text"),
    [((-30, 30), "−30/+30 days"), ((0, 60), "0/+60 days"), ((-14, 7), "−14/+7 days")],
)
def test_window_describe_uses_a_real_minus_sign(window: tuple[int, int], text: str) -> None:
    assert Window.model_validate(list(window)).describe() == text


@pytest.mark.parametrize(
    ("condition", "value", "matches"),
    [
        ({"equals": "positive"}, "positive", True),
        ({"equals": "positive"}, " Positive ", True),  # case and blanks are ignored
        ({"equals": "positive"}, "negative", False),
        ({"equals": "5"}, "5", True),
        ({"equals": "5"}, "4", False),
        ({"one_of": ["4", "5"]}, "4", True),
        ({"one_of": ["A", "b"]}, "a", True),
        ({"one_of": ["4", "5"]}, "3", False),
        ({"below": 400}, "350", True),
        ({"below": 400}, "399.9", True),
        ({"below": 400}, "400", False),
        ({"below": 400}, "not measured", False),  # text is never below a number
        ({"at_least": 1.5}, "1.5", True),
        ({"at_least": 1.5}, "1.49", False),
        ({"at_least": 1}, "12", True),
        ({"at_least": 1}, "", False),
    ],
)
def test_condition_matches(condition: dict[str, object], value: str, matches: bool) -> None:
    assert Condition.model_validate(condition).matches(value) is matches


@pytest.mark.parametrize(
    ("condition", "text"),
    [
        ({"equals": "negative"}, "negative"),
        ({"one_of": ["4", "5"]}, "4 or 5"),
        ({"below": 400}, "below 400"),
        ({"at_least": 1.5}, "at least 1.5"),
    ],
)
def test_condition_describe(condition: dict[str, object], text: str) -> None:
    assert Condition.model_validate(condition).describe() == text


@pytest.mark.parametrize("condition", [{}, {"equals": "a", "below": 3}])
def test_condition_needs_exactly_one_test(condition: dict[str, object]) -> None:
    with pytest.raises(ValidationError, match="give exactly one of"):
        Condition.model_validate(condition)


@pytest.mark.parametrize(
    ("branch", "message"),
    [
        ({"start": ["x"]}, "give exactly one of 'when' and 'when_all'"),
        (
            {"when": {"equals": "a"}, "when_all": {"equals": "a"}, "start": ["x"]},
            "give exactly one of 'when' and 'when_all'",
        ),
        ({"when": {"equals": "a"}}, "must 'start' or 'stop' at least one"),
    ],
)
def test_branch_shape(branch: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        Branch.model_validate(branch)


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"at": ["M1"], "every": "M1"}, "use either 'at'"),
        ({"every": "M1", "from": "M1"}, "needs all of 'every', 'from' and 'to'"),
        ({}, "needs all of 'every', 'from' and 'to'"),
        ({"at": []}, "'at' lists no offsets"),
    ],
)
def test_time_points_shape(entry: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        TimePoints.model_validate(entry)


def test_applies_to_age_range_must_not_be_empty() -> None:
    with pytest.raises(ValidationError, match=r"age_from \(18\) must be below age_below \(18\)"):
        AppliesTo(age_from=18, age_below=18)
