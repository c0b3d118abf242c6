"""The service's JSON API over httpx, every failure a :class:`CliError` with an exit code."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx

DEFAULT_URL = "http://127.0.0.1:8000"


def default_url(env: Mapping[str, str]) -> str:
    """``OPTBENCH_URL``; else the address ``make run`` serves at (``OPTBENCH_HOST`` and
    ``OPTBENCH_PORT``, as the service reads them; a wildcard host is reached on loopback)."""
    if env.get("OPTBENCH_URL"):
        return env["OPTBENCH_URL"]
    host = env.get("OPTBENCH_HOST") or "127.0.0.1"
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"http://{host}:{env.get('OPTBENCH_PORT') or 8000}"


TERMINAL = ("succeeded", "failed", "cancelled")


class CliError(Exception):
    """Ends the command with ``code`` after printing ``message`` (one paragraph) on stderr."""

    def __init__(self, message: str, code: int = 2) -> None:
        super().__init__(message)
        self.code = code


# ------------------------------------------------------------------------------------- HTTP


def _problem_message(response: httpx.Response) -> str:
    """An RFC 9457 problem (or any error body) as one line: title, detail and field errors."""
    try:
        body = response.json()
    except ValueError:
        text = response.text.strip().splitlines()
        return f"HTTP {response.status_code}" + (f": {text[0][:200]}" if text else "")
    if not isinstance(body, dict):
        return f"HTTP {response.status_code}"
    message = str(body.get("detail") or body.get("title") or f"HTTP {response.status_code}")
    errors = body.get("errors") or []
    # field errors the detail does not already say (a detail often is the one error's message)
    parts = [
        f"{e.get('path', '?')}: {e.get('message', '')}"
        for e in errors
        if str(e.get("message", "")) not in message
    ]
    if parts:
        message += " — " + "; ".join(parts)
    return message


class Service:
    """The JSON API over httpx; every failure becomes a :class:`CliError`."""

    def __init__(self, url: str, timeout: float = 30.0, token: str | None = None) -> None:
        self.url = url.rstrip("/")
        if not self.url.startswith(("http://", "https://")):
            raise CliError(f"--url must be an http:// or https:// URL, got {url!r}")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.Client(base_url=self.url, timeout=timeout, headers=headers)

    def close(self) -> None:
        self.http.close()

    def request(
        self, method: str, path: str, *, not_found: str | None = None, **kw: Any
    ) -> httpx.Response:
        try:
            response = self.http.request(method, path, **kw)
        except httpx.TimeoutException:
            raise CliError(
                f"the optbench service at {self.url} did not answer in time", 3
            ) from None
        except httpx.TransportError as exc:
            raise CliError(
                f"cannot reach the optbench service at {self.url} ({exc}); start it with "
                "`make run`, point --url / OPTBENCH_URL at it, or use --local",
                3,
            ) from None
        if response.status_code == 404 and not_found:
            raise CliError(not_found)
        if response.status_code == 401:
            raise CliError(
                f"{_problem_message(response)} — pass --token or set OPTBENCH_TOKEN "
                "(`optbench-admin token create NAME --scope write` makes one)"
            )
        if response.status_code == 429:
            retry = response.headers.get("retry-after")
            raise CliError(
                _problem_message(response) + (f" (retry in {retry} s)" if retry else ""), 3
            )
        if response.status_code >= 500:
            raise CliError(f"the service failed: {_problem_message(response)}", 3)
        if response.status_code >= 400:
            raise CliError(_problem_message(response))
        return response

    def get_json(self, path: str, *, not_found: str | None = None, **kw: Any) -> Any:
        return self.request("GET", path, not_found=not_found, **kw).json()

    def experiment(self, experiment_id: str, etag: str | None = None) -> httpx.Response:
        headers = {"If-None-Match": etag} if etag else {}
        return self.request(
            "GET",
            f"/v1/experiments/{experiment_id}",
            headers=headers,
            not_found=f"no experiment {experiment_id!r} at {self.url}",
        )


# ------------------------------------------------------------------------------------- service


def submit(service: Service, spec_doc: Any, idempotency_key: str | None) -> dict[str, Any]:
    headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
    response = service.request("POST", "/v1/experiments", json=spec_doc, headers=headers)
    return dict(response.json())


def wait(
    service: Service,
    exp: dict[str, Any],
    *,
    quiet: bool,
    timeout: float | None,
    interval: float = 0.5,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """Poll the experiment (``If-None-Match``: unchanged → 304, no body) until it finishes."""
    from tqdm import tqdm

    deadline = None if timeout is None else time.monotonic() + timeout
    etag: str | None = None
    with tqdm(
        total=exp["total_runs"],
        unit="run",
        desc=exp["name"][:30],
        file=sys.stderr,
        disable=quiet,
        dynamic_ncols=True,
    ) as bar:
        while True:
            response = service.experiment(exp["id"], etag)
            if response.status_code != 304:
                exp = response.json()
                etag = response.headers.get("etag")
                counts = exp.get("counts") or {}
                bar.n = sum(int(counts.get(k, 0)) for k in TERMINAL)
                bar.set_postfix_str(exp["status"], refresh=False)
                bar.refresh()
            if exp["status"] in TERMINAL:
                return exp
            if deadline is not None and time.monotonic() > deadline:
                raise CliError(
                    f"experiment {exp['id']} still {exp['status']} after {timeout:g} s "
                    "(it keeps running; follow it with `optbench status`)",
                    1,
                )
            sleep(interval)
