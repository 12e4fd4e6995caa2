"""Facts the engine cannot plan from are the domain's ``InvalidInput``, naming the patient,
whichever service re-runs the engine (not ``rules.InvalidFacts`` from some and not others)."""

from __future__ import annotations

from datetime import date, datetime

import pytest
from sqlalchemy import Engine
from support.factories import ACTOR, add_sites, enroll_committed

import rules
from surveillance.errors import InvalidInput
from surveillance.kit.db import write_session
from surveillance.patients.changes import change_status
from surveillance.records.patients import PatientEvent


def test_a_status_change_on_facts_the_protocol_cannot_plan_from_is_invalid_input(
    engine: Engine, registry: rules.ProtocolRegistry, now: datetime
) -> None:
    add_sites(engine)
    patient_id = enroll_committed(engine, registry, now)
    with write_session(engine) as session:
        # An event the protocol does not (or no longer) know, stored before.
        session.add(
            PatientEvent(
                patient_id=patient_id,
                kind="relapse",
                occurred_on=date(2024, 6, 1),
                recorded_by=ACTOR,
            )
        )
    with pytest.raises(InvalidInput, match=r"^ROM-101: unknown event 'relapse'"):
        with write_session(engine) as session:
            change_status(
                session,
                study_id="ROM-101",
                status="withdrawn",
                on=date(2025, 6, 1),
                reason="moved abroad",
                actor=ACTOR,
                registry=registry,
                now=now,
            )
