"""Property test of the whole API against its own OpenAPI document (schemathesis).

Requests generated from the schema — valid ones and ones that break it — go to the in-process app
on the real SQLite database of the ``db`` fixture: no response may be a 5xx, every response must
match what the document declares for its status code and content type, and a request the schema
calls valid must not be refused unless for a reason the document declares beyond JSON Schema.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.openapi.checks import RejectedPositiveData
from schemathesis.specs.openapi.checks import (
    positive_data_acceptance,
    response_schema_conformance,
)

from api.config import Settings
from api.db import Database
from api.errors import TYPE_BASE
from api.main import create_app
from tests.api.test_runs import GRID_SPEC, complete
from tests.conftest import Broker
from tests.worker.helpers import new_experiment

#: Rejections of schema-valid requests that the document declares on its 422 responses as beyond
#: JSON Schema: rules such as fields valid alone but not together (``inconsistent``) and a reused
#: ``Idempotency-Key`` (state, not shape) …
BEYOND_SCHEMA = frozenset({"inconsistent", "idempotency-key-reused"})
#: … and the limits computed from the whole spec: the run count (at ``(body)``) and a problem's
#: parameter count (at ``problems[i]``). A limit on one field (``steps``, the number of seeds) is
#: in the schema, so a 422 naming such a field fails the check.
COMPUTED_LIMIT = re.compile(r"\(body\)|problems\[\d+\]")


def schema_valid_requests_accepted(ctx: Any, response: Any, case: Any) -> bool | None:
    """Schemathesis's ``positive_data_acceptance``, except for the rejections above."""
    try:
        return positive_data_acceptance(ctx, response, case)
    except RejectedPositiveData:
        if response.status_code == 422:
            problem = response.json()
            kind = problem["type"].removeprefix(TYPE_BASE)
            if kind in BEYOND_SCHEMA or (
                kind == "limit"
                and all(COMPUTED_LIMIT.fullmatch(e["path"]) for e in problem["errors"])
            ):
                return None
        raise


CHECKS = [not_a_server_error, response_schema_conformance, schema_valid_requests_accepted]


def test_no_server_error_and_responses_match_the_schema(
    make_settings: Callable[..., Settings], sqlite_url: str, embedded_broker: Broker, db: Database
) -> None:
    # Small limits keep a generated experiment cheap to store and summarise.
    app_settings = make_settings(
        database_url=sqlite_url,
        broker=embedded_broker,
        max_runs_per_experiment=20,
        max_steps_per_run=500,
        max_params_per_problem=1000,
    )
    # A finished experiment, so that half the generated requests name ids that exist.
    experiment_id, _ = new_experiment(db, GRID_SPEC)
    known = {"experiment_id": experiment_id, "run_id": next(iter(complete(db, experiment_id)))}

    def with_known_ids(case: Any, use_known: bool) -> Any:
        if use_known:
            for name in case.path_parameters or {}:
                case.path_parameters[name] = known[name]
        return case

    schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(app_settings, database=db))
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 12
    for operation in operations:
        generated = st.one_of(
            operation.as_strategy(GenerationMode.POSITIVE),
            operation.as_strategy(GenerationMode.NEGATIVE),
        )
        cases = st.builds(with_known_ids, generated, st.booleans())

        @given(case=cases)
        @settings(
            max_examples=25,
            deadline=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
            database=None,
        )
        def check(case: Any) -> None:
            case.call_and_validate(checks=CHECKS)

        check()
