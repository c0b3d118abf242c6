"""The experiment spec — the public contract of optbench — and its expansion into runs.

An :class:`ExperimentSpec` names lists of problems, optimizers and schedules, a list of seeds and a
step budget. Its runs are the product problems × optimizers × schedules × seeds, where any field
typed ``Sweep[...]`` that holds a list (a grid) first expands to one entry per value (grids inside
nested specs, such as a warm-up's inner schedule, expand too). Each :class:`RunSpec` is fully
resolved (defaults filled in) and identified by a hash of its canonical JSON, so identical runs
share an id and collapse to one.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
from functools import cache, cached_property
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, TypeAdapter, ValidationError

from engine.optimizers import OPTIMIZERS, OptimizerSpec
from engine.optimizers.chain import TRANSFORMS
from engine.problems import PROBLEMS, ProblemSpec
from engine.schedules import SCHEDULES, ScheduleSpec
from engine.specbase import SpecModel, grid_fields

Dtype = Literal["float64", "float32"]
#: What a schedule's ``t`` counts: optimizer updates, or epochs (passes over the training data;
#: every update of an epoch uses the lr of that epoch, as the seed's formulas index them).
ScheduleUnit = Literal["step", "epoch"]
_UNIT = (
    "what a schedule's t counts: updates (step) or passes over the training data (epoch; a "
    "full-batch problem's epoch is one update)"
)

#: Fields added after run ids were first issued, with the default that leaves a run unchanged:
#: left out of the canonical JSON at that default, so the ids of earlier runs stay valid.
_LATER_FIELDS: dict[str, Any] = {"schedule_unit": "step", "max_grad_evals": None}
Seed = Annotated[int, Field(ge=0, lt=2**32)]
GradEvals = Annotated[
    int,
    Field(
        ge=1,
        description="Budget of gradient evaluations per run: no update starts once it is spent "
        "(an update that evaluates several times, as L-BFGS does, is not cut short).",
    ),
]


#: The most full-training-set evaluations a minibatch run makes at the default ``eval_every``
#: (plus the one at the start point).
MAX_DEFAULT_EVALS = 50


def default_eval_every(steps: int, least: int) -> int:
    """The default cadence of a minibatch run: the smallest ``e ≥ max(least, ⌈steps / 50⌉)``
    whose last scheduled evaluation before the end, ``q e`` with ``q = ⌊steps / e⌋``, is the final
    update itself or at least ``e / 2`` before it (``steps mod e = 0`` or ``≥ e / 2``).

    ``least`` is the problem's own floor: for a learning problem the interval that keeps evaluating
    to at most a quarter of the arithmetic, ``⌈3 n_train / (2 B)⌉``
    (:func:`~engine.problems.learning.least_eval_every`), 1 for a problem without a data set. The
    final update is always evaluated; a scheduled evaluation a few updates before it costs a whole
    pass over the training set for a nearly repeated point. Within the band of ``e`` sharing ``q``,
    ``steps mod e = steps − q e`` falls as ``e`` grows, so the valid values of a band are its low
    end (``e ≤ steps / (q + ½)``) and ``steps / q`` when whole: the search jumps to the latter or
    to the next band's first value, at most ``q ≤ 50`` times."""
    every = max(least, -(-steps // MAX_DEFAULT_EVALS))
    while every < steps and 0 < 2 * (steps % every) < every:
        q = steps // every
        every = steps // q + (steps % q != 0)
    return every


def _constant_schedule() -> list[Any]:
    return [TypeAdapter(ScheduleSpec).validate_python({"name": "constant"})]


def is_minibatch(problem: BaseModel) -> bool:
    """True when the problem draws a minibatch per update (evaluated every ``eval_every``)."""
    return getattr(problem, "batch_size", None) is not None


def _canonical(doc: Any) -> str:
    return json.dumps(doc, sort_keys=True, separators=(",", ":"))


class RunSpec(SpecModel):
    """One fully resolved run: a single problem, optimizer, schedule and seed, no grids."""

    problem: ProblemSpec
    optimizer: OptimizerSpec
    schedule: ScheduleSpec
    seed: Seed
    steps: Annotated[int, Field(ge=1)]
    target_loss: Annotated[float, Field(allow_inf_nan=False)] | None = None
    eval_every: Annotated[int, Field(ge=1)] = 1
    dtype: Dtype = "float64"
    schedule_unit: ScheduleUnit = Field(default="step", description=_UNIT)
    max_grad_evals: GradEvals | None = None

    def canonical_json(self) -> str:
        return _canonical(self.model_dump(mode="json"))

    @cached_property
    def run_id(self) -> str:
        """Hash of the canonical JSON without the later fields that hold their default."""
        doc = self.model_dump(mode="json")
        for name, default in _LATER_FIELDS.items():
            if doc[name] == default:
                del doc[name]
        return hashlib.sha256(_canonical(doc).encode()).hexdigest()[:16]

    def num_params(self) -> int:
        return int(self.problem.num_params())


#: A tag: letters, digits and ``_ . : + / -``, so it is safe in a URL and a CSV cell.
Tag = Annotated[str, Field(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9_.:+/-]+$")]


class ExperimentSpec(SpecModel):
    """What a user submits: lists of problems, optimizers, schedules and seeds, plus the budget."""

    name: Annotated[str, Field(min_length=1, max_length=200)]
    description: Annotated[str, Field(max_length=4000)] = ""
    tags: Annotated[list[Tag], Field(max_length=20)] = Field(
        default_factory=list,
        description="Labels to find the experiment by (they do not change any run)",
    )
    problems: Annotated[list[ProblemSpec], Field(min_length=1)]
    optimizers: Annotated[list[OptimizerSpec], Field(min_length=1)]
    schedules: Annotated[list[ScheduleSpec], Field(min_length=1)] = Field(
        default_factory=_constant_schedule
    )
    seeds: Annotated[list[Seed], Field(min_length=1)] = Field(default_factory=lambda: [0])
    steps: Annotated[int, Field(ge=1)]
    target_loss: Annotated[float, Field(allow_inf_nan=False)] | None = None
    eval_every: Annotated[int, Field(ge=1)] | None = Field(
        default=None,
        description="Steps between full-training-set loss evaluations of minibatch problems, "
        "which also evaluate after the last step (default: every ⌈3 n_train / (2 batch_size)⌉ "
        "steps, about an epoch and a half, so that evaluating is at most a quarter of the "
        "arithmetic; at most 50 evaluations, none less than half an interval before the last "
        "step). Full-batch problems record every step.",
    )
    dtype: Dtype = "float64"
    schedule_unit: ScheduleUnit = Field(default="step", description=_UNIT)
    max_grad_evals: GradEvals | None = None

    def count_runs(self) -> int:
        """Number of runs before duplicates collapse, without expanding anything."""
        return (
            sum(_count(p) for p in self.problems)
            * sum(_count(o) for o in self.optimizers)
            * sum(_count(s) for s in self.schedules)
            * len(self.seeds)
        )

    def resolved_eval_every(self, problem: BaseModel) -> int:
        """Full-batch problems record every step. A minibatch problem evaluates the full
        training loss every ``eval_every`` updates and after the last; by default no more often
        than keeps evaluating to a quarter of the arithmetic (every ``⌈3 n_train / (2 B)⌉``
        updates, about an epoch and a half, for a learning problem; per update for a problem
        without a data set), at most :data:`MAX_DEFAULT_EVALS` times, and never just before the
        final evaluation (:func:`default_eval_every`). The default is resolved into each
        :class:`RunSpec`, so changing it gives default-cadence runs new ids while stored runs,
        which carry the interval they ran at, keep theirs."""
        if not is_minibatch(problem):
            return 1
        if self.eval_every is not None:
            return self.eval_every
        least = problem.least_eval_every() if hasattr(problem, "least_eval_every") else None
        return default_eval_every(self.steps, least or 1)


def _nested(value: Any) -> list[BaseModel] | None:
    """The spec models a field holds: one nested spec, or a list or tuple of them (``sequential``'s
    schedules, a ``partition``'s groups, a ``chain``'s transforms)."""
    if isinstance(value, BaseModel):
        return [value]
    if isinstance(value, list | tuple) and value and all(isinstance(v, BaseModel) for v in value):
        return list(value)
    return None


def _count(model: BaseModel) -> int:
    n = math.prod(len(v) for v in grid_fields(model).values())
    for name in type(model).model_fields:
        for inner in _nested(getattr(model, name)) or []:
            n *= _count(inner)
    return n


def expand_model(model: BaseModel) -> list[BaseModel]:
    """Every grid-free variant of ``model``: the product over its grid fields and nested specs
    (a list of nested specs expands to the product of its members' variants)."""
    options: dict[str, list[Any]] = dict(grid_fields(model))
    for name in type(model).model_fields:
        value = getattr(model, name)
        inner = _nested(value)
        if inner is None or name in options:
            continue
        if isinstance(value, BaseModel):
            variants: list[Any] = expand_model(value)
        else:
            combos = itertools.product(*(expand_model(v) for v in inner))
            variants = [type(value)(c) for c in combos]
        if len(variants) > 1:
            options[name] = variants
    if not options:
        return [model]
    keys = list(options)
    return [
        model.model_copy(update=dict(zip(keys, combo, strict=True)))
        for combo in itertools.product(*(options[k] for k in keys))
    ]


def expand(spec: ExperimentSpec) -> list[RunSpec]:
    """The runs in a stable order (problem, optimizer, schedule, seed), duplicates removed."""
    runs: dict[str, RunSpec] = {}
    problems = [p for spec_p in spec.problems for p in expand_model(spec_p)]
    optimizers = [o for spec_o in spec.optimizers for o in expand_model(spec_o)]
    schedules = [s for spec_s in spec.schedules for s in expand_model(spec_s)]
    for problem, optimizer, schedule, seed in itertools.product(
        problems, optimizers, schedules, spec.seeds
    ):
        run = RunSpec(
            problem=problem.model_dump(),
            optimizer=optimizer.model_dump(),
            schedule=schedule.model_dump(),
            seed=seed,
            steps=spec.steps,
            target_loss=spec.target_loss,
            eval_every=spec.resolved_eval_every(problem),
            dtype=spec.dtype,
            schedule_unit=spec.schedule_unit,
            max_grad_evals=spec.max_grad_evals,
        )
        runs.setdefault(run.run_id, run)
    return list(runs.values())


def parse_experiment(data: Any) -> ExperimentSpec:
    """Validate a decoded JSON document (raises :class:`pydantic.ValidationError`)."""
    return ExperimentSpec.model_validate(data)


def _path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out


_TYPE_STEPS = frozenset(
    {"float", "int", "str", "bool", "list", "tuple", "dict", "none", "function-after"}
)


def _is_branch(part: int | str) -> bool:
    """A pydantic union-branch (or validator-wrapper) marker in an error location."""
    return isinstance(part, str) and (
        part in _TYPE_STEPS or "[" in part or part.startswith(("function-", "constrained-"))
    )


def _clean_loc(loc: tuple[int | str, ...]) -> tuple[int | str, ...]:
    """Drop pydantic's union-branch markers (``float``, ``list[float]``, the tag of a union …)."""
    return tuple(part for part in loc if not _is_branch(part))


def only_rules_beyond_schema(exc: ValidationError) -> bool:
    """Whether the input is valid as the JSON Schema describes it and broke only rules of the
    models' own validators (``value_error``: fields valid alone but not together, such as
    ``init`` of another length than ``dim``; a pair out of order; milestones not increasing).

    The errors form a tree by location. A node passes when its own errors are all such rules,
    every plain child passes, and — where the node is a union (a sweepable field: one value or
    a list of them) — at least one branch passes: the schema accepts the value through it.
    """
    tree: dict[Any, Any] = {}
    for err in exc.errors(include_url=False):
        node = tree
        for part in err["loc"]:
            node = node.setdefault(("at", part), {})
        node.setdefault("types", []).append(err["type"])

    def passes(node: dict[Any, Any]) -> bool:
        children = [(key[1], child) for key, child in node.items() if key != "types"]
        # pydantic counts a tuple's length over the items that validated: an item that broke a
        # rule also makes the tuple "too short".
        derived = {"too_short"} if children else set()
        if any(kind not in {"value_error", *derived} for kind in node.get("types", [])):
            return False
        branches = [passes(child) for part, child in children if _is_branch(part)]
        plain = [passes(child) for part, child in children if not _is_branch(part)]
        return all(plain) and (not branches or any(branches))

    return passes(tree)


def describe_errors(exc: ValidationError) -> list[dict[str, Any]]:
    """Readable validation errors: ``{"path": "problems[1].hidden", "message": ..., "type": ...}``.

    A sweepable field reports both union branches (one value, a list of values); the two are merged
    into one message. A discriminated union whose tag is the run's registry name (``problems[0]
    .rosenbrock.dim``) keeps the tag out of the path but in the message.
    """
    merged: dict[str, dict[str, Any]] = {}
    for err in exc.errors(include_url=False):
        loc = tuple(err["loc"])
        path_parts: list[int | str] = []
        tag: str | None = None
        for i, part in enumerate(_clean_loc(loc)):
            if isinstance(part, str) and i > 0 and part in _tags():
                tag = part
                continue
            path_parts.append(part)
        path = _path(tuple(path_parts)) or "(body)"
        message = err["msg"]
        if err["type"] == "union_tag_invalid":
            ctx = err.get("ctx", {})
            message = (
                f"unknown name {ctx.get('tag')!r}; allowed: {ctx.get('expected_tags', '')}"
                if ctx
                else message
            )
        elif err["type"] == "extra_forbidden":
            message = "unknown field" + (f" for {tag!r}" if tag else "")
        elif tag:
            message = f"{message} (in {tag!r})"
        entry = merged.get(path)
        if entry is None:
            merged[path] = {"path": path, "message": message, "type": err["type"]}
        elif message not in entry["message"].split("; or "):
            entry["message"] += f"; or {message}"
    return list(merged.values())


@cache
def _tags() -> frozenset[str]:
    return (
        frozenset(OPTIMIZERS.names())
        | frozenset(PROBLEMS.names())
        | frozenset(SCHEDULES.names())
        | frozenset(TRANSFORMS.names())
    )


def format_errors(exc: ValidationError) -> str:
    """One readable paragraph listing every problem with its field path."""
    parts = [f"{e['path']}: {e['message']}" for e in describe_errors(exc)]
    return "invalid experiment spec — " + "; ".join(parts)
