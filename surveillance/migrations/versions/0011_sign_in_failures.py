"""sign-in failures: the throttle's count per account and per client address

Revision ID: 0011
Revises: 0010

One row per refused password or bearer token; the throttle counts a window of them, so
every process of an installation sees the same count. Rows older than the window are
deleted as new failures arrive.
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "sign_in_failures",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
        sa.Column("account", sqlmodel.sql.sqltypes.AutoString(length=254), nullable=True),
        sa.Column("client", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sign_in_failures")),
    )
    op.create_index(
        op.f("ix_sign_in_failures_account_at"), "sign_in_failures", ["account", "at"]
    )
    op.create_index(op.f("ix_sign_in_failures_client_at"), "sign_in_failures", ["client", "at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_sign_in_failures_client_at"), table_name="sign_in_failures")
    op.drop_index(op.f("ix_sign_in_failures_account_at"), table_name="sign_in_failures")
    op.drop_table("sign_in_failures")
