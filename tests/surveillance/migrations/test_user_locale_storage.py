"""The user's language is stored (migration 0008) and read back with the user, on SQLite
and on PostgreSQL; changing it is audited."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from sqlmodel import col

from surveillance.accounts import auth
from surveillance.errors import InvalidInput
from surveillance.kit import migrate
from surveillance.kit.audit import AuditEntry
from surveillance.kit.db import make_engine, read_session, write_session

_fresh = itertools.count()
AT = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'locale.db'}"
    else:
        url = request.getfixturevalue("pg").create_database(f"locale_{next(_fresh)}")
    engine = make_engine(url)
    migrate.upgrade(engine)
    yield engine
    engine.dispose()


def test_a_users_language_is_stored_and_read_back(engine: Engine) -> None:
    with write_session(engine) as session:
        user = auth.add_user(session, email="a@b.example", role="admin", sites=[], actor="t")
        user_id = user.id
    assert user_id is not None
    with read_session(engine) as session:
        assert auth.principal_for(session, auth.get_user(session, "a@b.example")).locale is None
    with write_session(engine) as session:
        auth.set_locale(session, user_id=user_id, locale="it", actor="a@b.example", now=AT)
    with read_session(engine) as session:
        assert auth.principal_for(session, auth.get_user(session, "a@b.example")).locale == "it"
        changes = session.execute(
            select(col(AuditEntry.at)).where(
                col(AuditEntry.entity_key) == "a@b.example", col(AuditEntry.action) == "set_locale"
            )
        ).scalars()
        # The app's clock, not the machine's: a stopped clock in tests, the site's in use.
        assert [moment.replace(tzinfo=UTC) for moment in changes] == [AT]
    with write_session(engine) as session, pytest.raises(InvalidInput):
        auth.set_locale(session, user_id=user_id, locale="fr", actor="a@b.example", now=AT)
