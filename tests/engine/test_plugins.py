"""Entries from installed packages (entry points): the example plugin's optimizer is in the
registry, the spec union, the catalog and the run loop, and steps by its documented rule; the
loader refuses plugins that do not provide what they declare."""

from __future__ import annotations

import math
from importlib.metadata import EntryPoint, entry_points

import numpy as np
import pytest
from pydantic import TypeAdapter

from engine.catalog import catalog
from engine.optimizers import OPTIMIZERS, OptimizerSpec, build_optimizer
from engine.plugins import PluginError, load_plugins
from engine.problems import PROBLEMS, ProblemSpec, build_problem
from engine.registry import BUILTIN
from engine.spec import expand, parse_experiment
from tests.engine import plugin_fixture
from tests.numeric import row_central_diff
from tests.registered import plugins
from tests.results import plain_one

EXAMPLE = "optbench-example-plugin"


def test_the_example_plugin_is_installed_and_registered_from_its_distribution() -> None:
    (ep,) = [e for e in entry_points(group="optbench.optimizers") if e.name == "signum"]
    assert ep.dist is not None and ep.dist.name == EXAMPLE, "run `make install`"
    entry = OPTIMIZERS.get("signum")
    assert entry.origin == f"{EXAMPLE} {ep.dist.version}"
    assert entry.factory is ep.load()
    assert "signum" in plugins(OPTIMIZERS)
    assert OPTIMIZERS.get("adam").origin == BUILTIN


def test_plugin_entries_are_in_the_spec_union_and_the_catalog() -> None:
    spec = TypeAdapter(OptimizerSpec).validate_python({"name": "signum", "momentum": [0.0, 0.9]})
    assert type(spec) is OPTIMIZERS.get("signum").spec
    (listed,) = [e for e in catalog()["optimizers"] if e["name"] == "signum"]
    assert listed["origin"].startswith(EXAMPLE)
    assert listed["defaults"] == {
        "name": "signum",
        "lr": 1e-4,
        "momentum": 0.9,
        "weight_decay": 0.0,
    }
    assert {e["origin"] for e in catalog()["schedules"]} == {BUILTIN}


def hand_signum(
    grads: list[list[float]], x0: list[float], lr: float, beta: float, wd: float
) -> list[list[float]]:
    """Signum in plain Python floats, coordinate by coordinate."""
    x, m, out = list(x0), [0.0] * len(x0), []
    for g in grads:
        for i, gi in enumerate(g):
            m[i] = beta * m[i] + (1 - beta) * gi
            x[i] = x[i] - lr * wd * x[i] - lr * math.copysign(1.0, m[i]) * (m[i] != 0)
        out.append(list(x))
    return out


@pytest.mark.parametrize(("beta", "wd"), [(0.9, 0.0), (0.0, 0.0), (0.5, 0.1)])
def test_signum_steps_by_the_sign_of_its_momentum(beta: float, wd: float) -> None:
    rng = np.random.default_rng(1)
    grads = rng.standard_normal((200, 5))
    grads[:, 4] = 0.0  # m stays 0 there: no step
    x0 = rng.standard_normal(5)
    opt = build_optimizer({"name": "signum", "lr": 0.01, "momentum": beta, "weight_decay": wd})
    x = x0[None, :].copy()
    state = opt.init(x)
    expected_path = hand_signum(grads.tolist(), x0.tolist(), 0.01, beta, wd)
    for g, expected in zip(grads, expected_path, strict=True):
        opt.update_(g[None, :], state, x, opt.lr)
        np.testing.assert_allclose(x[0], expected, rtol=1e-13, atol=1e-15)
    assert x[0, 4] == pytest.approx(x0[4] * (1 - 0.01 * wd) ** 200, rel=1e-13)


def test_a_plugin_optimizer_runs_through_the_engine_like_a_builtin() -> None:
    (run,) = expand(
        parse_experiment(
            {
                "name": "plugin",
                "problems": [{"name": "quadratic", "dim": 4}],
                "optimizers": [{"name": "signum", "lr": 0.01}],
                "steps": 100,
            }
        )
    )
    result = plain_one(run)
    assert result["spec"]["optimizer"]["name"] == "signum"
    assert result["final_loss"] < result["losses"][0] and not result["diverged"]
    # every coordinate moves by exactly lr per update while the momentum keeps its sign
    assert result["update_norms"][0] == pytest.approx(0.01 * math.sqrt(4), rel=1e-12)


def test_a_partition_group_can_hold_a_plugin_optimizer() -> None:
    (run,) = expand(
        parse_experiment(
            {
                "name": "routed",
                "problems": [{"name": "mlp", "dataset": "iris", "hidden": [4]}],
                "optimizers": [
                    {
                        "name": "partition",
                        "groups": [
                            {"kinds": ["matrix"], "optimizer": {"name": "signum", "lr": 0.01}},
                            {"optimizer": {"name": "adam", "lr": 0.01}},
                        ],
                    }
                ],
                "steps": 30,
            }
        )
    )
    assert run.optimizer.groups[0].optimizer.name == "signum"
    result = plain_one(run)
    assert result["final_loss"] < result["losses"][0] and not result["diverged"]


def test_the_plugin_problem_is_registered_with_a_correct_gradient() -> None:
    assert PROBLEMS.get("booth").origin.startswith(EXAMPLE)
    problem = build_problem(TypeAdapter(ProblemSpec).validate_python({"name": "booth"}), [0, 1])
    x = problem.init_params()
    assert np.abs(x).max() <= 10.0 and x.shape == (2, 2)
    _, grad = problem.loss_and_grad(x, 0)
    np.testing.assert_allclose(grad, row_central_diff(problem.loss, x), rtol=1e-8, atol=1e-8)
    assert problem.loss(np.array([[1.0, 3.0]] * 2)).tolist() == [0.0, 0.0]


def fixture_ep(name: str, value: str) -> EntryPoint:
    return EntryPoint(name=name, value=value, group="optbench.gadgets")


def test_the_loader_records_the_origin_of_what_it_loads() -> None:
    registry = plugin_fixture.GADGETS
    assert load_plugins(registry, [fixture_ep("good", "tests.engine.plugin_fixture:good")]) == [
        "good"
    ]
    assert registry.get("good").origin == "tests.engine.plugin_fixture:good"
    again = fixture_ep("good", "tests.engine.plugin_fixture:good")
    assert load_plugins(registry, [again]) == ["good"]  # importing twice changes nothing
    taken = fixture_ep("good", "tests.engine.plugin_fixture:unregistered")
    with pytest.raises(PluginError, match=r"'good' is already provided by tests\.engine"):
        load_plugins(registry, [taken])


@pytest.mark.parametrize(
    ("ep", "message"),
    [
        (
            fixture_ep("unregistered", "tests.engine.plugin_fixture:unregistered"),
            "did not register a gadget named 'unregistered'",
        ),
        (
            fixture_ep("gone", "tests.engine.no_such_module:gone"),
            r"loading gadget 'gone' .* failed",
        ),
        (
            fixture_ep("missing", "tests.engine.plugin_fixture:missing"),
            r"loading gadget 'missing' .* failed",
        ),
    ],
)
def test_the_loader_refuses_a_plugin_that_does_not_provide_its_entry(
    ep: EntryPoint, message: str
) -> None:
    with pytest.raises(PluginError, match=message):
        load_plugins(plugin_fixture.GADGETS, [ep])
