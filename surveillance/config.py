"""Settings from the environment; the only module that reads environment variables."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import AliasChoices, Field, SecretStr
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
    # Threads that run the requests' database work, and as many pooled connections. More
    # threads than connections only queue; in one Python process more threads mostly
    # contend for the GIL (benchmarks/api.py measures it).
    db_threads: int = Field(default=8, ge=1, le=64)
    # How long an API process remembers who a bearer token belongs to (and a site's time
    # zone): a revoked token stops working within this time. 0: look up on every request.
    cache_seconds: float = Field(default=5.0, ge=0, le=300)
    # The adverse-event feed: how often a caught-up consumer is asked to poll (Retry-After),
    # and how soon it may ask the same caught-up cursor again before getting a 429.
    feed_poll_seconds: int = Field(default=30, ge=1, le=3600)
    feed_min_poll_seconds: float = Field(default=5.0, ge=0, le=3600)

    # Email. With no SMTP host the embedded default writes mail to the log and to the
    # "outgoing mail" page instead of sending it.
    smtp_host: str | None = None
    smtp_port: int = 587
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = True
    smtp_from: str = "ltfu-surveillance@localhost"
    # Webhooks to private/loopback/link-local addresses are refused unless allowed.
    webhook_allow_private: bool = False
    # Alert policy overrides (JSON), e.g. {"site:Rome": {"escalate_after_days": 10}}.
    alert_policy: str | None = None
    scan_interval_minutes: int = 15
    dispatch_interval_seconds: int = 5


@lru_cache
def get_settings() -> Settings:
    return Settings()
