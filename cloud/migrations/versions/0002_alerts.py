"""alerts

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "alerts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("machine_id", sa.String(length=64), nullable=True),
        sa.Column("vend_id", sa.String(length=40), nullable=True),
        sa.Column("detail", sa.String(length=1000), nullable=False),
        sa.Column("acknowledged_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_alerts_at"), ["at"], unique=False)
        batch_op.create_index(batch_op.f("ix_alerts_machine_id"), ["machine_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_alerts_vend_id"), ["vend_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_alerts_vend_id"))
        batch_op.drop_index(batch_op.f("ix_alerts_machine_id"))
        batch_op.drop_index(batch_op.f("ix_alerts_at"))
    op.drop_table("alerts")
