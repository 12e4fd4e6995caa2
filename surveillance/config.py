"""Settings from the environment; the only module that reads environment variables."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from platformdirs import user_data_dir
from pydantic import (
    AliasChoices,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

import rules

DATABASE_FILE = "surveillance.db"
DEMO_CREDENTIALS_FILE = "demo-credentials.txt"


def default_data_dir() -> Path:
    """This user's data folder: ~/.local/share/ltfu-surveillance on Linux (or under
    $XDG_DATA_HOME), ~/Library/Application Support/ltfu-surveillance on macOS,
    %LOCALAPPDATA%\\ltfu-surveillance on Windows. Nothing is created here."""
    return Path(user_data_dir("ltfu-surveillance", appauthor=False))


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SURVEILLANCE_", env_file=".env", extra="ignore")

    # Where this installation keeps its files: the default SQLite database and the demo's
    # passwords. Created (owner-only) by the first command that writes there.
    data_dir: Path = Field(default_factory=default_data_dir)
    # DATABASE_URL (or SURVEILLANCE_DATABASE_URL): PostgreSQL in production, e.g.
    # postgresql+psycopg://user@host/dbname. Unset: the SQLite file data_dir/surveillance.db.
    database_url: str = Field(
        default="",
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
    # The largest request body accepted (bytes); a larger one is answered 413 unread.
    max_request_bytes: int = Field(default=1024 * 1024, ge=64 * 1024)
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
    # Keys that encrypt the webhook signing secrets at rest (Fernet keys, comma-separated:
    # the first encrypts, every one decrypts, so a new key goes first during a rotation).
    # Unset: the key file encryption.key in data_dir, created owner-only when first needed.
    encryption_keys: SecretStr | None = None
    # Webhooks to private/loopback/link-local addresses are refused unless allowed.
    webhook_allow_private: bool = False
    # Alert policy overrides (JSON), e.g. {"site:Rome": {"escalate_after_days": 10}}.
    alert_policy: str | None = None
    # The admins' daily digest checks the whole audit trail up to this many rows; beyond,
    # the rows added since the last digest and a seventh of the older ones a day
    # (alerting.audit_digest). ``surveillance audit verify`` always checks all of it.
    audit_whole_check_rows: int = Field(default=2_000_000, ge=0)
    scan_interval_minutes: int = 15
    dispatch_interval_seconds: int = 5
    # Password and token guessing (accounts.throttle): failures are counted over the
    # window; an email is locked after account_limit of them, an address (across emails
    # and tokens) after client_limit, each for lockout minutes after the last failure.
    throttle_window_minutes: int = Field(default=15, ge=1, le=24 * 60)
    throttle_lockout_minutes: int = Field(default=15, ge=1, le=24 * 60)
    throttle_account_limit: int = Field(default=5, ge=1, le=100)
    throttle_client_limit: int = Field(default=20, ge=1, le=10_000)

    @field_validator("data_dir")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        # Absolute once: messages name the real place, whatever the working directory.
        return value.expanduser().absolute()

    @model_validator(mode="after")
    def _lockout_within_window(self) -> Settings:
        # A lockout lasts while its failures are counted: a longer one would end early.
        if self.throttle_lockout_minutes > self.throttle_window_minutes:
            raise ValueError(
                f"SURVEILLANCE_THROTTLE_LOCKOUT_MINUTES ({self.throttle_lockout_minutes}) "
                f"may not exceed SURVEILLANCE_THROTTLE_WINDOW_MINUTES "
                f"({self.throttle_window_minutes}): the failures that lock an account or "
                "address are forgotten after the window"
            )
        return self

    @model_validator(mode="after")
    def _default_database(self) -> Settings:
        if not self.database_url:
            self.database_url = f"sqlite:///{self.data_dir / DATABASE_FILE}"
        return self

    @property
    def encryption_keys_value(self) -> str | None:
        return self.encryption_keys.get_secret_value() if self.encryption_keys else None

    @property
    def demo_credentials_file(self) -> Path:
        return self.data_dir / DEMO_CREDENTIALS_FILE


class SettingsError(ValueError):
    """A setting from the environment that cannot be used, named by its variable."""


def describe(error: ValidationError) -> str:
    """One line per refused setting, by the environment variable that set it."""
    lines = []
    for problem in error.errors():
        message = problem["msg"].removeprefix("Value error, ")
        if not problem["loc"]:
            lines.append(message)
            continue
        name = str(problem["loc"][0])
        variable = "DATABASE_URL" if name == "database_url" else f"SURVEILLANCE_{name.upper()}"
        lines.append(f"{variable}={problem.get('input')!r}: {message}")
    return "invalid settings: " + "; ".join(lines)


@lru_cache
def get_settings() -> Settings:
    """The settings of this process (``SettingsError`` names any refused variable)."""
    try:
        return Settings()
    except ValidationError as exc:
        raise SettingsError(describe(exc)) from None
