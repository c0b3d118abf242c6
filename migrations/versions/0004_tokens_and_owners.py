"""API tokens (hashed, scoped) and an owner per experiment; idempotency keys unique per owner.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.String(length=24), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("scope", sa.String(length=8), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("scope IN ('read', 'write', 'admin')", name=op.f("ck_api_tokens_scope")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_api_tokens_token_hash")),
    )
    op.create_index(op.f("ix_api_tokens_name"), "api_tokens", ["name"])
    with op.batch_alter_table("experiments") as batch:
        batch.add_column(
            sa.Column("owner", sa.String(length=200), nullable=False, server_default="")
        )
        batch.drop_constraint("uq_experiments_idempotency_key", type_="unique")
        batch.create_unique_constraint(
            "uq_experiments_owner_idempotency_key", ["owner", "idempotency_key"]
        )


def downgrade() -> None:
    # Keys reused by different owners cannot all stay unique once owners are gone: keep the
    # oldest experiment's key and clear the later ones (their experiments are kept).
    op.execute(
        "UPDATE experiments SET idempotency_key = NULL WHERE idempotency_key IS NOT NULL AND "
        "id NOT IN (SELECT MIN(id) FROM experiments WHERE idempotency_key IS NOT NULL "
        "GROUP BY idempotency_key)"
    )
    with op.batch_alter_table("experiments") as batch:
        batch.drop_constraint("uq_experiments_owner_idempotency_key", type_="unique")
        batch.create_unique_constraint("uq_experiments_idempotency_key", ["idempotency_key"])
        batch.drop_column("owner")
    op.drop_index(op.f("ix_api_tokens_name"), table_name="api_tokens")
    op.drop_table("api_tokens")
