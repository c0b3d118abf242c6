"""Building blocks of the spec models: a strict base model and the ``Sweep[T]`` grid marker.

A field typed ``Sweep[T]`` accepts either one value of type ``T`` or a non-empty list of them;
a list expands to one run per value (see :func:`grid_fields`). For list-valued ``T``
(e.g. ``milestones``) a grid is a list of lists.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Annotated, Any, TypeAlias, TypeVar, Union

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError


class SweepMarker:
    """Metadata tag that marks a field as sweepable and remembers its scalar type."""

    def __init__(self, scalar: Any) -> None:
        self.scalar = scalar
        self._adapter: TypeAdapter[Any] | None = None

    def is_scalar(self, value: Any) -> bool:
        if self._adapter is None:
            self._adapter = TypeAdapter(self.scalar)
        try:
            self._adapter.validate_python(value, strict=False)
        except ValidationError:
            return False
        return True


class _SweepFactory:
    def __getitem__(self, scalar: Any) -> Any:
        grid = Annotated[list[scalar], Field(min_length=1)]  # type: ignore[valid-type]
        return Annotated[Union[scalar, grid], SweepMarker(scalar)]  # noqa: UP007


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
