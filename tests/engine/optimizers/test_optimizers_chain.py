"""``chain``: the transform registry agrees with its spec union and the catalog; the chain spelling
of Adam, AdamW, SGD with momentum, Lion, LAMB and Muon equals the named optimizer to 1e-12 over
200 steps of the generator's analytic problem (Muon's as one 3 × 2 matrix), and a
chain with clipping equals torch's clip_grad_norm_ / clip_grad_value_ by hand."""

from __future__ import annotations

import inspect
import typing
from typing import Any

import numpy as np
import pytest
from pydantic import TypeAdapter, ValidationError

from engine.catalog import catalog
from engine.optimizers import OptimizerSpec, build_optimizer
from engine.optimizers.chain import TRANSFORMS, TransformSpec
from engine.spec import describe_errors, parse_experiment
from tests.engine.optimizers.test_optimizers_modern import GEN

STEPS = 200
LR = {"name": "scale_by_learning_rate", "lr": 0.01}


def steps(spec: dict[str, Any], kind: str, matrix: bool) -> np.ndarray:
    layout, x0, loss_and_grad = GEN.problem(kind, muon=matrix)
    opt = build_optimizer(spec, layout=layout)
    x = x0.copy()
    state = opt.init(x)
    out = [x.copy()]
    for t in range(STEPS):
        lr = opt.lr * (1.0 + 0.3 * np.sin(0.2 * t))  # a varying rate: the chain's lr is scheduled
        opt.update_(loss_and_grad(x)[1], state, x, lr)
        out.append(x.copy())
    return np.concatenate(out)


def chain(*transforms: dict[str, Any]) -> dict[str, Any]:
    return {"name": "chain", "transforms": list(transforms)}


PAIRS: list[tuple[str, dict[str, Any], dict[str, Any], tuple[str, ...]]] = [
    ("adam", {"name": "adam", "lr": 0.01}, chain({"name": "scale_by_adam"}, LR), ("analytic",)),
    (
        "adam_l2",
        {"name": "adam", "lr": 0.01, "weight_decay": 0.1, "betas": [0.8, 0.99]},
        chain(
            {"name": "add_decayed_weights", "weight_decay": 0.1},
            {"name": "scale_by_adam", "betas": [0.8, 0.99]},
            LR,
        ),
        ("analytic",),
    ),
    (
        "adamw",
        {"name": "adamw", "lr": 0.01, "weight_decay": 0.1},
        chain({"name": "scale_by_adam"}, {"name": "add_decayed_weights", "weight_decay": 0.1}, LR),
        ("analytic",),
    ),
    (
        "sgd_momentum",
        {"name": "sgd", "lr": 0.002, "momentum": 0.9},
        chain({"name": "trace", "momentum": 0.9}, {**LR, "lr": 0.002}),
        ("analytic",),
    ),
    (
        "sgd_nesterov",
        {"name": "sgd", "lr": 0.002, "momentum": 0.9, "nesterov": True},
        chain({"name": "trace", "momentum": 0.9, "nesterov": True}, {**LR, "lr": 0.002}),
        ("analytic",),
    ),
    (
        "lion",
        {"name": "lion", "lr": 0.001, "weight_decay": 0.1},
        chain(
            {"name": "scale_by_lion"},
            {"name": "add_decayed_weights", "weight_decay": 0.1},
            {**LR, "lr": 0.001},
        ),
        ("analytic",),
    ),
    (
        "lamb",
        {"name": "lamb", "lr": 0.01},
        chain(
            {"name": "scale_by_adam", "eps": 1e-6, "bias_correction": "none"},
            {"name": "scale_by_trust_ratio", "eps": 1e-6, "max_weight_norm": 10.0},
            {"name": "scale_by_bias_correction", "beta": 0.9},
            LR,
        ),
        ("analytic",),
    ),
    (
        "muon",
        {"name": "muon", "lr": 0.01, "weight_decay": 0.0},
        chain({"name": "trace", "momentum": 0.95, "nesterov": True}, {"name": "orthogonalize"}, LR),
        ("analytic",),
    ),
]


