"""``surveillance demo --patients-per-site N``: the larger synthetic cohort."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine

import rules
from surveillance.cli.demo_large import LargeDemoSummary, load_large_demo
from surveillance.kit import migrate
from surveillance.kit.db import make_engine, write_session

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
STUDY_ID = re.compile(r"^(ROM|ERL)-\d{4}$")


def _load(
    engine: Engine,
    registry: rules.ProtocolRegistry,
    n: int,
    *,
    seed: int = 2026,
    years: int = 15,
    bulk: bool = True,
) -> LargeDemoSummary:
    with write_session(engine) as session:
        return load_large_demo(
            session, registry=registry, now=NOW, patients_per_site=n, seed=seed, years=years,
            bulk=bulk,
        )  # fmt: skip


def _sqlite(tmp_path: Path, name: str) -> Engine:
    engine = make_engine(f"sqlite:///{tmp_path / name}")
    migrate.upgrade(engine)
    return engine


def _scalar(engine: Engine, sql: str) -> object:
    with engine.connect() as connection:
        return connection.exec_driver_sql(sql).scalar()


def _rows(engine: Engine, sql: str) -> list[tuple[object, ...]]:
    with engine.connect() as connection:
        return [tuple(row) for row in connection.exec_driver_sql(sql)]


def test_loads_with_the_expected_counts_and_pseudonymous_ids_only(
    engine: Engine, registry: rules.ProtocolRegistry
) -> None:
    summary = _load(engine, registry, 20)
    assert summary.patients == 40
    assert _scalar(engine, "SELECT count(*) FROM patients") == 40
    per_site = dict(_rows(engine, "SELECT site_id, count(*) FROM patients GROUP BY site_id"))
    assert per_site == {"Rome": 20, "Erlangen": 20}
    assert _scalar(engine, "SELECT count(*) FROM outcomes") == summary.completed + summary.missed
    assert summary.completed > 40 * 10
    assert summary.missed > 0
    assert summary.adverse_events == _scalar(engine, "SELECT count(*) FROM adverse_event_cases")
    ended = dict(_rows(engine, "SELECT status, count(*) FROM patients GROUP BY status"))
    assert ended.get("withdrawn", 0) == summary.withdrawn
    assert ended.get("deceased", 0) == summary.deceased
    # Every outcome has its audit row; the chain ends where the last write left it.
    audited = "SELECT count(*) FROM audit_log WHERE action = 'record_outcome'"
    assert _scalar(engine, audited) == summary.completed + summary.missed
    # Infusions spread over the past 15 years, none in the future.
    first, last = _rows(engine, "SELECT min(infused_on), max(infused_on) FROM infusions")[0]
    assert str(first) >= "2011-11-25"
    assert str(last) <= "2026-11-25"
    # Pseudonymous study ids only; no names, emails or other identifiers anywhere.
    study_ids = [row[0] for row in _rows(engine, "SELECT study_id FROM patients")]
    assert all(STUDY_ID.match(s) for s in study_ids), study_ids
    texts = _rows(engine, "SELECT new_values FROM audit_log WHERE action = 'enroll'")
    assert not any("@" in str(t) or "name" in str(t).lower() for t in texts)


def test_the_same_seed_and_date_give_the_same_database(
    tmp_path: Path, registry: rules.ProtocolRegistry
) -> None:
    one, two, other = (_sqlite(tmp_path, f"{n}.db") for n in ("one", "two", "other"))
    assert _load(one, registry, 6) == _load(two, registry, 6)
    _load(other, registry, 6, seed=7)
    last_hash = "SELECT hash FROM audit_log ORDER BY id DESC LIMIT 1"
    assert _scalar(one, last_hash) == _scalar(two, last_hash) != _scalar(other, last_hash)
    rows = "SELECT * FROM assessments ORDER BY id"
    assert _rows(one, rows) == _rows(two, rows)


@pytest.mark.parametrize("n", [1])
def test_the_bulk_history_writes_what_the_services_write(
    tmp_path: Path, registry: rules.ProtocolRegistry, n: int
) -> None:
    """Every outcome through ``record_outcome`` or most of them in batches: the same rows,
    down to the audit chain's last hash (which covers every audit row's content)."""
    bulk, service = _sqlite(tmp_path, "bulk.db"), _sqlite(tmp_path, "service.db")
    fast = _load(bulk, registry, n, years=4, seed=11)
    slow = _load(service, registry, n, years=4, seed=11, bulk=False)
    assert fast.through_service < slow.through_service == slow.completed + slow.missed
    assert (fast.completed, fast.missed) == (slow.completed, slow.missed)
    for sql in (
        "SELECT hash FROM audit_log ORDER BY id DESC LIMIT 1",
        "SELECT * FROM assessments ORDER BY id",
        "SELECT * FROM outcomes ORDER BY id",
    ):
        assert _rows(bulk, sql) == _rows(service, sql)
