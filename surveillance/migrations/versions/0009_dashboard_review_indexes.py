"""indexes for the dashboard's on-time rate, the results to review and the undo offers

Revision ID: 0009
Revises: 0008

- ``ix_assessments_site_status_window``: the on-time rate counts a site's completed and
  missed rows over the whole follow-up; the index holds every column it reads (site,
  status, window, performed on), so the count never visits the table.
- ``ix_assessments_site_rule_status_window``: the risk of loss ranks each patient's yearly
  contacts (site, rule, status, window end, patient): from the index alone.
- ``ix_assessments_to_review_site_performed``: partial on ``result_as_entered IS NOT NULL``
  (a handful of rows): the dashboard's count and the results-to-review page, in its order.
- ``ix_outcomes_recorded_by_at``: the due list offers to undo what the user recorded in the
  last minutes; without it every page view scanned all outcomes.

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TO_REVIEW = {
    "sqlite_where": sa.text("result_as_entered IS NOT NULL"),
    "postgresql_where": sa.text("result_as_entered IS NOT NULL"),
}


def upgrade() -> None:
    op.create_index(
        "ix_assessments_site_status_window",
        "assessments",
        ["site_id", "status", "window_end", "window_start", "performed_on"],
        unique=False,
    )
    op.create_index(
        "ix_assessments_site_rule_status_window",
        "assessments",
        ["site_id", "assessment", "status", "window_end", "patient_id"],
        unique=False,
    )
    op.create_index(
        "ix_assessments_to_review_site_performed",
        "assessments",
        ["site_id", "performed_on", "id"],
        unique=False,
        **_TO_REVIEW,
    )
    op.create_index(
        "ix_outcomes_recorded_by_at", "outcomes", ["recorded_by", "recorded_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_outcomes_recorded_by_at", table_name="outcomes")
    op.drop_index("ix_assessments_to_review_site_performed", table_name="assessments", **_TO_REVIEW)
    op.drop_index("ix_assessments_site_rule_status_window", table_name="assessments")
    op.drop_index("ix_assessments_site_status_window", table_name="assessments")
