"""Learning problems: gradients against central differences (full batch, a fixed step's minibatch,
batch norm in training mode), closed-form f*, minibatch order, run batching, parameter layout and
the MLP-with-batch-norm accuracy on digits."""

from __future__ import annotations

import itertools
import time
from typing import Any

import numpy as np
import pytest
from pydantic import TypeAdapter, ValidationError

from engine.problems import ProblemSpec, build_problem
from engine.problems.learning import SupervisedProblem
from engine.problems.network import VIEWS_KEPT, Network, count_params, row_blocks
from tests.numeric import row_central_diff

SPEC = TypeAdapter(ProblemSpec)


def build(doc: dict[str, Any], seeds: list[int], dtype: Any = np.float64) -> SupervisedProblem:
    problem = build_problem(SPEC.validate_python(doc), seeds, dtype)
    assert isinstance(problem, SupervisedProblem)
    return problem


GRADIENT_CASES: list[dict[str, Any]] = [
    {"name": "linear_regression"},
    {"name": "linear_regression", "batch_size": 16},
    {"name": "logistic_regression", "dataset": "wine", "l2": 0.05},
    {"name": "logistic_regression", "dataset": "breast_cancer", "batch_size": 8},
    {"name": "mlp", "dataset": "iris", "hidden": [5, 4], "activation": "relu"},
    {"name": "mlp", "dataset": "iris", "hidden": [5, 4], "activation": "tanh", "batch_size": 10},
    {"name": "mlp", "dataset": "moons", "hidden": [6], "activation": "gelu", "n_samples": 60},
    {"name": "mlp", "dataset": "iris", "hidden": [5, 4], "batchnorm": True, "batch_size": 12},
    {"name": "mlp", "dataset": "wine", "hidden": [4], "batchnorm": True, "activation": "tanh"},
    {"name": "mlp", "dataset": "spirals", "hidden": [5, 3], "layernorm": True, "batch_size": 9},
    {"name": "mlp", "dataset": "diabetes", "hidden": [6], "activation": "gelu", "layernorm": True},
    {"name": "mlp", "dataset": "diabetes", "hidden": [4], "batchnorm": True, "batch_size": 20},
]


@pytest.mark.parametrize("doc", GRADIENT_CASES, ids=lambda d: "-".join(map(str, d.values())))
def test_gradient_matches_finite_differences(doc: dict[str, Any]) -> None:
    problem = build(doc, [0, 1, 5])
    rng = np.random.default_rng(2)
    for step in (0, 7):
        x = problem.init_params()
        x += 0.3 * rng.normal(size=x.shape)  # a different point per step, away from γ = 1, β = 0
        loss, grad = problem.loss_and_grad(x, step)
        grad = grad.copy()
        # the loss that loss_and_grad(·, step) reports: that step's minibatch, training mode
        numeric = row_central_diff(lambda p, step=step: problem.loss_and_grad(p, step)[0], x)
        np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-7)
        assert loss.shape == (3,) and np.isfinite(loss).all()


def test_linear_regression_f_star_is_the_least_squares_optimum() -> None:
    problem = build({"name": "linear_regression"}, [0, 1])
    data = problem.data
    design = np.column_stack([data.X_train, np.ones(len(data.X_train))])
    coef = np.linalg.solve(design.T @ design, design.T @ data.y_train)  # normal equations
    x = np.tile(coef, (2, 1))  # layout: W (10 × 1) then b
    loss, grad = problem.loss_and_grad(x, 0)
    np.testing.assert_allclose(loss, problem.f_star, rtol=1e-12)
    np.testing.assert_allclose(grad, 0.0, atol=1e-12)
    assert problem.f_star is not None and 0.4 < problem.f_star < 0.6  # R² ≈ 0.5 on diabetes
    assert (problem.loss(problem.init_params()) > problem.f_star).all()


