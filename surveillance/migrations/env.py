"""Alembic environment: runs on the connection handed over by ``surveillance.kit.migrate``."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from surveillance.migrations.tables import metadata as target_metadata


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
