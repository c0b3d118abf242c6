"""An app with authentication on, and tokens made the way ``optbench-admin`` makes them."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.auth import create_token
from api.config import Settings
from api.db import Database
from api.main import create_app
from tests.conftest import Broker


@pytest.fixture
def make_token(db: Database) -> Callable[[str, str], str]:
    """A token of ``scope`` for owner ``name`` (suffixed to be unique to the test)."""

    def make(name: str, scope: str) -> str:
        with db.writer() as session:
            token = create_token(session, name, scope)
            session.commit()
        return token

    return make


@pytest.fixture
def secured(
    make_settings: Callable[..., Settings], sqlite_url: str, redis_broker: Broker, db: Database
) -> Iterator[Callable[..., TestClient]]:
    """``secured(**settings)``: a client of an app requiring tokens, on the machine's Redis."""
    clients: list[TestClient] = []

    def make(**overrides: Any) -> TestClient:
        values = {"auth_required": True, **overrides}
        settings = make_settings(database_url=sqlite_url, broker=redis_broker, **values)
        client = TestClient(create_app(settings, database=db), raise_server_exceptions=False)
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def owner_name() -> str:
    return f"owner-{uuid.uuid4().hex[:8]}"
