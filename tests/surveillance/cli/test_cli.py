"""The command line, run as a user runs it: the installed ``surveillance`` console script.

Each command runs in a child process with ``DATABASE_URL`` pointing at a SQLite file in
a temporary folder (also its working directory, and the data directory's parent).
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import icalendar
import pytest
from support.factories import write_amended_aav

import rules

SCRIPT = Path(sys.executable).parent / "surveillance"
CAR_T = "cd19-car-t-pediatric-autoimmune"
AAV = "aav-liver-5-year"
REQUIRED_KEYS = {
    "assessment",
    "name",
    "category",
    "occurrence",
    "due",
    "window_start",
    "window_end",
    "protocol",
    "protocol_version",
    "reason",
}
STATE_ORDER = {"overdue": 0, "due": 1, "upcoming": 2}


@dataclass(frozen=True)
class Cli:
    folder: Path
    extra_env: tuple[tuple[str, str], ...] = ()

    @property
    def database(self) -> Path:
        return self.folder / "x.db"

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        assert SCRIPT.exists(), f"console script not installed at {SCRIPT}"
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith("SURVEILLANCE_") and key != "DATABASE_URL"
        }
        env["DATABASE_URL"] = f"sqlite:///{self.database}"
        env["SURVEILLANCE_DATA_DIR"] = str(self.folder / "data")  # the demo's passwords
        env.update(dict(self.extra_env))
        return subprocess.run(
            [str(SCRIPT), *args],
            cwd=self.folder,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    def ok(self, *args: str) -> str:
        done = self.run(*args)
        assert done.returncode == 0, f"{args}: exit {done.returncode}\n{done.stderr}"
        assert "Traceback" not in done.stderr
        return done.stdout

    def fails(self, *args: str) -> str:
        """Run a command that must be refused; returns its one-line error message."""
        done = self.run(*args)
        assert done.returncode != 0, f"{args} should have failed:\n{done.stdout}"
        assert "Traceback" not in done.stderr + done.stdout
        assert done.stderr.startswith("error: "), done.stderr
        return done.stderr.strip()

    def query(self, sql: str, *params: object) -> list[tuple[object, ...]]:
        with sqlite3.connect(self.database) as connection:
            return connection.execute(sql, params).fetchall()

    def with_env(self, **env: str) -> Cli:
        return Cli(self.folder, (*self.extra_env, *env.items()))


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Cli:
    """The demo cohort, loaded once for the read-only tests below."""
    cli = Cli(tmp_path_factory.mktemp("demo"))
    out = cli.ok("demo")
    assert "8 synthetic patients" in out
    return cli


@pytest.fixture(scope="module")
def rome(tmp_path_factory: pytest.TempPathFactory) -> Cli:
    """A database with the Rome site and nothing else (for refused enrolments)."""
    cli = Cli(tmp_path_factory.mktemp("rome"))
    cli.ok("sites", "add", "--id", "Rome", "--name", "Rome", "--timezone", "Europe/Rome")
    return cli


def _enroll_args(**overrides: str) -> list[str]:
    options = {
        "study-id": "ROM-101",
        "site": "Rome",
        "birth": "2014-03-01",
        "sex": "F",
        "diagnosis": "sle",
        "protocol": CAR_T,
        "infusion": "2024-01-31",
        **{key.replace("_", "-"): value for key, value in overrides.items()},
    }
    return ["enroll", *[part for key, value in options.items() for part in (f"--{key}", value)]]


# -- protocols -------------------------------------------------------------------------------


def test_protocols_list(cli: Cli) -> None:
    out = cli.ok("protocols", "list")
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["protocol", "version", "assessments"]
    rows = {line.split()[0]: line.split() for line in lines[2:]}
    assert set(rows) == {AAV, CAR_T}
    assert rows[CAR_T][1:4] == [  # newest version of each last: 1.1 of the CAR-T protocol
        "1.1",
        str(len(rules.ProtocolRegistry.from_directory().get(CAR_T).rules)),
        "Y15",
    ]
    assert rows[AAV][3] == "Y5"
    assert rows[AAV][-1] == f"{AAV}.yaml"


def test_protocols_check_accepts_the_bundled_files(cli: Cli) -> None:
    files = sorted(str(p) for p in rules.BUNDLED_PROTOCOLS.glob("*.yaml"))
    out = cli.ok("protocols", "check", *files)
    assert [line.split(":")[0] for line in out.splitlines()] == ["ok", "ok", "ok"]
    assert f"{CAR_T} version 1.0" in out
    assert f"{CAR_T} version 1.1" in out
    assert f"{AAV} version 1.0" in out


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "  - id: rcl_test\n",
            "  - id: rcl_test\n    colour: red\n",
            "broken.yaml, assessment 'rcl_test', field 'colour': unknown key 'colour'",
        ),
        (
            "      - at: [M6, M12]\n        window: [-30, 30]\n    on_result:",
            "      - at: [Q6, M12]\n        window: [-30, 30]\n    on_result:",
            "broken.yaml, assessment 'rcl_test', field 'schedule[1].at': bad offset 'Q6'",
        ),
    ],
)
def test_protocols_check_names_the_file_and_field_of_a_broken_protocol(
    cli: Cli, old: str, new: str, expected: str
) -> None:
    text = (rules.BUNDLED_PROTOCOLS / f"{CAR_T}.yaml").read_text(encoding="utf-8")
    assert text.count(old) == 1
    (cli.folder / "broken.yaml").write_text(text.replace(old, new), encoding="utf-8")
    good = str(rules.BUNDLED_PROTOCOLS / f"{AAV}.yaml")
    done = cli.run("protocols", "check", "broken.yaml", good)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert done.stderr.startswith(f"error: {expected}")
    assert done.stdout.startswith(f"ok: {good}")  # the other file is still checked


def test_protocols_check_on_a_missing_file(cli: Cli) -> None:
    assert "nowhere.yaml" in cli.fails("protocols", "check", "nowhere.yaml")


# -- calendar preview -------------------------------------------------------------------------


def _car_t_json(cli: Cli) -> list[dict[str, object]]:
    out = cli.ok(
        "calendar",
        "--protocol",
        CAR_T,
        "--infusion",
        "2024-01-31",
        "--birth",
        "2014-03-01",
        "--diagnosis",
        "sle",
        "--format",
        "json",
    )
    parsed = json.loads(out)
    assert isinstance(parsed, list)
    return parsed


def test_calendar_json_is_the_engines_plan_sorted_by_due_date(cli: Cli) -> None:
    items = _car_t_json(cli)
    plan = rules.build_calendar(
        rules.ProtocolRegistry.from_directory().get(CAR_T),
        rules.PatientFacts(date(2014, 3, 1), "sle", "F"),
        [date(2024, 1, 31)],
    )
    assert len(items) == len(plan)
    assert all(REQUIRED_KEYS <= set(item) for item in items)
    dues = [str(item["due"]) for item in items]
    assert dues == sorted(dues)
    assert [(i["assessment"], i["occurrence"], i["due"]) for i in items] == [
        (p.assessment, p.occurrence, p.due.isoformat()) for p in plan
    ]
    for item in items:
        start, due, end = (
            date.fromisoformat(str(item[k])) for k in ("window_start", "due", "window_end")
        )
        assert start <= due <= end
        assert (item["protocol"], item["protocol_version"]) == (CAR_T, "1.1")
    assessments = {item["assessment"] for item in items}
    assert "sle_activity" in assessments
    assert "ssc_activity" not in assessments  # the --diagnosis was used
    rcl = [i for i in items if i["assessment"] == "rcl_test"]
    assert [i["due"] for i in rcl] == ["2024-04-30", "2024-07-31", "2025-01-31"]
    assert str(rcl[1]["reason"]).startswith("month 6 after infusion of 2024-01-31")


def test_calendar_ics_has_one_event_per_assessment(cli: Cli) -> None:
    items = _car_t_json(cli)
    out = cli.ok(
        "calendar",
        "--protocol",
        CAR_T,
        "--infusion",
        "2024-01-31",
        "--birth",
        "2014-03-01",
        "--diagnosis",
        "sle",
        "--format",
        "ics",
    )
    calendar = icalendar.Calendar.from_ical(out)
    events = [c for c in calendar.walk() if c.name == "VEVENT"]
    assert len(events) == len(items)
    assert len({str(e["UID"]) for e in events}) == len(events)
    assert sorted(e.decoded("DTSTART").isoformat() for e in events) == sorted(
        str(i["due"]) for i in items
    )
    assert str(calendar["VERSION"]) == "2.0"


def test_calendar_prints_the_aav_table(cli: Cli) -> None:
    out = cli.ok(
        "calendar", "--protocol", AAV, "--infusion", "2024-01-31", "--diagnosis", "hemophilia_b"
    )
    assert out.splitlines()[0].split()[:3] == ["due", "window", "start"]
    assert "aav_alt" in out
    assert "aav_hcc_imaging" in out
    assert f"assessments, {AAV} version 1.0, diagnosis hemophilia_b" in out


def test_calendar_with_an_unknown_protocol_is_an_error(cli: Cli) -> None:
    message = cli.fails("calendar", "--protocol", "cd20", "--infusion", "2024-01-31")
    assert "unknown protocol 'cd20'" in message


# -- demo, due list, show, audit ----------------------------------------------------------


def test_due_shows_overdue_lines_first(demo: Cli) -> None:
    out = demo.ok("due", "--site", "Rome")
    header, _, *table = out.splitlines()
    assert header.startswith("Rome on ")
    assert table[0].split()[:2] == ["state", "days"]
    states = [line.split()[0] for line in table[2:]]
    assert states[0] == "overdue"
    assert {"overdue", "due"} <= set(states)
    assert [STATE_ORDER[s] for s in states] == sorted(STATE_ORDER[s] for s in states)
    overdue_days = [int(line.split()[1]) for line in table[2:] if line.startswith("overdue")]
    assert overdue_days == sorted(overdue_days, reverse=True)
    assert all(" ROM-" in line for line in table[2:])  # Rome's patients only


def test_due_as_json_and_csv_agree(demo: Cli) -> None:
    items = json.loads(demo.ok("due", "--site", "Rome", "--format", "json"))
    text = demo.ok("due", "--site", "Rome", "--format", "csv")
    assert text.startswith("\ufeffstate,")  # the API's file (docs/csv.md)
    rows = list(csv.DictReader(io.StringIO(text.removeprefix("\ufeff"))))
    assert items
    assert [row["key"] for row in rows] == [item["key"] for item in items]
    assert [row["state"] for row in rows] == [item["state"] for item in items]
    assert [STATE_ORDER[i["state"]] for i in items] == sorted(
        STATE_ORDER[i["state"]] for i in items
    )
    assert {i["study_id"][:4] for i in items} == {"ROM-"}
    assert {"key", "state", "due", "window_start", "window_end", "days_overdue"} <= set(rows[0])


def test_due_filters_by_state_and_day(demo: Cli) -> None:
    overdue = json.loads(
        demo.ok("due", "--site", "Erlangen", "--status", "overdue", "--format", "json")
    )
    assert overdue
    assert {i["state"] for i in overdue} == {"overdue"}
    assert {i["study_id"][:4] for i in overdue} == {"ERL-"}
    # Far in the future everything still pending in the next window is overdue.
    later = json.loads(demo.ok("due", "--site", "Rome", "--on", "2045-01-01", "--format", "json"))
    assert later
    assert {i["state"] for i in later} == {"overdue"}


def test_due_for_an_unknown_site_is_an_error(demo: Cli) -> None:
    assert "unknown site 'Milan'; known: Erlangen, Rome" in demo.fails("due", "--site", "Milan")


def test_show_a_patient(demo: Cli) -> None:
    out = demo.ok("show", "ROM-001")
    assert out.startswith("ROM-001  site Rome")
    assert "completed" in out
    rows = json.loads(demo.ok("show", "ROM-001", "--format", "json"))
    assert {row["status"] for row in rows} >= {"completed", "pending"}
    assert all(row["key"].startswith("ROM-001:1:") for row in rows)


def test_show_an_unknown_patient_is_an_error(demo: Cli) -> None:
    assert "no patient with study id 'ROM-999'" in demo.fails("show", "ROM-999")


def test_audit_verify_on_the_demo(demo: Cli) -> None:
    assert demo.ok("audit", "verify").strip() == "audit trail intact"


def test_audit_verify_reports_an_edited_row(demo: Cli, cli: Cli) -> None:
    with sqlite3.connect(demo.database) as source, sqlite3.connect(cli.database) as copy:
        source.backup(copy)  # a copy of the demo database, WAL included
    with sqlite3.connect(cli.database) as connection:
        connection.execute("UPDATE audit_log SET new_values = '{}' WHERE id = 20")
    done = cli.run("audit", "verify")
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert done.stderr.splitlines() == [
        "audit row 20: content does not match its hash: the row was edited"
    ]


def test_audit_verify_reports_the_newest_rows_deleted(demo: Cli, cli: Cli) -> None:
    head = demo.ok("audit", "head").split()
    assert head[0] == "rows"
    assert head[4] == "hash"
    assert len(head[5]) == 64
    with sqlite3.connect(demo.database) as source, sqlite3.connect(cli.database) as copy:
        source.backup(copy)
    with sqlite3.connect(cli.database) as connection:
        connection.execute(
            "DELETE FROM audit_log WHERE id IN (SELECT id FROM audit_log ORDER BY id DESC LIMIT 2)"
        )
    done = cli.run("audit", "verify")
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert "the newest rows were deleted" in done.stderr


# -- enrol and record -------------------------------------------------------------------------


def test_enroll_then_record(cli: Cli) -> None:
    cli.ok("sites", "add", "--id", "Rome", "--name", "Rome", "--timezone", "Europe/Rome")
    planned = len(_car_t_json(cli))
    assert (
        cli.ok(*_enroll_args()).strip()
        == f"enrolled ROM-101 at Rome: {planned} assessments planned"
    )
    assert cli.query("SELECT study_id, protocol_version FROM patients") == [("ROM-101", "1.1")]

    out = cli.ok(
        "record",
        "ROM-101:1:rcl_test:1",
        "--outcome",
        "completed",
        "--on",
        "2024-05-20",
        "--result",
        "negative",
    )
    assert out.splitlines()[0] == (
        "recorded ROM-101:1:rcl_test:1: completed on 2024-05-20"
        " (outside its window: protocol deviation)"
    )
    assert cli.query(
        "SELECT status, performed_on, result, protocol_deviation FROM assessments"
        " WHERE assessment = 'rcl_test' AND occurrence = 1"
    ) == [("completed", "2024-05-20", "negative", 1)]

    message = cli.fails(
        "record", "ROM-101:1:rcl_test:1", "--outcome", "missed", "--on", "2024-05-14"
    )
    assert "already completed on 2024-05-20; it cannot be recorded twice" in message
    assert cli.query("SELECT count(*) FROM outcomes") == [(1,)]

    assert "is not an assessment key" in cli.fails(
        "record", "ROM-101-rcl_test-2", "--outcome", "completed", "--on", "2024-07-31"
    )
    assert "no assessment 'ROM-101:1:rcl_test:9'" in cli.fails(
        "record", "ROM-101:1:rcl_test:9", "--outcome", "completed", "--on", "2024-07-31"
    )
    assert "before the infusion" in cli.fails(
        "record", "ROM-101:1:rcl_test:2", "--outcome", "completed", "--on", "2023-07-31"
    )
    assert cli.query("SELECT count(*) FROM outcomes") == [(1,)]


def test_correct_a_recorded_result_with_a_reason(cli: Cli) -> None:
    cli.ok("sites", "add", "--id", "Rome", "--name", "Rome", "--timezone", "Europe/Rome")
    cli.ok(*_enroll_args())
    key = "ROM-101:1:rcl_test:1"
    cli.ok("record", key, "--outcome", "completed", "--on", "2024-04-30", "--result", "negative")
    assert "needs a reason" in cli.fails("correct", key, "--result", "positive", "--reason", " ")
    out = cli.ok("correct", key, "--result", "Positive", "--reason", "transcription error")
    assert out.splitlines()[0] == f"corrected {key}: completed on 2024-04-30, result positive"
    assert "calendar:" in out
    assert out.splitlines()[-1].startswith(
        "so: corrected to positive: starts RCL confirmation by culture assay"
    )
    assert "opens a serious safety case" in out
    assert cli.query("SELECT result FROM outcomes ORDER BY id") == [("negative",), ("positive",)]
    assert cli.query(
        "SELECT count(*) FROM assessments WHERE assessment = 'rcl_confirm' AND status = 'pending'"
    ) == [(1,)]


def test_record_refuses_a_result_its_assessment_cannot_produce(cli: Cli) -> None:
    cli.ok("sites", "add", "--id", "Rome", "--name", "Rome", "--timezone", "Europe/Rome")
    cli.ok(*_enroll_args())
    key = ["ROM-101:1:immunoglobulins:1", "--outcome", "completed", "--on", "2024-02-28"]
    for typed, says in [
        ("350", "error: result for immunoglobulins: '350' needs a unit: one of mg/dL, g/L"),
        ("40000 mg/dL", "outside the plausible range 0 to 5000 mg/dL"),
        ("350 mmHg", "unit 'mmHg' is not accepted here: use mg/dL, g/L"),
    ]:
        assert says in cli.fails("record", *key, "--result", typed)
    assert cli.query("SELECT count(*) FROM outcomes") == [(0,)]
    out = cli.ok("record", *key, "--result", "3.5 g/L")
    assert "so: 350 mg/dL: starts 4 × IVIG replacement" in out
    assert cli.query(
        "SELECT result FROM assessments WHERE assessment = 'immunoglobulins' AND occurrence = 1"
    ) == [("350",)]


@pytest.mark.parametrize(
    ("study_id", "overrides", "expected"),
    [
        (
            "ROM-201",
            {"infusion": "2014-02-01"},
            "infusion date 2014-02-01 is before the birth date",
        ),
        ("ROM-202", {"infusion": "2099-01-01"}, "infusion date 2099-01-01 is in the future"),
        ("ROM-203", {"protocol": "cd20-car-t"}, "unknown protocol 'cd20-car-t'"),
        ("ROM-204", {"site": "Milan"}, "unknown site 'Milan'"),
        ("ROM-205", {"diagnosis": "ra"}, "diagnosis 'ra' is not covered"),
        ("Maria Rossi", {}, "is not a pseudonymous id"),
    ],
)
def test_enroll_refuses_impossible_facts_and_writes_nothing(
    rome: Cli, study_id: str, overrides: dict[str, str], expected: str
) -> None:
    counts = "SELECT (SELECT count(*) FROM patients), (SELECT count(*) FROM assessments),"
    counts += " (SELECT count(*) FROM infusions), (SELECT count(*) FROM audit_log)"
    before = rome.query(counts)
    message = rome.fails(*_enroll_args(study_id=study_id, **overrides))
    assert expected in message
    assert rome.query("SELECT count(*) FROM patients WHERE study_id = ?", study_id) == [(0,)]
    assert rome.query(counts) == before


def test_enroll_twice_is_an_error(rome: Cli) -> None:
    rome.ok(*_enroll_args(study_id="ROM-401"))
    assert "already enrolled: ROM-401" in rome.fails(
        *_enroll_args(study_id="ROM-401", diagnosis="jdm")
    )
    assert rome.query("SELECT diagnosis FROM patients WHERE study_id = 'ROM-401'") == [("sle",)]
    assert "no patient with study id 'ROM-402'" in rome.fails("show", "ROM-402")


# -- amendments ----------------------------------------------------------------------------


@pytest.fixture
def amended(cli: Cli) -> Iterator[Cli]:
    """An AAV patient enrolled on 1.0; the returned CLI also knows version 1.1."""
    cli.ok("sites", "add", "--id", "Rome", "--name", "Rome", "--timezone", "Europe/Rome")
    cli.ok(
        *_enroll_args(
            study_id="ROM-301", protocol=AAV, diagnosis="hemophilia_b", birth="1990-05-01"
        )
    )
    folder = cli.folder / "protocols"
    write_amended_aav(folder)
    yield cli.with_env(SURVEILLANCE_PROTOCOLS_DIR=str(folder))
    shutil.rmtree(folder)


def test_amend_dry_run_then_apply(amended: Cli) -> None:
    snapshot = "SELECT * FROM assessments ORDER BY id"
    before = amended.query(snapshot)

    out = amended.ok("amend", "--protocol", AAV, "--to-version", "1.1")
    assert out.splitlines()[0].startswith("ROM-301: 1.0 -> 1.1: 9 added, 9 moved, 0 cancelled")
    assert out.splitlines()[-1] == "dry run: nothing written for 1 patient(s)"
    assert amended.query(snapshot) == before
    assert amended.query("SELECT protocol_version FROM patients") == [("1.0",)]

    out = amended.ok("amend", "--protocol", AAV, "--to-version", "1.1", "--apply")
    assert out.splitlines()[-1] == "applied to 1 patient(s)"
    assert amended.query("SELECT protocol_version FROM patients") == [("1.1",)]
    assert amended.query(
        "SELECT count(*) FROM assessments WHERE assessment = 'aav_hcc_imaging'"
    ) == [(19,)]
    assert amended.query("SELECT count(*) FROM audit_log WHERE action = 'protocol_move'") == [(1,)]
    assert amended.ok("audit", "verify").strip() == "audit trail intact"
