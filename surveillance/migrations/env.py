"""Alembic environment: runs on the connection handed over by ``surveillance.migrate``."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection
from sqlmodel import SQLModel

import surveillance.adverse_events.models  # registers the adverse-event tables
import surveillance.alerting.models  # registers the outbox tables
import surveillance.models  # noqa: F401 - registers the tables on SQLModel.metadata

target_metadata = SQLModel.metadata


def run_migrations(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through `surveillance db upgrade`")
run_migrations(connection)
