"""The SQL tables: experiments, their runs, and the runs' curves.

Metrics are real columns (sortable, filterable). Curves are stored compactly: one row per curve
name per *chunk* holding the values as little-endian float64 bytes (``eval_steps`` as int64), so
values round-trip bit-exactly. A running run appends a chunk per checkpoint; its final write
replaces them with one chunk per curve.

All timestamps are timezone-aware UTC; the application, not the database server, supplies them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    DateTime,
    Double,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

#: Token scopes, each granting the ones before it: ``write`` reads too, ``admin`` sees everyone's.
SCOPES = ("read", "write", "admin")
EXPERIMENT_STATUSES = ("queued", "running", "succeeded", "failed", "cancelled")
RUN_STATUSES = ("queued", "running", "succeeded", "failed", "cancelled")
#: Run states no task will change any more.
TERMINAL = ("succeeded", "failed", "cancelled")

ID_LENGTH = 24


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """An aware UTC datetime on every backend (SQLite keeps naive UTC text, compared lexically)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def _status_check(statuses: tuple[str, ...]) -> CheckConstraint:
    allowed = ", ".join(f"'{s}'" for s in statuses)
    return CheckConstraint(f"status IN ({allowed})", name="status")


class Experiment(Base):
    __tablename__ = "experiments"
    __table_args__ = (
        _status_check(EXPERIMENT_STATUSES),
        UniqueConstraint("owner", "idempotency_key", name="uq_experiments_owner_idempotency_key"),
    )

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), index=True)
    description: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(16), index=True)
    #: The validated spec as canonical JSON (sorted keys, defaults resolved).
    spec: Mapped[str] = mapped_column(Text)
    #: SHA-256 of ``spec``: what an ``Idempotency-Key`` replay must match.
    spec_hash: Mapped[str] = mapped_column(String(64))
    #: Name of the token that submitted it ("" when authentication is off): only tokens of
    #: that name, and ``admin`` tokens, see it. Idempotency keys are unique per owner.
    owner: Mapped[str] = mapped_column(String(200), default="", server_default="")
    idempotency_key: Mapped[str | None] = mapped_column(String(200))
    total_runs: Mapped[int] = mapped_column(Integer)
    cancel_requested_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: Archived experiments are hidden from the default listing; nothing else changes.
    archived_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    runs: Mapped[list[Run]] = relationship(
        back_populates="experiment", cascade="all, delete-orphan", passive_deletes=True
    )
    tags: Mapped[list[ExperimentTag]] = relationship(
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="ExperimentTag.tag",
        lazy="selectin",
    )


class ExperimentTag(Base):
    """One tag of an experiment (set at submit, changed by ``PATCH``); listings filter on it."""

    __tablename__ = "experiment_tags"

    experiment_id: Mapped[str] = mapped_column(
        ForeignKey("experiments.id", ondelete="CASCADE"), primary_key=True
    )
    tag: Mapped[str] = mapped_column(String(40), primary_key=True, index=True)


class Run(Base):
    __tablename__ = "runs"
    __table_args__ = (
        _status_check(RUN_STATUSES),
        UniqueConstraint("experiment_id", "position", name="uq_runs_experiment_position"),
        Index("ix_runs_experiment_status", "experiment_id", "status"),
        Index("ix_runs_status_lease", "status", "lease_expires_at"),
    )

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    experiment_id: Mapped[str] = mapped_column(ForeignKey("experiments.id", ondelete="CASCADE"))
    #: Index in the experiment's expansion order (the default listing order).
    position: Mapped[int] = mapped_column(Integer)
    #: The engine's run id: a hash of the resolved run spec.
    spec_hash: Mapped[str] = mapped_column(String(16))
    spec: Mapped[str] = mapped_column(Text)
    #: Names of the run's problem, optimizer and schedule (from ``spec``): run-list filters.
    problem: Mapped[str] = mapped_column(String(64))
    optimizer: Mapped[str] = mapped_column(String(64))
    schedule: Mapped[str] = mapped_column(String(64))
    steps: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))

    final_loss: Mapped[float | None] = mapped_column(Double)
    best_loss: Mapped[float | None] = mapped_column(Double)
    f_star: Mapped[float | None] = mapped_column(Double)
    suboptimality: Mapped[float | None] = mapped_column(Double)
    steps_to_target: Mapped[int | None] = mapped_column(Integer)
    diverged: Mapped[bool | None] = mapped_column(Boolean)
    divergence_step: Mapped[int | None] = mapped_column(Integer)
    divergence_reason: Mapped[str | None] = mapped_column(Text)
    test_loss: Mapped[float | None] = mapped_column(Double)
    test_accuracy: Mapped[float | None] = mapped_column(Double)
    #: Amortised: the batch's time divided by the runs stepped in it (see engine.runner).
    wall_time_s: Mapped[float | None] = mapped_column(Double)
    batch_size: Mapped[int | None] = mapped_column(Integer)
    batch_wall_time_s: Mapped[float | None] = mapped_column(Double)
    steps_done: Mapped[int] = mapped_column(Integer, default=0)
    #: Gradient evaluations the run's updates consumed (L-BFGS: several per update).
    grad_evals_done: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    stopped: Mapped[bool | None] = mapped_column(Boolean)

    attempts: Mapped[int] = mapped_column(Integer, default=0)
    #: Identifies the task attempt that holds the run; every write of that attempt checks it.
    lease_token: Mapped[str | None] = mapped_column(String(32))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    enqueued_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    error: Mapped[str | None] = mapped_column(Text)
    #: Bumped by every write: the run's ETag.
    revision: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    experiment: Mapped[Experiment] = relationship(back_populates="runs")


class RunCurve(Base):
    """A chunk of one curve of one run: values ``[start, start + length)`` as packed bytes."""

    __tablename__ = "run_curves"

    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    start: Mapped[int] = mapped_column(Integer)
    length: Mapped[int] = mapped_column(Integer)
    data: Mapped[bytes] = mapped_column(LargeBinary)


class ApiToken(Base):
    """A bearer token: only the SHA-256 of the secret is kept (see :mod:`api.auth`)."""

    __tablename__ = "api_tokens"
    __table_args__ = (
        CheckConstraint(f"scope IN ({', '.join(repr(s) for s in SCOPES)})", name="scope"),
    )

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    #: The owner: experiments submitted with any token of this name belong to it.
    name: Mapped[str] = mapped_column(String(200), index=True)
    scope: Mapped[str] = mapped_column(String(8))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
