"""``conv_digits``: gradients by finite differences and against torch autograd (Conv2d →
BatchNorm2d → ReLU → AvgPool2d → Linear), the layout over the parameter row, batched = alone, and
training through the run loop."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from pydantic import TypeAdapter

from engine.problems import ProblemSpec, build_problem
from engine.problems.conv import ConvDigits, ConvNet, patch_table
from engine.spec import expand, parse_experiment
from tests.numeric import row_central_diff
from tests.results import plain_batch, plain_one

SPEC = TypeAdapter(ProblemSpec)


def build(seeds: list[int], **fields: Any) -> ConvDigits:
    problem = build_problem(SPEC.validate_python({"name": "conv_digits", **fields}), seeds)
    assert isinstance(problem, ConvDigits)
    return problem


def test_patches_are_the_zero_padded_3x3_neighbourhoods() -> None:
    image = np.arange(1.0, 65.0)
    padded = np.pad(image.reshape(8, 8), 1)
    table = patch_table()
    flat = np.concatenate([image, [1.0, 0.0]])
    for i in range(8):
        for j in range(8):
            patch = flat[table[i * 8 + j]]
            np.testing.assert_array_equal(patch[:9], padded[i : i + 3, j : j + 3].ravel())
            assert patch[9] == 1.0


@pytest.mark.parametrize("batchnorm", [True, False])
def test_gradient_by_finite_differences(batchnorm: bool) -> None:
    problem = build([0, 3], channels=2, batchnorm=batchnorm, batch_size=5)
    x = problem.init_params()
    x[:, :] += 0.05 * np.random.default_rng(1).standard_normal(x.shape)
    _, grad = problem.loss_and_grad(x, 4)
    grad = grad.copy()

    def loss(p: np.ndarray) -> np.ndarray:
        return problem.loss_and_grad(p, 4)[0].copy()

    np.testing.assert_allclose(grad, row_central_diff(loss, x), rtol=1e-6, atol=1e-9)


def test_layout_names_kinds_and_sizes() -> None:
    problem = build([0], channels=3)
    layout = problem.layout
    assert [(t.name, t.shape, t.kind) for t in layout.tensors] == [
        ("conv.weight", (9, 3), "matrix"),
        ("conv.bias", (3,), "bias"),
        ("bn.weight", (3,), "norm_scale"),
        ("bn.bias", (3,), "norm_shift"),
        ("fc.weight", (48, 10), "matrix"),
        ("fc.bias", (10,), "bias"),
    ]
    assert (
        layout.size
        == problem.dim
        == SPEC.validate_python({"name": "conv_digits", "channels": 3}).num_params()
    )
    x = problem.init_params()
    assert np.all(layout.tensors[2].view(x) == 1.0) and np.all(layout.tensors[3].view(x) == 0.0)
    assert np.abs(layout.tensors[0].view(x)).max() <= 1 / 3
    assert [t.name for t in build([0], batchnorm=False).layout.tensors] == [
        "conv.weight",
        "conv.bias",
        "fc.weight",
        "fc.bias",
    ]


def torch_model(net: ConvNet, row: np.ndarray) -> Any:
    """The torch network with our parameter row copied in (same maths, torch's layout)."""
    torch = pytest.importorskip("torch")
    C = net.channels
    model = torch.nn.Sequential(
        torch.nn.Conv2d(1, C, 3, padding=1),
        torch.nn.BatchNorm2d(C),
        torch.nn.ReLU(),
        torch.nn.AvgPool2d(2),
        torch.nn.Flatten(),
        torch.nn.Linear(16 * C, 10),
    ).double()
    views = {t.name: t.view(row[None])[0] for t in net.layout.tensors}
    with torch.no_grad():
        model[0].weight.copy_(torch.from_numpy(views["conv.weight"].T.reshape(C, 1, 3, 3).copy()))
        model[0].bias.copy_(torch.from_numpy(views["conv.bias"].copy()))
        model[1].weight.copy_(torch.from_numpy(views["bn.weight"].copy()))
        model[1].bias.copy_(torch.from_numpy(views["bn.bias"].copy()))
        # ours: features (row, col, channel); torch flattens (channel, row, col)
        fc = views["fc.weight"].reshape(4, 4, C, 10).transpose(3, 2, 0, 1).reshape(10, 16 * C)
        model[5].weight.copy_(torch.from_numpy(fc.copy()))
        model[5].bias.copy_(torch.from_numpy(views["fc.bias"].copy()))
    return model


def test_loss_and_gradient_equal_torch_autograd() -> None:
    torch = pytest.importorskip("torch")
    problem = build([7], channels=4, batch_size=32)
    x = problem.init_params()
    x += 0.1 * np.random.default_rng(2).standard_normal(x.shape)
    model = torch_model(problem.net, x[0])
    idx = problem.batch_indices(0)[0]
    images = torch.from_numpy(problem.data.X_train[idx].reshape(-1, 1, 8, 8).copy())
    labels = torch.from_numpy(problem.data.y_train[idx].copy())
    torch_loss = torch.nn.functional.cross_entropy(model(images), labels)
    torch_loss.backward()
    loss, grad = problem.loss_and_grad(x, 0)
    assert loss[0] == pytest.approx(torch_loss.item(), rel=1e-12)
    theirs = torch_model(problem.net, grad[0])  # our gradient, laid out as torch's parameters
    for ours_p, torch_p in zip(theirs.parameters(), model.parameters(), strict=True):
        np.testing.assert_allclose(
            ours_p.detach().numpy(), torch_p.grad.numpy(), rtol=1e-10, atol=1e-13
        )
    # the running statistics moved as BatchNorm2d's did (momentum 0.1, unbiased variance)
    mean, var = problem.running[0]
    np.testing.assert_allclose(mean[0], model[1].running_mean.numpy(), rtol=1e-12)
    np.testing.assert_allclose(var[0], model[1].running_var.numpy(), rtol=1e-12)
    # inference mode: the full training loss with running statistics, as model.eval() computes
    model.eval()
    with torch.no_grad():
        everything = torch.from_numpy(problem.data.X_train.reshape(-1, 1, 8, 8).copy())
        targets = torch.from_numpy(problem.data.y_train.copy())
        eval_loss = torch.nn.functional.cross_entropy(model(everything), targets).item()
    assert problem.loss(x)[0] == pytest.approx(eval_loss, rel=1e-11)


def test_batched_runs_equal_runs_alone_and_the_net_learns() -> None:
    doc = {
        "name": "conv",
        "problems": [{"name": "conv_digits", "channels": 4, "batch_size": 64}],
        "optimizers": [{"name": "adam", "lr": [0.003, 0.01]}],
        "seeds": [0, 1],
        "steps": 120,
        "eval_every": 40,
    }
    runs = expand(parse_experiment(doc))
    batched = plain_batch(runs)
    for run, res in zip(runs, batched, strict=True):
        alone = plain_one(run)
        assert alone["losses"] == res["losses"] and alone["test_accuracy"] == res["test_accuracy"]
        assert res["losses"][-1] < 0.5 * res["losses"][0] and res["test_accuracy"] > 0.7
