"""Settings: the data directory and the database it implies; the throttle's limits, and
the error that names a refused variable."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from surveillance.accounts import throttle
from surveillance.config import Settings, SettingsError, default_data_dir, get_settings


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No SURVEILLANCE_ or DATABASE_URL variable; HOME a throwaway folder."""
    for name in ("SURVEILLANCE_DATA_DIR", "SURVEILLANCE_DATABASE_URL", "DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)  # no .env file here
    return tmp_path


def test_the_default_is_per_user_and_the_database_lives_in_it(clean_env: Path) -> None:
    settings = Settings()
    assert settings.data_dir == default_data_dir()
    assert settings.data_dir.is_relative_to(clean_env)
    assert settings.data_dir.name == "ltfu-surveillance"
    assert settings.database_url == f"sqlite:///{settings.data_dir / 'surveillance.db'}"
    assert settings.demo_credentials_file == settings.data_dir / "demo-credentials.txt"
    assert list(clean_env.iterdir()) == []  # reading the settings creates nothing


def test_the_data_dir_setting(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SURVEILLANCE_DATA_DIR", "relative/data")
    settings = Settings()
    assert settings.data_dir == clean_env / "relative" / "data"
    assert settings.database_url == f"sqlite:///{clean_env}/relative/data/surveillance.db"
    monkeypatch.setenv("SURVEILLANCE_DATA_DIR", "~/elsewhere")
    assert Settings().data_dir == clean_env / "elsewhere"


@pytest.mark.parametrize("variable", ["SURVEILLANCE_DATABASE_URL", "DATABASE_URL"])
def test_a_database_url_wins(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    monkeypatch.setenv("SURVEILLANCE_DATA_DIR", str(clean_env / "data"))
    monkeypatch.setenv(variable, "postgresql+psycopg://u@h/db")
    settings = Settings()
    assert settings.database_url == "postgresql+psycopg://u@h/db"
    assert settings.data_dir == clean_env / "data"


def test_the_throttle_limits_default_to_15_minutes_5_and_20(clean_env: Path) -> None:
    settings = Settings()
    assert (
        settings.throttle_window_minutes,
        settings.throttle_lockout_minutes,
        settings.throttle_account_limit,
        settings.throttle_client_limit,
    ) == (15, 15, 5, 20)


def test_the_throttle_limits_come_from_the_environment(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SURVEILLANCE_THROTTLE_WINDOW_MINUTES", "60")
    monkeypatch.setenv("SURVEILLANCE_THROTTLE_LOCKOUT_MINUTES", "30")
    monkeypatch.setenv("SURVEILLANCE_THROTTLE_ACCOUNT_LIMIT", "3")
    monkeypatch.setenv("SURVEILLANCE_THROTTLE_CLIENT_LIMIT", "100")
    limits = throttle.limits_of(Settings())
    assert limits == throttle.Limits(timedelta(minutes=60), timedelta(minutes=30), 3, 100)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (
            {"SURVEILLANCE_THROTTLE_ACCOUNT_LIMIT": "0"},
            "SURVEILLANCE_THROTTLE_ACCOUNT_LIMIT='0': Input should be greater than or equal to 1",
        ),
        (
            {"SURVEILLANCE_THROTTLE_CLIENT_LIMIT": "1000000"},
            "SURVEILLANCE_THROTTLE_CLIENT_LIMIT='1000000': Input should be less than or equal "
            "to 10000",
        ),
        (
            {"SURVEILLANCE_THROTTLE_WINDOW_MINUTES": "-5"},
            "SURVEILLANCE_THROTTLE_WINDOW_MINUTES='-5': Input should be greater than or equal to 1",
        ),
        (
            {"SURVEILLANCE_THROTTLE_LOCKOUT_MINUTES": "a while"},
            "SURVEILLANCE_THROTTLE_LOCKOUT_MINUTES='a while': Input should be a valid integer",
        ),
        (
            {"SURVEILLANCE_THROTTLE_LOCKOUT_MINUTES": "60"},
            "SURVEILLANCE_THROTTLE_LOCKOUT_MINUTES (60) may not exceed "
            "SURVEILLANCE_THROTTLE_WINDOW_MINUTES (15): the failures that lock an account or "
            "address are forgotten after the window",
        ),
    ],
)
def test_a_throttle_limit_out_of_bounds_is_refused_by_name(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch, values: dict[str, str], message: str
) -> None:
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    try:
        with pytest.raises(SettingsError) as refused:
            get_settings()
    finally:
        get_settings.cache_clear()
    assert str(refused.value).startswith("invalid settings: ")
    assert message in str(refused.value)


def test_the_command_line_says_which_setting_is_wrong(clean_env: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SURVEILLANCE_")}
    env["SURVEILLANCE_DATA_DIR"] = str(clean_env / "data")
    env["SURVEILLANCE_THROTTLE_ACCOUNT_LIMIT"] = "0"
    done = subprocess.run(
        [sys.executable, "-m", "surveillance.cli", "users", "list"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "error: invalid settings: SURVEILLANCE_THROTTLE_ACCOUNT_LIMIT='0': Input should be "
        "greater than or equal to 1"
    ]
