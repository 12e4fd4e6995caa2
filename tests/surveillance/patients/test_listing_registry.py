"""``Assessment.listed`` and the protocols that judged it (review of migration 0014).

A row is unlisted because its category is no reporting duty: a judgement made with the
protocols the unlisting process loaded. The upgrade past revision 0014 unlists the rows of
every patient who had died or withdrawn, with the registry of whichever process runs it; a
process that does not know a patient's protocol (a site's own protocols folder, the shell
that runs ``surveillance db upgrade`` without ``SURVEILLANCE_PROTOCOLS_DIR``) cannot know
which of that patient's categories are reporting duties, and must leave the rows listed:
unlisting is once for good (the follow-up runs when the revision is passed, never again).
The typed-results follow-up of revision 0007 already skips the rows of unknown protocols.
"""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

from sqlalchemy import select
from sqlmodel import col
from support.factories import ACTOR, add_sites, enroll_committed
from support.legacy import before_listed, downgrade, store_free_text

import rules
from surveillance.cli.context import upgrade_schema
from surveillance.config import Settings
from surveillance.kit import migrate
from surveillance.kit.db import make_engine, read_session, write_session
from surveillance.main import build_runtime
from surveillance.patients.changes import change_status
from surveillance.patients.due_list import due_list
from surveillance.patients.listing import unlist_ended
from surveillance.records.patients import Assessment, Patient

SITE_PROTOCOL = "cd19-site-ltfu"
SITE_REPORTING = "expedited-reporting"
ON = date(2026, 11, 25)


def _site_protocols(folder: Path) -> rules.ProtocolRegistry:
    """A site's own protocols folder: the bundled CAR-T protocol under another id, whose
    reporting duties have a category of their own name."""
    folder.mkdir()
    source = rules.BUNDLED_PROTOCOLS / "cd19-car-t-pediatric-autoimmune-1.1.yaml"
    text = source.read_text(encoding="utf-8")
    text = text.replace("id: cd19-car-t-pediatric-autoimmune\n", f"id: {SITE_PROTOCOL}\n", 1)
    text = text.replace("safety-reporting", SITE_REPORTING)
    (folder / f"{SITE_PROTOCOL}.yaml").write_text(text, encoding="utf-8")
    registry = rules.ProtocolRegistry.from_directory(folder)
    assert registry.reporting_categories() == {SITE_REPORTING}
    return registry


def _keys(url: str, registry: rules.ProtocolRegistry) -> list[str]:
    engine = make_engine(url)
    try:
        with read_session(engine) as session:
            items = due_list(session, site_id="Rome", on=ON, registry=registry, limit=10_000)
            return [item.key for item in items]
    finally:
        engine.dispose()


def test_an_upgrade_with_other_protocols_leaves_an_unknown_protocols_duties_listed(
    database_url: str, registry: rules.ProtocolRegistry, now: datetime, tmp_path: Path
) -> None:
    site = _site_protocols(tmp_path / "protocols")
    engine = make_engine(database_url)
    add_sites(engine)
    enroll_committed(engine, site, now, study_id="ROM-101", protocol_id=SITE_PROTOCOL)
    with write_session(engine) as session:
        change_status(
            session, study_id="ROM-101", status="deceased", on=date(2026, 11, 20),
            reason="as the site wrote", actor=ACTOR, registry=site, now=now,
        )  # fmt: skip
    # The death's reporting duties are on the list (owed whatever the status).
    shown = _keys(database_url, site)
    assert shown, "the death started reporting duties"
    # The same database as before revision 0014 (every row listed; the column dropped).
    before_listed(engine)

    # ``surveillance db upgrade`` from a shell with the bundled protocols (no
    # SURVEILLANCE_PROTOCOLS_DIR): they do not know the patient's protocol.
    settings = Settings(_env_file=None, database_url=database_url)  # type: ignore[call-arg]
    runtime = build_runtime(settings, registry=registry)
    try:
        upgrade_schema(runtime)
    finally:
        runtime.engine.dispose()

    # The server, with the site's protocols, lists what it listed before the upgrade.
    assert _keys(database_url, site) == shown


def test_an_upgrade_from_0006_maps_the_results_and_unlists_the_ended_rows(
    registry: rules.ProtocolRegistry, now: datetime, tmp_path: Path
) -> None:
    """Both follow-ups in the one upgrade transaction (0007's mapping, 0014's unlisting)."""
    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = make_engine(url)
    migrate.upgrade(engine)
    add_sites(engine)
    enroll_committed(engine, registry, now, study_id="ROM-101")
    enroll_committed(engine, registry, now, study_id="ROM-102")
    store_free_text(engine, registry, now, "ROM-101:1:immunoglobulins:1", "350 mg/dL")
    with write_session(engine) as session:
        change_status(
            session, study_id="ROM-102", status="withdrawn", on=date(2026, 11, 20),
            reason="as the site wrote", actor=ACTOR, registry=registry, now=now,
        )  # fmt: skip
    engine.dispose()
    downgrade(url, "0006")

    settings = Settings(_env_file=None, database_url=url)  # type: ignore[call-arg]
    runtime = build_runtime(settings, registry=registry)
    try:
        report = upgrade_schema(runtime)
        assert report is not None
        assert report.mapped == 1
        assert migrate.current_revision(runtime.engine) == migrate.head_revision()
        with read_session(runtime.engine) as session:
            unlisted = session.execute(
                select(Patient.study_id, Assessment.category, Assessment.status)
                .join(Assessment)
                .where(~col(Assessment.listed))
            ).all()
    finally:
        runtime.engine.dispose()
    assert unlisted
    assert {study_id for study_id, _, _ in unlisted} == {"ROM-102"}
    assert all(s == "pending" and c not in registry.reporting_categories() for _, c, s in unlisted)


def test_a_process_with_no_protocols_unlists_nothing(
    database_url: str, registry: rules.ProtocolRegistry, now: datetime, tmp_path: Path
) -> None:
    """An empty protocols folder (a mistyped SURVEILLANCE_PROTOCOLS_DIR) knows no protocol
    and no reporting duty: nothing is unlisted, and nothing fails on the empty lists."""
    engine = make_engine(database_url)
    add_sites(engine)
    enroll_committed(engine, registry, now, study_id="ROM-101")
    with write_session(engine) as session:
        change_status(
            session, study_id="ROM-101", status="deceased", on=date(2026, 11, 20),
            reason="as the site wrote", actor=ACTOR, registry=registry, now=now,
        )  # fmt: skip
    with read_session(engine) as session:
        before = session.execute(select(col(Assessment.id), col(Assessment.listed))).all()
    before_listed(engine)
    (tmp_path / "none").mkdir()
    nothing = rules.ProtocolRegistry.from_directory(tmp_path / "none")
    settings = Settings(_env_file=None, database_url=database_url)  # type: ignore[call-arg]
    runtime = build_runtime(settings, registry=nothing)
    try:
        upgrade_schema(runtime)
        with write_session(runtime.engine) as session:
            assert unlist_ended(session, registry=nothing) == 0
        with read_session(runtime.engine) as session:
            after = session.execute(select(col(Assessment.id), col(Assessment.listed))).all()
    finally:
        runtime.engine.dispose()
    assert not all(listed for _, listed in before)
    assert sorted(after) == sorted((row_id, True) for row_id, _ in before)
