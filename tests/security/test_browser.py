"""Browser safety: no cross-site writes, JSON-only writes, CSP and friends on every response."""

from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient

from api.config import Settings
from api.db import Database
from api.main import create_app
from tests.conftest import SIMPLE_SPEC, Broker


def test_cross_site_form_cancel_is_refused(client: TestClient) -> None:
    exp = client.post("/v1/experiments", json=SIMPLE_SPEC).json()
    cancel = exp["links"]["cancel"]
    # What <form action=".../cancel" method=post> on evil.example sends.
    form = {"Origin": "https://evil.example", "Content-Type": "application/x-www-form-urlencoded"}
    response = client.post(cancel, content=b"x=1", headers=form)
    assert response.status_code == 403
    assert response.headers["content-type"] == "application/problem+json"
    assert "evil.example" in response.json()["detail"]
    # The same form without an Origin header (old browsers, privacy proxies): still refused.
    response = client.post(
        cancel, content=b"x=1", headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert response.status_code == 415
    for content_type in ("multipart/form-data; boundary=x", "text/plain"):
        response = client.post(cancel, content=b"x", headers={"Content-Type": content_type})
        assert response.status_code == 415, content_type
    assert client.get(exp["links"]["self"]).json()["status"] == "queued"
    # A form-encoded submission is refused as well.
    response = client.post(
        "/v1/experiments",
        content=b"name=x",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 415
    # The dashboard's own fetch (same origin) and the CLI (no Origin) go through.
    own = {"Origin": "http://testserver"}
    assert client.post(cancel, headers=own).status_code == 202
    assert client.get(exp["links"]["self"]).json()["status"] == "cancelled"


def test_allowed_origins_may_write_and_get_cors(
    make_settings: Callable[..., Settings], sqlite_url: str, embedded_broker: Broker, db: Database
) -> None:
    settings = make_settings(
        database_url=sqlite_url,
        broker=embedded_broker,
        cors_origins=["https://dash.example"],
    )
    with TestClient(create_app(settings, database=db)) as client:
        ok = client.post(
            "/v1/experiments", json=SIMPLE_SPEC, headers={"Origin": "https://dash.example"}
        )
        assert ok.status_code == 202
        assert ok.headers["access-control-allow-origin"] == "https://dash.example"
        refused = client.post(
            "/v1/experiments", json=SIMPLE_SPEC, headers={"Origin": "https://evil.example"}
        )
        assert refused.status_code == 403
        assert "access-control-allow-origin" not in refused.headers


def test_cors_is_off_by_default(client: TestClient) -> None:
    preflight = client.options(
        "/v1/experiments",
        headers={"Origin": "https://dash.example", "Access-Control-Request-Method": "POST"},
    )
    assert "access-control-allow-origin" not in preflight.headers
    got = client.get("/v1/experiments", headers={"Origin": "https://dash.example"})
    assert "access-control-allow-origin" not in got.headers


def test_security_headers(client: TestClient) -> None:
    for path in ("/", "/static/app.js", "/v1/experiments", "/healthz", "/v1/nowhere"):
        response = client.get(path)
        assert response.headers["x-content-type-options"] == "nosniff", path
        assert response.headers["referrer-policy"] == "no-referrer", path
        csp = response.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in csp, path
        assert "script-src 'self';" in csp, path
        assert "style-src 'self';" in csp, path
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp, path
    docs = client.get("/docs").headers["content-security-policy"]
    assert "frame-ancestors 'none'" in docs
    assert "style-src 'self';" in docs and "unsafe-inline" not in docs
