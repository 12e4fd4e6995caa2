"""Settings from the environment; the only module that reads environment variables."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

import rules

DEFAULT_DATABASE_PATH = Path("var") / "surveillance.db"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SURVEILLANCE_", env_file=".env", extra="ignore")

    # DATABASE_URL (or SURVEILLANCE_DATABASE_URL): a SQLite file by default, PostgreSQL
    # in production, e.g. postgresql+psycopg://user@host/dbname.
    database_url: str = Field(
        default=f"sqlite:///{DEFAULT_DATABASE_PATH}",
        validation_alias=AliasChoices("SURVEILLANCE_DATABASE_URL", "DATABASE_URL"),
    )
    protocols_dir: Path = rules.BUNDLED_PROTOCOLS
    # How people reach the web pages (links in emails and calendar feeds).
    base_url: str = "http://127.0.0.1:8000"
    # Mark the session cookie Secure (set true behind HTTPS).
    secure_cookies: bool = False


@lru_cache
def get_settings() -> Settings:
    return Settings()
