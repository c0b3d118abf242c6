"""Building blocks of the spec models: a strict base model and the ``Sweep[T]`` grid marker.

A field typed ``Sweep[T]`` accepts either one value of type ``T`` or a non-empty list of them;
a list expands to one run per value (see :func:`grid_fields`). For list-valued ``T``
(e.g. ``milestones``) a grid is a list of lists.
"""

from __future__ import annotations

import copy
import functools
from typing import TYPE_CHECKING, Annotated, Any, TypeAlias, TypeVar, Union

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    TypeAdapter,
    ValidationError,
)
from pydantic_core import CoreSchema


class SweepMarker:
    """Metadata tag that marks a field as sweepable and remembers its scalar type.

    It also generates the field's schema (``T`` or a non-empty list of ``T``) once per scalar
    type: the first field of that type generates it, every later one gets a copy. The spec
    models hold ~200 sweepable fields of a few dozen types, and generating each afresh took
    ~0.02 s of the ~0.18 s importing the engine takes, in every process. A copy equals what
    pydantic would generate, as the schema depends on the type alone (the spec models share
    :class:`SpecModel`'s configuration) unless it refers to definitions of the model being
    built (a model type swept): such a schema is generated for each field."""

    def __init__(self, scalar: Any) -> None:
        self.scalar = scalar
        self._adapter: TypeAdapter[Any] | None = None
        self._schema: CoreSchema | None = None

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> CoreSchema:
        if self._schema is not None:
            return copy.deepcopy(self._schema)
        schema = handler(source)
        if not _refers(schema):
            self._schema = copy.deepcopy(schema)
        return schema

    def is_scalar(self, value: Any) -> bool:
        if self._adapter is None:
            self._adapter = TypeAdapter(self.scalar)
        try:
            self._adapter.validate_python(value, strict=False)
        except ValidationError:
            return False
        return True


def _refers(schema: Any) -> bool:
    """Whether a core schema (nested dicts and lists) names a definition (``ref`` keys)."""
    if isinstance(schema, dict):
        return "ref" in schema or "schema_ref" in schema or any(map(_refers, schema.values()))
    if isinstance(schema, list | tuple):
        return any(map(_refers, schema))
    return False


@functools.cache
def _sweep(scalar: Any) -> Any:
    """``Sweep[scalar]``, one per scalar type (so one :class:`SweepMarker` per type)."""
    grid = Annotated[list[scalar], Field(min_length=1)]  # type: ignore[valid-type]
    return Annotated[Union[scalar, grid], SweepMarker(scalar)]  # noqa: UP007


class _SweepFactory:
    def __getitem__(self, scalar: Any) -> Any:
        return _sweep(scalar)


if TYPE_CHECKING:
    # mypy cannot read the runtime factory as a type: to it a sweepable field holds one value or a
    # list of them, which is what pydantic accepts.
    _T = TypeVar("_T")
    Sweep: TypeAlias = _T | list[_T]
else:
    Sweep = _SweepFactory()


def _require_tag(schema: dict[str, Any]) -> None:
    """A registry model's ``name`` is a constant with a default, so JSON Schema would call it
    optional; but it is the tag its discriminated union picks the model by (:func:`union_of`),
    and a body without it is refused. The schema says so."""
    name = schema.get("properties", {}).get("name", {})
    if "const" in name:
        required = schema.setdefault("required", [])
        if "name" not in required:
            required.insert(0, "name")


class SpecModel(BaseModel):
    """Base of every spec model: unknown fields are errors; instances are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, json_schema_extra=_require_tag)


@functools.cache
def sweep_markers(model: type[BaseModel]) -> dict[str, SweepMarker]:
    """The sweepable fields of a spec model, with their markers (a model's fields are fixed once
    it is defined, so once per model: batching a large sweep asks for every run)."""
    out: dict[str, SweepMarker] = {}
    for name, info in model.model_fields.items():
        for meta in info.metadata:
            if isinstance(meta, SweepMarker):
                out[name] = meta
    return out


def grid_fields(spec: BaseModel) -> dict[str, list[Any]]:
    """The fields of ``spec`` that hold a grid (a list where one value is expected)."""
    grids: dict[str, list[Any]] = {}
    for name, marker in sweep_markers(type(spec)).items():
        value = getattr(spec, name)
        if isinstance(value, list) and not marker.is_scalar(value):
            grids[name] = value
    return grids


def union_of(models: list[type[BaseModel]]) -> Any:
    """The discriminated union (on ``name``) of a registry's spec models."""
    return Annotated[Union[tuple(models)], Field(discriminator="name")]  # noqa: UP007
