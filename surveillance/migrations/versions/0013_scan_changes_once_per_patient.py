"""alert-scan triggers on PostgreSQL: one change row per patient and statement

Revision ID: 0013
Revises: 0012

Migration 0012's insert and delete triggers wrote one ``alert_scan_changes`` row per
written row: enrolling a patient (~300 assessments in one COPY) listed the patient ~300
times, which cost as much again as the assessments' own primary key on every enrolment and
bulk load (measured: 894 775 change rows for 3 000 patients). The functions now list each
patient once per statement (``DISTINCT``), as the update triggers already did through their
``UNION``. SQLite's per-row triggers already skip a patient already listed.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Same tables and patient expressions as 0012 (a migration keeps its own copy).
_ACKS_PATIENT = "(SELECT a.patient_id FROM assessments a WHERE a.id = r.assessment_id)"
_WATCHED = (
    ("assessments", "r.patient_id"),
    ("patients", "r.id"),
    ("escalation_acks", _ACKS_PATIENT),
)
_TRANSITION_TABLES = {"insert": ("new",), "update": ("new", "old"), "delete": ("old",)}


def _replace_functions(distinct: bool) -> None:
    for table, patient in _WATCHED:
        for event, tables in _TRANSITION_TABLES.items():
            selects = " UNION ".join(f"SELECT {patient} FROM {t}_rows r" for t in tables)
            keyword = "DISTINCT " if distinct else ""
            op.execute(
                f"CREATE OR REPLACE FUNCTION alert_scan_{table}_{event}() RETURNS trigger "
                "LANGUAGE plpgsql AS $$\n"
                "BEGIN\n"
                "  INSERT INTO alert_scan_changes (patient_id)\n"
                f"  SELECT {keyword}p FROM ({selects}) AS changed (p) WHERE p IS NOT NULL;\n"
                "  RETURN NULL;\n"
                "END $$"
            )


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        _replace_functions(distinct=True)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        _replace_functions(distinct=False)
