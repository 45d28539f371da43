"""flash records remember whether the portal has them

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("flash_records", schema=None) as batch_op:
        batch_op.add_column(sa.Column("synced_at", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("sync_error", sa.Text(), nullable=True))
        batch_op.create_index("ix_flash_records_synced_at", ["synced_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("flash_records", schema=None) as batch_op:
        batch_op.drop_index("ix_flash_records_synced_at")
        batch_op.drop_column("sync_error")
        batch_op.drop_column("synced_at")
