"""Optimizer spec models: the registry matches the union, factories take exactly the spec's
fields, defaults build and step, PyTorch's names and defaults are kept, and validation rejects
what would break a kernel (inside grids too)."""

from __future__ import annotations

import importlib.util
import inspect
import typing
from typing import Any

import numpy as np
import pytest
from pydantic import BaseModel, TypeAdapter, ValidationError

from engine.optimizers import OPTIMIZERS, OptimizerSpec, build_optimizer
from engine.registry import UnknownNameError
from tests.engine.optimizers.examples import example, layout_for
from tests.registered import builtin

ADAPTER: TypeAdapter[Any] = TypeAdapter(OptimizerSpec)
TORCH_CLASSES = {
    "sgd": "SGD",
    "adagrad": "Adagrad",
    "rmsprop": "RMSprop",
    "adadelta": "Adadelta",
    "adam": "Adam",
    "adamw": "AdamW",
    "adamax": "Adamax",
    "nadam": "NAdam",
    "radam": "RAdam",
}


def parse(doc: dict[str, Any]) -> BaseModel:
    return ADAPTER.validate_python(doc)


def union_literals() -> set[str]:
    union = typing.get_args(OptimizerSpec)[0]
    names = set()
    for model in typing.get_args(union):
        (literal,) = typing.get_args(model.model_fields["name"].annotation)
        names.add(literal)
    return names


def test_registry_names_equal_the_union_literals() -> None:
    assert union_literals() == set(OPTIMIZERS.names())
    assert set(builtin(OPTIMIZERS)) == {
        "sgd",
        "delta_rule",
        "adagrad",
        "adagrad_seed",
        "rmsprop",
        "rmsprop_window",
        "adadelta",
        "adadelta_window",
        "adam",
        "adamw",
        "adamax",
        "nadam",
        "radam",
        "lion",
        "rprop",
        "asgd",
        "adafactor",
        "muon",
        "lbfgs",
        "schedule_free_adamw",
        "schedule_free_sgd",
        "prodigy",
        "lamb",
        "lars",
        "partition",
        "chain",
    }


@pytest.mark.parametrize("name", OPTIMIZERS.names())
def test_factory_keywords_are_the_spec_fields(name: str) -> None:
    entry = OPTIMIZERS.get(name)
    fields = {n: f.default for n, f in entry.spec.model_fields.items() if n != "name"}
    params = dict(inspect.signature(entry.factory).parameters)
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in params.values())
    layout = params.pop("layout", None)  # structure-aware factories also take the row's layout
    assert layout is None or layout.default is None
    nested = {"partition": "groups", "chain": "transforms"}.get(name)
    if nested is not None:  # required: the groups / transforms are the spec
        fields.pop(nested)
        assert params.pop(nested).default is inspect.Parameter.empty
    assert {n: p.default for n, p in params.items()} == fields
    assert inspect.getdoc(entry.factory), "the catalog shows the factory's docstring"


@pytest.mark.parametrize("name", OPTIMIZERS.names())
def test_every_spec_builds_from_its_defaults_and_descends(name: str) -> None:
    """At its defaults (routing and chains: the example of ``examples.py``, whose fields are
    required), on ``x²``, through the closure where the optimizer evaluates several times."""
    spec = parse(example(name))
    required = {n for n, f in type(spec).model_fields.items() if f.is_required()}
    assert required == {"partition": {"groups"}, "chain": {"transforms"}}.get(name, set())
    x = np.array([[1.0, -2.0, 0.5]])
    opt = build_optimizer(spec, layout=layout_for(example(name), 3))
    assert opt.lr == spec.lr
    state = opt.init(x)
    loss0 = float((x**2).sum())
    for _ in range(50):
        if opt.step_ is not None and name == "lbfgs":
            opt.step_(lambda p: ((p**2).sum(axis=1), 2 * p), state, x, 0.5)
            continue
        opt.update_(2 * x, state, x, max(opt.lr, 0.05))
    assert np.isfinite(x).all() and float((x**2).sum()) < loss0
    assert parse(spec.model_dump(mode="json")) == spec


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="torch is not installed")
@pytest.mark.parametrize("name", sorted(TORCH_CLASSES))
def test_names_and_defaults_are_pytorchs(name: str) -> None:
    import torch

    cls = getattr(torch.optim, TORCH_CLASSES[name])
    torch_params = inspect.signature(cls.__init__).parameters
    for field, info in OPTIMIZERS.get(name).spec.model_fields.items():
        if field == "name":
            continue
        assert field in torch_params, field
        expected = torch_params[field].default
        assert info.default == (tuple(expected) if isinstance(expected, tuple) else expected), field


