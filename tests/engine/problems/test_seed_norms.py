"""The seed's normalisation forms in the MLP: batch norm of the inputs z⁽⁰⁾ (``input_batchnorm``)
and layer norm without γ, β (``layernorm_affine: false``) — finite differences, torch autograd
(BatchNorm1d on the inputs, LayerNorm(elementwise_affine=False)), sizes, batched = alone."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from pydantic import TypeAdapter, ValidationError

from engine.problems import ProblemSpec, build_problem
from engine.problems.learning import SupervisedProblem
from tests.numeric import row_central_diff

SPEC = TypeAdapter(ProblemSpec)

CASES: list[dict[str, Any]] = [
    {"name": "mlp", "dataset": "iris", "hidden": [5], "input_batchnorm": True, "batch_size": 12},
    {"name": "mlp", "dataset": "wine", "hidden": [4, 3], "input_batchnorm": True},
    {
        "name": "mlp",
        "dataset": "iris",
        "hidden": [5, 4],
        "input_batchnorm": True,
        "batchnorm": True,
        "activation": "tanh",
        "batch_size": 10,
    },
    {
        "name": "mlp",
        "dataset": "iris",
        "hidden": [5, 4],
        "layernorm": True,
        "layernorm_affine": False,
    },
    {
        "name": "mlp",
        "dataset": "diabetes",
        "hidden": [6],
        "layernorm": True,
        "layernorm_affine": False,
        "input_batchnorm": True,
        "activation": "gelu",
        "batch_size": 16,
    },
]


def build(doc: dict[str, Any], seeds: list[int]) -> SupervisedProblem:
    problem = build_problem(SPEC.validate_python(doc), seeds)
    assert isinstance(problem, SupervisedProblem)
    return problem


@pytest.mark.parametrize("doc", CASES, ids=lambda d: "-".join(map(str, d.values())))
def test_gradient_matches_finite_differences(doc: dict[str, Any]) -> None:
    problem = build(doc, [0, 4])
    assert problem.dim == SPEC.validate_python(doc).num_params() == problem.layout.size
    rng = np.random.default_rng(5)
    for step in (0, 3):
        x = problem.init_params() + 0.3 * rng.normal(size=(2, problem.dim))
        _, grad = problem.loss_and_grad(x, step)
        grad = grad.copy()
        numeric = row_central_diff(lambda p, step=step: problem.loss_and_grad(p, step)[0], x)
        np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-7)


def test_sizes_count_the_input_norm_and_drop_the_layer_norm_affines() -> None:
    base = {"name": "mlp", "dataset": "digits", "hidden": [32, 16]}
    linear = (64 * 32 + 32) + (32 * 16 + 16) + (16 * 10 + 10)
    assert SPEC.validate_python(base).num_params() == linear
    assert SPEC.validate_python({**base, "input_batchnorm": True}).num_params() == linear + 128
    affine = {**base, "layernorm": True}
    assert SPEC.validate_python(affine).num_params() == linear + 2 * 48
    plain = {**affine, "layernorm_affine": False}
    assert SPEC.validate_python(plain).num_params() == linear
    with pytest.raises(ValidationError, match="layernorm_affine applies to layernorm"):
        SPEC.validate_python({**base, "layernorm_affine": False})
    with pytest.raises(ValidationError, match="batch_size"):
        SPEC.validate_python({**base, "input_batchnorm": True, "batch_size": 1})


def copy_linear(torch: Any, layer: Any, view: Any, r: int) -> None:
    with torch.no_grad():
        layer.weight.copy_(torch.from_numpy(view.w[r].T.copy()))
        layer.bias.copy_(torch.from_numpy(view.b[r].copy()))


def test_input_batchnorm_equals_torch_batchnorm1d_on_the_inputs() -> None:
    torch = pytest.importorskip("torch")
    doc = {"name": "mlp", "dataset": "wine", "hidden": [6], "input_batchnorm": True}
    problem = build(doc, [2])
    x = problem.init_params() + 0.2 * np.random.default_rng(1).normal(size=(1, problem.dim))
    net = problem.net
    n_in = net.n_in
    model = torch.nn.Sequential(
        torch.nn.BatchNorm1d(n_in),
        torch.nn.Linear(n_in, 6),
        torch.nn.ReLU(),
        torch.nn.Linear(6, 3),
    ).double()
    gamma, beta = net.input_views(x)
    with torch.no_grad():
        model[0].weight.copy_(torch.from_numpy(gamma[0].copy()))
        model[0].bias.copy_(torch.from_numpy(beta[0].copy()))
    layers = net.views(x)
    copy_linear(torch, model[1], layers[0], 0)
    copy_linear(torch, model[3], layers[1], 0)
    inputs = torch.from_numpy(problem.data.X_train.copy())
    labels = torch.from_numpy(problem.data.y_train.copy())
    loss_t = torch.nn.functional.cross_entropy(model(inputs), labels)
    loss_t.backward()
    loss, grad = problem.loss_and_grad(x, 0)
    assert loss[0] == pytest.approx(loss_t.item(), rel=1e-12)
    g_gamma, g_beta = net.input_views(grad)
    np.testing.assert_allclose(g_gamma[0], model[0].weight.grad.numpy(), rtol=1e-9, atol=1e-13)
    np.testing.assert_allclose(g_beta[0], model[0].bias.grad.numpy(), rtol=1e-9, atol=1e-13)
    glayers = net.views(grad)
    np.testing.assert_allclose(
        glayers[0].w[0].T, model[1].weight.grad.numpy(), rtol=1e-9, atol=1e-13
    )
    np.testing.assert_allclose(
        glayers[1].w[0].T, model[3].weight.grad.numpy(), rtol=1e-9, atol=1e-13
    )
    mean, var = problem.running[-1]
    np.testing.assert_allclose(mean[0], model[0].running_mean.numpy(), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(var[0], model[0].running_var.numpy(), rtol=1e-12)
    model.eval()
    with torch.no_grad():
        eval_loss = torch.nn.functional.cross_entropy(model(inputs), labels).item()
    assert problem.loss(x)[0] == pytest.approx(eval_loss, rel=1e-12)


def test_non_affine_layernorm_equals_torchs() -> None:
    torch = pytest.importorskip("torch")
    doc = {"name": "mlp", "dataset": "iris", "hidden": [7], "layernorm": True}
    problem = build({**doc, "layernorm_affine": False}, [0])
    x = problem.init_params()
    layers = problem.net.views(x)
    assert layers[0].gamma is None and problem.dim == (4 * 7 + 7) + (7 * 3 + 3)
    model = torch.nn.Sequential(
        torch.nn.Linear(4, 7),
        torch.nn.LayerNorm(7, elementwise_affine=False),
        torch.nn.ReLU(),
        torch.nn.Linear(7, 3),
    ).double()
    copy_linear(torch, model[0], layers[0], 0)
    copy_linear(torch, model[3], layers[1], 0)
    inputs = torch.from_numpy(problem.data.X_train.copy())
    labels = torch.from_numpy(problem.data.y_train.copy())
    loss_t = torch.nn.functional.cross_entropy(model(inputs), labels)
    loss_t.backward()
    loss, grad = problem.loss_and_grad(x, 0)
    assert loss[0] == pytest.approx(loss_t.item(), rel=1e-12)
    glayers = problem.net.views(grad)
    np.testing.assert_allclose(
        glayers[0].w[0].T, model[0].weight.grad.numpy(), rtol=1e-9, atol=1e-13
    )
    np.testing.assert_allclose(glayers[0].b[0], model[0].bias.grad.numpy(), rtol=1e-9, atol=1e-13)


def test_input_batchnorm_batched_equals_alone_with_running_statistics() -> None:
    doc = CASES[0]
    seeds = [1, 0, 1]
    batch = build(doc, seeds)
    alone = [build(doc, [s]) for s in seeds]
    x = batch.init_params()
    xs = [p.init_params() for p in alone]
    for step in range(8):
        _, grad = batch.loss_and_grad(x, step)
        for r, p in enumerate(alone):
            _, g1 = p.loss_and_grad(xs[r], step)
            np.testing.assert_allclose(g1[0], grad[r], rtol=1e-12, atol=1e-15)
            xs[r] -= 0.1 * g1
        x -= 0.1 * grad
    for r, p in enumerate(alone):
        np.testing.assert_allclose(p.loss(xs[r])[0], batch.loss(x)[r], rtol=1e-12)
        np.testing.assert_allclose(p.running[-1][0][0], batch.running[-1][0][r], rtol=1e-12)
