"""incremental alert scan: changed patients (kept by triggers) and each group's scan mark

Revision ID: 0012
Revises: 0011

The alert scan reads only what changed since its last run: the windows that closed
since (index ranges on window ends) and the patients written meanwhile. Which patients
were written is recorded by triggers on ``assessments``, ``patients`` and
``escalation_acks``, in the writing transaction, so no code path (enrolment, the calendar
sync, outcomes, corrections, undo, status changes, amendments, bulk loads, hand-written
SQL) can forget it. SQLite triggers are per row and skip a patient already listed (SQLite
writers are serialised); PostgreSQL triggers are per statement and read the transition
tables (one row per patient and statement, never a check-then-insert that a concurrent
scan could race).

NB: on SQLite, a later migration that rebuilds one of these tables (``batch_alter_table``
in "move and copy" mode) drops its triggers and must create them again
(``tests/surveillance/alerting/test_incremental_scan.py`` checks they exist at head).
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (table, event, the patient ids a changed row names, as SQL over the row ``r``)
_ACKS_PATIENT = "(SELECT a.patient_id FROM assessments a WHERE a.id = r.assessment_id)"
_WATCHED = (
    ("assessments", "r.patient_id"),
    ("patients", "r.id"),
    ("escalation_acks", _ACKS_PATIENT),
)
_EVENTS = ("insert", "update", "delete")


def _name(table: str, event: str) -> str:
    return f"trg_alert_scan_{table}_{event}"


def _sqlite_triggers() -> None:
    for table, patient in _WATCHED:
        for event in _EVENTS:
            rows = (
                ("OLD",) if event == "delete" else ("NEW", "OLD") if event == "update" else ("NEW",)
            )
            body = "".join(
                "INSERT INTO alert_scan_changes (patient_id) "
                f"SELECT p FROM (SELECT {patient.replace('r.', f'{row}.')} AS p) "
                "WHERE p IS NOT NULL AND NOT EXISTS "
                "(SELECT 1 FROM alert_scan_changes c WHERE c.patient_id = p);\n"
                for row in rows
            )
            op.execute(
                f"CREATE TRIGGER {_name(table, event)} AFTER {event.upper()} ON {table}\n"
                f"BEGIN\n{body}END"
            )


def _postgresql_triggers() -> None:
    for table, patient in _WATCHED:
        for event in _EVENTS:
            tables = {"insert": ("new",), "update": ("new", "old"), "delete": ("old",)}[event]
            selects = " UNION ".join(f"SELECT {patient} FROM {t}_rows r" for t in tables)
            function = f"alert_scan_{table}_{event}"
            op.execute(
                f"CREATE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS $$\n"
                "BEGIN\n"
                "  INSERT INTO alert_scan_changes (patient_id)\n"
                f"  SELECT p FROM ({selects}) AS changed (p) WHERE p IS NOT NULL;\n"
                "  RETURN NULL;\n"
                "END $$"
            )
            referencing = " ".join(f"{t.upper()} TABLE AS {t}_rows" for t in tables)
            op.execute(
                f"CREATE TRIGGER {_name(table, event)} AFTER {event.upper()} ON {table} "
                f"REFERENCING {referencing} FOR EACH STATEMENT EXECUTE FUNCTION {function}()"
            )


def upgrade() -> None:
    op.create_table(
        "alert_scan_changes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_scan_changes")),
    )
    op.create_index(op.f("ix_alert_scan_changes_patient_id"), "alert_scan_changes", ["patient_id"])
    op.create_table(
        "alert_scan_marks",
        sa.Column("site_id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("protocol_id", sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.Column("fingerprint", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("scanned_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("site_id", "protocol_id", name=op.f("pk_alert_scan_marks")),
    )
    if op.get_bind().dialect.name == "postgresql":
        _postgresql_triggers()
    else:
        _sqlite_triggers()


def downgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    for table, _ in _WATCHED:
        for event in _EVENTS:
            op.execute(
                f"DROP TRIGGER IF EXISTS {_name(table, event)}"
                + (f" ON {table}" if postgresql else "")
            )
            if postgresql:
                op.execute(f"DROP FUNCTION IF EXISTS alert_scan_{table}_{event}()")
    op.drop_table("alert_scan_marks")
    op.drop_index(op.f("ix_alert_scan_changes_patient_id"), table_name="alert_scan_changes")
    op.drop_table("alert_scan_changes")
