"""Experiment tags and archiving; runs carry their problem/optimizer/schedule names.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-04

The names are filled from each run's stored spec, so existing runs are filterable at once.
"""

import json
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NAMES = ("problem", "optimizer", "schedule")


def upgrade() -> None:
    op.create_table(
        "experiment_tags",
        sa.Column("experiment_id", sa.String(length=24), nullable=False),
        sa.Column("tag", sa.String(length=40), nullable=False),
        sa.ForeignKeyConstraint(
            ["experiment_id"],
            ["experiments.id"],
            name=op.f("fk_experiment_tags_experiment_id_experiments"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("experiment_id", "tag", name=op.f("pk_experiment_tags")),
    )
    op.create_index(op.f("ix_experiment_tags_tag"), "experiment_tags", ["tag"])
    with op.batch_alter_table("experiments") as batch:
        batch.add_column(sa.Column("archived_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("runs") as batch:
        for name in NAMES:
            batch.add_column(sa.Column(name, sa.String(length=64), nullable=True))
    runs = sa.table("runs", sa.column("id"), sa.column("spec"), *(sa.column(n) for n in NAMES))
    conn = op.get_bind()
    rows = conn.execute(sa.select(runs.c.id, runs.c.spec)).all()
    for run_id, spec in rows:
        data = json.loads(spec)
        conn.execute(
            runs.update().where(runs.c.id == run_id).values({n: data[n]["name"] for n in NAMES})
        )
    with op.batch_alter_table("runs") as batch:
        for name in NAMES:
            batch.alter_column(name, existing_type=sa.String(length=64), nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        for name in NAMES:
            batch.drop_column(name)
    with op.batch_alter_table("experiments") as batch:
        batch.drop_column("archived_at")
    op.drop_index(op.f("ix_experiment_tags_tag"), table_name="experiment_tags")
    op.drop_table("experiment_tags")
