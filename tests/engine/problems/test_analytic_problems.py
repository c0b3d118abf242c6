"""Analytic problems: closed-form gradients against central differences, hand-computed values,
known minima, the quadratic's spectrum, seeded start points and step-indexed gradient noise."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from engine.problems import ProblemSpec, build_problem
from engine.problems.analytic import AnalyticProblem
from tests.numeric import row_central_diff

SPEC = TypeAdapter(ProblemSpec)

CASES: list[dict[str, Any]] = [
    {"name": "quadratic", "dim": 1},
    {"name": "quadratic", "dim": 5, "condition_number": 1000.0},
    {"name": "rosenbrock", "dim": 2},
    {"name": "rosenbrock", "dim": 5},
    {"name": "beale"},
    {"name": "himmelblau"},
    {"name": "rastrigin", "dim": 3},
    {"name": "ackley", "dim": 3},
    {"name": "styblinski_tang", "dim": 4},
]


def build(doc: dict[str, Any], seeds: list[int], dtype: Any = np.float64) -> AnalyticProblem:
    problem = build_problem(SPEC.validate_python(doc), seeds, dtype)
    assert isinstance(problem, AnalyticProblem)
    return problem


@pytest.mark.parametrize("doc", CASES, ids=lambda d: f"{d['name']}-{d.get('dim', 2)}")
def test_gradient_matches_finite_differences(doc: dict[str, Any]) -> None:
    problem = build(doc, [0, 1, 2, 3])
    rng = np.random.default_rng(7)
    lo, hi = problem.box
    for x in (problem.init_params(), rng.uniform(lo, hi, (4, problem.dim))):
        loss, grad = problem.loss_and_grad(x, 0)
        np.testing.assert_array_equal(loss, problem.loss(x))
        scale = 1.0 + np.abs(grad).max()
        numeric = row_central_diff(problem.loss, x)
        np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-7 * scale)


def test_hand_computed_values() -> None:
    x = np.array([[-1.5, 2.0]])
    loss, grad = build({"name": "rosenbrock"}, [0]).loss_and_grad(x, 0)
    # 100 (2 − 2.25)² + (1 + 1.5)² ; (−400·(−1.5)·(−0.25) − 2·2.5, 200·(−0.25))
    assert loss[0] == 12.5
    np.testing.assert_allclose(grad[0], [-155.0, -50.0], rtol=1e-15)
    loss, grad = build({"name": "beale"}, [0]).loss_and_grad(np.array([[1.0, 1.0]]), 0)
    assert loss[0] == 1.5**2 + 2.25**2 + 2.625**2
    np.testing.assert_allclose(grad[0], [0.0, 2 * (1.5 + 2 * 2.25 + 3 * 2.625)], rtol=1e-15)
    loss, grad = build({"name": "himmelblau"}, [0]).loss_and_grad(np.zeros((1, 2)), 0)
    assert loss[0] == 121.0 + 49.0
    np.testing.assert_allclose(grad[0], [-14.0, -22.0], rtol=1e-15)
    half = np.full((1, 2), 0.5)  # cos(π) = −1: each coordinate adds 0.25 + 10
    assert build({"name": "rastrigin"}, [0]).loss(half)[0] == pytest.approx(40.5, rel=1e-15)
    loss, grad = build({"name": "ackley"}, [0]).loss_and_grad(np.zeros((1, 2)), 0)
    assert loss[0] == 0.0 and not grad.any()
    st_loss, st_grad = build({"name": "styblinski_tang"}, [0]).loss_and_grad(np.ones((1, 2)), 0)
    assert st_loss[0] == 2 * 0.5 * (1 - 16 + 5)
    np.testing.assert_allclose(st_grad[0], [2 - 16 + 2.5] * 2, rtol=1e-15)


@pytest.mark.parametrize("doc", CASES, ids=lambda d: f"{d['name']}-{d.get('dim', 2)}")
def test_known_minimisers_reach_f_star(doc: dict[str, Any]) -> None:
    problem = build(doc, [3])
    assert problem.f_star is not None
    for point in problem.minimizers():
        loss, grad = problem.loss_and_grad(point[None, :].copy(), 0)
        assert loss[0] == pytest.approx(problem.f_star, abs=1e-12)
        np.testing.assert_allclose(grad, 0.0, atol=1e-9)
    many = build(doc, list(range(200)))
    lo, hi = many.box
    points = np.random.default_rng(0).uniform(lo, hi, (200, many.dim))
    assert (many.loss(points) >= problem.f_star - 1e-12).all()


def test_styblinski_tang_matches_the_literature_minimum() -> None:
    problem = build({"name": "styblinski_tang", "dim": 3}, [0])
    assert problem.f_star == pytest.approx(-39.16616570377142 * 3, rel=1e-14)
    assert problem.minimizers()[0, 0] == pytest.approx(-2.903534, abs=1e-6)
    # the three roots of x³ − 8x + 5/4: the minimiser is the global one along each axis
    grid = np.linspace(-5, 5, 200_001)[:, None]
    assert problem.minimizers()[0, 0] == pytest.approx(
        grid[np.argmin(build({"name": "styblinski_tang", "dim": 1}, [0]).loss(grid)), 0],
        abs=1e-4,
    )


@settings(max_examples=25, deadline=None)
@given(
    dim=st.integers(1, 8),
    kappa=st.floats(1.0, 1e6),
    seed=st.integers(0, 2**32 - 1),
)
def test_quadratic_spectrum_is_rotation_invariant(dim: int, kappa: float, seed: int) -> None:
    """Whatever the seed's rotation, the Hessian has eigenvalues geomspace(1, κ) and f = ½ xᵀAx."""
    problem = build({"name": "quadratic", "dim": dim, "condition_number": kappa}, [seed])
    hessian = problem.hessian[0]  # type: ignore[attr-defined]
    np.testing.assert_array_equal(hessian, hessian.T)
    np.testing.assert_allclose(
        np.linalg.eigvalsh(hessian), np.geomspace(1.0, kappa, dim), rtol=1e-9, atol=1e-9 * kappa
    )
    x = np.random.default_rng(seed).normal(size=(1, dim))
    loss, grad = problem.loss_and_grad(x, 0)
    np.testing.assert_allclose(grad[0], hessian @ x[0], rtol=1e-12, atol=1e-12 * kappa)
    assert loss[0] == pytest.approx(0.5 * x[0] @ hessian @ x[0], rel=1e-12, abs=1e-12)


