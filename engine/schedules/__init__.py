"""LR schedules: the ``SCHEDULES`` registry (built-ins, then installed plugins:
:mod:`engine.plugins`), the ``ScheduleSpec`` union and ``build_schedule``.

Every schedule follows PyTorch's step convention (``lr_at(t)`` is the lr of the ``t``-th optimizer
step, 0-based) and, where PyTorch has one, its scheduler's parameter names and defaults.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeAlias

from engine.plugins import load_plugins
from engine.schedules import cosine, cyclic, decay, piecewise, plateau, sequential, warmup, wsd
from engine.schedules.base import SCHEDULES, ClosedForm, Schedule, build_schedule
from engine.specbase import SpecModel, union_of

load_plugins(SCHEDULES)
if TYPE_CHECKING:
    ScheduleSpec: TypeAlias = SpecModel
else:
    ScheduleSpec = union_of(SCHEDULES.specs())
    for _nested in (warmup.WarmupSpec, sequential.SequentialSpec):
        _nested.model_rebuild(_types_namespace={"ScheduleSpec": ScheduleSpec})

__all__ = [
    "SCHEDULES",
    "ClosedForm",
    "Schedule",
    "ScheduleSpec",
    "build_schedule",
    "cosine",
    "cyclic",
    "decay",
    "piecewise",
    "plateau",
    "sequential",
    "warmup",
    "wsd",
]
