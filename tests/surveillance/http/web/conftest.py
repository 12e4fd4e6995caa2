"""The web pages on a real SQLite file: Rome and Erlangen, one patient each, a user per role.

``pages`` is a TestClient that does not follow redirects, so tests see each 303; the
clock is stopped at noon UTC on 2026-11-25 (``web_support.NOW``).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from support.web_support import CAR_T, NOW, PASSWORD, USERS, SiteDb, make_client

import rules
from surveillance.accounts import auth
from surveillance.kit import migrate
from surveillance.kit.db import make_engine, write_session
from surveillance.patients.enrolment import Enrolment, enroll
from surveillance.records import sites


@pytest.fixture(scope="session")
def site_db_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Built once (migrations and password hashing take seconds); each test gets a copy."""
    path = tmp_path_factory.mktemp("web-template") / "web.db"
    _build(f"sqlite:///{path}")
    return path


@pytest.fixture
def site_db(site_db_template: Path, tmp_path: Path) -> Iterator[SiteDb]:
    """ROM-101 (infused 2024-01-31, nothing recorded: much is overdue) and ERL-101."""
    path = tmp_path / "web.db"
    shutil.copyfile(site_db_template, path)
    url = f"sqlite:///{path}"
    engine = make_engine(url)
    yield SiteDb(engine, url)
    engine.dispose()


def _build(url: str) -> None:
    engine = make_engine(url)
    migrate.upgrade(engine)
    registry = rules.ProtocolRegistry.from_directory()
    with write_session(engine) as session:
        sites.add_site(session, site_id="Rome", name="Rome (test)", timezone="Europe/Rome")
        sites.add_site(
            session, site_id="Erlangen", name="Erlangen (test)", timezone="Europe/Berlin"
        )
        enroll(
            session,
            [
                Enrolment(
                    "ROM-101", "Rome", date(2014, 3, 1), "F", "sle", CAR_T, date(2024, 1, 31)
                ),
                Enrolment(
                    "ERL-101", "Erlangen", date(2013, 6, 1), "M", "jdm", CAR_T, date(2025, 6, 30)
                ),
            ],
            registry=registry,
            now=NOW,
            actor="test",
        )
        for role, (email, user_sites) in USERS.items():
            auth.add_user(session, email=email, role=role, sites=user_sites, actor="test")
            auth.set_password(session, email=email, password=PASSWORD, actor="test")
    with engine.connect() as connection:  # fold the WAL into the file before it is copied
        connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()


@pytest.fixture
def pages(site_db: SiteDb) -> Iterator[TestClient]:
    with make_client(site_db.url) as client:
        yield client
