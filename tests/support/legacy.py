"""Results as the version before typed results stored them: free text, starting nothing."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Engine, text

import rules
from support.factories import record
from surveillance.kit.db import write_session
from surveillance.records.queries import find_assessment


def store_free_text(
    engine: Engine,
    registry: rules.ProtocolRegistry,
    now: datetime,
    key: str,
    typed: str,
    *,
    on: date | None = None,
) -> None:
    """Record ``key`` completed (without a result), then write ``typed`` into its result
    and its outcome the way the old version did; ``on`` back-dates it."""
    with write_session(engine) as session:
        record(session, registry, now, key)
        _, row = find_assessment(session, key)
        values = {"result": typed, "id": row.id}
        session.execute(text("UPDATE assessments SET result = :result WHERE id = :id"), values)
        session.execute(
            text("UPDATE outcomes SET result = :result WHERE assessment_id = :id"), values
        )
        if on is not None:
            session.execute(
                text("UPDATE assessments SET performed_on = :on WHERE id = :id"),
                {"on": on, "id": row.id},
            )
