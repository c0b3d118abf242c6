"""Tokens, scopes and owners through the in-process app (authentication on)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from fastapi.testclient import TestClient

from api.auth import hash_token, revoke_token
from api.config import Settings
from api.db import Database
from api.main import create_app
from api.models import ApiToken
from tests.conftest import SIMPLE_SPEC, Broker
from tests.security.conftest import bearer, owner_name

PROBLEM_JSON = "application/problem+json"


def test_no_or_unknown_token_is_a_401_problem(secured: Callable[..., TestClient]) -> None:
    client = secured()
    for headers in ({}, bearer("optb_not-a-token"), {"Authorization": "Basic dXNlcjpwdw=="}):
        response = client.get("/v1/experiments", headers=headers)
        assert response.status_code == 401
        assert response.headers["content-type"] == PROBLEM_JSON
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert response.json()["type"] == "urn:optbench:problem:unauthorized"
    assert client.post("/v1/experiments", json=SIMPLE_SPEC).status_code == 401


def test_probes_and_dashboard_need_no_token(secured: Callable[..., TestClient]) -> None:
    client = secured()
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code == 200
    page = client.get("/")
    assert page.status_code == 200 and "<html" in page.text.lower()
    assert client.get("/static/app.js").status_code == 200
    assert client.get("/openapi.json").status_code == 200


def test_scopes(secured: Callable[..., TestClient], make_token: Callable[[str, str], str]) -> None:
    client = secured()
    name = owner_name()
    reader, writer = make_token(name, "read"), make_token(name, "write")
    refused = client.post("/v1/experiments", json=SIMPLE_SPEC, headers=bearer(reader))
    assert refused.status_code == 403
    assert refused.headers["content-type"] == PROBLEM_JSON
    assert "'read'" in refused.json()["detail"] and "'write'" in refused.json()["detail"]
    created = client.post("/v1/experiments", json=SIMPLE_SPEC, headers=bearer(writer))
    assert created.status_code == 202
    # A read token of the same name sees it, but cannot cancel it.
    link = created.json()["links"]["self"]
    assert client.get(link, headers=bearer(reader)).status_code == 200
    assert client.post(f"{link}/cancel", headers=bearer(reader)).status_code == 403


def test_owners_see_only_their_experiments_and_admin_sees_all(
    secured: Callable[..., TestClient], make_token: Callable[[str, str], str]
) -> None:
    client = secured()
    alice, bob = make_token(owner_name(), "write"), make_token(owner_name(), "write")
    admin = make_token(owner_name(), "admin")
    exp = client.post("/v1/experiments", json=SIMPLE_SPEC, headers=bearer(alice)).json()
    run_id = client.get(exp["links"]["runs"], headers=bearer(alice)).json()["items"][0]["id"]
    base = exp["links"]["self"]
    urls = [base, f"{base}/runs", f"{base}/summary", f"{base}/runs.csv", f"/v1/runs/{run_id}"]
    for url in urls:
        assert client.get(url, headers=bearer(alice)).status_code == 200, url
        hidden = client.get(url, headers=bearer(bob))
        assert hidden.status_code == 404, url
        # Exactly what an id that exists nowhere answers.
        assert hidden.json()["type"] == "urn:optbench:problem:not-found"
        assert client.get(url, headers=bearer(admin)).status_code == 200, url
    assert client.post(f"{base}/cancel", headers=bearer(bob)).status_code == 404
    assert client.get(base, headers=bearer(alice)).json()["status"] == "queued"
    assert [
        e["id"] for e in client.get("/v1/experiments", headers=bearer(bob)).json()["items"]
    ] == []
    listed = client.get("/v1/experiments", headers=bearer(admin)).json()["items"]
    assert exp["id"] in [e["id"] for e in listed]
    assert client.post(f"{base}/cancel", headers=bearer(admin)).status_code == 202


def test_idempotency_keys_are_per_owner(
    secured: Callable[..., TestClient], make_token: Callable[[str, str], str]
) -> None:
    client = secured()
    alice, bob = make_token(owner_name(), "write"), make_token(owner_name(), "write")
    key = {"Idempotency-Key": "same-key"}
    first = client.post("/v1/experiments", json=SIMPLE_SPEC, headers={**bearer(alice), **key})
    other = {**SIMPLE_SPEC, "name": "bob's"}
    second = client.post("/v1/experiments", json=other, headers={**bearer(bob), **key})
    assert first.status_code == second.status_code == 202
    assert first.json()["id"] != second.json()["id"]
    replay = client.post("/v1/experiments", json=SIMPLE_SPEC, headers={**bearer(alice), **key})
    assert replay.status_code == 200 and replay.json()["id"] == first.json()["id"]


def test_only_the_hash_is_stored_and_revoked_tokens_stop_working(
    secured: Callable[..., TestClient], make_token: Callable[[str, str], str], db: Database
) -> None:
    client = secured()
    token = make_token(owner_name(), "read")
    assert len(token) > 40 and token.startswith("optb_")
    with db.session() as session:
        stored = session.query(ApiToken).filter_by(token_hash=hash_token(token)).one()
        assert token not in {stored.id, stored.name, stored.token_hash}
        assert stored.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert client.get("/v1/experiments", headers=bearer(token)).status_code == 200
    with db.writer() as session:
        assert revoke_token(session, stored.id)
        session.commit()
    assert client.get("/v1/experiments", headers=bearer(token)).status_code == 401


def test_a_public_bind_forces_authentication(secured: Callable[..., TestClient]) -> None:
    client = secured(auth_required=False, host="0.0.0.0")
    assert client.get("/v1/experiments").status_code == 401
    assert client.get("/v1/limits").status_code == 401


def test_a_request_on_a_public_address_needs_a_token(
    make_settings: Callable[..., Settings], sqlite_url: str, redis_broker: Broker, db: Database
) -> None:
    """``uvicorn --host 0.0.0.0`` with the defaults: requests reaching a non-loopback address of
    the server need a token, whatever the settings say."""
    settings = make_settings(database_url=sqlite_url, broker=redis_broker)
    assert not settings.auth_enabled
    app = create_app(settings, database=db)
    with TestClient(app, base_url="http://192.0.2.10:8000") as public:
        assert public.get("/v1/experiments").status_code == 401
        assert public.get("/healthz").status_code == 200
    with TestClient(app, base_url="http://127.0.0.1:8000") as local:
        assert local.get("/v1/experiments").status_code == 200
