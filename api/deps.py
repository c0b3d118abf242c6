"""Typed FastAPI dependencies: the app's settings, database and task publisher.

The database dependency hands out the :class:`~api.db.Database` (a session factory), never a
session: handlers open ``with db.session()`` themselves, so no connection is held across the
dependency's lifetime (FastAPI issue #3205).
"""

from __future__ import annotations

import hashlib
from typing import Annotated, Any

from fastapi import Depends, Request
from starlette.responses import Response

from api.config import Settings
from api.db import Database
from api.errors import json_body
from api.services.queue import Publisher


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _database(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


def _publisher(request: Request) -> Publisher:
    publisher: Publisher = request.app.state.publisher
    return publisher


SettingsDep = Annotated[Settings, Depends(_settings)]
DatabaseDep = Annotated[Database, Depends(_database)]
PublisherDep = Annotated[Publisher, Depends(_publisher)]


def json_response(
    data: Any, status_code: int = 200, headers: dict[str, str] | None = None
) -> Response:
    return Response(json_body(data), status_code, headers, media_type="application/json")


def etag_of(body: bytes) -> str:
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def matches(request: Request, etag: str) -> bool:
    """True when ``If-None-Match`` lists ``etag`` (weak comparison, as RFC 9110 requires)."""
    header = request.headers.get("if-none-match")
    if not header:
        return False
    tags = [t.strip().removeprefix("W/") for t in header.split(",")]
    return "*" in tags or etag in tags


def cached_json(request: Request, data: Any, headers: dict[str, str] | None = None) -> Response:
    """A JSON response with an ETag, or ``304 Not Modified`` when the client already has it."""
    body = json_body(data)
    etag = etag_of(body)
    all_headers = {"ETag": etag, **(headers or {})}
    if matches(request, etag):
        return Response(status_code=304, headers=all_headers)
    return Response(body, 200, all_headers, media_type="application/json")