def test_logistic_regression_is_softmax_cross_entropy_by_hand() -> None:
    problem = build({"name": "logistic_regression", "dataset": "iris", "l2": 0.1}, [3])
    x = problem.init_params()
    W, b = x[0, :12].reshape(4, 3), x[0, 12:]
    logits = problem.data.X_train @ W + b
    logp = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    expected = -logp[np.arange(len(logits)), problem.data.y_train].mean() + 0.05 * (W**2).sum()
    assert problem.loss(x)[0] == pytest.approx(expected, rel=1e-13)
    hits = (logits.argmax(axis=1) == problem.data.y_train).mean()
    test_logits = problem.data.X_test @ W + b
    metrics = problem.test_metrics(x)
    assert metrics["test_accuracy"][0] == (test_logits.argmax(1) == problem.data.y_test).mean()
    assert 0 <= hits <= 1


def test_parameter_layout_and_initialisation() -> None:
    problem = build({"name": "mlp", "dataset": "wine", "hidden": [7, 5], "batchnorm": True}, [0, 1])
    assert (
        problem.dim
        == count_params(13, [7, 5], 3, "batchnorm")
        == 13 * 7 + 7 + 14 + 7 * 5 + 5 + 10 + 5 * 3 + 3
    )
    x = problem.init_params()
    layers = problem.net.views(x)
    assert [v.w.shape for v in layers] == [(2, 13, 7), (2, 7, 5), (2, 5, 3)]
    for layer, fan_in in zip(layers, (13, 7, 5), strict=True):
        assert np.shares_memory(layer.w, x) and np.shares_memory(layer.b, x)
        bound = 1 / np.sqrt(fan_in)
        assert np.abs(layer.wb).max() <= bound and np.abs(layer.wb).max() > 0.8 * bound
    assert (layers[0].gamma == 1).all() and (layers[0].beta == 0).all()
    assert layers[2].gamma is None
    assert not np.array_equal(x[0], x[1])
    np.testing.assert_array_equal(
        x,
        build(
            {"name": "mlp", "dataset": "wine", "hidden": [7, 5], "batchnorm": True}, [0, 1]
        ).init_params(),
    )


@pytest.mark.parametrize(
    "doc",
    [
        {"name": "linear_regression"},
        {"name": "logistic_regression", "dataset": "iris"},
        {"name": "mlp", "dataset": "wine", "hidden": [7, 5], "batchnorm": True},
        {"name": "mlp", "dataset": "iris", "hidden": [4], "layernorm": True},
        {"name": "mlp", "dataset": "digits", "hidden": [6, 3]},
        {"name": "mlp", "dataset": "wine", "hidden": [4], "input_batchnorm": True},
        {
            "name": "mlp",
            "dataset": "iris",
            "hidden": [4],
            "layernorm": True,
            "layernorm_affine": False,
        },
    ],
    ids=lambda d: "-".join(map(str, d.values())),
)
def test_layout_tiles_the_row_and_views_the_network_memory(doc: dict[str, Any]) -> None:
    problem = build(doc, [0, 1])
    layout = problem.layout
    offsets = [t.offset for t in layout.tensors]
    assert offsets[0] == 0 and layout.size == problem.dim
    assert all(a.stop == b.offset for a, b in itertools.pairwise(layout.tensors))
    x = problem.init_params()
    by_name = {t.name: t.view(x) for t in layout.tensors}
    layers = problem.net.views(x)
    n = len(layers)
    for i, layer in enumerate(layers):
        prefix = "output" if i == n - 1 else f"layers.{i}"
        pairs = [("weight", layer.w), ("bias", layer.b)]
        if layer.gamma is not None and layer.beta is not None:
            pairs += [("norm.weight", layer.gamma), ("norm.bias", layer.beta)]
        for suffix, view in pairs:
            mine = by_name.pop(f"{prefix}.{suffix}")
            assert mine.shape == view.shape
            # the same memory: a write through one view is seen by the other
            assert mine.__array_interface__["data"][0] == view.__array_interface__["data"][0]
            mine += 1.0
            np.testing.assert_array_equal(mine, view)
    if doc.get("input_batchnorm"):
        gamma0, beta0 = problem.net.input_views(x)
        for mine, view in (
            (by_name.pop("input_norm.weight"), gamma0),
            (by_name.pop("input_norm.bias"), beta0),
        ):
            mine += 1.0
            np.testing.assert_array_equal(mine, view)
    assert not by_name
    kinds = {t.name: t.kind for t in layout.tensors}
    assert kinds["output.weight"] == "matrix" and kinds["output.bias"] == "bias"
    if doc.get("batchnorm") or (doc.get("layernorm") and doc.get("layernorm_affine", True)):
        assert kinds["layers.0.norm.weight"] == "norm_scale"
        assert kinds["layers.0.norm.bias"] == "norm_shift"
    assert layout.mask({"matrix"}).sum() == sum(lay.w[0].size for lay in layers)


