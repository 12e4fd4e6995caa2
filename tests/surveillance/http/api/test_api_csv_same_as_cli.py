"""The due-list CSV is one file: the installed ``surveillance due --format csv`` and
``GET /sites/{site}/due?format=csv`` give the same bytes on the same database and day
(SQLite and PostgreSQL), laid out as docs/csv.md says, without identifying dates."""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from support.api_support import TODAY, Api

from surveillance.kit.db import write_session
from surveillance.patients import due_csv
from surveillance.patients.due_list import public_reason
from surveillance.records import sites

SCRIPT = Path(sys.executable).parent / "surveillance"
BIRTH, INFUSION = date(2014, 3, 1), date(2024, 1, 31)  # ROM-101 (support.api_support)
# Turns 18 within the list's 30 days: a birthday-anchored row is on it.
TEEN_BIRTH = date(TODAY.year - 18, TODAY.month, TODAY.day) + timedelta(days=10)
TEEN_INFUSION = date(2025, 6, 17)
# A site id a spreadsheet must not split or misread: a comma, quotes, an accent, a newline.
# A site id is one line (issue 16 refuses control characters); a newline inside a cell is
# covered by tests/surveillance/patients/test_due_csv.py.
ODD_SITE = 'Roma, "Gemelli" Università'


@pytest.fixture(scope="module")
def listed(shared_api: Api) -> Api:
    api = shared_api
    api.enroll()  # ROM-101, born 2014-03-01, infused 2024-01-31
    api.enroll(study_id="ROM-102", birth_date=TEEN_BIRTH, infusion_date=TEEN_INFUSION)
    with write_session(api.engine) as session:
        sites.add_site(session, site_id=ODD_SITE, name="Gemelli", timezone="Europe/Rome")
    api.enroll(study_id="GEM-001", site_id=ODD_SITE)
    due = [i for i in _json(api, "Rome") if i["state"] == "due"]
    booked = api.post(
        f"/api/v1/assessments/{due[0]['key']}/reschedule",
        {"date": due[0]["window_end"]},
        if_match=f'"{api.version(due[0]["key"])}"',
    )
    assert booked.status_code == 200, booked.text
    return api


def _due(site: str) -> str:
    return f"/api/v1/sites/{quote(site, safe='')}/due"


def _json(api: Api, site: str) -> list[dict[str, Any]]:
    response = api.get(_due(site), role="admin", on=TODAY.isoformat(), limit=5000)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def _api_csv(api: Api, site: str) -> bytes:
    response = api.get(_due(site), role="admin", format="csv", on=str(TODAY))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/csv; charset=utf-8; header=present"
    return response.content


def _cli_csv(api: Api, site: str, folder: Path) -> bytes:
    """The installed console script, in a child process, on the API's database."""
    assert SCRIPT.exists(), f"console script not installed at {SCRIPT}"
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("SURVEILLANCE_") and key != "DATABASE_URL"
    }
    env["DATABASE_URL"] = api.engine.url.render_as_string(hide_password=False)
    done = subprocess.run(
        [str(SCRIPT), "due", "--site", site, "--on", TODAY.isoformat(), "--format", "csv"],
        cwd=folder,
        env=env,
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout


def _rows(body: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(body.decode("utf-8-sig"), newline="")))


@pytest.mark.parametrize("site", ["Rome", ODD_SITE])
def test_the_command_line_and_the_api_write_the_same_bytes(
    listed: Api, site: str, tmp_path: Path
) -> None:
    from_api = _api_csv(listed, site)
    from_cli = _cli_csv(listed, site, tmp_path)
    assert from_cli == from_api
    header, *rows = _rows(from_api)
    assert tuple(header) == due_csv.COLUMNS
    keys = [item["key"] for item in _json(listed, site)]
    assert keys
    assert [row[header.index("key")] for row in rows] == keys
    assert {row[header.index("site")] for row in rows} == {site}


def test_one_bom_crlf_line_ends_and_every_column_filled_as_documented(listed: Api) -> None:
    body = _api_csv(listed, "Rome")
    assert body.startswith(b"\xef\xbb\xbfstate,days_overdue,study_id,site,")
    assert body.count(b"\xef\xbb\xbf") == 1
    assert body.endswith(b"\r\n")
    assert b"\n" not in body.replace(b"\r\n", b"")  # no value here holds a line break
    header, *rows = _rows(body)
    records = [dict(zip(header, row, strict=True)) for row in rows]
    items = {item["key"]: item for item in _json(listed, "Rome")}
    assert {record["state"] for record in records} == {"overdue", "due", "upcoming"}
    for record in records:
        item = items[record["key"]]
        for column in ("state", "study_id", "name", "category", "due", "window_start"):
            assert record[column] == str(item[column])
        assert record["window_end"] == item["window_end"]
        assert record["assessment"] == item["assessment"]
        assert int(record["days_overdue"]) == item["days_overdue"]
        assert record["appointment"] == (item["appointment"] or "")
        assert record["reason"] == public_reason(item["reason"])
    assert [r["appointment"] for r in records if r["appointment"]]  # the booked one


def test_a_comma_a_quote_and_an_accent_survive_the_trip(listed: Api, tmp_path: Path) -> None:
    body = _cli_csv(listed, ODD_SITE, tmp_path)
    assert '"Roma, ""Gemelli"" Università"'.encode() in body
    header, *rows = _rows(body)
    assert rows
    assert {row[header.index("site")] for row in rows} == {ODD_SITE}
    # Names with commas ("Baseline: disease activity, CBC, ...") come back whole, too.
    assert all(len(row) == len(header) for row in rows)


def test_the_download_is_named_after_the_site_and_day(listed: Api) -> None:
    rome = listed.get("/api/v1/sites/Rome/due", format="csv", on=str(TODAY))
    assert rome.headers["content-disposition"] == 'attachment; filename="due-Rome-2026-11-25.csv"'
    odd = listed.get(_due(ODD_SITE), role="admin", format="csv")
    disposition = odd.headers["content-disposition"]
    assert disposition.startswith(
        'attachment; filename="due-Roma_Gemelli_Universit_-2026-11-25.csv";'
    )
    assert disposition.endswith(
        "filename*=UTF-8''" + quote(f"due-{ODD_SITE}-2026-11-25.csv", safe="")
    )


def test_no_birth_or_infusion_date_in_any_cell(listed: Api, tmp_path: Path) -> None:
    """Not in the text, and no birth date anywhere; a window that closes on the infusion
    day still shows as a window (the schedule itself, as docs/csv.md says)."""
    body = _cli_csv(listed, "Rome", tmp_path)
    header, *rows = _rows(body)
    reasons = [row[header.index("reason")] for row in rows]
    assert any("birthday" in reason for reason in reasons)  # ROM-102 turns 18 in range
    assert any("after infusion" in reason for reason in reasons)
    births = {d.isoformat() for d in (BIRTH, TEEN_BIRTH)}
    infusions = {d.isoformat() for d in (INFUSION, TEEN_INFUSION)}
    schedule = {header.index(c) for c in ("due", "window_start", "window_end", "appointment")}
    for row in rows:
        for index, cell in enumerate(row):
            secrets = births if index in schedule else births | infusions
            assert not [secret for secret in secrets if secret in cell], row
            assert "born" not in cell, row
