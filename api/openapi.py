"""The OpenAPI document states this service's limits, as far as JSON Schema can.

Per-field limits come from the settings (``steps`` at most ``max_steps_per_run``, at most
``max_runs_per_experiment`` seeds — each seed is a run) and no request string may hold U+0000
(PostgreSQL text cannot). What JSON Schema cannot state is described in prose on the ``422``
responses and answered with its own problem type: the run count (a product of grid lengths), a
problem's parameter count (``limit``), and rules across fields such as ``init`` having ``dim``
values (``inconsistent``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from api.config import Settings

#: No NUL character: what :func:`api.services.experiments.check_storable` refuses.
NUL_FREE = r"^[^\x00]*$"
REF_PREFIX = "#/components/schemas/"


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith(REF_PREFIX):
            yield ref.removeprefix(REF_PREFIX)
        for value in node.values():
            yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def _free_strings(node: Any) -> Iterator[dict[str, Any]]:
    """String schemas of free text (no constant, enumeration, pattern or format)."""
    if isinstance(node, dict):
        if node.get("type") == "string" and not {"const", "enum", "pattern", "format"} & set(node):
            yield node
        for value in node.values():
            yield from _free_strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from _free_strings(value)


def describe_limits(document: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """Add the limits to ``document`` (FastAPI's generated OpenAPI), in place; returns it."""
    components = document["components"]["schemas"]
    spec = components["ExperimentSpec"]["properties"]
    spec["steps"]["maximum"] = settings.max_steps_per_run
    spec["seeds"]["maxItems"] = settings.max_runs_per_experiment
    bodies = [
        op["requestBody"]
        for path in document["paths"].values()
        for op in path.values()
        if isinstance(op, dict) and "requestBody" in op
    ]
    seen: set[str] = set()
    todo = [name for body in bodies for name in _refs(body)]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        todo.extend(_refs(components[name]))
        for string in _free_strings(components[name]):
            string["pattern"] = NUL_FREE
    return document
