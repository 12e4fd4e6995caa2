"""`surveillance undo KEY` as a nurse runs it: the installed console script in a child
process, ``DATABASE_URL`` a SQLite file in a temporary folder, ``USER`` the author.

The clock is stopped with ``--today`` (noon UTC of that day), so "within 15 minutes" does
not depend on how fast the machine runs the commands.
"""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(sys.executable).parent / "surveillance"
# The checkout these tests belong to: its code runs in the child, whatever is installed.
CHECKOUT = Path(__file__).resolve().parents[3]
CAR_T = "cd19-car-t-pediatric-autoimmune"
RCL = ["ROM-101:1:rcl_test:1", "ROM-101:1:rcl_test:2", "ROM-101:1:rcl_test:3"]
RULE = "only its author can undo it, within 15 minutes; after that, correct it with a reason"
DAY = "2025-03-01"  # the day everything is recorded (noon UTC)


class Cli:
    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def run(self, *args: str, user: str = "alice") -> subprocess.CompletedProcess[str]:
        assert SCRIPT.exists(), f"console script not installed at {SCRIPT}"
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("SURVEILLANCE_") and k not in {"DATABASE_URL", "LOGNAME"}
        }
        env.update(
            DATABASE_URL=f"sqlite:///{self.folder / 'x.db'}",
            USER=user,  # the actor is cli:$USER
            PYTHONPATH=os.pathsep.join(filter(None, [str(CHECKOUT), env.get("PYTHONPATH")])),
        )
        return subprocess.run(
            [str(SCRIPT), *args],
            cwd=self.folder,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    def ok(self, *args: str, user: str = "alice") -> str:
        done = self.run(*args, user=user)
        assert done.returncode == 0, f"{args}: exit {done.returncode}\n{done.stderr}"
        assert "Traceback" not in done.stderr
        return done.stdout

    def fails(self, *args: str, user: str = "alice") -> str:
        done = self.run(*args, user=user)
        assert done.returncode != 0, f"{args} should have failed:\n{done.stdout}"
        assert "Traceback" not in done.stderr + done.stdout
        assert done.stderr.startswith("error: "), done.stderr
        return done.stderr.strip()

    def outcomes(self) -> list[str]:
        """The outcome history, oldest first (``undone`` rows included)."""
        with sqlite3.connect(self.folder / "x.db") as connection:
            return [o for (o,) in connection.execute("SELECT outcome FROM outcomes ORDER BY id")]


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    cli = Cli(tmp_path)
    cli.ok("sites", "add", "--id", "Rome", "--name", "Rome", "--timezone", "Europe/Rome")
    cli.ok(
        "enroll",
        *("--study-id", "ROM-101", "--site", "Rome", "--birth", "2014-03-01", "--sex", "F"),
        *("--diagnosis", "sle", "--protocol", CAR_T, "--infusion", "2024-01-31"),
    )
    return cli


def _record(cli: Cli, key: str, on: str, result: str, today: str = DAY) -> None:
    cli.ok(
        "record",
        key,
        *("--outcome", "completed", "--on", on, "--result", result, "--today", today),
    )


def test_the_author_undoes_it_and_the_calendar_follows(cli: Cli) -> None:
    _record(cli, RCL[0], "2024-04-30", "negative")
    _record(cli, RCL[1], "2024-07-31", "negative")
    _record(cli, RCL[2], "2025-01-31", "negative")  # the third negative: archive-only from now

    out = cli.ok("undo", RCL[2], "--today", DAY)

    lines = out.splitlines()
    assert lines[0] == f"undone {RCL[2]}: was completed on 2025-01-31, result negative; now pending"
    # The archive-only samples it started are cancelled, the yearly tests it stopped are back.
    assert re.fullmatch(
        r"calendar: 0 added, 0 moved, [1-9]\d* cancelled, [1-9]\d* reinstated, 0 relabelled",
        lines[1],
    ), lines[1]
    assert cli.outcomes() == ["completed", "completed", "completed", "undone"]

    again = cli.fails("undo", RCL[2], "--today", DAY)
    assert again == f"error: {RCL[2]} is pending: there is no recording to undo"
    _record(cli, RCL[2], "2025-02-01", "negative")  # it can be recorded again
    assert cli.outcomes()[-1] == "completed"


def test_someone_else_or_later_is_told_to_correct_it(cli: Cli) -> None:
    _record(cli, RCL[0], "2024-04-30", "negative")
    assert cli.fails("undo", RCL[0], "--today", DAY, user="bob") == (
        f"error: {RCL[0]} was recorded by cli:alice: {RULE}"
    )
    late = cli.fails("undo", RCL[0], "--today", "2025-03-02")  # a day later
    assert late == f"error: {RCL[0]} was recorded 1440 minutes ago: {RULE}"
    assert cli.outcomes() == ["completed"]


def test_a_result_that_opened_a_safety_case_is_not_undone(cli: Cli) -> None:
    _record(cli, RCL[0], "2024-04-30", "positive")
    message = cli.fails("undo", RCL[0], "--today", DAY)
    assert message.startswith(f"error: {RCL[0]}: its result opened safety case ROM-101-AE01")
    assert cli.outcomes() == ["completed"]
