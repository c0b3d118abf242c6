"""Helpers shared by the problem spec models."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, Field

from engine.specbase import grid_fields

#: A float that must be finite (JSON has no NaN, but Python callers could pass one).
Finite = Annotated[float, Field(allow_inf_nan=False)]
NonNegative = Annotated[float, Field(ge=0.0, allow_inf_nan=False)]
#: A data seed, in the same range as run seeds.
DataSeed = Annotated[int, Field(ge=0, lt=2**32)]


def options(spec: BaseModel, field: str) -> list[Any]:
    """The values ``field`` takes across the runs a (possibly gridded) spec expands to."""
    grids = grid_fields(spec)
    return list(grids[field]) if field in grids else [getattr(spec, field)]
