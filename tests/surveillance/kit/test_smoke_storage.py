from datetime import date, datetime

from sqlalchemy import Engine, func, select

import rules
from surveillance.kit.db import read_session, write_session
from surveillance.patients.enrolment import Enrolment, enroll
from surveillance.records import sites
from surveillance.records.patients import Assessment


def test_enrol_writes_the_calendar(
    engine: Engine, registry: rules.ProtocolRegistry, now: datetime
) -> None:
    with write_session(engine) as session:
        sites.add_site(session, site_id="Rome", name="Rome", timezone="Europe/Rome")
        enroll(
            session,
            [
                Enrolment(
                    "ROM-101",
                    "Rome",
                    date(2014, 3, 1),
                    "F",
                    "sle",
                    "cd19-car-t-pediatric-autoimmune",
                    date(2024, 1, 31),
                )
            ],
            registry=registry,
            now=now,
            actor="test",
        )
    with read_session(engine) as session:
        count = session.execute(select(func.count()).select_from(Assessment)).scalar_one()
    assert count == 305  # protocol 1.1 (1.0 planned 241)
