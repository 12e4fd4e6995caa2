"""``surveillance demo``: a synthetic demo cohort modelled on the Rome/Erlangen paediatric
case series, and the command that loads it.

No real people: study ids, birth dates and histories are drawn from a seeded random
generator, relative to today, so the lists always show something completed, missed,
due and overdue.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import typer
from dateutil.relativedelta import relativedelta
from sqlmodel import Session

import rules
from surveillance.adverse_events.cases import create_case
from surveillance.adverse_events.facts import CaseFacts
from surveillance.adverse_events.results import record_outcome
from surveillance.cli.context import runtime
from surveillance.cli.demo_large import load_large_demo
from surveillance.kit import migrate
from surveillance.kit.clock import local_date
from surveillance.kit.db import write_session
from surveillance.kit.private_files import write_private_text
from surveillance.patients.enrolment import Enrolment, enroll
from surveillance.records.adverse_event_vocabulary import (
    CaseOutcome,
    Category,
    GradeScale,
    Relatedness,
    ReporterQualification,
    Seriousness,
)
from surveillance.records.queries import get_patient, oldest_closed_pending
from surveillance.records.sites import add_site

PROTOCOL = "cd19-car-t-pediatric-autoimmune"
ACTOR = "demo"
commands = typer.Typer()
SITES = (
    ("Rome", "Rome paediatric rheumatology (synthetic)", "Europe/Rome", "IT"),
    ("Erlangen", "Erlangen paediatric immunology (synthetic)", "Europe/Berlin", "DE"),
)
# (study id, site, diagnosis, sex, age at infusion, days since infusion)
COHORT = (
    ("ROM-001", "Rome", "sle", "F", 15, 1040),
    ("ROM-002", "Rome", "jdm", "M", 9, 700),
    ("ROM-003", "Rome", "sle", "F", 13, 330),
    ("ROM-004", "Rome", "jdm", "F", 7, 95),
    ("ERL-001", "Erlangen", "sle", "F", 16, 980),
    ("ERL-002", "Erlangen", "ssc", "F", 14, 560),
    ("ERL-003", "Erlangen", "jdm", "M", 5, 200),
    ("ERL-004", "Erlangen", "sle", "M", 11, 10),
)
MISSED_SHARE = 0.04
LEFT_UNDONE_SHARE = 0.25  # of the last 120 days' work: still overdue today
RECENT = timedelta(days=120)


@dataclass(frozen=True)
class DemoSummary:
    patients: int
    completed: int
    missed: int
    overdue_left: int
    adverse_events: int = 0


def load_demo(
    session: Session, *, registry: rules.ProtocolRegistry, now: datetime, seed: int = 2026
) -> DemoSummary:
    """Create the two sites, enrol the eight children and record their history up to today."""
    rng = random.Random(seed)  # noqa: S311 — reproducible synthetic data, not a secret
    for site_id, name, timezone, country in SITES:
        add_site(session, site_id=site_id, name=name, timezone=timezone, country=country)
    today = local_date(now, "Europe/Rome")
    enrolments = []
    for study_id, site, diagnosis, sex, age, days_ago in COHORT:
        infused = today - timedelta(days=days_ago)
        birth = infused - relativedelta(years=age, days=rng.randint(0, 360))
        enrolments.append(Enrolment(study_id, site, birth, sex, diagnosis, PROTOCOL, infused))
    enroll(session, enrolments, registry=registry, now=now, actor=ACTOR)
    counts = {"completed": 0, "missed": 0, "left": 0}
    for enrolment in enrolments:
        _history(session, enrolment, today, rng, registry, now, counts)
    cases = _adverse_events(session, enrolments, today, rng, registry, now)
    return DemoSummary(
        len(enrolments), counts["completed"], counts["missed"], counts["left"], cases
    )


# Mild CRS is the rule after CD19 CAR-T in autoimmune disease; one child has ICANS and
# one a serious infection (whose 24-hour sponsor notice was done, its 15-day report due).
CRS_PATIENTS = ("ROM-001", "ROM-002", "ROM-004", "ERL-001", "ERL-002", "ERL-003")
ICANS_PATIENT = "ROM-003"
INFECTION_PATIENT = "ROM-001"


def _adverse_events(
    session: Session,
    enrolments: list[Enrolment],
    today: date,
    rng: random.Random,
    registry: rules.ProtocolRegistry,
    now: datetime,
) -> int:
    infused = {e.study_id: e.infusion_date for e in enrolments}
    recorded = 0
    for study_id in CRS_PATIENTS:
        onset = infused[study_id] + timedelta(days=rng.randint(1, 3))
        _case(session, study_id, _crs(onset, onset + timedelta(days=rng.randint(2, 4))),
              registry, now)  # fmt: skip
        recorded += 1
    onset = infused[ICANS_PATIENT] + timedelta(days=5)
    icans = CaseFacts(
        onset_date=onset,
        end_date=onset + timedelta(days=2),
        awareness_date=onset,
        term="Immune effector cell-associated neurotoxicity syndrome",
        meddra_code="10083075",
        meddra_version="27.1",
        category=Category.icans,
        grade=2,
        grade_scale=GradeScale.astct,
        serious=False,
        relatedness=Relatedness.related,
        expected=True,
        outcome=CaseOutcome.recovered,
        narrative="ICE score 7 on day 5; dexamethasone for 48 hours; ICE 10 on day 7.",
        reporter_qualification=ReporterQualification.physician,
        last_info_date=onset + timedelta(days=2),
    )
    _case(session, ICANS_PATIENT, icans, registry, now)
    onset = today - timedelta(days=6)
    infection = CaseFacts(
        onset_date=onset,
        awareness_date=onset + timedelta(days=1),
        term="Pneumonia",
        meddra_code="10035664",
        meddra_version="27.1",
        category=Category.infection,
        grade=3,
        grade_scale=GradeScale.ctcae_v5,
        serious=True,
        seriousness_criteria=(Seriousness.hospitalization,),
        relatedness=Relatedness.possibly_related,
        expected=False,
        outcome=CaseOutcome.recovering,
        narrative=(
            "Fever and cough with right lower lobe consolidation; IgG low after B-cell "
            "aplasia. Admitted for intravenous antibiotics and IVIG; improving."
        ),
        reporter_qualification=ReporterQualification.physician,
    )
    change = create_case(
        session, study_id=INFECTION_PATIENT, facts=infection, actor=ACTOR, registry=registry,
        now=now,
    )  # fmt: skip
    case_id = change.case.case_id
    [notice] = [a for a in change.calendar.added if a.assessment == "sae_sponsor_notification"]
    sponsor_notice = f"{INFECTION_PATIENT}:{notice.key}"
    record_outcome(
        session,
        key=sponsor_notice,
        outcome="completed",
        on=infection.awareness_date,
        result=f"sponsor notified of {case_id} by phone and email",
        actor=ACTOR,
        registry=registry,
        now=now,
    )
    return recorded + 2


def _crs(onset: date, end: date) -> CaseFacts:
    return CaseFacts(
        onset_date=onset,
        end_date=end,
        awareness_date=onset,
        term="Cytokine release syndrome",
        meddra_code="10052015",
        meddra_version="27.1",
        category=Category.crs,
        grade=1,
        grade_scale=GradeScale.astct,
        serious=False,
        relatedness=Relatedness.related,
        expected=True,
        outcome=CaseOutcome.recovered,
        narrative="Fever only; paracetamol; no tocilizumab.",
        reporter_qualification=ReporterQualification.physician,
        last_info_date=end,  # recorded when it resolved, back then
    )


def _case(
    session: Session,
    study_id: str,
    facts: CaseFacts,
    registry: rules.ProtocolRegistry,
    now: datetime,
) -> str:
    change = create_case(
        session, study_id=study_id, facts=facts, actor=ACTOR, registry=registry, now=now
    )
    return change.case.case_id


def _history(
    session: Session,
    enrolment: Enrolment,
    today: date,
    rng: random.Random,
    registry: rules.ProtocolRegistry,
    now: datetime,
    counts: dict[str, int],
) -> None:
    """Walk the patient's past in date order; results can change what comes next."""
    patient_id = get_patient(session, enrolment.study_id).id
    assert patient_id is not None
    skipped: set[int] = set()
    while True:
        row = oldest_closed_pending(session, patient_id, before=today, skip=skipped)
        if row is None:
            return
        assert row.id is not None
        key = f"{enrolment.study_id}:{row.infusion_number}:{row.assessment}:{row.occurrence}"
        draw = rng.random()
        if row.window_end > today - RECENT and draw < LEFT_UNDONE_SHARE:
            skipped.add(row.id)  # recent enough to be chased: left overdue
            counts["left"] += 1
            continue
        if draw > 1 - MISSED_SHARE:
            record_outcome(
                session,
                key=key,
                outcome="missed",
                on=row.window_end,
                reason="patient did not attend",
                actor=ACTOR,
                registry=registry,
                now=now,
            )
            counts["missed"] += 1
            continue
        span = (row.window_end - row.window_start).days
        performed = row.window_start + timedelta(days=rng.randint(0, span)) if span else row.due_on
        record_outcome(
            session,
            key=key,
            outcome="completed",
            on=performed,
            result=_result(row.assessment, enrolment, performed, rng),
            actor=ACTOR,
            registry=registry,
            now=now,
        )
        counts["completed"] += 1


