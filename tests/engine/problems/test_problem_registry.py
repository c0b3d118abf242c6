"""The problem registry, the ``ProblemSpec`` union and ``build_problem``."""

from __future__ import annotations

import inspect
import typing
from typing import Any

import numpy as np
import pytest
from pydantic import TypeAdapter

from engine.problems import PROBLEMS, ProblemSpec, build_problem
from engine.problems.base import Problem
from engine.registry import UnknownNameError
from engine.specbase import sweep_markers
from tests.registered import builtin

SPEC = TypeAdapter(ProblemSpec)


def union_names() -> set[str]:
    union = typing.get_args(ProblemSpec)[0]
    return {typing.get_args(m.model_fields["name"].annotation)[0] for m in typing.get_args(union)}


def test_registry_names_equal_the_union_literals() -> None:
    assert union_names() == set(PROBLEMS.names())
    assert set(builtin(PROBLEMS)) == {
        "quadratic", "rosenbrock", "beale", "himmelblau", "rastrigin", "ackley",
        "styblinski_tang", "linear_regression", "logistic_regression", "mlp",
        "nqm", "matrix_factorization", "conv_digits",
    }  # fmt: skip


@pytest.mark.parametrize("name", PROBLEMS.names())
def test_every_default_spec_builds(name: str) -> None:
    spec = SPEC.validate_python({"name": name})
    problem = build_problem(spec, [0, 1], "float64")
    assert isinstance(problem, Problem) and problem.R == 2
    assert problem.dim == spec.num_params()
    x = problem.init_params()
    assert x.shape == (2, problem.dim) and x.dtype == np.float64
    loss, grad = problem.loss_and_grad(x, 0)
    assert loss.shape == (2,) and grad.shape == x.shape
    assert np.isfinite(loss).all() and np.isfinite(grad).all()
    assert problem.loss(x).shape == (2,)
    assert problem.minibatch == (getattr(spec, "batch_size", None) is not None)
    # the factory's keyword-only arguments are exactly the spec's fields, with the same defaults
    params = inspect.signature(PROBLEMS.get(name).factory).parameters
    kwonly = {n: p.default for n, p in params.items() if p.kind is p.KEYWORD_ONLY}
    defaults = spec.model_dump(exclude={"name"})
    assert set(kwonly) == set(defaults)
    for field, value in defaults.items():
        assert kwonly[field] == (tuple(value) if isinstance(value, list) else value), field


@pytest.mark.parametrize("name", PROBLEMS.names())
def test_numeric_fields_are_sweepable(name: str) -> None:
    spec_model = PROBLEMS.get(name).spec
    markers = sweep_markers(spec_model)
    for field in spec_model.model_fields:
        flags = ("batchnorm", "layernorm", "layernorm_affine", "input_batchnorm")
        if field not in ("name", "init", "dataset", *flags):
            assert field in markers, f"{name}.{field} is not a Sweep"


def test_num_params_is_cheap_and_covers_grids() -> None:
    spec = SPEC.validate_python({"name": "mlp", "dataset": "digits", "hidden": [[8], [32, 16]]})
    assert spec.num_params() == (64 * 32 + 32) + (32 * 16 + 16) + (16 * 10 + 10)
    spec = SPEC.validate_python({"name": "rastrigin", "dim": [3, 40, 7]})
    assert spec.num_params() == 40
    spec = SPEC.validate_python({"name": "logistic_regression", "dataset": "moons"})
    assert spec.num_params() == 2 * 2 + 2
    assert SPEC.validate_python({"name": "linear_regression"}).num_params() == 11


def test_build_problem_rejects_grids_and_unknown_names() -> None:
    with pytest.raises(ValueError, match="expand the grid"):
        build_problem(SPEC.validate_python({"name": "quadratic", "dim": [2, 3]}), [0])
    with pytest.raises(UnknownNameError, match="unknown problem 'nope'"):
        PROBLEMS.get("nope")


@pytest.mark.parametrize(
    "doc",
    [
        {"name": "quadratic", "dim": 501},
        {"name": "quadratic", "condition_number": 0.5},
        {"name": "rastrigin", "noise": -0.1},
        {"name": "beale", "init": [0.0, float("nan")]},
        {"name": "mlp", "hidden": [0]},
        {"name": "mlp", "activation": "sigmoid"},
        {"name": "mlp", "test_fraction": 0.95},
        {"name": "mlp", "unknown": 1},
    ],
)
def test_invalid_specs_are_rejected(doc: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        SPEC.validate_python(doc)
