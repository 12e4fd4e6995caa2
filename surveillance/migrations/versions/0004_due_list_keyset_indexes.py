"""due-list indexes end with the assessment id (the keyset order of the pages)

The due list is read in (window_end, id) or (window_start, id) order and paged after
the last (date, id) shown. SQLite keeps equal index keys in rowid order, but PostgreSQL
does not: without the id it sorts a whole day's pending rows (thousands at a large
site) to return one page.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25 18:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_PENDING = {"sqlite_where": sa.text("status = 'pending'"), "postgresql_where": sa.text("status = 'pending'")}
_INDEXES = {
    "ix_assessments_pending_site_window_end": "window_end",
    "ix_assessments_pending_site_window_start": "window_start",
}


def upgrade() -> None:
    for name, column in _INDEXES.items():
        op.drop_index(name, table_name="assessments", **_PENDING)
        op.create_index(name, "assessments", ["site_id", column, "id"], **_PENDING)


def downgrade() -> None:
    for name, column in _INDEXES.items():
        op.drop_index(name, table_name="assessments", **_PENDING)
        op.create_index(name, "assessments", ["site_id", column], **_PENDING)
