"""Engine and session factory for SQLite (embedded default) and PostgreSQL.

SQLite runs in WAL mode with a busy timeout and foreign keys on. Its driver's implicit
transaction handling is switched off so that SQLAlchemy emits ``BEGIN`` itself: reads use a
deferred ``BEGIN`` and :meth:`Database.writer` sessions ``BEGIN IMMEDIATE`` — a write transaction
takes the write lock up front, so it waits on the busy timeout instead of failing when a
concurrent writer committed after its snapshot (and SAVEPOINTs work, which the per-test rollback
fixtures rely on).

Sessions are opened inside request handlers and tasks (``with db.session() as s``), never held
by a ``yield`` dependency: see FastAPI issue #3205, where the pool and the thread pool starved each
other under back-to-back load. The pool is sized to the API's thread pool (pool + overflow = 40 by
default) and checkouts time out instead of hanging.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event, exc, text
from sqlalchemy.orm import Session

from api.config import Settings

T = TypeVar("T")
log = logging.getLogger(__name__)


def unreachable(error: BaseException) -> bool:
    """True when ``error`` means the database could not be talked to (not that a statement was
    wrong): a refused or dropped connection, a pool checkout timeout, SQLite's busy lock. Such
    an operation can be retried unchanged once the server answers again."""
    if isinstance(error, exc.DBAPIError) and error.connection_invalidated:
        return True
    return isinstance(error, exc.OperationalError | exc.InterfaceError | exc.TimeoutError)


def retry_unreachable(operation: Callable[[], T], *, within_s: float, what: str) -> T:
    """Run ``operation`` (one whole transaction), again after an :func:`unreachable` error, with
    exponential backoff from 0.25 s to 2 s, for at most ``within_s`` seconds; then re-raise.

    Only for fenced or idempotent transactions: when a COMMIT's answer is lost it may have
    happened, and the retry must then change nothing.
    """
    deadline = time.monotonic() + within_s
    delay = 0.25
    while True:
        try:
            return operation()
        except Exception as error:
            left = deadline - time.monotonic()
            if not unreachable(error) or left <= 0:
                raise
            log.warning("%s: database unreachable (%s), retrying", what, type(error).__name__)
            time.sleep(min(delay, left))
            delay = min(delay * 2, 2.0)


def _sqlite_events(engine: Engine, busy_timeout_s: float) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_s * 1000)}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        immediate = conn.get_execution_options().get("sqlite_immediate", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def make_engine(url: str, settings: Settings) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(
            url,
            pool_size=settings.db_pool_size,
            max_overflow=settings.db_max_overflow,
            pool_timeout=settings.db_pool_timeout_s,
            connect_args={"timeout": settings.sqlite_busy_timeout_s},
        )
        _sqlite_events(engine, settings.sqlite_busy_timeout_s)
        return engine
    return create_engine(
        url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_timeout=settings.db_pool_timeout_s,
        pool_pre_ping=True,
    )


class Database:
    """Hands out sessions; a test can bind it to one connection whose transaction it rolls back."""

    def __init__(self, engine: Engine, connection: Connection | None = None) -> None:
        self.engine = engine
        self._connection = connection
        self._write_engine = engine.execution_options(sqlite_immediate=True)
        # SQLite's deferred read transaction already sees one snapshot (WAL mode)
        self._snapshot_engine = (
            engine
            if engine.dialect.name == "sqlite"
            else engine.execution_options(isolation_level="REPEATABLE READ")
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> Database:
        return cls(make_engine(settings.resolved_database_url, settings))

    @classmethod
    def bound_to(cls, connection: Connection) -> Database:
        """Sessions join ``connection``'s open transaction; their commits become savepoints."""
        return cls(connection.engine, connection)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def _session(self, engine: Engine) -> Session:
        if self._connection is not None:
            return Session(
                bind=self._connection,
                join_transaction_mode="create_savepoint",
                expire_on_commit=False,
            )
        return Session(bind=engine, expire_on_commit=False)

    def session(self) -> Session:
        """A session for reads (and writes that tolerate a busy retry)."""
        return self._session(self.engine)

    def snapshot(self) -> Session:
        """A session for reads that must agree with each other (a run row and its curves): every
        statement of its transaction sees the same committed state."""
        return self._session(self._snapshot_engine)

    def writer(self) -> Session:
        """A session for a write transaction (``BEGIN IMMEDIATE`` on SQLite)."""
        return self._session(self._write_engine)

    def ping(self) -> None:
        with self.session() as session:
            session.execute(text("SELECT 1"))

    def server_start(self) -> str | None:
        """When the database server started (PostgreSQL's ``pg_postmaster_start_time()``), as an
        identity that changes at every restart or fail-over, like Redis's ``run_id``; ``None`` for
        SQLite, a file with no server to restart. Raises like :meth:`ping` when unreachable."""
        if self.dialect == "sqlite":
            self.ping()
            return None
        with self.session() as session:
            return str(session.execute(text("SELECT pg_postmaster_start_time()")).scalar_one())

    def dispose(self, close: bool = True) -> None:
        self.engine.dispose(close=close)
