"""Databases as earlier versions left them: results stored as free text (before typed
results), every row listed (before ``assessments.listed``), an older schema revision."""

from __future__ import annotations

from datetime import date, datetime

from alembic import command
from sqlalchemy import Engine, create_engine, text, update

import rules
from support.factories import record
from surveillance.kit import migrate
from surveillance.kit.db import write_session
from surveillance.records.patients import Assessment
from surveillance.records.queries import find_assessment


def store_free_text(
    engine: Engine,
    registry: rules.ProtocolRegistry,
    now: datetime,
    key: str,
    typed: str,
    *,
    on: date | None = None,
) -> None:
    """Record ``key`` completed (without a result), then write ``typed`` into its result
    and its outcome the way the old version did; ``on`` back-dates it."""
    with write_session(engine) as session:
        record(session, registry, now, key)
        _, row = find_assessment(session, key)
        values = {"result": typed, "id": row.id}
        session.execute(text("UPDATE assessments SET result = :result WHERE id = :id"), values)
        session.execute(
            text("UPDATE outcomes SET result = :result WHERE assessment_id = :id"), values
        )
        if on is not None:
            session.execute(
                text("UPDATE assessments SET performed_on = :on WHERE id = :id"),
                {"on": on, "id": row.id},
            )


def downgrade(url: str, revision: str) -> None:
    """The schema of ``url`` back to ``revision``, through a plain engine: SQLite drops a
    column by copying the table, which its foreign-key checks (on in the application's
    engine) refuse with rows in it."""
    plain = create_engine(url)
    config = migrate.alembic_config()
    with plain.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, revision)
    assert migrate.current_revision(plain) == revision
    plain.dispose()


def before_listed(engine: Engine) -> None:
    """The database as before revision 0014 (``assessments.listed``): every row listed,
    then the column dropped. ``engine`` is disposed of."""
    with write_session(engine) as session:
        session.execute(update(Assessment).values(listed=True))
    url = engine.url.render_as_string(hide_password=False)
    engine.dispose()
    downgrade(url, "0013")
