"""`surveillance db upgrade` on a database of the version before typed results (schema 0006,
results stored as free text), then `surveillance results review|map`, as an operator runs
them: the installed console script in a child process, on a SQLite file.

The child runs the code this test imports (``PYTHONPATH``), whichever checkout that is.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest
from support.factories import add_sites, enroll_committed
from support.legacy import downgrade, store_free_text

import rules
import surveillance
from surveillance.kit import migrate
from surveillance.kit.db import make_engine

SCRIPT = Path(sys.executable).parent / "surveillance"
CODE = Path(surveillance.__file__).parents[1]
LEGACY = {
    "ROM-101:1:rcl_test:1": "Positive",
    "ROM-101:1:immunoglobulins:1": "350 mg/dL",
    "ROM-101:1:rcl_test:2": "Positive by qPCR",
    "ROM-101:1:bcell_cd19:1": "CD19+ back",  # undeclared: a remark, left as it is
}
UNREADABLE = "ROM-101:1:rcl_test:2"


class Cli:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.database = folder / "x.db"

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        assert SCRIPT.exists(), f"console script not installed at {SCRIPT}"
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith("SURVEILLANCE_") and key != "DATABASE_URL"
        }
        env["DATABASE_URL"] = f"sqlite:///{self.database}"
        env["PYTHONPATH"] = os.pathsep.join([str(CODE), env.get("PYTHONPATH", "")])
        return subprocess.run(
            [str(SCRIPT), *args],
            cwd=self.folder,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    def ok(self, *args: str) -> subprocess.CompletedProcess[str]:
        done = self.run(*args)
        assert done.returncode == 0, f"{args}: exit {done.returncode}\n{done.stderr}"
        assert "Traceback" not in done.stderr
        return done

    def query(self, sql: str, *params: object) -> list[tuple[object, ...]]:
        with sqlite3.connect(self.database) as connection:
            return connection.execute(sql, params).fetchall()


@pytest.fixture
def legacy(tmp_path: Path, registry: rules.ProtocolRegistry, now: datetime) -> Cli:
    """A database at schema 0006 holding results as the old version stored them."""
    cli = Cli(tmp_path)
    engine = make_engine(f"sqlite:///{cli.database}")
    migrate.upgrade(engine)
    add_sites(engine)
    enroll_committed(engine, registry, now)
    for key, typed in LEGACY.items():
        store_free_text(engine, registry, now, key, typed)
    engine.dispose()
    downgrade(f"sqlite:///{cli.database}", "0006")  # the schema before typed results
    return cli


def test_db_upgrade_reads_stored_results_and_lists_the_rest(legacy: Cli) -> None:
    out = legacy.ok("db", "upgrade").stdout.splitlines()

    assert out[0].startswith(f"schema at revision {migrate.head_revision()}")
    assert out[1] == (
        "typed results: 3 stored results checked, 2 mapped, 1 need a typed value "
        "(surveillance results review --site SITE)"
    )
    results = dict(
        legacy.query(
            "SELECT assessment || ':' || occurrence, coalesce(result, '-') || '|' ||"
            " coalesce(result_as_entered, '-') FROM assessments WHERE status = 'completed'"
        )
    )
    assert results == {
        "rcl_test:1": "positive|-",
        "immunoglobulins:1": "350|-",
        "rcl_test:2": "-|Positive by qPCR",
        "bcell_cd19:1": "CD19+ back|-",
    }
    # The positive opened its case; the IgG below 400 mg/dL started IVIG.
    assert legacy.query("SELECT source FROM adverse_event_versions") == [
        ("assessment ROM-101:1:rcl_test:1",)
    ]
    assert legacy.query("SELECT count(*) FROM assessments WHERE assessment = 'ivig_course'") != [
        (0,)
    ]

    review = legacy.ok("results", "review", "--site", "Rome").stdout.splitlines()
    assert review[0].split()[:3] == ["key", "assessment", "performed"]
    [row] = review[2:]
    assert row.startswith(UNREADABLE)
    assert "Positive by qPCR" in row
    assert "one of negative, positive" in row

    again = legacy.ok("results", "map").stdout
    assert again.strip() == (
        "typed results: 2 stored results checked, 0 mapped, 0 need a typed value; "
        "1 flagged earlier still await one (surveillance results review --site SITE)"
    )
    assert legacy.ok("db", "upgrade").stdout.splitlines()[1:] == []  # nothing passed 0007

    legacy.ok("correct", UNREADABLE, "--result", "positive", "--reason", "qPCR positive (lab)")
    assert (
        legacy.ok("results", "review", "--site", "Rome").stdout.strip()
        == "no results need a typed value at Rome"
    )
    assert legacy.ok("audit", "verify").stdout.strip() == "audit trail intact"


def test_any_command_upgrading_past_0007_reads_the_results_too(legacy: Cli) -> None:
    """The report goes to stderr: stdout stays the command's own (here, JSON)."""
    done = legacy.ok("show", "ROM-101", "--format", "json")
    assert "typed results: 3 stored results checked, 2 mapped, 1 need a typed value" in (
        done.stderr
    )
    assert isinstance(json.loads(done.stdout), list)
    assert legacy.query(
        "SELECT result_as_entered FROM assessments WHERE result_as_entered IS NOT NULL"
    ) == [("Positive by qPCR",)]


def test_review_of_an_unknown_site_is_an_error(legacy: Cli) -> None:
    legacy.ok("db", "upgrade")
    done = legacy.run("results", "review", "--site", "Nowhere")
    assert done.returncode == 1
    assert done.stderr.startswith("error: unknown site 'Nowhere'; known: Erlangen, Rome")
