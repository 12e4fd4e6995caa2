"""The due list as a CSV file: the one layout and encoding of every export (the command
line's ``due --format csv``, the API's ``?format=csv``), documented in docs/csv.md.

UTF-8 with a byte-order mark, so Excel reads "Università" and "Müller" right in Rome and
in Erlangen; a header row; CRLF line ends and quotes only where a value needs them
(RFC 4180). The same rows on the same day give the same bytes, whoever asks.

The reason is the public one (``public_reason``): a file gets mailed around, so no birth
or infusion date leaves the system in it. A text cell that a spreadsheet would run as a
formula (starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return) is written
with a leading apostrophe.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable
from datetime import date
from types import MappingProxyType

from surveillance.patients.due_list import DueItem

# What the bytes are, as an HTTP Content-Type and as a Python codec (the BOM, once).
MEDIA_TYPE = "text/csv; charset=utf-8; header=present"
ENCODING = "utf-8-sig"
LINE_END = "\r\n"

_Cell = Callable[[DueItem, str], str | int]


def _day(value: date | None) -> str:
    return value.isoformat() if value is not None else ""


# Column name -> its cell from (row, site id), in file order: the nurse's reading order
# (as the list on screen), the identifiers a program needs next, the free text last.
_CELLS: MappingProxyType[str, _Cell] = MappingProxyType(
    {
        "state": lambda item, _: item.state.value,
        "days_overdue": lambda item, _: item.days_overdue,
        "study_id": lambda item, _: item.study_id,
        "site": lambda _, site_id: site_id,
        "name": lambda item, _: item.name,
        "category": lambda item, _: item.category,
        "due": lambda item, _: _day(item.due_on),
        "window_start": lambda item, _: _day(item.window_start),
        "window_end": lambda item, _: _day(item.window_end),
        "appointment": lambda item, _: _day(item.appointment_on),
        "assessment": lambda item, _: item.assessment,
        "key": lambda item, _: item.key,
        "reason": lambda item, _: item.public_reason,
    }
)
COLUMNS: tuple[str, ...] = tuple(_CELLS)

_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def _neutral(cell: str | int) -> str | int:
    """A text cell a spreadsheet would evaluate, made literal with a leading apostrophe."""
    return f"'{cell}" if isinstance(cell, str) and cell.startswith(_FORMULA) else cell


def due_csv(items: Iterable[DueItem], *, site_id: str) -> bytes:
    """The file's bytes: BOM, header, one row per item in the list's order."""
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, dialect="excel", lineterminator=LINE_END)
    writer.writerow(COLUMNS)
    cells = tuple(_CELLS.values())
    writer.writerows([_neutral(cell(item, site_id)) for cell in cells] for item in items)
    return buffer.getvalue().encode(ENCODING)


def filename(site_id: str, on: date) -> str:
    """``due-Rome-2026-11-25.csv``, the site id as it is (a download's header makes it safe:
    ``http.downloads.attachment``)."""
    return f"due-{site_id}-{on.isoformat()}.csv"
