"""``partition``: which tensor goes where, decay exemptions, and the spec's rules. (Its numbers
against torch — Muon on the matrices, AdamW with two parameter groups on the rest — are in
``test_optimizers_modern.py``.)"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from pydantic import ValidationError

from engine.layout import Layout
from engine.optimizers import build_optimizer
from engine.spec import describe_errors, parse_experiment

LAYOUT = Layout.build(
    [
        ("layers.0.weight", (3, 2), "matrix"),
        ("layers.0.bias", (2,), "bias"),
        ("layers.0.norm.weight", (2,), "norm_scale"),
        ("output.weight", (2, 1), "matrix"),
        ("output.bias", (1,), "bias"),
    ]
)


def step(spec: dict[str, Any], g: np.ndarray, x: np.ndarray, lr: float = 1.0) -> np.ndarray:
    opt = build_optimizer(spec, layout=LAYOUT)
    x = x.copy()
    opt.update_(g, opt.init(x), x, lr)
    return x


def test_tensors_go_to_the_first_matching_group_and_exempt_kinds_lose_their_decay() -> None:
    rng = np.random.default_rng(0)
    x, g = rng.standard_normal((2, LAYOUT.size)), rng.standard_normal((2, LAYOUT.size))
    spec = {
        "name": "partition",
        "groups": [
            {"kinds": ["matrix"], "tensors": ["layers.*"], "optimizer": {"name": "sgd", "lr": 0.5}},
            {"optimizer": {"name": "sgd", "lr": 0.1, "weight_decay": 0.3}},
        ],
        "no_weight_decay": ["norm_scale", "bias"],
    }
    out = step(spec, g, x, lr=2.0)  # the schedule's factor 2 scales both groups
    hidden = LAYOUT.mask({"matrix"}) & (np.arange(LAYOUT.size) < 6)
    decayed = np.arange(LAYOUT.size) == 0
    decayed[:] = False
    decayed[LAYOUT.tensors[3].offset : LAYOUT.tensors[3].stop] = True  # output.weight
    exempt = ~hidden & ~decayed
    np.testing.assert_allclose(out[:, hidden], x[:, hidden] - 1.0 * g[:, hidden], rtol=1e-15)
    np.testing.assert_allclose(
        out[:, decayed], x[:, decayed] - 0.2 * (g[:, decayed] + 0.3 * x[:, decayed]), rtol=1e-15
    )
    np.testing.assert_allclose(out[:, exempt], x[:, exempt] - 0.2 * g[:, exempt], rtol=1e-15)


def test_groups_must_cover_every_tensor_and_not_hold_closure_optimizers() -> None:
    base: dict[str, Any] = {"name": "t", "steps": 1, "problems": [{"name": "rosenbrock"}]}
    uncovered = {
        "name": "partition",
        "groups": [{"kinds": ["matrix"], "optimizer": {"name": "adam"}}],
    }
    with pytest.raises(ValidationError, match="must take every tensor"):
        parse_experiment({**base, "optimizers": [uncovered]})
    closure = {"name": "partition", "groups": [{"optimizer": {"name": "lbfgs"}}]}
    with pytest.raises(ValidationError) as err:
        parse_experiment({**base, "optimizers": [closure]})
    errors = {e["path"]: e["message"] for e in describe_errors(err.value)}
    assert "'lbfgs'" in errors["optimizers[0].groups[0].optimizer"]
    typo = {"name": "partition", "groups": [{"kind": ["bias"], "optimizer": {"name": "adam"}}]}
    with pytest.raises(ValidationError) as err:
        parse_experiment({**base, "optimizers": [typo]})
    assert "optimizers[0].groups[0].kind" in [e["path"] for e in describe_errors(err.value)]


def test_a_chain_group_drops_its_decay_on_exempt_tensors() -> None:
    rng = np.random.default_rng(1)
    x, g = rng.standard_normal((1, LAYOUT.size)), rng.standard_normal((1, LAYOUT.size))
    transforms = [
        {"name": "add_decayed_weights", "weight_decay": 0.5},
        {"name": "scale_by_learning_rate", "lr": 0.1},
    ]
    spec = {
        "name": "partition",
        "groups": [{"optimizer": {"name": "chain", "transforms": transforms}}],
        "no_weight_decay": ["bias"],
    }
    out = step(spec, g, x)  # the schedule's factor 1: the chain's own lr
    bias = LAYOUT.mask({"bias"})
    np.testing.assert_allclose(out[:, bias], x[:, bias] - 0.1 * g[:, bias], rtol=1e-15)
    rest = ~bias
    np.testing.assert_allclose(
        out[:, rest], x[:, rest] - 0.1 * (g[:, rest] + 0.5 * x[:, rest]), rtol=1e-15
    )
