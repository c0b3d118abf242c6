"""``adagrad_seed``: the seed's AdaGrad, whose accumulator holds only the past gradients, against
a closed form (constant gradients) and a literal transcription of the seed's sum; and how it
differs from ``adagrad`` (torch's, current gradient included)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.optimizers import build_optimizer


def trajectory(spec: dict[str, object], grads: np.ndarray, x0: np.ndarray) -> np.ndarray:
    opt = build_optimizer(spec)
    x = x0[None, :].astype(np.float64)
    state = opt.init(x)
    out = []
    for g in grads:
        opt.update_(g[None, :], state, x, opt.lr)
        out.append(x[0].copy())
    return np.array(out)


@pytest.mark.parametrize("r0", [1.0, 0.25, 3.0])
def test_constant_gradients_follow_the_closed_form(r0: float) -> None:
    # r(t) = r0 + t·g², so p_T = p_0 − lr Σ_{t<T} g / (√(r0 + t g²) + ε)
    g = np.array([0.5, -2.0, 1e-3, 0.0])
    x0 = np.array([1.0, 2.0, -3.0, 4.0])
    lr, eps, steps = 0.1, 1e-10, 200
    spec = {"name": "adagrad_seed", "lr": lr, "eps": eps, "initial_accumulator_value": r0}
    path = trajectory(spec, np.tile(g, (steps, 1)), x0)
    for T in (1, 2, 50, 200):
        expected = [
            x0[i] - lr * sum(g[i] / (math.sqrt(r0 + t * g[i] ** 2) + eps) for t in range(T))
            for i in range(4)
        ]
        np.testing.assert_allclose(path[T - 1], expected, rtol=1e-13, atol=1e-15)


def test_the_first_step_is_a_gradient_step_scaled_by_the_start_value() -> None:
    g = np.array([[3.0, -0.5]])
    x0 = np.array([0.0, 0.0])
    first = trajectory({"name": "adagrad_seed", "lr": 0.1}, g, x0)[0]
    np.testing.assert_allclose(first, -0.1 * g[0] / (1.0 + 1e-10), rtol=1e-15)
    literal = trajectory(
        {"name": "adagrad_seed", "lr": 0.1, "initial_accumulator_value": 0.0, "eps": 1e-3}, g, x0
    )[0]
    np.testing.assert_allclose(literal, -0.1 * g[0] / 1e-3, rtol=1e-15)  # r(0) = 0: lr·G/ε


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**16),
    r0=st.floats(0.01, 5.0),
    wd=st.sampled_from([0.0, 0.05]),
    eps=st.sampled_from([1e-10, 1e-3]),
)
def test_matches_the_seed_sum_over_past_gradients(
    seed: int, r0: float, wd: float, eps: float
) -> None:
    rng = np.random.default_rng(seed)
    grads = rng.standard_normal((30, 3)) * rng.uniform(0.01, 10, 3)
    x0 = rng.standard_normal(3)
    spec = {
        "name": "adagrad_seed",
        "lr": 0.05,
        "weight_decay": wd,
        "eps": eps,
        "initial_accumulator_value": r0,
    }
    ours = trajectory(spec, grads, x0)
    x, past = x0.copy(), []
    for t, grad in enumerate(grads):
        G = grad + wd * x
        r = r0 + sum(p**2 for p in past)  # G²(0) + … + G²(t−1)
        x = x - 0.05 / (eps + np.sqrt(r)) * G
        past.append(G)
        np.testing.assert_allclose(ours[t], x, rtol=1e-12, atol=1e-14)


def test_it_differs_from_torchs_adagrad_only_by_the_current_gradient() -> None:
    # adagrad's step t divides by √(s0 + (t+1)g²), adagrad_seed's by √(r0 + t·g²): with a
    # constant gradient they agree step for step when adagrad starts at s0 = r0 − g²
    g, r0, lr = 0.5, 1.0, 0.1
    seed_path = trajectory(
        {"name": "adagrad_seed", "lr": lr, "initial_accumulator_value": r0},
        np.full((10, 1), g),
        np.zeros(1),
    )
    torch_like = trajectory(
        {"name": "adagrad", "lr": lr, "initial_accumulator_value": r0 - g**2},
        np.full((10, 1), g),
        np.zeros(1),
    )
    np.testing.assert_allclose(seed_path, torch_like, rtol=1e-14)
    plain = trajectory(
        {"name": "adagrad", "lr": lr, "initial_accumulator_value": r0},
        np.full((10, 1), g),
        np.zeros(1),
    )
    assert np.all(np.abs(np.diff(seed_path[:, 0])) > np.abs(np.diff(plain[:, 0])))