@pytest.mark.parametrize(("label", "named", "spelled", "kinds"), PAIRS, ids=[p[0] for p in PAIRS])
def test_the_chain_spelling_equals_the_named_optimizer(
    label: str, named: dict[str, Any], spelled: dict[str, Any], kinds: tuple[str, ...]
) -> None:
    for kind in kinds:
        # Muon's buffer is an EMA, trace's a plain sum: their directions differ by the factor
        # 1-μ, which Newton–Schulz's normalisation removes
        ours = steps(named, kind, matrix=label == "muon")
        spelled_traj = steps(spelled, kind, matrix=label == "muon")
        scale = np.abs(ours).max()
        assert np.abs(spelled_traj - ours).max() <= 1e-12 * scale, (label, kind)
        assert np.abs(ours[-1] - ours[0]).max() > 1e-3


def test_clipping_transforms_are_torchs_clip_functions_by_hand() -> None:
    rng = np.random.default_rng(0)
    g = rng.standard_normal((2, 6)) * np.array([[1.0], [10.0]])
    opt = build_optimizer(
        chain({"name": "clip_by_global_norm", "max_norm": 2.0}, {**LR, "lr": 1.0})
    )
    x = np.zeros_like(g)
    opt.update_(g, opt.init(x), x, 1.0)
    norm = np.linalg.norm(g, axis=1, keepdims=True)
    np.testing.assert_allclose(-x, g * np.minimum(1.0, 2.0 / (norm + 1e-6)), rtol=1e-15)
    opt = build_optimizer(chain({"name": "clip", "clip_value": 0.5}, {**LR, "lr": 1.0}))
    x = np.zeros_like(g)
    opt.update_(g, opt.init(x), x, 1.0)
    np.testing.assert_array_equal(-x, np.clip(g, -0.5, 0.5))
    assert np.abs(x).max() == 0.5


def test_registry_names_equal_the_union_and_the_catalog() -> None:
    literals = {
        typing.get_args(m.model_fields["name"].annotation)[0]
        for m in typing.get_args(typing.get_args(TransformSpec)[0])
    }
    required = {
        "scale_by_adam",
        "scale_by_rms",
        "scale_by_sign",
        "trace",
        "add_decayed_weights",
        "clip_by_global_norm",
        "clip",
        "scale_by_trust_ratio",
        "orthogonalize",
        "scale_by_learning_rate",
    }
    assert literals == set(TRANSFORMS.names()) >= required
    entries = {e["name"]: e for e in catalog()["transforms"]}
    assert set(entries) == literals
    for name, entry in entries.items():
        spec = TRANSFORMS.get(name).spec
        assert entry["schema"] == spec.model_json_schema() and entry["summary"]
        params = dict(inspect.signature(TRANSFORMS.get(name).factory).parameters)
        params.pop("layout")
        fields = {n: f.default for n, f in spec.model_fields.items() if n != "name"}
        assert {n: p.default for n, p in params.items()} == fields


def test_chain_specs_are_strict_and_name_the_field() -> None:
    adapter: TypeAdapter[Any] = TypeAdapter(OptimizerSpec)
    with pytest.raises(ValidationError) as err:
        adapter.validate_python(chain({"name": "scale_by_adam", "beta": 0.9}, LR))
    assert ("chain", "transforms", 0, "scale_by_adam", "beta") in [
        e["loc"] for e in err.value.errors()
    ]
    doc = {"name": "t", "steps": 1, "problems": [{"name": "rosenbrock"}]}
    doc["optimizers"] = [chain(LR, {"name": "trace", "momentum": 2})]
    with pytest.raises(ValidationError) as err:
        parse_experiment(doc)
    paths = [e["path"] for e in describe_errors(err.value)]
    assert paths == ["optimizers[0].transforms[1].momentum"]
    with pytest.raises(ValidationError, match="exactly one scale_by_learning_rate"):
        adapter.validate_python(chain({"name": "scale_by_adam"}))
    with pytest.raises(ValidationError, match="scale_by_adamm"):
        adapter.validate_python(chain({"name": "scale_by_adamm"}, LR))