def test_quadratic_rotations_differ_by_seed() -> None:
    problem = build({"name": "quadratic", "dim": 4, "condition_number": 100.0}, [0, 1, 0])
    h = problem.hessian  # type: ignore[attr-defined]
    assert not np.allclose(h[0], h[1]) and np.array_equal(h[0], h[2])
    # the eigenbasis is not the coordinate basis
    assert np.abs(h[0] - np.diag(np.diag(h[0]))).max() > 1e-3


def test_start_points_are_seeded_and_in_the_box() -> None:
    problem = build({"name": "rastrigin", "dim": 3}, [5, 6, 5])
    x = problem.init_params()
    assert x.shape == (3, 3) and (np.abs(x) <= 5.12).all()
    assert np.array_equal(x[0], x[2]) and not np.array_equal(x[0], x[1])
    np.testing.assert_array_equal(
        x, build({"name": "rastrigin", "dim": 3}, [5, 6, 5]).init_params()
    )
    given_start = build({"name": "rastrigin", "dim": 3, "init": [1.0, 2.0, 3.0]}, [5, 6])
    np.testing.assert_array_equal(given_start.init_params(), [[1.0, 2.0, 3.0]] * 2)


def test_init_must_match_the_dimension() -> None:
    with pytest.raises(ValidationError, match="init has 2 values but dim is 3"):
        SPEC.validate_python({"name": "rosenbrock", "dim": 3, "init": [0.0, 0.0]})
    with pytest.raises(ValidationError, match="init has 3 values but dim is 2"):
        SPEC.validate_python({"name": "beale", "init": [0.0, 0.0, 1.0]})
    with pytest.raises(ValidationError, match="dim is 3"):
        SPEC.validate_python({"name": "ackley", "dim": [2, 3], "init": [0.0, 0.0]})
    with pytest.raises(ValidationError):
        SPEC.validate_python({"name": "rosenbrock", "dim": 1})


