"""What every command shares: the process's one runtime, who is acting, how a day is typed.

A command runs in its own process, so the runtime is built on first use and kept: one
engine per process, however many steps the command takes.

A missing SQLite database is refused here, for every command, before anything (file or
folder) is made: "no database at ...". Only the commands that set up an installation
and can do their work on an empty database ask for it to be created (``create=True``:
``db upgrade``, ``demo``, ``serve``, ``worker``, ``sites add``, ``users add``, ``webhooks
add``). A command that only reads, or that acts on records an empty database cannot hold
yet (``enroll`` needs a site, ``record`` an assessment), never leaves an empty file behind.
"""

from __future__ import annotations

import os
from datetime import datetime
from functools import lru_cache
from typing import Annotated

import typer
from sqlalchemy import Connection
from sqlmodel import Session

import rules
from surveillance.adverse_events.legacy_results import (
    TYPED_RESULTS_REVISION,
    MappingReport,
    map_stored_results,
)
from surveillance.config import get_settings
from surveillance.errors import NotFound
from surveillance.kit import commit_order, migrate
from surveillance.kit.clock import fixed_clock
from surveillance.kit.db import sqlite_file
from surveillance.main import Runtime, build_runtime
from surveillance.patients.listing import LISTED_REVISION, unlist_ended
from surveillance.protocols.registry import registry_for

DateOption = Annotated[datetime, typer.Option(formats=["%Y-%m-%d"])]
# Run a command as of another day (tests, back-dated entry); not shown in --help.
TodayOption = Annotated[datetime | None, typer.Option("--today", formats=["%Y-%m-%d"], hidden=True)]


def actor() -> str:
    """Who the audit trail says made a change from the command line."""
    return f"cli:{os.environ.get('USER') or os.environ.get('LOGNAME') or 'unknown'}"


def _refuse_missing_database() -> None:
    path = sqlite_file(get_settings().database_url)
    if path is not None and not path.exists():
        raise NotFound(
            f"no database at {path}: run `surveillance demo` (synthetic demo data) or "
            "`surveillance db upgrade` (an empty database) first, or point "
            "SURVEILLANCE_DATA_DIR or DATABASE_URL at an existing one"
        )


@lru_cache(maxsize=1)
def _built() -> Runtime:
    return build_runtime()


def runtime(*, create: bool = False) -> Runtime:
    """This process's runtime, as configured by the environment; the schema untouched.
    A missing SQLite database is refused unless ``create``."""
    if not create:
        _refuse_missing_database()
    return _built()


@lru_cache(maxsize=1)
def _upgraded() -> Runtime:
    built = _built()
    report = upgrade_schema(built)
    if report is not None:  # on stderr: stdout is the command's own output (JSON, CSV)
        typer.echo(report.summary(), err=True)
    return built


def upgrade_schema(built: Runtime) -> MappingReport | None:
    """Bring the schema to the newest revision, with the data work of the revisions it
    passes that need the protocols (which a schema migration does not load): typed results
    read the results stored as free text into their declared types (its report is
    returned); listed rows unlist those of patients whose follow-up had ended."""
    before = migrate.current_revision(built.engine)
    typed = migrate.upgrade_applies(before, TYPED_RESULTS_REVISION)
    listed = migrate.upgrade_applies(before, LISTED_REVISION)
    if not (typed or listed):
        migrate.upgrade(built.engine)
        return None
    reports: list[MappingReport] = []

    def follow_up(connection: Connection) -> None:
        # In the upgrade's own transaction: schema and data land together or not at all,
        # so a failed follow-up is retried by the next start instead of never again.
        with Session(bind=connection) as session:
            if typed:
                now = built.clock()
                reports.append(map_stored_results(session, registry=built.registry, now=now))
                # The audit rows and feed numbers wait for a commit (``commit_order``) that
                # this session never makes (the upgrade's transaction commits): write now.
                commit_order.write_now(session)
            if listed:
                unlist_ended(session, registry=built.registry)
            session.flush()

    migrate.upgrade(built.engine, then=follow_up)
    return reports[0] if reports else None


def migrated_runtime(today: datetime | None = None, *, create: bool = False) -> Runtime:
    """This process's runtime on a schema brought up to date (once); ``today`` stops its
    clock at noon UTC of that day. A missing SQLite database is refused unless
    ``create``."""
    if not create:
        _refuse_missing_database()
    built = _upgraded()
    return built.with_clock(fixed_clock(today.date())) if today else built


def protocol_registry() -> rules.ProtocolRegistry:
    """The protocols alone, for commands that need no database: they build no engine (an
    engine makes the folder of a SQLite file). The same registry the runtime holds."""
    return registry_for(get_settings().protocols_dir)