def _result(assessment: str, enrolment: Enrolment, on: date, rng: random.Random) -> str | None:
    """Plausible synthetic results for the assessments whose results drive branches."""
    if assessment in ("rcl_test", "rcl_yearly_test", "rcl_intensified"):
        return "negative"
    if assessment == "tanner_staging":
        age = relativedelta(on, enrolment.birth_date).years
        return str(min(5, max(1, age - 9)))
    if assessment == "immunoglobulins":
        return f"{rng.randint(450, 1100)} mg/dL"  # IgG, above the IVIG threshold
    if assessment == "car_persistence":
        return f"{rng.uniform(0.0, 0.4):.2f}"  # % vector-positive cells
    return None


# One user per role; passwords are random per demo load and printed once.
DEMO_USERS: tuple[tuple[str, str, list[str]], ...] = (
    ("nurse.rome@demo.invalid", "nurse", ["Rome"]),
    ("nurse.erlangen@demo.invalid", "nurse", ["Erlangen"]),
    ("investigator.rome@demo.invalid", "investigator", ["Rome"]),
    ("investigator.erlangen@demo.invalid", "investigator", ["Erlangen"]),
    ("pv@demo.invalid", "pharmacovigilance", []),
    ("admin@demo.invalid", "admin", []),
)


def create_demo_users(session: Session) -> list[tuple[str, str, str]]:
    """(email, role, password) for each demo user."""
    import secrets

    from surveillance.accounts import auth

    credentials = []
    for email, role, user_sites in DEMO_USERS:
        password = f"demo-{secrets.token_urlsafe(9)}"
        auth.add_user(session, email=email, role=role, sites=user_sites, actor=ACTOR)
        auth.set_password(session, email=email, password=password, actor=ACTOR)
        credentials.append((email, role, password))
    return credentials


