"""Every table model, imported so that ``SQLModel.metadata`` holds the whole schema (for
Alembic and for the test that compares the migrations with the models)."""

from __future__ import annotations

from sqlmodel import SQLModel

import surveillance.accounts.models
import surveillance.alerting.models
import surveillance.kit.audit
import surveillance.kit.leases
import surveillance.records.adverse_events
import surveillance.records.outbox
import surveillance.records.patients  # noqa: F401

metadata = SQLModel.metadata
