"""Issue 16 on the command line: an impossible date, a control character or a lone
surrogate (bytes that are not UTF-8 arrive as one) is a one-line message and exit 1,
never a traceback, and nothing is written.

On main these enrolled the patient, or ended in a traceback.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(sys.executable).parent / "surveillance"
CAR_T = "cd19-car-t-pediatric-autoimmune"
ENROLMENT = {
    "study-id": "ROM-101",
    "site": "Rome",
    "birth": "2014-03-01",
    "sex": "F",
    "diagnosis": "sle",
    "protocol": CAR_T,
    "infusion": "2024-01-31",
}


def _run(folder: Path, *args: str | bytes) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SURVEILLANCE_")}
    env["DATABASE_URL"] = f"sqlite:///{folder / 'x.db'}"
    env["SURVEILLANCE_DATA_DIR"] = str(folder / "data")
    return subprocess.run(
        [str(SCRIPT), *args],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        errors="replace",
        timeout=120,
        check=False,
    )


def _refused(folder: Path, *args: str | bytes) -> str:
    done = _run(folder, *args)
    assert done.returncode == 1, (args, done.stdout, done.stderr)
    assert "Traceback" not in done.stderr + done.stdout
    assert done.stderr.startswith("error: "), done.stderr
    assert done.stderr.count("\n") == 1, done.stderr  # one line: no control character echoed
    return done.stderr


def _enroll(**overrides: str | bytes) -> list[str | bytes]:
    options = {**ENROLMENT, **overrides}
    return ["enroll", *[part for key, value in options.items() for part in (f"--{key}", value)]]


@pytest.fixture(scope="module")
def rome(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("rome")
    done = _run(
        folder, "sites", "add", "--id", "Rome", "--name", "Rome", "--timezone", "Europe/Rome"
    )
    assert done.returncode == 0, done.stderr
    done = _run(folder, *_enroll(**{"study-id": "ROM-100"}))
    assert done.returncode == 0, done.stderr
    return folder


def _patients(folder: Path) -> int:
    with sqlite3.connect(folder / "x.db") as connection:
        return int(connection.execute("SELECT count(*) FROM patients").fetchone()[0])


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (
            {"birth": "0001-01-01", "infusion": "0001-01-02"},
            "birth_date: 0001-01-01 is before 1900",
        ),
        (
            {"infusion": "1989-12-31", "birth": "1980-01-01"},
            "infusion_date: 1989-12-31 is before 1990",
        ),
        ({"study-id": "ROM-102\r"}, "study_id: control character U+000D"),
        ({"study-id": b"ROM-\xed\xa0\x80"}, "study_id: a lone surrogate"),
        ({"diagnosis": "sle\x1b[2J"}, "diagnosis: control character U+001B"),
        ({"site": "Ro\u202eme"}, "site: bidirectional control U+202E"),
    ],
)
def test_an_enrolment_with_bad_input_is_one_line_and_writes_nothing(
    rome: Path, overrides: dict[str, str | bytes], expected: str
) -> None:
    before = _patients(rome)
    assert expected in _refused(rome, *_enroll(**overrides))
    assert _patients(rome) == before


@pytest.mark.parametrize(
    "args",
    [
        ("due", "--site", "Rome", "--on", "9999-12-31"),
        ("due", "--site", "Rome", "--on", "0001-01-01"),
        ("show", "ROM-100", "--on", "9999-12-31"),
        ("calendar", "--protocol", CAR_T, "--infusion", "9999-12-31"),
        ("calendar", "--protocol", CAR_T, "--infusion", "0001-01-01"),
    ],
)
def test_an_as_of_date_outside_the_calendar_is_a_message(rome: Path, args: tuple[str, ...]) -> None:
    message = _refused(rome, *args)
    assert "is after" in message or "is before" in message


def test_a_status_reason_with_a_line_break_is_refused(rome: Path) -> None:
    message = _refused(
        rome, "status", "ROM-100", "--status", "withdrawn", "--on", "2026-01-01", "--reason", "a\nb"
    )
    assert "reason: control character U+000A" in message
