"""Who may do what: bearer tokens with scopes, and experiments that belong to a token's owner.

A token is ``optb_`` + 32 random bytes (URL-safe base64, 256 bits) and is shown once, when it
is created. Only its SHA-256 is stored. A slow password hash (bcrypt, argon2) exists to make
guessing a *low-entropy* secret from a stolen hash expensive; a 256-bit random token cannot be
guessed whatever the hash costs, so a fast hash loses nothing and keeps every request cheap.
The hash is also the lookup key (an indexed equality on the hash of what the client sent), so
no secret is ever compared byte by byte in Python and no comparison time leaks.

Scopes are ordered, each granting the ones before it: ``read`` (GET), ``write`` (also submit and
cancel) and ``admin`` (also everyone's experiments and ``/metrics``). A token's *name* is its
owner: every token of one name sees the experiments any of them submitted, so a token is
rotated by creating another of the same name and revoking the old one. Another owner's
experiment answers ``404``, exactly like one that does not exist.

Tokens are required when ``OPTBENCH_AUTH_REQUIRED`` is true, when the configured host is not a
loopback address, and for any request that reached the server on a non-loopback address (so
``uvicorn --host 0.0.0.0`` is never open, whatever the settings say). Otherwise every request
acts as :data:`LOCAL`, an admin with the empty owner.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.config import Settings, is_public_address
from api.db import Database
from api.errors import ProblemError
from api.models import SCOPES, ApiToken, utcnow

TOKEN_PREFIX = "optb_"
#: Longest ``Authorization`` credential looked at (a real token is 48 characters).
MAX_TOKEN_LENGTH = 200


@dataclass(frozen=True)
class Principal:
    """Who is asking: the owner name and the token's scope."""

    name: str
    scope: str

    def allows(self, scope: str) -> bool:
        return SCOPES.index(self.scope) >= SCOPES.index(scope)

    @property
    def owner_filter(self) -> str | None:
        """The owner whose experiments this principal sees, or None for all (admin)."""
        return None if self.scope == "admin" else self.name


#: Every request when authentication is off: sees everything, owns what it submits as "".
LOCAL = Principal("", "admin")


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(session: Session, name: str, scope: str, now: datetime | None = None) -> str:
    """Store a new token's hash; returns the token itself (the only time it is known)."""
    if scope not in SCOPES:
        raise ValueError(f"unknown scope {scope!r}; known: {', '.join(SCOPES)}")
    token = new_token()
    session.add(
        ApiToken(
            id=secrets.token_hex(12),
            name=name,
            scope=scope,
            token_hash=hash_token(token),
            created_at=now or utcnow(),
        )
    )
    return token


def list_tokens(session: Session) -> list[ApiToken]:
    return list(session.execute(select(ApiToken).order_by(ApiToken.created_at)).scalars())


def revoke_token(session: Session, token_id: str, now: datetime | None = None) -> bool:
    """Revoke by id; False when no live token has that id."""
    row = session.get(ApiToken, token_id)
    if row is None or row.revoked_at is not None:
        return False
    row.revoked_at = now or utcnow()
    return True


def lookup(session: Session, token: str) -> Principal | None:
    row = session.execute(
        select(ApiToken.name, ApiToken.scope).where(
            ApiToken.token_hash == hash_token(token), ApiToken.revoked_at.is_(None)
        )
    ).one_or_none()
    return None if row is None else Principal(row.name, row.scope)


def auth_required(settings: Settings, request: Request) -> bool:
    if settings.auth_enabled:
        return True
    server = request.scope.get("server")
    return server is not None and is_public_address(str(server[0]))


def unauthorized(detail: str) -> ProblemError:
    return ProblemError(
        401,
        detail,
        kind="unauthorized",
        headers={"WWW-Authenticate": 'Bearer realm="optbench"'},
    )


def forbidden(needed: str, principal: Principal) -> ProblemError:
    return ProblemError(
        403,
        f"this token's scope is {principal.scope!r}; this request needs {needed!r}",
        kind="forbidden",
    )


_bearer = HTTPBearer(auto_error=False, description="an API token: `optbench-admin token create`")


def authenticate(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """The request's principal, checked for the scope its method needs (GET: read, else write).

    Raises 401 (no or unknown token) or 403 (scope too small) as problem+json.
    """
    cached: Principal | None = getattr(request.state, "principal", None)
    if cached is not None:
        return cached
    settings: Settings = request.app.state.settings
    if not auth_required(settings, request):
        principal = LOCAL
    else:
        if credentials is None:
            raise unauthorized("this API needs a token: send 'Authorization: Bearer <token>'")
        token = credentials.credentials
        found = None
        if len(token) <= MAX_TOKEN_LENGTH:
            db: Database = request.app.state.db
            with db.session() as session:
                found = lookup(session, token)
        if found is None:
            raise unauthorized("the token is not valid (unknown or revoked)")
        principal = found
    needed = "read" if request.method in ("GET", "HEAD") else "write"
    if not principal.allows(needed):
        raise forbidden(needed, principal)
    request.state.principal = principal
    if principal is not LOCAL:
        request.app.state.quotas.check_request(principal.name)
    return principal


def require_admin(principal: Annotated[Principal, Depends(authenticate)]) -> Principal:
    if not principal.allows("admin"):
        raise forbidden("admin", principal)
    return principal


PrincipalDep = Annotated[Principal, Depends(authenticate)]
AdminDep = Annotated[Principal, Depends(require_admin)]
