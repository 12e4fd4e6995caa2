"""Offsets (``D14``, ``W3``, ``M6``, ``Y15``, ``D-14``) and the dates they land on."""

from __future__ import annotations

from datetime import date

import pytest
from dateutil.relativedelta import relativedelta
from hypothesis import given, settings
from hypothesis import strategies as st

from rules import Offset


@pytest.mark.parametrize(
    ("text", "unit", "amount"),
    [
        ("D14", "D", 14),
        ("D0", "D", 0),
        ("D-14", "D", -14),
        ("W3", "W", 3),
        ("W-1", "W", -1),
        ("M6", "M", 6),
        ("M-2", "M", -2),
        ("Y15", "Y", 15),
        ("Y-1", "Y", -1),
        ("D99999", "D", 99999),
        (" M6 ", "M", 6),  # surrounding blanks are forgiven
    ],
)
def test_parse(text: str, unit: str, amount: int) -> None:
    assert Offset.parse(text) == Offset(unit, amount)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "M",
        "6",
        "M-x",
        "m6",  # units are capitals
        "H6",  # no hours
        "M+6",
        "M 6",
        "M6.5",
        "6M",
        "D-",
        "D--1",
        "D123456",  # more than five digits
        "M6 Y1",
    ],
)
def test_parse_refuses_bad_text_with_a_message(text: str) -> None:
    with pytest.raises(ValueError, match="bad offset") as caught:
        Offset.parse(text)
    message = str(caught.value)
    assert repr(text) in message
    assert "expected D, W, M or Y followed by a whole number" in message


def test_str_round_trips() -> None:
    for text in ("D14", "D-14", "W3", "M6", "Y15", "D0"):
        assert str(Offset.parse(text)) == text


@pytest.mark.parametrize(
    ("anchor", "offset", "expected"),
    [
        # Days and weeks are plain day counts.
        (date(2024, 1, 31), "D1", date(2024, 2, 1)),
        (date(2024, 1, 31), "D-14", date(2024, 1, 17)),
        (date(2024, 2, 28), "D1", date(2024, 2, 29)),
        (date(2023, 2, 28), "D1", date(2023, 3, 1)),
        (date(2024, 12, 31), "D1", date(2025, 1, 1)),
        (date(2024, 1, 31), "D100", date(2024, 5, 10)),
        (date(2024, 1, 31), "W1", date(2024, 2, 7)),
        (date(2024, 1, 31), "W26", date(2024, 7, 31)),
        (date(2024, 1, 31), "W-2", date(2024, 1, 17)),
        # Months clip to the month's last day.
        (date(2024, 1, 31), "M1", date(2024, 2, 29)),
        (date(2024, 1, 31), "M2", date(2024, 3, 31)),
        (date(2024, 1, 31), "M3", date(2024, 4, 30)),
        (date(2024, 1, 31), "M6", date(2024, 7, 31)),
        (date(2024, 1, 31), "M13", date(2025, 2, 28)),
        (date(2023, 1, 31), "M1", date(2023, 2, 28)),
        (date(2024, 3, 31), "M-1", date(2024, 2, 29)),
        (date(2024, 8, 31), "M1", date(2024, 9, 30)),
        (date(2024, 1, 15), "M1", date(2024, 2, 15)),
        (date(2024, 11, 30), "M3", date(2025, 2, 28)),
        # Years are anniversaries; 29 February clips to the 28th in common years.
        (date(2024, 2, 29), "Y1", date(2025, 2, 28)),
        (date(2024, 2, 29), "Y4", date(2028, 2, 29)),
        (date(2024, 2, 29), "Y15", date(2039, 2, 28)),
        (date(2024, 2, 29), "Y-1", date(2023, 2, 28)),
        (date(2024, 1, 31), "Y15", date(2039, 1, 31)),
        (date(2024, 2, 29), "M12", date(2025, 2, 28)),
    ],
)
def test_apply(anchor: date, offset: str, expected: date) -> None:
    assert Offset.parse(offset).apply(anchor) == expected


