"""Runs: batch_size and batch_wall_time_s beside the (now amortised) wall_time_s.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("batch_size", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("batch_wall_time_s", sa.Double(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("batch_wall_time_s")
        batch.drop_column("batch_size")
