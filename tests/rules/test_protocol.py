"""Expanding schedule entries into time points (``rules._protocol``)."""

from __future__ import annotations

import re

import pytest

from rules import Offset
from rules._protocol import MAX_TIME_POINTS_PER_ASSESSMENT, expand_time_points
from rules._schema import TimePoints


def _expand(**entry: object) -> list[str]:
    return [str(offset) for offset in expand_time_points(TimePoints.model_validate(entry))]


def test_at_list_is_kept_in_the_order_written() -> None:
    assert _expand(at=["D-14", "M6", "D3"]) == ["D-14", "M6", "D3"]


def test_a_single_offset_is_a_list_of_one() -> None:
    assert _expand(at="M6") == ["M6"]


@pytest.mark.parametrize(
    ("every", "start", "until", "expected"),
    [
        ("D1", "D1", "D14", [f"D{n}" for n in range(1, 15)]),
        ("W1", "W1", "W26", [f"W{n}" for n in range(1, 27)]),
        ("M1", "M2", "M6", ["M2", "M3", "M4", "M5", "M6"]),
        ("M6", "M18", "Y5", ["M18", "M24", "M30", "M36", "M42", "M48", "M54", "M60"]),
        ("Y1", "Y2", "Y5", ["Y2", "Y3", "Y4", "Y5"]),
        ("M12", "Y1", "Y3", ["M12", "M24", "M36"]),
        ("W1", "D7", "D21", ["D7", "D14", "D21"]),  # weeks and days mix: unit is days
        ("W2", "W2", "W7", ["W2", "W4", "W6"]),  # 'to' need not be on the step
        ("M6", "M6", "M6", ["M6"]),
    ],
)
def test_recurrence_includes_both_ends(
    every: str, start: str, until: str, expected: list[str]
) -> None:
    assert _expand(every=every, **{"from": start, "to": until}) == expected


def test_recurrence_in_years_keeps_year_units() -> None:
    offsets = expand_time_points(
        TimePoints.model_validate({"every": "Y1", "from": "Y6", "to": "Y15"})
    )
    assert offsets[0] == Offset("Y", 6)
    assert offsets[-1] == Offset("Y", 15)
    assert len(offsets) == 10


@pytest.mark.parametrize(
    ("every", "start", "until", "message"),
    [
        ("D30", "M1", "M6", "mix days/weeks with months/years"),
        ("M1", "D1", "D60", "mix days/weeks with months/years"),
        ("D0", "D1", "D5", "'every' must be positive: D0"),
        ("M-1", "M1", "M6", "'every' must be positive: M-1"),
        ("M1", "M6", "M1", "'from' (M6) is after 'to' (M1)"),
        ("D1", "D1", "D6001", "the recurrence makes 6001 time points (more than 6000)"),
    ],
)
def test_recurrence_refused(every: str, start: str, until: str, message: str) -> None:
    entry = TimePoints.model_validate({"every": every, "from": start, "to": until})
    with pytest.raises(ValueError, match=re.escape(message)):
        expand_time_points(entry)


def test_the_time_point_limit_is_inclusive() -> None:
    limit = MAX_TIME_POINTS_PER_ASSESSMENT
    assert len(_expand(every="D1", **{"from": "D1", "to": f"D{limit}"})) == limit
