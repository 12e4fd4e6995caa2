"""Migrations: a fresh database reaches head, and head is exactly the models' schema."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect, text
from sqlmodel import SQLModel

import surveillance.migrations.tables  # noqa: F401 - registers every table on SQLModel.metadata
from surveillance.kit import migrate
from surveillance.kit.db import make_engine

_fresh = itertools.count()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def fresh_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """An empty database: no tables, no alembic_version."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'fresh.db'}"
    else:
        url = request.getfixturevalue("pg").create_database(f"fresh_{next(_fresh)}")
    engine = make_engine(url)
    yield engine
    engine.dispose()


def _differences(engine: Engine) -> list[object]:
    """What autogenerate would write into a new migration (types and defaults included)."""
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection,
            opts={"compare_type": True, "compare_server_default": True},
        )
        return list(compare_metadata(context, SQLModel.metadata))


def test_a_fresh_database_is_migrated_to_head(fresh_engine: Engine) -> None:
    assert inspect(fresh_engine).get_table_names() == []
    assert migrate.current_revision(fresh_engine) is None

    migrate.upgrade(fresh_engine)

    head = migrate.head_revision()
    assert head is not None
    assert migrate.current_revision(fresh_engine) == head
    tables = set(inspect(fresh_engine).get_table_names())
    assert set(SQLModel.metadata.tables) <= tables
    assert tables - set(SQLModel.metadata.tables) == {"alembic_version"}


def test_the_migrated_schema_is_exactly_the_models(fresh_engine: Engine) -> None:
    migrate.upgrade(fresh_engine)
    assert _differences(fresh_engine) == []


def test_the_comparison_does_see_a_difference(fresh_engine: Engine) -> None:
    """Guard for the test above: an index missing from the database is reported."""
    migrate.upgrade(fresh_engine)
    with fresh_engine.begin() as connection:
        connection.execute(text("DROP INDEX ix_outcomes_assessment_id"))
    differences = _differences(fresh_engine)
    assert [d[0] for d in differences if isinstance(d, tuple)] == ["add_index"]


def test_upgrading_twice_is_a_no_op(fresh_engine: Engine) -> None:
    migrate.upgrade(fresh_engine)
    migrate.upgrade(fresh_engine)
    assert migrate.current_revision(fresh_engine) == migrate.head_revision()
    assert _differences(fresh_engine) == []


def test_downgrade_to_base_and_back(fresh_engine: Engine) -> None:
    migrate.upgrade(fresh_engine)
    config = migrate.alembic_config()
    with fresh_engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "base")
    assert set(inspect(fresh_engine).get_table_names()) <= {"alembic_version"}
    migrate.upgrade(fresh_engine)
    assert _differences(fresh_engine) == []


def test_the_due_list_indexes_are_partial_on_pending_rows(fresh_engine: Engine) -> None:
    """compare_metadata does not compare index predicates: check them directly."""
    migrate.upgrade(fresh_engine)
    names = ("ix_assessments_pending_site_window_end", "ix_assessments_pending_site_window_start")
    with fresh_engine.connect() as connection:
        if fresh_engine.dialect.name == "sqlite":
            query = "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND name IN (:a, :b)"
        else:
            query = "SELECT indexname, indexdef FROM pg_indexes WHERE indexname IN (:a, :b)"
        found = dict(connection.execute(text(query), {"a": names[0], "b": names[1]}).all())
    assert sorted(found) == sorted(names)
    for definition in found.values():
        assert "WHERE" in definition.upper()
        assert "pending" in definition


def test_work_run_with_the_upgrade_is_rolled_back_with_it(fresh_engine: Engine) -> None:
    """``then`` runs in the upgrade's transaction: if it fails, the schema stays where it
    was, so the next start runs both again (the typed-results mapping relies on this)."""
    migrate.upgrade(fresh_engine, "0006")

    def fail(connection: object) -> None:
        raise RuntimeError("mapping failed")

    with pytest.raises(RuntimeError, match="mapping failed"):
        migrate.upgrade(fresh_engine, then=fail)
    assert migrate.current_revision(fresh_engine) == "0006"
    columns = {c["name"] for c in inspect(fresh_engine).get_columns("assessments")}
    assert "result_as_entered" not in columns

    ran: list[str | None] = []
    migrate.upgrade(fresh_engine, then=lambda c: ran.append(migrate.head_revision()))
    assert migrate.current_revision(fresh_engine) == migrate.head_revision()
    assert ran == [migrate.head_revision()]


def test_the_results_to_review_index_is_partial(fresh_engine: Engine) -> None:
    """Its predicate (not compared by compare_metadata) is on the free text awaiting review."""
    migrate.upgrade(fresh_engine)
    name = "ix_assessments_to_review_site_performed"
    with fresh_engine.connect() as connection:
        if fresh_engine.dialect.name == "sqlite":
            query = "SELECT sql FROM sqlite_master WHERE type = 'index' AND name = :n"
        else:
            query = "SELECT indexdef FROM pg_indexes WHERE indexname = :n"
        definition = connection.execute(text(query), {"n": name}).scalar_one()
    assert "WHERE" in definition.upper()
    assert "result_as_entered IS NOT NULL" in definition
