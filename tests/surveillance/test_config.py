"""Settings: the data directory and the database it implies."""

from __future__ import annotations

from pathlib import Path

import pytest

from surveillance.config import Settings, default_data_dir


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
