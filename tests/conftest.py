"""Fixtures that build real things: a SQLite file, a PostgreSQL cluster, a clock.

Database tests take the ``engine`` fixture and run once on SQLite and once on
PostgreSQL (a throwaway cluster on a loopback port, started once per session; each
test gets its own database, copied from a migrated template).
"""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pg_cluster import PostgresCluster, postgres_cluster
from sqlalchemy import Engine
from support.cli_runtime import forget_cli_runtime

import rules
from surveillance.kit import migrate
from surveillance.kit.db import make_engine

# A fixed "now" for database tests: noon UTC on 2026-11-25.
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
_TEMPLATE = "surveillance_template"
_counter = itertools.count()
_DATA_HOME_ENV = ("SURVEILLANCE_DATA_DIR", "XDG_DATA_HOME")
_data_home = pytest.StashKey[Path]()


def pytest_configure(config: pytest.Config) -> None:
    """No test writes into the home folder of whoever runs the suite: the data directory
    (the default SQLite file, the demo's passwords) is a throwaway folder for this run,
    in this process and in every command it starts. XDG_DATA_HOME too, for the children
    whose environment keeps no SURVEILLANCE_ variable."""
    folder = Path(tempfile.mkdtemp(prefix="surveillance-test-data-"))
    config.stash[_data_home] = folder
    for name in _DATA_HOME_ENV:
        os.environ[name] = str(folder / name.lower())


@pytest.fixture(autouse=True)
def _cli_runtime_per_test() -> Iterator[None]:
    """A command run in-process keeps its runtime for the process (``cli.context``):
    forgotten after each test, so the next test's commands read their own environment."""
    yield
    forget_cli_runtime()


def pytest_unconfigure(config: pytest.Config) -> None:
    folder = config.stash.get(_data_home, None)
    if folder is not None:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def pg() -> Iterator[PostgresCluster]:
    with postgres_cluster() as cluster:
        engine = make_engine(cluster.create_database(_TEMPLATE))
        migrate.upgrade(engine)
        engine.dispose()
        yield cluster


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'surveillance.db'}"
        engine = make_engine(url)
        migrate.upgrade(engine)
        engine.dispose()
        return url
    cluster: PostgresCluster = request.getfixturevalue("pg")
    return cluster.create_database(f"test_{next(_counter)}", template=_TEMPLATE)


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def registry() -> rules.ProtocolRegistry:
    return rules.ProtocolRegistry.from_directory()


@pytest.fixture
def now() -> datetime:
    return NOW
