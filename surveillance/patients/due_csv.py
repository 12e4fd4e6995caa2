"""A due list as CSV, one file shape for the API's ``?format=csv`` and the page's download."""

from __future__ import annotations

import csv
import io
from typing import Any

from surveillance.patients.due_list import DueItem

CSV_COLUMNS = (
    "state", "days_overdue", "study_id", "key", "assessment", "name", "category",
    "due", "window_start", "window_end", "appointment", "reason",
)  # fmt: skip
CSV_MEDIA_TYPE = "text/csv; charset=utf-8"


def _row(item: DueItem) -> dict[str, Any]:
    return {**item.as_dict(), "appointment": item.appointment_on}


def due_csv(items: list[DueItem]) -> str:
    """The items as CSV text, with a byte-order mark so spreadsheet programs read UTF-8."""
    buffer = io.StringIO()
    buffer.write("\ufeff")
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(_row(item) for item in items)
    return buffer.getvalue()


def csv_filename(site_id: str, on: str) -> str:
    return f"due-{site_id}-{on}.csv"
