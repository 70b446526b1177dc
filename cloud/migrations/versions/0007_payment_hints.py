"""payment hints: how many webhook hints a payment awaiting approval has had

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A count, not a time: a read in flight compares it to tell whether a webhook hinted
    # meanwhile, which two equal timestamps could not (see docs/cloud.md).
    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.add_column(sa.Column("hints", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.drop_column("hints")
