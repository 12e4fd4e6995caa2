"""Alerting tests on real parts: a SQLite file and a PostgreSQL database (``engine`` from
tests/conftest.py), a real SMTP server and a real HTTP receiver on 127.0.0.1
(tests/support/peers.py), and a clock the test moves (``clock``).

``demo_engine`` is the synthetic demo cohort (``load_demo`` + ``create_demo_users`` with
a fixed now), built once per store and copied for each test.
"""

from __future__ import annotations

import itertools
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest
from pg_cluster import PostgresCluster
from sqlalchemy import Engine

import rules
from support.alert_support import START, Clock
from support.peers import receiver, smtp_server
from surveillance.cli.demo import create_demo_users, load_demo
from surveillance.kit import migrate
from surveillance.kit.db import make_engine, write_session

__all__ = ["receiver", "smtp_server"]  # fixtures shared with tests/notifications

_DEMO_TEMPLATE = "alerting_demo_template"
_counter = itertools.count()


@pytest.fixture
def clock() -> Clock:
    return Clock(START)


def _load_demo(engine: Engine, registry: rules.ProtocolRegistry) -> None:
    migrate.upgrade(engine)
    with write_session(engine) as session:
        load_demo(session, registry=registry, now=START)
        create_demo_users(session)


@pytest.fixture(scope="session")
def demo_sqlite_file(
    tmp_path_factory: pytest.TempPathFactory, registry: rules.ProtocolRegistry
) -> Path:
    path = tmp_path_factory.mktemp("demo") / "demo.db"
    engine = make_engine(f"sqlite:///{path}")
    _load_demo(engine, registry)
    engine.dispose()
    return path


@pytest.fixture(scope="session")
def demo_pg_template(pg: PostgresCluster, registry: rules.ProtocolRegistry) -> str:
    engine = make_engine(pg.create_database(_DEMO_TEMPLATE))
    _load_demo(engine, registry)
    engine.dispose()
    return _DEMO_TEMPLATE


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def demo_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A fresh copy of the demo cohort (as loaded at START) on SQLite or PostgreSQL."""
    if request.param == "sqlite":
        source: Path = request.getfixturevalue("demo_sqlite_file")
        target = tmp_path / "demo.db"
        with closing(sqlite3.connect(source)) as src, closing(sqlite3.connect(target)) as dst:
            src.backup(dst)
        url = f"sqlite:///{target}"
    else:
        template: str = request.getfixturevalue("demo_pg_template")
        cluster: PostgresCluster = request.getfixturevalue("pg")
        url = cluster.create_database(f"alerting_demo_{next(_counter)}", template=template)
    engine = make_engine(url)
    yield engine
    engine.dispose()
