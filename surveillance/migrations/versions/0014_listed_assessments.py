"""assessments.listed: the due list reads only rows it may show

Revision ID: 0014
Revises: 0013

A patient who died or withdrew keeps, pending for good, the rows that were due before
they left (the list and the scans hide them by the patient's status). They are the site's
oldest overdue rows, so every page of the due list read them first and dropped them: at a
site of 20 000 patients (a site of a 10^6 registry) 1 042 of the 1 542 rows read for a
page of 500 (issue 15, EXPLAIN ANALYZE BUFFERS).

``listed`` is false for such rows (``surveillance.patients.listing``); the due list's
overdue and due branches read the new index over pending, listed rows. Every row starts
listed (true is always safe: the list still checks the patient); which existing rows can
be unlisted depends on the protocols' reporting duties, which a schema migration does not
load: ``surveillance db upgrade`` unlists them when it passes this revision.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_INDEX = "ix_assessments_listed_site_window_end"
_LISTED = {
    "sqlite_where": sa.text("status = 'pending' AND listed = 1"),
    "postgresql_where": sa.text("status = 'pending' AND listed"),
}


def upgrade() -> None:
    # A constant default: PostgreSQL adds the column without rewriting the table.
    op.add_column(
        "assessments",
        sa.Column("listed", sa.Boolean(), server_default=sa.text("true"), nullable=False),
    )
    op.create_index(_INDEX, "assessments", ["site_id", "window_end", "id"], **_LISTED)


def downgrade() -> None:
    op.drop_index(_INDEX, table_name="assessments", **_LISTED)
    # Not a batch (a copy of the table on SQLite): the triggers of migration 0012 on other
    # tables name assessments, and SQLite (3.35+) drops a column in place.
    op.execute("ALTER TABLE assessments DROP COLUMN listed")
