"""The due-list CSV writer: the documented columns, one BOM, CRLF, values that survive
a spreadsheet's reader, no identifying dates, no formulas."""

from __future__ import annotations

import csv
import io
import re
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from surveillance.http.downloads import attachment
from surveillance.patients import due_csv
from surveillance.patients.due_list import DueItem, DueState

DOCS = Path(__file__).parents[3] / "docs" / "csv.md"
README = Path(__file__).parents[3] / "README.md"


def _item(**changes: Any) -> DueItem:
    item = DueItem(
        key="ROM-101:1:rcl_test:2",
        study_id="ROM-101",
        assessment="rcl_test",
        name="Replication-competent lentivirus (RCL) test of PBMC",
        category="vector-safety",
        due_on=date(2024, 7, 31),
        window_start=date(2024, 7, 1),
        window_end=date(2024, 8, 30),
        state=DueState.overdue,
        days_overdue=817,
        reason="month 6 after infusion of 2024-01-31; window −30/+30 days",
        assessment_id=7,
        appointment_on=None,
        version=1,
    )
    return item._replace(**changes)


def _records(body: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(body.decode("utf-8-sig"), newline="")))


def _documented_columns() -> list[str]:
    """The first cell of each row of the "Columns" table of docs/csv.md."""
    section = DOCS.read_text(encoding="utf-8").split("## Columns", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^\| `([a-z_]+)` \|", section, flags=re.MULTILINE)


def test_the_columns_are_the_documented_ones_in_their_order() -> None:
    assert _documented_columns() == list(due_csv.COLUMNS)
    header = _records(due_csv.due_csv([_item()], site_id="Rome"))[0]
    assert list(header) == list(due_csv.COLUMNS)


def test_the_documented_example_is_what_the_writer_writes() -> None:
    example = DOCS.read_text(encoding="utf-8").split("```csv\n", 1)[1].split("```", 1)[0]
    header, *rows = csv.reader(io.StringIO(example))
    assert tuple(header) == due_csv.COLUMNS
    assert all(len(row) == len(header) for row in rows)
    assert not [row for row in rows if re.search(r"\d{4}-\d{2}-\d{2}", row[-1])]


def test_the_readme_links_the_layout() -> None:
    assert "(docs/csv.md)" in README.read_text(encoding="utf-8")


def test_one_bom_then_crlf_after_every_row() -> None:
    body = due_csv.due_csv([_item(), _item(key="ROM-101:1:rcl_test:3")], site_id="Rome")
    assert body.startswith(b"\xef\xbb\xbfstate,")
    assert body.count("\ufeff".encode()) == 1
    assert body.count(b"\r\n") == 3
    assert body.endswith(b"\r\n")
    assert b"\n" not in body.replace(b"\r\n", b"")


def test_an_empty_list_is_the_header_alone() -> None:
    assert (
        due_csv.due_csv([], site_id="Rome")
        == ("\ufeff" + ",".join(due_csv.COLUMNS) + "\r\n").encode()
    )


def test_every_cell_as_documented() -> None:
    [record] = _records(due_csv.due_csv([_item()], site_id="Rome"))
    assert record == {
        "state": "overdue",
        "days_overdue": "817",
        "study_id": "ROM-101",
        "site": "Rome",
        "name": "Replication-competent lentivirus (RCL) test of PBMC",
        "category": "vector-safety",
        "due": "2024-07-31",
        "window_start": "2024-07-01",
        "window_end": "2024-08-30",
        "appointment": "",
        "assessment": "rcl_test",
        "key": "ROM-101:1:rcl_test:2",
        "reason": "month 6 after infusion; window −30/+30 days",
    }
    booked = _item(appointment_on=date(2024, 8, 5))
    assert _records(due_csv.due_csv([booked], site_id="Rome"))[0]["appointment"] == "2024-08-05"


@pytest.mark.parametrize(
    "text",
    [
        "Baseline: disease activity, CBC, immunoglobulins",
        'The "RCL" test',
        "two\nlines",
        "two\r\nlines, \"quoted\", and 'single'",
        "Università Cattolica del Sacro Cuore — Müller, Ærø",
        "trailing space ",
    ],
)
def test_a_value_comes_back_as_it_went_in(text: str) -> None:
    body = due_csv.due_csv([_item(name=text)], site_id=text)
    [record] = _records(body)
    assert record["name"] == text
    assert record["site"] == text
    assert len(record) == len(due_csv.COLUMNS)


@pytest.mark.parametrize("formula", ['=HYPERLINK("http://x")', "+1", "-1+2", "@SUM(A1)"])
def test_a_formula_is_written_as_text(formula: str) -> None:
    [record] = _records(due_csv.due_csv([_item(name=formula)], site_id="Rome"))
    assert record["name"] == f"'{formula}"
    assert record["days_overdue"] == "817"  # numbers are numbers


@pytest.mark.parametrize(
    ("stored", "written"),
    [
        ("18th birthday (born 2008-11-29); window −30/+30 days", "18th birthday; window"),
        ("month 12 after infusion of 2024-01-31", "month 12 after infusion"),
        ("6 months after birth on 2014-03-01", "6 months after birth"),
        ("started by new_malignancy of 2026-01-02", "started by new_malignancy"),
    ],
)
def test_the_reason_carries_no_identifying_date(stored: str, written: str) -> None:
    body = due_csv.due_csv([_item(reason=stored)], site_id="Rome")
    [record] = _records(body)
    assert record["reason"].startswith(written)
    assert not re.search(r"\d{4}-\d{2}-\d{2}", record["reason"])
    assert b"born" not in body


@pytest.mark.parametrize(
    ("site", "plain"),
    [
        ("Rome", "due-Rome-2026-11-25.csv"),
        ('Roma, "Gemelli"\nUniversità', "due-Roma_Gemelli_Universit_-2026-11-25.csv"),
        ("../..", "due-.._..-2026-11-25.csv"),
        ("Łódź", "due-_d_-2026-11-25.csv"),
    ],
)
def test_the_file_name_is_safe_in_a_header(site: str, plain: str) -> None:
    name = due_csv.filename(site, date(2026, 11, 25))
    assert name == f"due-{site}-2026-11-25.csv"
    header = attachment(name)
    assert header.startswith(f'attachment; filename="{plain}"')
    header.encode("latin-1")  # a header value must be Latin-1
    assert "\n" not in header
    if plain != name:
        assert header.endswith(f"; filename*=UTF-8''{quote(name, safe='')}")
