"""Alembic on SQLite and PostgreSQL: upgrade → downgrade → upgrade, and no drift from the models."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect

from api.launcher import alembic_config
from api.models import Base
from tests.conftest import PostgresServer

TABLES = {"experiments", "runs", "run_curves"}


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'm.db'}"
    postgres: PostgresServer = request.getfixturevalue("postgres")
    return postgres.create()


def tables(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def drift(url: str) -> list[object]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(
                conn,
                opts={"compare_type": True, "render_as_batch": conn.dialect.name == "sqlite"},
            )
            return list(compare_metadata(context, Base.metadata))
    finally:
        engine.dispose()


def test_upgrade_downgrade_upgrade_without_drift(fresh_url: str) -> None:
    cfg = alembic_config(fresh_url)
    command.upgrade(cfg, "head")
    assert tables(fresh_url) >= TABLES
    assert drift(fresh_url) == []
    command.downgrade(cfg, "base")
    assert tables(fresh_url) & TABLES == set()
    command.upgrade(cfg, "head")
    assert tables(fresh_url) >= TABLES
    assert drift(fresh_url) == []


def test_every_revision_has_a_real_downgrade() -> None:
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    revisions = list(script.walk_revisions())
    assert revisions
    for revision in revisions:
        module = revision.module
        source = Path(module.__file__).read_text()
        body = source.split("def downgrade() -> None:", 1)[1]
        # op.drop_* / op.alter_*, or the same inside op.batch_alter_table (SQLite copies tables)
        assert any(
            f"{obj}.{verb}" in body for obj in ("op", "batch") for verb in ("drop", "alter")
        ), revision.revision


def test_drift_is_detected(tmp_path: Path) -> None:
    """The no-drift check can fail: a database one migration short of the models shows a diff."""
    url = f"sqlite:///{tmp_path / 'short.db'}"
    command.upgrade(alembic_config(url), "head")
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP INDEX ix_runs_status_lease")
    engine.dispose()
    assert any("ix_runs_status_lease" in repr(d) for d in drift(url))