def test_each_date_is_computed_from_the_anchor_not_chained() -> None:
    anchor = date(2024, 1, 31)
    one_month = Offset.parse("M1")
    chained = [anchor]
    for _ in range(3):
        chained.append(one_month.apply(chained[-1]))
    # Chaining drifts to the 29th after February ...
    assert chained[1:] == [date(2024, 2, 29), date(2024, 3, 29), date(2024, 4, 29)]
    # ... computing each point from the anchor does not.
    assert [Offset("M", n).apply(anchor) for n in (1, 2, 3)] == [
        date(2024, 2, 29),
        date(2024, 3, 31),
        date(2024, 4, 30),
    ]
    leap_day = date(2024, 2, 29)
    assert [Offset("Y", n).apply(leap_day) for n in (1, 2, 3, 4)] == [
        date(2025, 2, 28),
        date(2026, 2, 28),
        date(2027, 2, 28),
        date(2028, 2, 29),  # not 28: computed from the anchor, not from 2027-02-28
    ]


def test_applying_the_same_offset_twice_gives_the_same_date() -> None:
    # The delta is cached on the (frozen) offset; the cache must not change the answer.
    offset = Offset.parse("M1")
    assert offset.apply(date(2024, 1, 31)) == date(2024, 2, 29)
    assert offset.apply(date(2024, 1, 31)) == date(2024, 2, 29)
    assert offset.apply(date(2023, 1, 31)) == date(2023, 2, 28)
    assert offset == Offset("M", 1)
    assert hash(offset) == hash(Offset("M", 1))


def test_times_and_plus() -> None:
    assert Offset("M", 6).times(3) == Offset("M", 18)
    assert Offset("D", -2).times(2) == Offset("D", -4)
    assert Offset("M", 6).plus(Offset("M", 12)) == Offset("M", 18)
    with pytest.raises(ValueError, match="different units"):
        Offset("M", 6).plus(Offset("Y", 1))


@pytest.mark.parametrize(
    ("offset", "days"),
    [("D14", 14.0), ("W2", 14.0), ("M12", 365.25), ("Y1", 365.25), ("D-30", -30.0)],
)
def test_approximate_days(offset: str, days: float) -> None:
    assert Offset.parse(offset).approximate_days() == pytest.approx(days)


@pytest.mark.parametrize(
    ("offset", "words"),
    [
        ("M6", "month 6"),
        ("D14", "day 14"),
        ("W1", "week 1"),
        ("Y15", "year 15"),
        ("D0", "day 0"),
        ("D-14", "14 days before"),
        ("D-1", "1 day before"),
        ("W-2", "2 weeks before"),
        ("M-1", "1 month before"),
    ],
)
def test_describe(offset: str, words: str) -> None:
    assert Offset.parse(offset).describe() == words


def _outcome(compute: object) -> object:
    try:
        return compute()  # type: ignore[operator]
    except (ValueError, OverflowError) as exc:
        return (type(exc), str(exc))


@settings(max_examples=500, deadline=None)
@given(
    st.dates(),
    st.sampled_from(["M", "Y"]),
    st.integers(-12000, 12000),
)
def test_months_and_years_land_where_relativedelta_does(day: date, unit: str, amount: int) -> None:
    """The engine's own month arithmetic: relativedelta's dates, and its errors past year 9999."""
    keyword = {"M": "months", "Y": "years"}[unit]
    offset = Offset(unit, amount)
    expected = _outcome(lambda: day + relativedelta(**{keyword: amount}))
    assert _outcome(lambda: offset.apply(day)) == expected


@pytest.mark.parametrize(
    ("anchor", "text", "expected"),
    [
        (date(2024, 2, 29), "Y1", date(2025, 2, 28)),
        (date(2024, 2, 29), "Y4", date(2028, 2, 29)),
        (date(2024, 2, 29), "Y-1", date(2023, 2, 28)),
        (date(2024, 3, 31), "M-1", date(2024, 2, 29)),
        (date(2023, 1, 31), "M13", date(2024, 2, 29)),
        (date(2100, 1, 29), "M1", date(2100, 2, 28)),  # 2100 is not a leap year
        (date(2000, 1, 30), "M1", date(2000, 2, 29)),  # 2000 is
        (date(2024, 12, 31), "M-12", date(2023, 12, 31)),
    ],
)
def test_month_ends_clip(anchor: date, text: str, expected: date) -> None:
    assert Offset.parse(text).apply(anchor) == expected
