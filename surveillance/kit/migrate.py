"""Schema migrations (Alembic), run from code so the installed CLI needs no alembic.ini."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine
from sqlmodel import SQLModel

from surveillance.kit.private_files import create_private_file

# The migration scripts sit beside the packages whose tables they build.
MIGRATIONS = Path(__file__).parents[1] / "migrations"


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def upgrade(
    engine: Engine,
    revision: str = "head",
    *,
    then: Callable[[Connection], None] | None = None,
) -> None:
    """Bring the database schema to ``revision`` (creating it on an empty database).

    ``then`` runs in the same transaction, after the schema change: data work that must
    happen with it or not at all (a failure rolls both back, so the next start retries)."""
    config = alembic_config()
    # SQLite: take the write lock at BEGIN, as every write transaction does (kit.db).
    bind = (
        engine.execution_options(sqlite_immediate=True)
        if engine.dialect.name == "sqlite"
        else engine
    )
    with bind.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
        if then is not None:
            then(connection)


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade_applies(before: str | None, revision: str) -> bool:
    """Whether upgrading a database at ``before`` to head runs ``revision``. An empty
    database (``before`` None) holds no data a revision's follow-up work could convert."""
    if before is None:
        return False
    script = ScriptDirectory.from_config(alembic_config())
    return any(found.revision == revision for found in script.iterate_revisions("heads", before))


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def revision(engine: Engine, message: str) -> None:
    """Write a new migration from the difference between the models and ``engine``."""
    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.revision(config, message=message, autogenerate=True)


def reset(engine: Engine) -> None:
    """An empty database (``surveillance demo --reset``): a SQLite file is deleted,
    PostgreSQL's tables dropped. Every table model must be imported (they are, once the
    application is)."""
    if engine.dialect.name == "sqlite" and engine.url.database not in (None, "", ":memory:"):
        engine.dispose()
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(f"{engine.url.database}{suffix}").unlink(missing_ok=True)
        # Made again owner-only before the engine reconnects (SQLite would use the umask).
        create_private_file(Path(engine.url.database))
        return
    with engine.begin() as connection:
        SQLModel.metadata.drop_all(connection)
        connection.exec_driver_sql("DROP TABLE IF EXISTS alembic_version")
