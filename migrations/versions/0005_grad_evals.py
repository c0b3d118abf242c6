"""Runs count the gradient evaluations their updates consumed (``grad_evals_done``).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "runs", sa.Column("grad_evals_done", sa.Integer(), server_default="0", nullable=False)
    )


def downgrade() -> None:
    op.drop_column("runs", "grad_evals_done")
