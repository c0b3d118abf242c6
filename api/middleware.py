"""ASGI middleware guarding the whole app: browser safety and admission under overload.

Both run before routing and answer with problem+json themselves, so neither a refused form post
nor an overload ever reaches a handler, a database session or the thread pool.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import problem

UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})

#: The dashboard and /docs load only their own scripts, styles and data; nothing may frame them.
#: No inline script or style runs: the dashboard sets computed styles (swatch colours, sizes)
#: through the CSSOM (``element.style.x = …``, which a CSP does not govern) and the vendored
#: Swagger UI needs no inline style either (the browser test records no violation on either).
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
]


def _own_origin(scope: Scope, headers: Headers) -> str:
    return f"{scope.get('scheme', 'http')}://{headers.get('host', '')}"


class BrowserSafetyMiddleware:
    """Writes only from this site or an allowed origin, only as JSON; safety headers on every
    response.

    * A write (POST, …) whose ``Origin`` is neither this server's own nor in ``allowed_origins``
      is a ``403``: a page on another site cannot make a browser cancel or submit with the
      user's credentials. Requests without ``Origin`` (curl, the CLI) are not browsers' cross-site
      requests and pass.
    * A write with a body must be ``application/json`` (else ``415``). The content types a
      cross-site HTML form can send (urlencoded, multipart, text/plain) are thereby refused even
      where ``Origin`` is missing; a bodiless POST (``/cancel``) needs no content type.
    * Every response gets ``X-Content-Type-Options: nosniff``, ``Referrer-Policy: no-referrer``,
      ``X-Frame-Options: DENY`` and a ``Content-Security-Policy`` with
      ``frame-ancestors 'none'``.
    """

    def __init__(self, app: ASGIApp, allowed_origins: Iterable[str] = ()) -> None:
        self.app = app
        self.allowed = {o.rstrip("/") for o in allowed_origins}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        refusal = self._refusal(scope, headers) if scope["method"] in UNSAFE_METHODS else None

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [
                    *message.get("headers", []),
                    *SECURITY_HEADERS,
                    (b"content-security-policy", CSP.encode()),
                ]
            await send(message)

        if refusal is not None:
            await refusal(scope, receive, send_with_headers)
            return
        await self.app(scope, receive, send_with_headers)

    def _refusal(self, scope: Scope, headers: Headers) -> ASGIApp | None:
        path = scope.get("path", "")
        origin = headers.get("origin")
        if origin is not None:
            origin = origin.rstrip("/")
            if origin != _own_origin(scope, headers) and origin not in self.allowed:
                return problem(
                    403,
                    f"writes from origin {origin[:200]!r} are not allowed",
                    instance=path,
                    kind="cross-origin",
                )
        content_type = headers.get("content-type")
        has_body = headers.get("content-length", "0") != "0" or "transfer-encoding" in headers
        if content_type is not None or has_body:
            media_type = (content_type or "").split(";", 1)[0].strip().lower()
            if media_type != "application/json":
                return problem(
                    415,
                    f"request bodies must be application/json, not {media_type[:100] or 'untyped'}",
                    instance=path,
                    kind="unsupported-media-type",
                )
        return None


class AdmissionMiddleware:
    """At most ``limit`` requests in the app at once. A request over the limit waits up to
    ``wait_s`` for a slot, then gets ``503`` + ``Retry-After`` instead of queueing behind the
    thread pool without bound (where every request's latency — and the event loop's, through
    the GIL — grows with the backlog).

    Paths in ``exempt`` (liveness/readiness probes, metrics) are never counted, delayed or
    refused, and their handlers stay off the request thread pool, so they answer while the rest
    is saturated.
    """

    def __init__(self, app: ASGIApp, limit: int, wait_s: float, exempt: Iterable[str]) -> None:
        self.app = app
        self.limit = limit
        self.wait_s = wait_s
        self.exempt = frozenset(exempt)
        self._slots: asyncio.Semaphore | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") in self.exempt:
            await self.app(scope, receive, send)
            return
        if self._slots is None:  # created on the server's event loop
            self._slots = asyncio.Semaphore(self.limit)
        try:
            if self._slots.locked():
                if self.wait_s <= 0:
                    raise TimeoutError
                await asyncio.wait_for(self._slots.acquire(), self.wait_s)
            else:
                await self._slots.acquire()  # a free slot: returns at once
        except TimeoutError:
            response = problem(
                503,
                f"the server is busy with {self.limit} requests; retry shortly",
                instance=scope.get("path", ""),
                kind="overloaded",
                headers={"Retry-After": "1"},
            )
            await response(scope, receive, send)
            return
        try:
            await self.app(scope, receive, send)
        finally:
            self._slots.release()
