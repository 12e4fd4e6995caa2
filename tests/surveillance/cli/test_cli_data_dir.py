"""Where the command line keeps its files, run as a user runs it: the console script in
an empty working directory, with a throwaway home folder.

Nothing lands in the working directory; the database and the demo's passwords live in
the data directory (owner-only), which a command that cannot do its work never creates.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from surveillance.config import default_data_dir

SCRIPT = Path(sys.executable).parent / "surveillance"
CAR_T = "cd19-car-t-pediatric-autoimmune"
ENROL = (
    "enroll",
    *"--study-id ROM-9 --site Rome --birth 2014-03-01 --sex F --diagnosis sle".split(),
    *("--protocol", CAR_T, "--infusion", "2024-01-31"),
)


@dataclass(frozen=True)
class Place:
    """An empty working directory and home folder, and the environment that uses them."""

    cwd: Path
    home: Path
    data_dir: Path  # where the per-user default puts the data with this home
    env: dict[str, str]

    def run(self, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        assert SCRIPT.exists(), f"console script not installed at {SCRIPT}"
        return subprocess.run(
            [str(SCRIPT), *args],
            cwd=self.cwd,
            env=self.env | extra,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    def ok(self, *args: str, **extra: str) -> str:
        done = self.run(*args, **extra)
        assert done.returncode == 0, f"{args}: exit {done.returncode}\n{done.stderr}"
        return done.stdout


def _contents(folder: Path) -> list[str]:
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*"))


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def place(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Place:
    cwd, home = tmp_path / "cwd", tmp_path / "home"
    cwd.mkdir()
    home.mkdir()
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("SURVEILLANCE_", "XDG_")) and key != "DATABASE_URL"
    }
    env["HOME"] = str(home)
    # The default as platformdirs derives it from this home (here, not in the child, so
    # the test states the place independently of the code under test's settings).
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    data_dir = default_data_dir()
    assert data_dir.is_relative_to(home)
    return Place(cwd, home, data_dir, env)


@pytest.mark.parametrize(
    "command",
    [
        ("due", "--site", "X"),
        ("due", "--site", "Rome", "--format", "csv"),
        ("show", "ROM-001"),
        ("audit", "verify"),
        ("users", "list"),
        ("tokens", "list"),
        ("alerts", "list"),
        ("results", "review", "--site", "Rome"),
        ("amend", "--protocol", CAR_T, "--to-version", "1.1"),
        # Writers that act on records an empty database cannot hold yet.
        ("record", "ROM-001:1:rcl_test:1", "--outcome", "completed", "--on", "2026-01-01"),
        ENROL,
    ],
    ids=lambda command: " ".join(command[:4]),
)
def test_a_command_without_a_database_creates_nothing(
    place: Place, command: tuple[str, ...]
) -> None:
    done = place.run(*command)
    assert done.returncode != 0
    assert "Traceback" not in done.stderr + done.stdout
    database = place.data_dir / "surveillance.db"
    assert done.stderr.startswith(f"error: no database at {database}: run `surveillance demo`")
    assert _contents(place.cwd) == []
    assert _contents(place.home) == []


def test_demo_keeps_database_and_passwords_in_the_owner_only_data_dir(place: Place) -> None:
    out = place.ok("demo")
    credentials = place.data_dir / "demo-credentials.txt"
    assert f"(also kept in {credentials})" in out
    assert _contents(place.cwd) == []  # no ./var any more
    assert "nurse.rome@demo.invalid" in credentials.read_text()
    assert _mode(place.data_dir) == 0o700
    assert _mode(credentials) == 0o600
    assert _mode(place.data_dir / "surveillance.db") == 0o600
    # Every command finds it, from any working directory.
    elsewhere = place.home / "elsewhere"
    elsewhere.mkdir()
    done = subprocess.run(
        [str(SCRIPT), "due", "--site", "Rome"],
        cwd=elsewhere,
        env=place.env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("Rome on ")


def test_a_second_demo_keeps_the_database_owner_only(place: Place) -> None:
    place.ok("demo")
    place.ok("demo")  # deletes the file and loads again
    assert _mode(place.data_dir / "surveillance.db") == 0o600


def test_db_upgrade_and_sites_add_create_the_database(place: Place) -> None:
    place.ok("sites", "add", "--id", "Rome", "--name", "Rome", "--timezone", "Europe/Rome")
    database = place.data_dir / "surveillance.db"
    assert _mode(database) == 0o600
    database.unlink()
    out = place.ok("db", "upgrade")
    assert str(database) in out
    assert _mode(database) == 0o600
    assert _contents(place.cwd) == []


def test_surveillance_data_dir_is_honoured(place: Place, tmp_path: Path) -> None:
    chosen = tmp_path / "chosen" / "data"
    refused = place.run("audit", "verify", SURVEILLANCE_DATA_DIR=str(chosen))
    assert refused.stderr.startswith(f"error: no database at {chosen / 'surveillance.db'}:")
    assert not (tmp_path / "chosen").exists()
    place.ok("demo", SURVEILLANCE_DATA_DIR=str(chosen))
    assert sorted(p.name for p in chosen.iterdir()) == ["demo-credentials.txt", "surveillance.db"]
    assert _mode(chosen) == 0o700
    # The webhook secrets' key (none is configured) is made when a first secret is stored.
    added = place.ok(
        "webhooks",
        "add",
        "http://127.0.0.1:9/hook",
        "--events",
        "assessment.overdue",
        SURVEILLANCE_DATA_DIR=str(chosen),
        SURVEILLANCE_WEBHOOK_ALLOW_PRIVATE="true",
    )
    assert "secret" in added
    assert _mode(chosen / "encryption.key") == 0o600
    assert place.ok("audit", "verify", SURVEILLANCE_DATA_DIR=str(chosen)) == "audit trail intact\n"
    assert _contents(place.home) == []


def test_a_relative_data_dir_is_taken_from_the_working_directory(place: Place) -> None:
    place.ok("db", "upgrade", SURVEILLANCE_DATA_DIR="data")
    assert _contents(place.cwd) == ["data", "data/surveillance.db"]


def test_the_database_url_wins_over_the_data_dir(place: Place, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere" / "x.db"
    data_dir = tmp_path / "data"
    env = {"SURVEILLANCE_DATABASE_URL": f"sqlite:///{elsewhere}"}
    env["SURVEILLANCE_DATA_DIR"] = str(data_dir)
    refused = place.run("due", "--site", "Rome", **env)
    assert refused.stderr.startswith(f"error: no database at {elsewhere}:")
    assert not elsewhere.parent.exists()
    place.ok("db", "upgrade", **env)
    assert _mode(elsewhere) == 0o600
    # The database is elsewhere; no secret stored yet, so no key file either.
    assert not data_dir.exists()
    place.ok("demo", **env)
    assert [p.name for p in data_dir.iterdir()] == ["demo-credentials.txt"]
    assert _contents(place.cwd) == []
    assert _contents(place.home) == []


def test_help_names_the_data_dir(place: Place) -> None:
    out = place.ok("--help")
    assert "SURVEILLANCE_DATA_DIR" in out
    assert "demo-credentials.txt" in place.ok("demo", "--help")
