"""kit.bounds and kit.text: the one definition of the dates, ids and text accepted from
outside (issue 16), raised as InvalidInput naming the field."""

from __future__ import annotations

from datetime import date

import pytest

from surveillance.errors import InvalidInput
from surveillance.kit.bounds import (
    check_as_of,
    check_birth,
    check_id,
    check_infusion,
    is_id,
    parse_id,
)
from surveillance.kit.sqltypes import MAX_INTEGER
from surveillance.kit.text import multi_line, single_line

TODAY = date(2026, 11, 25)


@pytest.mark.parametrize(
    ("check", "day", "accepted"),
    [
        (check_birth, date(1900, 1, 1), True),
        (check_birth, date(1899, 12, 31), False),
        (check_birth, date(1, 1, 1), False),
        (check_birth, date(2026, 11, 26), False),
        (check_infusion, date(1990, 1, 1), True),
        (check_infusion, date(1989, 12, 31), False),
        (check_infusion, TODAY, True),
        (check_infusion, date(2026, 11, 26), False),
        (check_as_of, date(1990, 1, 1), True),
        (check_as_of, date(2046, 11, 25), True),  # today + 20 years
        (check_as_of, date(2046, 11, 26), False),
        (check_as_of, date(9999, 12, 31), False),
    ],
)
def test_date_bounds(check: object, day: date, accepted: bool) -> None:
    assert callable(check)
    if accepted:
        assert check(day, TODAY) == day
    else:
        with pytest.raises(InvalidInput) as refused:
            check(day, TODAY)
        assert refused.value.field in ("birth_date", "infusion_date", "on")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0", 0),
        (str(MAX_INTEGER), MAX_INTEGER),
        (str(MAX_INTEGER + 1), None),
        ("9" * 5000, None),
        ("²", None),
        ("-1", None),
        ("", None),
        ("١٢", None),  # Arabic-Indic digits: int() reads them, no id is written so
    ],
)
def test_ids_are_ascii_digits_within_the_column(text: str, expected: int | None) -> None:
    assert is_id(text) is (expected is not None)
    if expected is None:
        with pytest.raises(InvalidInput, match="cursor"):
            parse_id(text, "cursor")
    else:
        assert parse_id(text, "cursor") == expected


def test_check_id() -> None:
    assert check_id(MAX_INTEGER, "version") == MAX_INTEGER
    with pytest.raises(InvalidInput):
        check_id(2**63, "version")


def test_text_is_refused_with_the_field_named() -> None:
    assert single_line("Cytokine release syndrome", "term") == "Cytokine release syndrome"
    assert multi_line("Day 1:\tfever\r\nDay 2", "narrative") == "Day 1:\tfever\r\nDay 2"
    for value in ("a\nb", "a\x00", "\u202e", "\ud800"):
        with pytest.raises(InvalidInput) as refused:
            single_line(value, "term")
        assert refused.value.field == "term"
        assert refused.value.message.startswith("term: ")
    with pytest.raises(InvalidInput, match="narrative: control character U\\+0007"):
        multi_line("a\x07", "narrative")
