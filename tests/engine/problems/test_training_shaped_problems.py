"""The noisy quadratic model and matrix factorisation: gradients by finite differences, f* against
an independent computation, the NQM's noise statistics and SGD's expected loss against their
closed forms, and both problems through the run loop."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import TypeAdapter

from engine.problems import ProblemSpec, build_problem
from engine.problems.matrix import MatrixFactorization
from engine.problems.nqm import NQM
from engine.spec import expand, parse_experiment
from tests.numeric import row_central_diff
from tests.results import plain_one

SPEC = TypeAdapter(ProblemSpec)


def build(doc: dict[str, object], seeds: list[int]) -> object:
    return build_problem(SPEC.validate_python(doc), seeds)


# --- noisy quadratic model ---------------------------------------------------------------------


def test_nqm_noise_free_gradient_is_the_curvature_times_theta() -> None:
    problem = build({"name": "nqm", "dim": 7, "decay_power": 1.5}, [0, 1])
    assert isinstance(problem, NQM)
    x = np.random.default_rng(0).standard_normal((2, 7))
    fd = row_central_diff(problem.loss, x)
    _, grad = problem.loss_and_grad(x, 0)
    noise = problem.noise_at(0)
    np.testing.assert_allclose(grad - noise, fd, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(problem.curvature, np.arange(1, 8) ** -1.5, rtol=1e-15)
    assert problem.f_star == 0.0 and np.all(problem.init_params() == 1.0)


def test_nqm_noise_has_covariance_h_over_b_and_depends_only_on_the_step() -> None:
    dim, batch, steps = 4, 8, 4000
    problem = build({"name": "nqm", "dim": dim, "batch_size": batch}, [3])
    assert isinstance(problem, NQM)
    x = np.zeros((1, dim))
    draws = np.array([problem.loss_and_grad(x, t)[1][0].copy() for t in range(steps)])
    h = 1.0 / np.arange(1, dim + 1)
    # sample variances within 4 standard errors of h/B; cross-correlations near 0
    var = draws.var(axis=0)
    assert np.all(np.abs(var - h / batch) < 4 * (h / batch) * np.sqrt(2 / steps))
    corr = np.corrcoef(draws.T)[np.triu_indices(dim, 1)]
    assert np.all(np.abs(corr) < 4 / np.sqrt(steps))
    again = problem.loss_and_grad(x, 17)[1][0]
    np.testing.assert_array_equal(again, draws[17])


def test_sgd_on_the_nqm_follows_the_expected_loss_recursion() -> None:
    # E[θᵢ²]ₜ₊₁ = (1 − αhᵢ)² E[θᵢ²]ₜ + α² hᵢ / B, against the mean over 2000 seeds
    dim, batch, lr, steps, seeds = 20, 4, 0.5, 60, 2000
    (run,) = expand(
        parse_experiment(
            {
                "name": "nqm",
                "problems": [{"name": "nqm", "dim": dim, "batch_size": batch}],
                "optimizers": [{"name": "sgd", "lr": lr}],
                "steps": steps,
                "eval_every": 1,
            }
        )
    )
    problem = build(run.problem.model_dump(), list(range(seeds)))
    assert isinstance(problem, NQM)
    x = problem.init_params()
    losses = [problem.loss(x)]
    for t in range(steps):
        _, grad = problem.loss_and_grad(x, t)
        x -= lr * grad
        losses.append(problem.loss(x))
    simulated = np.mean(losses, axis=1)
    stderr = np.std(losses, axis=1) / np.sqrt(seeds)
    h = 1.0 / np.arange(1, dim + 1)
    second, expected = np.ones(dim), [0.5 * h.sum()]
    for _ in range(steps):
        second = (1 - lr * h) ** 2 * second + lr**2 * h / batch
        expected.append(0.5 * (h * second).sum())
    assert np.all(np.abs(simulated - expected) <= 5 * stderr + 1e-12)
    noise_free = 0.5 * (h * (1 - lr * h) ** (2 * steps)).sum()
    assert expected[-1] > 2 * noise_free  # the noise floor dominates: the test sees the noise
    # and the run loop records exactly this model's loss for seed 0
    res = plain_one(run)
    assert res["eval_steps"] == list(range(steps + 1))
    one = build(run.problem.model_dump(), [0])
    y = one.init_params()
    losses = [float(one.loss(y)[0])]
    for t in range(steps):
        y -= lr * one.loss_and_grad(y, t)[1]
        losses.append(float(one.loss(y)[0]))
    np.testing.assert_allclose(res["losses"], losses, rtol=1e-13)


# --- matrix factorisation ------------------------------------------------------------------------


def test_matrix_factorization_gradient_by_finite_differences_and_layout() -> None:
    doc = {"name": "matrix_factorization", "rows": 6, "cols": 4, "rank": 3, "target_rank": 2}
    problem = build({**doc, "noise": 0.3}, [0, 5])
    assert isinstance(problem, MatrixFactorization)
    x = problem.init_params() * 10
    _, grad = problem.loss_and_grad(x, 0)
    np.testing.assert_allclose(grad, row_central_diff(problem.loss, x), rtol=1e-7, atol=1e-10)
    (u, v) = problem.layout.tensors
    assert (u.name, u.shape, u.kind, v.shape, v.kind) == ("U", (6, 3), "matrix", (4, 3), "matrix")
    assert problem.layout.size == problem.dim == SPEC.validate_python(doc).num_params()
    # the loss is the Frobenius residual of the factors read through the layout
    U, V = u.view(x)[1], v.view(x)[1]
    direct = np.sum((U @ V.T - problem.target) ** 2) / (2 * 6 * 4)
    assert problem.loss(x)[1] == pytest.approx(direct, rel=1e-13)


@pytest.mark.parametrize(("rank", "noise"), [(3, 0.0), (2, 0.0), (1, 0.5), (4, 1.0)])
def test_matrix_factorization_f_star_is_the_best_rank_k_error(rank: int, noise: float) -> None:
    doc = {"name": "matrix_factorization", "rows": 9, "cols": 7, "rank": rank, "target_rank": 3}
    problem = build({**doc, "noise": noise}, [0])
    assert isinstance(problem, MatrixFactorization)
    M = problem.target
    assert np.sum(M**2) == pytest.approx(9 * 7, rel=1e-12)
    # Eckart–Young by construction: the truncated SVD's factors reach f* and nothing is lower
    u, s, vt = np.linalg.svd(M)
    best = np.concatenate([(u[:, :rank] * s[:rank]).ravel(), vt[:rank].T.ravel()])[None]
    assert problem.loss(best)[0] == pytest.approx(problem.f_star, abs=1e-14)
    if noise == 0.0 and rank >= 3:
        assert problem.f_star == pytest.approx(0.0, abs=1e-25)
    else:
        assert problem.f_star > 1e-3


def test_gradient_descent_reaches_f_star_from_a_small_start() -> None:
    (run,) = expand(
        parse_experiment(
            {
                "name": "mf",
                "problems": [{"name": "matrix_factorization", "rank": 2, "noise": 0.2}],
                "optimizers": [{"name": "sgd", "lr": 20.0, "momentum": 0.9}],
                "steps": 1500,
            }
        )
    )
    res = plain_one(run)
    assert res["f_star"] > 0 and not res["diverged"]
    assert res["suboptimality"] < 1e-8 * res["losses"][0]


def test_target_rank_above_the_smaller_side_is_rejected() -> None:
    with pytest.raises(ValueError, match="target_rank"):
        SPEC.validate_python({"name": "matrix_factorization", "rows": 3, "target_rank": [2, 4]})


def test_an_mlp_learns_mnist1d_from_minibatches() -> None:
    (run,) = expand(
        parse_experiment(
            {
                "name": "mnist1d",
                "problems": [
                    {"name": "mlp", "dataset": "mnist1d", "hidden": [64], "batch_size": 100}
                ],
                "optimizers": [{"name": "adam", "lr": 0.003}],
                "steps": 400,
                "eval_every": 100,
            }
        )
    )
    res = plain_one(run)
    assert res["losses"][-1] < 0.8 * res["losses"][0] and res["test_accuracy"] > 0.3