def test_build_optimizer_takes_dicts_and_rejects_grids_and_unknown_names() -> None:
    opt = build_optimizer({"name": "adam", "lr": 0.1})
    assert opt.lr == 0.1
    with pytest.raises(ValueError, match="expand it into runs first"):
        build_optimizer(parse({"name": "adam", "lr": [0.1, 0.2]}))
    with pytest.raises(UnknownNameError, match="unknown optimizer 'adamm'; known: adadelta"):
        OPTIMIZERS.get("adamm")


@pytest.mark.parametrize(
    ("doc", "field"),
    [
        ({"name": "sgd", "lr": 0}, "lr"),
        ({"name": "sgd", "lr": float("inf")}, "lr"),
        ({"name": "sgd", "momentum": -0.1}, "momentum"),
        ({"name": "sgd", "momentum": 1.0}, "momentum"),
        ({"name": "sgd", "dampening": 1.5}, "dampening"),
        ({"name": "adam", "betas": [0.9, 1.0]}, "betas"),
        ({"name": "adam", "betas": [0.9]}, "betas"),
        ({"name": "adam", "eps": 0}, "eps"),
        ({"name": "adam", "weight_decay": -1e-3}, "weight_decay"),
        ({"name": "adam", "amsgrad": "maybe"}, "amsgrad"),
        ({"name": "rmsprop", "alpha": 1.0}, "alpha"),
        ({"name": "adadelta", "rho": 1.0}, "rho"),
        ({"name": "adagrad", "lr_decay": -1}, "lr_decay"),
        ({"name": "rmsprop_window", "window": 0}, "window"),
        ({"name": "adadelta_window", "window": 2.5}, "window"),
        ({"name": "adadelta_window", "window": [3, 0]}, "window"),
        ({"name": "lion", "betas": [[0.9, 0.99], [1.2, 0.9]]}, "betas"),
        ({"name": "nadam", "momentum_decay": -1}, "momentum_decay"),
        ({"name": "adam", "lr": []}, "lr"),
        ({"name": "adam", "beta1": 0.9}, "beta1"),
    ],
)
def test_validation_rejects(doc: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        parse(doc)
    assert any(field in map(str, e["loc"]) for e in info.value.errors())


@pytest.mark.parametrize(
    "doc",
    [
        {"name": "sgd", "nesterov": True},
        {"name": "sgd", "nesterov": True, "momentum": 0.9, "dampening": 0.1},
        {"name": "sgd", "nesterov": True, "momentum": [0.9, 0.0]},
        {"name": "sgd", "nesterov": True, "momentum": 0.9, "dampening": [0.0, 0.5]},
    ],
)
def test_nesterov_needs_momentum_and_no_dampening_in_every_grid_point(doc: dict[str, Any]) -> None:
    with pytest.raises(ValidationError, match="nesterov momentum requires"):
        parse(doc)


def test_grids_of_pairs_and_of_scalars_parse() -> None:
    spec = parse({"name": "adam", "betas": [[0.9, 0.999], [0.5, 0.9]], "lr": [0.1, 0.2]})
    assert spec.betas == [(0.9, 0.999), (0.5, 0.9)]
    assert parse({"name": "adam", "betas": [0.5, 0.9]}).betas == (0.5, 0.9)
    assert parse({"name": "sgd", "nesterov": True, "momentum": [0.9, 0.5]})
    assert parse({"name": "rmsprop_window", "window": [5, 20]}).window == [5, 20]
