"""Liveness and readiness, including readiness failing when a dependency is gone."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from api.config import Settings
from api.db import Database
from api.main import create_app


def test_healthz(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok", "checks": {}}


def test_readyz_checks_database_and_broker(client: TestClient) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "checks": {"database": "ok", "broker": "ok"}}


def test_readyz_503_without_broker(app_settings: Settings, db: Database, tmp_path: Path) -> None:
    gone = app_settings.model_copy(
        update={
            "broker_url": f"redis+socket://{tmp_path}/absent.sock",
            "broker_connect_timeout_s": 0.5,
        }
    )
    with TestClient(create_app(gone, database=db)) as client:
        response = client.get("/readyz")
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert "broker: unreachable" in response.json()["detail"]
    assert "database" not in response.json()["detail"]


def test_readyz_503_without_database(app_settings: Settings, tmp_path: Path) -> None:
    missing = app_settings.model_copy(
        update={"database_url": f"sqlite:///{tmp_path}/no/such/dir/x.db"}
    )
    with TestClient(create_app(missing)) as client:
        response = client.get("/readyz")
        assert response.status_code == 503
        assert "database: unreachable" in response.json()["detail"]
        # Any other DB-backed endpoint answers 503 too, not 500.
        listing = client.get("/v1/experiments")
        assert listing.status_code == 503
        assert listing.headers["retry-after"] == "5"


def test_catalog_lists_the_engine_registries(client: TestClient) -> None:
    from engine.catalog import catalog

    response = client.get("/v1/catalog")
    assert response.status_code == 200
    assert response.json() == catalog()
    assert {"orthogonalize", "scale_by_adam"} <= {e["name"] for e in response.json()["transforms"]}
    names = {e["name"] for e in response.json()["optimizers"]}
    assert {"adam", "sgd"} <= names
    etag = response.headers["etag"]
    assert client.get("/v1/catalog", headers={"If-None-Match": f"W/{etag}"}).status_code == 304
