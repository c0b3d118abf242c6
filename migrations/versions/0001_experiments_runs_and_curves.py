"""Experiments, runs (metrics as columns, lease columns) and packed curve chunks.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STATUS_CHECK = "status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')"


def _utc(name: str, nullable: bool = True) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "experiments",
        sa.Column("id", sa.String(length=24), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("spec", sa.Text(), nullable=False),
        sa.Column("spec_hash", sa.String(length=64), nullable=False),
        sa.Column("idempotency_key", sa.String(length=200), nullable=True),
        sa.Column("total_runs", sa.Integer(), nullable=False),
        _utc("cancel_requested_at"),
        _utc("created_at", nullable=False),
        _utc("started_at"),
        _utc("finished_at"),
        sa.CheckConstraint(STATUS_CHECK, name=op.f("ck_experiments_status")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_experiments")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_experiments_idempotency_key")),
    )
    op.create_index(op.f("ix_experiments_name"), "experiments", ["name"])
    op.create_index(op.f("ix_experiments_status"), "experiments", ["status"])

    op.create_table(
        "runs",
        sa.Column("id", sa.String(length=24), nullable=False),
        sa.Column("experiment_id", sa.String(length=24), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("spec_hash", sa.String(length=16), nullable=False),
        sa.Column("spec", sa.Text(), nullable=False),
        sa.Column("steps", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("final_loss", sa.Double(), nullable=True),
        sa.Column("best_loss", sa.Double(), nullable=True),
        sa.Column("f_star", sa.Double(), nullable=True),
        sa.Column("suboptimality", sa.Double(), nullable=True),
        sa.Column("steps_to_target", sa.Integer(), nullable=True),
        sa.Column("diverged", sa.Boolean(), nullable=True),
        sa.Column("divergence_step", sa.Integer(), nullable=True),
        sa.Column("divergence_reason", sa.Text(), nullable=True),
        sa.Column("test_loss", sa.Double(), nullable=True),
        sa.Column("test_accuracy", sa.Double(), nullable=True),
        sa.Column("wall_time_s", sa.Double(), nullable=True),
        sa.Column("steps_done", sa.Integer(), nullable=False),
        sa.Column("stopped", sa.Boolean(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("lease_token", sa.String(length=32), nullable=True),
        _utc("lease_expires_at"),
        _utc("enqueued_at"),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("revision", sa.Integer(), nullable=False),
        _utc("created_at", nullable=False),
        _utc("started_at"),
        _utc("finished_at"),
        sa.CheckConstraint(STATUS_CHECK, name=op.f("ck_runs_status")),
        sa.ForeignKeyConstraint(
            ["experiment_id"],
            ["experiments.id"],
            name=op.f("fk_runs_experiment_id_experiments"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_runs")),
        sa.UniqueConstraint("experiment_id", "position", name="uq_runs_experiment_position"),
    )
    op.create_index("ix_runs_experiment_status", "runs", ["experiment_id", "status"])
    op.create_index("ix_runs_status_lease", "runs", ["status", "lease_expires_at"])

    op.create_table(
        "run_curves",
        sa.Column("run_id", sa.String(length=24), nullable=False),
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("start", sa.Integer(), nullable=False),
        sa.Column("length", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name=op.f("fk_run_curves_run_id_runs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("run_id", "name", "seq", name=op.f("pk_run_curves")),
    )


def downgrade() -> None:
    op.drop_table("run_curves")
    op.drop_index("ix_runs_status_lease", table_name="runs")
    op.drop_index("ix_runs_experiment_status", table_name="runs")
    op.drop_table("runs")
    op.drop_index(op.f("ix_experiments_status"), table_name="experiments")
    op.drop_index(op.f("ix_experiments_name"), table_name="experiments")
    op.drop_table("experiments")
