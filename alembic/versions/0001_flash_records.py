"""flash records

Revision ID: 0001
Revises:
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "flash_records",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("station", sa.String(length=100), nullable=False),
        sa.Column("serial", sa.String(length=100), nullable=True),
        sa.Column("model", sa.String(length=200), nullable=True),
        sa.Column("slot", sa.String(length=50), nullable=True),
        sa.Column("device", sa.String(length=200), nullable=False),
        sa.Column("image_version", sa.String(length=64), nullable=False),
        sa.Column("image_sha256", sa.String(length=64), nullable=False),
        sa.Column("image_size", sa.BigInteger(), nullable=False),
        sa.Column("readback_sha256", sa.String(length=64), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("bytes_written", sa.BigInteger(), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("ended_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("flash_records", schema=None) as batch_op:
        batch_op.create_index("ix_flash_records_serial", ["serial"], unique=False)
        batch_op.create_index(
            "ix_flash_records_started_at", ["started_at"], unique=False
        )
        batch_op.create_index("ix_flash_records_status", ["status"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("flash_records", schema=None) as batch_op:
        batch_op.drop_index("ix_flash_records_status")
        batch_op.drop_index("ix_flash_records_started_at")
        batch_op.drop_index("ix_flash_records_serial")

    op.drop_table("flash_records")
