"""price authority: a machine's price mode and the VAT of items its planogram does not list

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Server defaults give existing machines the behaviour new ones get: the planogram prices
    # every vend, and 25 % VAT for an unlisted item (what receipts used before).
    with op.batch_alter_table("machines", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "price_mode", sa.String(length=16), nullable=False, server_default="planogram"
            )
        )
        batch_op.add_column(
            sa.Column("vat_rate", sa.Integer(), nullable=False, server_default="2500")
        )


def downgrade() -> None:
    with op.batch_alter_table("machines", schema=None) as batch_op:
        batch_op.drop_column("vat_rate")
        batch_op.drop_column("price_mode")