def test_plot_bounds_only_in_the_plane() -> None:
    assert build({"name": "himmelblau"}, [0]).plot_bounds == ((-5.0, 5.0), (-5.0, 5.0))
    assert build({"name": "rosenbrock"}, [0]).plot_bounds == ((-2.0, 2.0), (-2.0, 2.0))
    assert build({"name": "rosenbrock", "dim": 3}, [0]).plot_bounds is None


def test_noise_is_indexed_by_step_and_leaves_the_loss_alone() -> None:
    doc = {"name": "quadratic", "dim": 3, "noise": 0.5}
    clean = build({**doc, "noise": 0.0}, [1, 2])
    x = clean.init_params()
    true_loss, true_grad = clean.loss_and_grad(x, 0)
    true_grad = true_grad.copy()
    noisy = build(doc, [1, 2])
    sequential = []
    for t in range(6):
        loss, grad = noisy.loss_and_grad(x, t)
        np.testing.assert_array_equal(loss, true_loss)
        sequential.append(grad - true_grad)
    # asking again, out of order, or from a fresh instance gives the same draws
    again = build(doc, [1, 2])
    for t in (5, 2, 2, 0, 5):
        np.testing.assert_array_equal(again.loss_and_grad(x, t)[1] - true_grad, sequential[t])
    assert not np.allclose(sequential[0], sequential[1])
    assert not np.allclose(sequential[0][0], sequential[0][1])  # runs draw independently


def test_noise_has_the_requested_scale() -> None:
    problem = build({"name": "styblinski_tang", "dim": 50, "noise": 0.3}, [9])
    x = np.zeros((1, 50))  # the true gradient there is 2.5 in every coordinate
    draws = np.concatenate([problem.loss_and_grad(x, t)[1][0] - 2.5 for t in range(400)])
    assert abs(draws.mean()) < 0.3 * 4 / np.sqrt(draws.size)
    assert draws.std() == pytest.approx(0.3, rel=0.03)


@pytest.mark.parametrize(
    "doc",
    [*CASES, {"name": "rosenbrock", "noise": 0.2}, {"name": "ackley", "dim": 4, "noise": 1.0}],
)
def test_batched_equals_alone(doc: dict[str, Any]) -> None:
    seeds = [4, 0, 4, 11]
    batch = build(doc, seeds)
    rng = np.random.default_rng(1)
    lo, hi = batch.box
    points = [batch.init_params(), rng.uniform(lo, hi, (4, batch.dim))]
    alone = [build(doc, [s]) for s in seeds]
    for step, x in enumerate(points):
        loss, grad = batch.loss_and_grad(x, step)
        for r, single in enumerate(alone):
            np.testing.assert_array_equal(single.init_params()[0], points[0][r])
            l1, g1 = single.loss_and_grad(x[r : r + 1], step)
            np.testing.assert_allclose(l1[0], loss[r], rtol=1e-12, atol=0)
            np.testing.assert_allclose(g1[0], grad[r], rtol=1e-12, atol=1e-300)


def test_inputs_are_not_modified_and_float32_works() -> None:
    for doc in CASES:
        p64 = build(doc, [0, 1])
        x = p64.init_params()
        before = x.copy()
        loss64, grad64 = p64.loss_and_grad(x, 0)
        assert np.array_equal(x, before)
        p32 = build(doc, [0, 1], np.float32)
        x32 = p32.init_params()
        assert x32.dtype == np.float32
        loss32, grad32 = p32.loss_and_grad(x32, 0)
        assert loss32.dtype == np.float32 and grad32.dtype == np.float32
        np.testing.assert_allclose(loss32, loss64, rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(grad32, grad64, rtol=1e-3, atol=1e-3 * np.abs(grad64).max())
