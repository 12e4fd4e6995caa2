"""typed results: a note beside each result, free text awaiting a typed value, done work
started by a result later corrected

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06 04:10:00.000000

Stored free-text results are read into their declared types afterwards by
``surveillance.adverse_events.legacy_results`` (it needs the protocols, which a schema
migration does not load): ``surveillance db upgrade`` runs it when it passes this revision.
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("assessments", schema=None) as batch_op:
        batch_op.add_column(sa.Column("note", sqlmodel.sql.sqltypes.AutoString(), nullable=True))
        batch_op.add_column(
            sa.Column("result_as_entered", sqlmodel.sql.sqltypes.AutoString(), nullable=True)
        )
        batch_op.add_column(
            sa.Column(
                "started_by_corrected_result", sqlmodel.sql.sqltypes.AutoString(), nullable=True
            )
        )
    with op.batch_alter_table("outcomes", schema=None) as batch_op:
        batch_op.add_column(sa.Column("note", sqlmodel.sql.sqltypes.AutoString(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("outcomes", schema=None) as batch_op:
        batch_op.drop_column("note")
    with op.batch_alter_table("assessments", schema=None) as batch_op:
        batch_op.drop_column("started_by_corrected_result")
        batch_op.drop_column("result_as_entered")
        batch_op.drop_column("note")
