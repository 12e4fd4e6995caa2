"""webhook signing secrets encrypted at rest; the audit chain's checkpoints

Revision ID: 0010
Revises: 0009

The columns ``webhook_endpoints.secret`` and ``previous_secret`` grow to 400 characters
(a Fernet token of a secret) and every stored secret is encrypted with the installation's
key (``SURVEILLANCE_ENCRYPTION_KEYS``, or the data directory's ``encryption.key``, created
owner-only if missing). Downgrading decrypts them again.

``audit_checkpoints`` (append-only) receives the chain's head (row count, id, hash) at
every audit write, so ``audit verify`` notices rows deleted from the end of the trail; the
upgrade writes the first checkpoint, of the trail as it is.
"""

from collections.abc import Sequence

from datetime import UTC, datetime

import sqlalchemy as sa
import sqlmodel
from alembic import op

from surveillance.kit import secret_box
from surveillance.kit.sqltypes import UtcDateTime

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COLUMNS = ("secret", "previous_secret")


def upgrade() -> None:
    op.create_table(
        "audit_checkpoints",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("row_count", sa.Integer(), nullable=False),
        sa.Column("head_id", sa.Integer(), nullable=False),
        sa.Column("head_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_checkpoints")),
    )
    connection = op.get_bind()
    head = connection.execute(sa.text("SELECT id, hash FROM audit_log ORDER BY id DESC LIMIT 1")).first()
    if head is not None:
        count = connection.execute(sa.text("SELECT count(*) FROM audit_log")).scalar_one()
        checkpoints = sa.table(
            "audit_checkpoints",
            sa.column("at", UtcDateTime()),
            sa.column("row_count", sa.Integer()),
            sa.column("head_id", sa.Integer()),
            sa.column("head_hash", sa.String()),
        )
        connection.execute(
            checkpoints.insert().values(
                at=datetime.now(UTC), row_count=count, head_id=head[0], head_hash=head[1]
            )
        )
    with op.batch_alter_table("webhook_endpoints") as batch:
        for name in _COLUMNS:
            batch.alter_column(
                name,
                existing_type=sa.String(length=100),
                type_=sa.String(length=secret_box.SECRET_COLUMN_LENGTH),
                existing_nullable=name != "secret",
            )
    _convert(lambda ring, value: value if value.startswith(secret_box.PREFIX) else ring.encrypt(value))


def downgrade() -> None:
    op.drop_table("audit_checkpoints")
    _convert(lambda ring, value: ring.decrypt(value) if value.startswith(secret_box.PREFIX) else value)
    with op.batch_alter_table("webhook_endpoints") as batch:
        for name in _COLUMNS:
            batch.alter_column(
                name,
                existing_type=sa.String(length=secret_box.SECRET_COLUMN_LENGTH),
                type_=sa.String(length=100),
                existing_nullable=name != "secret",
            )


def _convert(change) -> None:  # type: ignore[no-untyped-def]
    connection = op.get_bind()
    table = sa.table(
        "webhook_endpoints",
        sa.column("id", sa.String()),
        sa.column("secret", sa.String()),
        sa.column("previous_secret", sa.String()),
    )
    rows = connection.execute(sa.select(table.c.id, table.c.secret, table.c.previous_secret)).all()
    if not rows:
        return
    ring = secret_box.current()
    for row in rows:
        connection.execute(
            table.update()
            .where(table.c.id == row.id)
            .values(
                secret=change(ring, row.secret),
                previous_secret=None if row.previous_secret is None else change(ring, row.previous_secret),
            )
        )
