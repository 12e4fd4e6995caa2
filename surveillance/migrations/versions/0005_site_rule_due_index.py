"""index for the loss-to-follow-up scan: assessments by site, rule and due date

Revision ID: 0005
Revises: 0004
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_assessments_site_rule_due", "assessments", ["site_id", "assessment", "due_on"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_assessments_site_rule_due", table_name="assessments")
