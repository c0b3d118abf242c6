"""``/metrics`` (Prometheus text format), the access log and the request id of every request.

HTTP metrics are counted in the API process: requests by method, route *template* (``/v1/
experiments/{experiment_id}``, never the id: bounded label sets) and status, and a latency
histogram per route. Everything about the work itself is derived at scrape time from the
database and the broker, which every process shares — so any number of workers, forked pool
children and API replicas need no Prometheus multiprocess mode, and a scrape of any one API
replica sees the whole service:

* ``optbench_runs{state}`` — runs by state (a gauge);
* ``optbench_run_steps_total`` — optimizer steps done, summed over runs: ``rate()`` of it is
  run-steps per second;
* ``optbench_run_reclaims_total`` — attempts beyond each run's first (a lease that expired and
  was taken back after a worker died or stalled);
* ``optbench_run_wall_time_seconds`` — a histogram of finished runs' wall time (each run's share
  of its task's time), and ``optbench_runs{state="failed"}`` counts the failures;
* ``optbench_queue_depth`` — task messages waiting in the broker, and
  ``optbench_queue_unacked`` — those delivered to a worker and not yet acknowledged.

Each scrape costs one grouped scan of the runs table and a few Redis reads.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
)
from prometheus_client.registry import Collector
from sqlalchemy import case, func, select
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api import logs
from api.config import Settings
from api.db import Database
from api.models import RUN_STATUSES, TERMINAL, Run
from api.services.queue import broker_client, queue_keys

access_log = logging.getLogger("optbench.access")
log = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
#: Latency buckets (s): probes answer in milliseconds, summaries of large sweeps in seconds.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
#: Run wall-time buckets (s).
RUN_BUCKETS = (0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0)


class StoreCollector(Collector):
    """Run and queue metrics read from the database and the broker at each scrape."""

    def __init__(self, settings: Settings, db: Database) -> None:
        self.settings = settings
        self.db = db

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily | HistogramMetricFamily]:
        yield from self._runs()
        yield from self._queue()

    def _runs(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily | HistogramMetricFamily]:
        finished = Run.status.in_(TERMINAL) & Run.wall_time_s.is_not(None)
        buckets = [
            func.coalesce(func.sum(case((finished & (Run.wall_time_s <= b), 1), else_=0)), 0)
            for b in RUN_BUCKETS
        ]
        with self.db.session() as session:
            by_state = {
                state: int(n)
                for state, n in session.execute(
                    select(Run.status, func.count()).group_by(Run.status)
                ).all()
            }
            steps, reclaims, n_finished, wall_sum, *counts = session.execute(
                select(
                    func.coalesce(func.sum(Run.steps_done), 0),
                    func.coalesce(func.sum(case((Run.attempts > 1, Run.attempts - 1), else_=0)), 0),
                    func.coalesce(func.sum(case((finished, 1), else_=0)), 0),
                    func.coalesce(func.sum(case((finished, Run.wall_time_s), else_=0.0)), 0.0),
                    *buckets,
                )
            ).one()
        runs = GaugeMetricFamily("optbench_runs", "Runs by state.", labels=["state"])
        for state in RUN_STATUSES:
            runs.add_metric([state], by_state.get(state, 0))
        yield runs
        yield CounterMetricFamily(
            "optbench_run_steps", "Optimizer steps done, summed over runs.", value=steps
        )
        yield CounterMetricFamily(
            "optbench_run_reclaims",
            "Run attempts beyond the first (leases taken back).",
            value=reclaims,
        )
        wall = HistogramMetricFamily(
            "optbench_run_wall_time_seconds", "Wall time of finished runs (share of the task)."
        )
        cumulative = [(str(b), int(c)) for b, c in zip(RUN_BUCKETS, counts, strict=True)]
        wall.add_metric([], [*cumulative, ("+Inf", int(n_finished))], sum_value=float(wall_sum))
        yield wall

    def _queue(self) -> Iterator[GaugeMetricFamily]:
        depth = GaugeMetricFamily("optbench_queue_depth", "Task messages waiting in the broker.")
        unacked = GaugeMetricFamily(
            "optbench_queue_unacked", "Task messages delivered to a worker, not yet acknowledged."
        )
        try:
            with broker_client(self.settings) as client:
                waiting = sum(int(client.llen(key)) for key in queue_keys(self.settings))
                delivered = int(client.hlen(f"{self.settings.broker_key_prefix}unacked"))
        except Exception as exc:  # the broker being down must not fail the whole scrape
            log.warning("metrics: broker unreachable (%s)", type(exc).__name__)
            return
        depth.add_metric([], waiting)
        unacked.add_metric([], delivered)
        yield depth
        yield unacked


class Metrics:
    """One app's registry: HTTP metrics plus the store collector."""

    def __init__(self, settings: Settings, db: Database) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "optbench_http_requests",
            "HTTP requests by method, route template and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "optbench_http_request_duration_seconds",
            "HTTP request latency by method and route template.",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.registry.register(StoreCollector(settings, db))

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


def _route(scope: Scope) -> str:
    """The matched route's template, or a fixed label for what matched none."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    if isinstance(path, str):
        return path
    return "/static" if scope.get("path", "").startswith("/static/") else "(unmatched)"


class RequestMiddleware:
    """Request id in, ``X-Request-ID`` out; metrics and one access-log line per request.

    Outermost, so it sees every answer — including admission control's 503s and browser-safety
    refusals — and times the whole request.
    """

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        client_id = dict(scope["headers"]).get(b"x-request-id")
        rid = logs.new_request_id(client_id.decode("latin-1") if client_id else None)
        token = logs.request_id.set(rid)
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                message["headers"] = [*message.get("headers", []), (b"x-request-id", rid.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            route = _route(scope)
            method = scope["method"]
            self.metrics.requests.labels(method, route, str(status)).inc()
            self.metrics.latency.labels(method, route).observe(elapsed)
            principal = getattr(scope.get("state", {}).get("principal"), "name", None)
            access_log.info(
                "%s %s %d %.1f ms",
                method,
                scope.get("path", ""),
                status,
                elapsed * 1000,
                extra={
                    "method": method,
                    "path": scope.get("path", ""),
                    "route": route,
                    "status": status,
                    "duration_ms": round(elapsed * 1000, 2),
                    "owner": principal,
                    "client": (scope.get("client") or ("", 0))[0],
                },
            )
            logs.request_id.reset(token)