@commands.command("demo")
def demo_command(
    patients_per_site: int | None = typer.Option(
        None,
        "--patients-per-site",
        min=1,
        help="a larger synthetic cohort: this many children per site, infused over the past "
        "15 years (default: the small demo of 4 per site)",
    ),
    seed: int = typer.Option(2026, help="the random seed of the synthetic cohort"),
) -> None:
    """Create (or reset) the database with the synthetic demo cohort.

    On SQLite the demo users' passwords are also kept, owner-only, in
    demo-credentials.txt in the data directory (SURVEILLANCE_DATA_DIR).
    """
    current = runtime(create=True)
    engine = current.engine
    migrate.reset(engine)
    migrate.upgrade(engine)
    started = time.perf_counter()
    with write_session(engine) as session:
        if patients_per_site is None:
            summary = load_demo(session, registry=current.registry, now=current.clock(), seed=seed)
            extra = ""
        else:
            large = load_large_demo(
                session,
                registry=current.registry,
                now=current.clock(),
                patients_per_site=patients_per_site,
                seed=seed,
            )
            summary = DemoSummary(
                large.patients, large.completed, large.missed, large.overdue_left,
                large.adverse_events,
            )  # fmt: skip
            extra = f", {large.withdrawn} withdrawn, {large.deceased} deceased"
        credentials = create_demo_users(session)
    typer.echo(
        f"demo cohort loaded into {engine.url.render_as_string()}: "
        f"{summary.patients} synthetic patients at Rome and Erlangen, "
        f"{summary.completed} assessments completed, {summary.missed} missed, "
        f"{summary.overdue_left} left overdue, {summary.adverse_events} adverse events"
        f"{extra} (in {time.perf_counter() - started:.1f} s)."
    )
    lines = ["Demo users (sign in at http://127.0.0.1:8000/ after `surveillance serve`):"]
    lines += [f"  {role:<18} {email:<32} {password}" for email, role, password in credentials]
    text = "\n".join(lines)
    typer.echo(text)
    if engine.dialect.name == "sqlite":
        credentials_file = current.settings.demo_credentials_file
        write_private_text(credentials_file, text + "\n")
        typer.echo(f"(also kept in {credentials_file})")
