"""Everything a client can put in a spec: each registry entry with its JSON schema and defaults."""

from __future__ import annotations

import inspect
from typing import Any

from pydantic import BaseModel
from pydantic_core import PydanticUndefined, to_jsonable_python

from engine.optimizers import OPTIMIZERS
from engine.optimizers.chain import TRANSFORMS
from engine.problems import PROBLEMS
from engine.registry import Registry
from engine.schedules import SCHEDULES


def _defaults(model: type[BaseModel]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        if info.default is not PydanticUndefined:
            out[name] = info.default
        elif info.default_factory is not None:
            out[name] = info.default_factory()  # type: ignore[call-arg]
    return out


def _entries(registry: Registry[Any]) -> list[dict[str, Any]]:
    entries = []
    for name in registry.names():
        entry = registry.get(name)
        doc = inspect.getdoc(entry.factory) or inspect.getdoc(entry.spec) or ""
        entries.append(
            {
                "name": name,
                "origin": entry.origin,
                "summary": doc.split("\n\n")[0].replace("\n", " "),
                "schema": entry.spec.model_json_schema(),
                "defaults": to_jsonable_python(_defaults(entry.spec)),
                "required": sorted(
                    n for n, f in entry.spec.model_fields.items() if f.is_required()
                ),
            }
        )
    return entries


def catalog() -> dict[str, list[dict[str, Any]]]:
    return {
        "problems": _entries(PROBLEMS),
        "optimizers": _entries(OPTIMIZERS),
        "schedules": _entries(SCHEDULES),
        "transforms": _entries(TRANSFORMS),
    }