def test_minibatches_cover_each_epoch_and_depend_on_the_step_only() -> None:
    problem = build({"name": "mlp", "dataset": "iris", "hidden": [3], "batch_size": 32}, [0, 1])
    n_train = len(problem.data.X_train)  # 120 → 3 batches per epoch, 24 examples dropped
    epochs = [
        np.concatenate([problem.batch_indices(3 * e + k).copy() for k in range(3)], axis=1)
        for e in range(3)
    ]
    for rows in epochs:
        for run in rows:
            assert len(set(run.tolist())) == 96 and run.max() < n_train
    assert not np.array_equal(epochs[0], epochs[1])  # reshuffled every epoch
    assert not np.array_equal(epochs[0][0], epochs[0][1])  # per-run order
    fresh = build({"name": "mlp", "dataset": "iris", "hidden": [3], "batch_size": 32}, [0, 1])
    for step in (7, 2, 7, 0):
        np.testing.assert_array_equal(
            fresh.batch_indices(step), epochs[step // 3][:, (step % 3) * 32 :][:, :32]
        )


def test_minibatch_loss_is_the_loss_of_that_batch() -> None:
    problem = build({"name": "logistic_regression", "dataset": "wine", "batch_size": 10}, [4])
    full = build({"name": "logistic_regression", "dataset": "wine"}, [4])
    x = problem.init_params()
    idx = problem.batch_indices(5)[0]
    W, b = x[0, :39].reshape(13, 3), x[0, 39:]
    logits = problem.data.X_train[idx] @ W + b
    logp = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    expected = -logp[np.arange(10), problem.data.y_train[idx]].mean()
    assert problem.loss_and_grad(x, 5)[0][0] == pytest.approx(expected, rel=1e-13)
    np.testing.assert_allclose(problem.loss(x), full.loss_and_grad(x, 0)[0], rtol=1e-13)


BATCH_CASES: list[dict[str, Any]] = [
    {"name": "mlp", "dataset": "digits", "hidden": [16], "batchnorm": True, "batch_size": 32},
    {"name": "mlp", "dataset": "wine", "hidden": [8, 8], "layernorm": True, "activation": "gelu"},
    {"name": "mlp", "dataset": "diabetes", "hidden": [8], "batchnorm": True},
    {"name": "logistic_regression", "dataset": "spirals", "l2": 0.01, "batch_size": 50},
    {"name": "linear_regression", "batch_size": 25},
]


@pytest.mark.parametrize("doc", BATCH_CASES, ids=lambda d: "-".join(map(str, d.values())))
def test_batched_equals_alone(doc: dict[str, Any]) -> None:
    """Several SGD steps (running statistics included), then every metric, run by run."""
    seeds = [3, 0, 3, 8]
    batch = build(doc, seeds)
    alone = [build(doc, [s]) for s in seeds]
    x = batch.init_params()
    xs = [p.init_params() for p in alone]
    for r in range(len(seeds)):
        np.testing.assert_array_equal(xs[r][0], x[r])
    for step in range(12):
        loss, grad = batch.loss_and_grad(x, step)
        for r, p in enumerate(alone):
            l1, g1 = p.loss_and_grad(xs[r], step)
            np.testing.assert_allclose(l1[0], loss[r], rtol=1e-12)
            np.testing.assert_allclose(g1[0], grad[r], rtol=1e-12, atol=1e-15)
            xs[r] -= 0.1 * g1
        x -= 0.1 * grad
    for r, p in enumerate(alone):
        np.testing.assert_allclose(p.loss(xs[r])[0], batch.loss(x)[r], rtol=1e-12)
        single, batched = p.test_metrics(xs[r]), batch.test_metrics(x)
        assert single.keys() == batched.keys() and "test_loss" in single
        for key in single:
            np.testing.assert_allclose(single[key][0], batched[key][r], rtol=1e-12)


SHARED_ORDER_CASES: list[dict[str, Any]] = [
    {"name": "mlp", "dataset": "digits", "hidden": [16, 8], "batch_size": 32},
    {"name": "mlp", "dataset": "wine", "hidden": [8], "activation": "tanh", "batch_size": 20},
    {"name": "mlp", "dataset": "digits", "hidden": [8], "input_batchnorm": True, "batch_size": 16},
    {"name": "mlp", "dataset": "diabetes", "hidden": [8], "batchnorm": True, "batch_size": 25},
    {"name": "conv_digits", "channels": 2, "batch_size": 8},
]


@pytest.mark.parametrize("doc", SHARED_ORDER_CASES, ids=lambda d: "-".join(map(str, d.values())))
def test_one_seed_shares_the_minibatch_bit_for_bit(doc: dict[str, Any]) -> None:
    """Runs of one seed step on one shared minibatch (broadcast over the runs); a batch whose
    seeds differ gathers a minibatch per run. Run 0's numbers are identical either way."""
    shared, gathered = build(doc, [3, 3]), build(doc, [3, 5])
    assert shared._one_order and not gathered._one_order
    np.testing.assert_array_equal(shared.batch_indices(4)[1], gathered.batch_indices(4)[0])
    x, y = shared.init_params(), gathered.init_params()
    for step in range(30):
        loss, grad = shared.loss_and_grad(x, step)
        loss_g, grad_g = gathered.loss_and_grad(y, step)
        assert loss[0] == loss_g[0] == loss[1]
        np.testing.assert_array_equal(grad[0], grad_g[0])
        x -= 0.05 * grad
        y -= 0.05 * grad_g
    assert shared.loss(x)[0] == gathered.loss(y)[0]
    metrics, metrics_g = shared.test_metrics(x), gathered.test_metrics(y)
    assert {k: v[0] for k, v in metrics.items()} == {k: v[0] for k, v in metrics_g.items()}


def test_row_blocks_tile_the_rows_without_one_row_blocks() -> None:
    for n in (1, 2, 5, 128, 129, 130, 256, 257, 1437):
        blocks = row_blocks(n, 128)
        assert blocks[0][0] == 0 and blocks[-1][1] == n
        assert all(a[1] == b[0] for a, b in itertools.pairwise(blocks))
        assert all(0 < stop - start <= 128 for start, stop in blocks)
        assert n == 1 or min(stop - start for start, stop in blocks) >= 2
    assert row_blocks(129, 128) == [(0, 127), (127, 129)]


INFER_CASES: list[dict[str, Any]] = [
    {"name": "mlp", "dataset": "digits", "hidden": [32, 8]},
    {"name": "mlp", "dataset": "digits", "hidden": [16], "activation": "gelu", "layernorm": True},
    {"name": "mlp", "dataset": "digits", "hidden": [16], "activation": "tanh", "batchnorm": True},
    {"name": "mlp", "dataset": "digits", "hidden": [8], "input_batchnorm": True},
    {"name": "logistic_regression", "dataset": "digits"},
]


def blas_rounds_rows_alone() -> bool:
    """Whether this process's BLAS rounds every row of a matrix–matrix product as it would in a
    product of other rows. OpenBLAS's AVX-512 kernels do; its kernels on AMD Zen 1 take another
    path for the odd last row of a call (with several threads, of each thread's rows; measured)."""
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((1500, 33)), rng.standard_normal((33, 10))
    whole = x @ w
    return all((x[:n] @ w).tobytes() == whole[:n].tobytes() for n in (2, 3, 5, 129, 300))


@pytest.mark.parametrize("doc", INFER_CASES, ids=lambda d: "-".join(map(str, d.values())))
def test_inference_in_row_blocks_equals_one_pass(doc: dict[str, Any]) -> None:
    """Evaluation computes the outputs in blocks of rows, each block one forward pass (bit for
    bit); with a BLAS that rounds rows alone the blocks equal one pass over all rows bit for bit,
    with another they may differ from it in the last bits of the odd rows its kernels single out
    (inference mode, running statistics moved away from their start)."""
    problem = build({**doc, "batch_size": 64}, [0, 4])
    net = problem.net
    assert net.infer_rows is not None
    x = problem.init_params() + 0.2 * np.random.default_rng(0).normal(size=(2, net.size))
    for step in range(3):  # moves the running statistics of the batch-norm cases
        problem.loss_and_grad(x, step)
    x1 = problem._x_train
    exact = blas_rounds_rows_alone()
    for n in (1, 2, 129, 256, 300):
        blocked = net.infer(x, x1[:n], problem.running, net.workspace())
        whole, _ = net.forward(x, x1[:n], training=False, running=problem.running)
        assert blocked.shape == whole.shape == (2, net.n_out, n)
        for start, stop in row_blocks(n, net.infer_rows):
            block, _ = net.forward(x, x1[start:stop], training=False, running=problem.running)
            assert blocked[..., start:stop].tobytes() == block.tobytes()
        if exact:
            assert blocked.tobytes() == whole.tobytes()
        else:
            np.testing.assert_allclose(blocked, whole, rtol=1e-13, atol=1e-13 * abs(whole).max())


def test_one_output_column_is_inferred_in_one_pass() -> None:
    """Regression's single output (or a hidden width of 1) is a matrix-vector product, whose
    rounding depends on the rows it gets: no row blocks there."""
    assert build({"name": "mlp", "dataset": "diabetes", "hidden": [8]}, [0]).net.infer_rows is None
    assert build({"name": "mlp", "dataset": "digits", "hidden": [1]}, [0]).net.infer_rows is None


def test_batchnorm_inference_uses_running_statistics() -> None:
    doc = {"name": "mlp", "dataset": "iris", "hidden": [6], "batchnorm": True, "batch_size": 16}
    problem = build(doc, [0, 1])
    x = problem.init_params()
    mean, var = problem.running[0]
    np.testing.assert_array_equal(mean, 0.0)
    before = problem.loss(x)
    problem.test_metrics(x)
    np.testing.assert_array_equal(mean, 0.0)  # evaluation never updates them
    problem.loss_and_grad(x, 0)
    assert (mean != 0.0).all() and (var != 1.0).all()
    assert not np.allclose(problem.loss(x), before)
    # statistics of step 0's batch: z = [x 1] [W; b] per run, momentum 0.1, unbiased variance
    idx = problem.batch_indices(0)
    layer = problem.net.views(x)[0]
    z = np.stack([problem.data.X_train[idx[r]] @ layer.w[r] + layer.b[r] for r in range(2)])
    np.testing.assert_allclose(mean, 0.1 * z.mean(axis=1), rtol=1e-12)
    np.testing.assert_allclose(var, 0.9 + 0.1 * z.var(axis=1, ddof=1), rtol=1e-12)


def test_results_are_deterministic_and_params_untouched() -> None:
    doc = {"name": "mlp", "dataset": "moons", "hidden": [8], "batchnorm": True, "batch_size": 20}
    runs = []
    for _ in range(2):
        problem = build(doc, [1, 2])
        x = problem.init_params()
        trace = []
        for step in range(30):
            before = x.copy()
            loss, grad = problem.loss_and_grad(x, step)
            assert np.array_equal(x, before)
            trace.append(loss.copy())
            x -= 0.2 * grad
        trace.append(problem.loss(x))
        runs.append(np.array(trace))
    np.testing.assert_array_equal(runs[0], runs[1])


def test_no_test_set_means_no_test_metrics() -> None:
    problem = build({"name": "logistic_regression", "dataset": "iris", "test_fraction": 0.0}, [0])
    assert problem.test_metrics(problem.init_params()) == {}
    regression = build({"name": "linear_regression"}, [0])
    assert set(regression.test_metrics(regression.init_params())) == {"test_loss"}


def test_non_finite_weights_have_no_test_accuracy() -> None:
    problem = build({"name": "mlp", "dataset": "iris", "hidden": [4]}, [0, 1])
    x = problem.init_params()
    healthy = problem.test_metrics(x)
    x[1, 0] = np.nan
    metrics = problem.test_metrics(x)
    assert np.isnan(metrics["test_loss"][1]) and np.isnan(metrics["test_accuracy"][1])
    # argmax over NaN outputs would "predict" class 0: iris's test split has such examples
    assert (problem.data.y_test == 0).any()
    assert metrics["test_loss"][0] == healthy["test_loss"][0]
    assert metrics["test_accuracy"][0] == healthy["test_accuracy"][0]


def test_float32_runs() -> None:
    doc = {"name": "mlp", "dataset": "wine", "hidden": [8], "batchnorm": True, "batch_size": 16}
    p32, p64 = build(doc, [0], np.float32), build(doc, [0])
    x32 = p32.init_params()
    loss32, grad32 = p32.loss_and_grad(x32, 0)
    loss64, grad64 = p64.loss_and_grad(x32.astype(np.float64), 0)
    assert grad32.dtype == np.float32 and loss32.dtype == np.float32
    np.testing.assert_allclose(loss32, loss64, rtol=1e-5)
    np.testing.assert_allclose(grad32, grad64, rtol=1e-3, atol=1e-5)


def test_spec_checks_that_need_the_data_set() -> None:
    ok = {"name": "mlp", "dataset": "iris", "hidden": [4]}
    with pytest.raises(ValidationError, match="mutually exclusive"):
        SPEC.validate_python({**ok, "batchnorm": True, "layernorm": True})
    with pytest.raises(ValidationError, match="exceeds the 120 training examples"):
        SPEC.validate_python({**ok, "batch_size": [16, 121]})
    with pytest.raises(ValidationError, match="exceeds"):
        SPEC.validate_python({**ok, "batch_size": 100, "test_fraction": [0.1, 0.5]})
    with pytest.raises(ValidationError, match="batch_size ≥ 2"):
        SPEC.validate_python({**ok, "batchnorm": True, "batch_size": 1})
    with pytest.raises(ValidationError, match="synthetic"):
        SPEC.validate_python({**ok, "n_samples": 100})
    with pytest.raises(ValidationError):
        SPEC.validate_python({"name": "linear_regression", "dataset": "iris"})
    with pytest.raises(ValidationError):
        SPEC.validate_python({"name": "logistic_regression", "dataset": "diabetes"})
    with pytest.raises(ValidationError):
        SPEC.validate_python({**ok, "hidden": []})
    SPEC.validate_python({**ok, "dataset": "moons", "n_samples": 40, "batch_size": 32})
    with pytest.raises(ValidationError, match="exceeds the 32"):
        SPEC.validate_python({**ok, "dataset": "moons", "n_samples": 40, "batch_size": 33})


def adam(problem: SupervisedProblem, steps: int, lr: float) -> np.ndarray:
    """Plain Adam (β = 0.9, 0.999; ε = 1e-8) over the run axis."""
    x = problem.init_params()
    m, v = np.zeros_like(x), np.zeros_like(x)
    for t in range(1, steps + 1):
        _, g = problem.loss_and_grad(x, t - 1)
        m = 0.9 * m + 0.1 * g
        v = 0.999 * v + 0.001 * g * g
        x -= lr * (m / (1 - 0.9**t)) / (np.sqrt(v / (1 - 0.999**t)) + 1e-8)
    return x


def test_mlp_with_batchnorm_learns_digits() -> None:
    start = time.perf_counter()
    doc = {"name": "mlp", "dataset": "digits", "hidden": [64], "batchnorm": True, "batch_size": 64}
    problem = build(doc, [0, 1, 2])
    x = adam(problem, 400, 1e-2)
    accuracy = problem.test_metrics(x)["test_accuracy"]
    assert (accuracy >= 0.95).all(), accuracy
    assert (problem.loss(x) < 0.05).all()
    assert time.perf_counter() - start < 10.0


def test_layer_views_always_look_into_the_buffer_asked_about() -> None:
    """Views are kept per buffer: asked again, any buffer's views are its own (also after other
    buffers pushed it out of the kept ones, and for a new buffer at a freed one's address)."""
    net = Network(5, [4], 3)
    buffers = [np.arange(2 * net.size, dtype=np.float64).reshape(2, -1) + k for k in range(12)]
    for rounds in range(2):
        for k, flat in enumerate(buffers[: VIEWS_KEPT + 3]):
            views = net.views(flat)
            assert all(np.shares_memory(v.wb, flat) for v in views)
            assert views[1].wb[1, 0, 0] == flat[1, net.slots[1].w], (rounds, k)
    for _ in range(3):
        fresh = np.full((2, net.size), 7.0)
        assert net.views(fresh)[0].wb[0, 0, 0] == 7.0
        del fresh
