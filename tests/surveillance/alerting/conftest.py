"""Fixtures of the alerting tests (a demo database, a clock, an SMTP server and a webhook
receiver); they live in ``support/alert_fixtures.py``, shared with the CLI tests."""

from __future__ import annotations

from support.alert_fixtures import clock, demo_engine, demo_pg_template, demo_sqlite_file
from support.peers import receiver, smtp_server

__all__ = [
    "clock",
    "demo_engine",
    "demo_pg_template",
    "demo_sqlite_file",
    "receiver",
    "smtp_server",
]
