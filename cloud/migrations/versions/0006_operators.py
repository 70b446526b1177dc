"""operators: API keys, machine broker credentials, claim codes, machine location and QR,
slot stock and enabled

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("scopes", sa.String(length=100), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "machine_credentials",
        sa.Column("machine_id", sa.String(length=64), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["machine_id"], ["machines.id"]),
        sa.PrimaryKeyConstraint("machine_id"),
    )
    op.create_table(
        "claim_codes",
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("machine_id", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["machine_id"], ["machines.id"]),
        sa.PrimaryKeyConstraint("digest"),
    )
    with op.batch_alter_table("claim_codes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_claim_codes_machine_id"), ["machine_id"], unique=False)
    # Server defaults give existing rows what new ones get: no location, every slot on sale.
    with op.batch_alter_table("machines", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("location", sa.String(length=200), nullable=False, server_default="")
        )
        batch_op.add_column(sa.Column("redirect_qr_id", sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column("qr_url", sa.String(length=2000), nullable=True))
        batch_op.add_column(sa.Column("state_since", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(
            sa.Column("versions", sa.String(length=2000), nullable=False, server_default="{}")
        )
        batch_op.add_column(sa.Column("board_state", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("outbox_depth", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("vend_sessions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("planogram", sa.Text(), nullable=False, server_default=""))
    with op.batch_alter_table("slots", schema=None) as batch_op:
        batch_op.add_column(sa.Column("stock", sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column("enabled", sa.Boolean(), nullable=False, server_default=sa.true())
        )


def downgrade() -> None:
    with op.batch_alter_table("vend_sessions", schema=None) as batch_op:
        batch_op.drop_column("planogram")
    with op.batch_alter_table("slots", schema=None) as batch_op:
        batch_op.drop_column("enabled")
        batch_op.drop_column("stock")
    with op.batch_alter_table("machines", schema=None) as batch_op:
        for column in ("deleted_at", "outbox_depth", "board_state", "versions", "state_since"):
            batch_op.drop_column(column)
        batch_op.drop_column("qr_url")
        batch_op.drop_column("redirect_qr_id")
        batch_op.drop_column("location")
    with op.batch_alter_table("claim_codes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_claim_codes_machine_id"))
    op.drop_table("claim_codes")
    op.drop_table("machine_credentials")
    op.drop_table("api_keys")
