"""Users on the command line: passwords from a prompt or stdin (never argv), a password
rule beyond length, deactivation and reactivation that end sessions and tokens."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import pytest
from sqlalchemy import Engine, func, select
from support.cli_runtime import forget_cli_runtime
from typer.testing import CliRunner

from surveillance.accounts import auth, throttle
from surveillance.accounts.models import ApiToken, WebSession
from surveillance.cli import app
from surveillance.config import Settings
from surveillance.errors import InvalidInput, Unauthorized
from surveillance.kit.db import read_session, write_session
from surveillance.records import sites

GOOD = "violet tractor quietly hums"
EMAIL = "nurse@rome.example"
LIMITS = throttle.limits_of(Settings(database_url="sqlite://"))


@pytest.fixture
def cli(database_url: str, engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Iterator[CliRunner]:
    monkeypatch.setenv("DATABASE_URL", database_url)
    forget_cli_runtime()  # the commands build theirs once per process: once per test here
    with write_session(engine) as session:
        sites.add_site(session, site_id="Rome", name="Rome", timezone="Europe/Rome")
    yield CliRunner()
    forget_cli_runtime()


def _add(cli: CliRunner, *extra: str, input: str | None = None) -> tuple[int, str]:
    args = ["users", "add", "--email", EMAIL, "--role", "nurse", "--site", "Rome", *extra]
    result = cli.invoke(app, args, input=input)
    return result.exit_code, result.output


def _signs_in(engine: Engine, password: str, now: datetime) -> bool:
    with write_session(engine) as session:
        outcome = auth.sign_in(
            session, email=EMAIL, password=password, client="cli", now=now, limits=LIMITS
        )
    return isinstance(outcome, auth.SignedIn)


def test_the_password_is_not_an_argument(cli: CliRunner) -> None:
    code, output = _add(cli, "--password", GOOD)
    assert code != 0
    assert "No such option" in output


def test_the_password_is_asked_twice_hidden(cli: CliRunner, engine: Engine, now: datetime) -> None:
    code, output = _add(cli, "--with-password", input=f"{GOOD}\n{GOOD}\n")
    assert code == 0, output
    assert GOOD not in output  # hidden
    assert _signs_in(engine, GOOD, now)


def test_the_password_from_stdin(cli: CliRunner, engine: Engine, now: datetime) -> None:
    assert _add(cli)[0] == 0
    result = cli.invoke(
        app, ["users", "set-password", "--email", EMAIL, "--password-stdin"], input=f"{GOOD}\n"
    )
    assert result.exit_code == 0, result.output
    assert _signs_in(engine, GOOD, now)


@pytest.mark.parametrize(
    "password",
    [
        "aaaaaaaaaaaa",  # 12 characters, one letter
        "password1234",  # among the most common
        "qwertyuiop12",  # a keyboard run
        "iloveyou2024!",  # a breached favourite and a year
        "xnurse-rome-2026",  # the email's name in it
    ],
)
def test_common_and_guessable_passwords_are_refused(cli: CliRunner, password: str) -> None:
    assert _add(cli)[0] == 0
    result = cli.invoke(
        app, ["users", "set-password", "--email", EMAIL, "--password-stdin"], input=password
    )
    assert result.exit_code != 0
    # the console script prints a domain error as one line; in-process it is the exception
    assert isinstance(result.exception, InvalidInput)
    assert "password" in str(result.exception)


class TestDeactivation:
    def test_it_ends_sessions_revokes_tokens_and_refuses_sign_in(
        self, cli: CliRunner, engine: Engine, now: datetime
    ) -> None:
        assert _add(cli, "--password-stdin", input=GOOD)[0] == 0
        assert _signs_in(engine, GOOD, now)
        with write_session(engine) as session:
            _, token = auth.create_token(session, email=EMAIL, actor="test", now=now)
        result = cli.invoke(app, ["users", "deactivate", EMAIL])
        assert result.exit_code == 0, result.output
        with read_session(engine) as session:
            assert session.execute(select(func.count()).select_from(WebSession)).scalar() == 0
            assert session.execute(select(ApiToken.revoked_at)).scalar() is not None  # type: ignore[call-overload]
            with pytest.raises(Unauthorized):
                auth.resolve_token(session, token)
        assert not _signs_in(engine, GOOD, now)
        assert "no" in cli.invoke(app, ["users", "list"]).output.splitlines()[-1]
        result = cli.invoke(app, ["users", "reactivate", EMAIL])
        assert result.exit_code == 0, result.output
        assert _signs_in(engine, GOOD, now)

    def test_a_password_change_ends_the_other_sessions(
        self, cli: CliRunner, engine: Engine, now: datetime
    ) -> None:
        assert _add(cli, "--password-stdin", input=GOOD)[0] == 0
        assert _signs_in(engine, GOOD, now)
        assert _signs_in(engine, GOOD, now)
        with write_session(engine) as session:
            kept = session.execute(select(WebSession)).scalars().first()
            assert kept is not None
            auth.set_password(
                session,
                email=EMAIL,
                password="another quite long phrase",
                actor=EMAIL,
                keep_session_id=kept.id,
            )
        with read_session(engine) as session:
            ids = session.execute(select(WebSession.id)).scalars().all()  # type: ignore[call-overload]
        assert ids == [kept.id]
