"""Worker-test fixtures: a runtime on each real database, publishing to the embedded broker."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from api.config import Settings
from api.db import Database
from tests.conftest import Broker
from worker.runtime import Runtime


@pytest.fixture
def rt(
    make_settings: Callable[..., Settings], db_url: str, real_db: Database, embedded_broker: Broker
) -> Runtime:
    settings = make_settings(database_url=db_url, broker=embedded_broker, checkpoint_every_s=0.05)
    return Runtime(settings, real_db)
