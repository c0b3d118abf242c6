"""Experiment specs: expansion into runs, stable run ids, precise validation errors."""

from __future__ import annotations

import itertools
import math
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from engine.optimizers import OPTIMIZERS
from engine.problems import PROBLEMS, build_problem
from engine.schedules import SCHEDULES
from engine.spec import (
    RunSpec,
    default_eval_every,
    describe_errors,
    expand,
    format_errors,
    only_rules_beyond_schema,
    parse_experiment,
)
from tests.results import plain_one

ISSUE_EXAMPLE = {
    "name": "adam-vs-momentum",
    "problems": [
        {"name": "rosenbrock", "dim": 2, "init": [-1.5, 2.0]},
        {"name": "mlp", "dataset": "digits", "hidden": [64], "batchnorm": True, "batch_size": 64},
    ],
    "optimizers": [
        {"name": "adam", "lr": [0.001, 0.01]},
        {"name": "sgd", "lr": 0.01, "momentum": 0.9},
    ],
    "schedules": [{"name": "constant"}, {"name": "step", "step_size": 100, "gamma": 0.5}],
    "seeds": [0, 1, 2],
    "steps": 1000,
    "target_loss": 1e-4,
}


def errors_of(doc: dict) -> dict[str, str]:
    with pytest.raises(ValidationError) as info:
        parse_experiment(doc)
    return {e["path"]: e["message"] for e in describe_errors(info.value)}


def test_issue_example_expands_to_the_full_product() -> None:
    spec = parse_experiment(ISSUE_EXAMPLE)
    runs = expand(spec)
    assert spec.count_runs() == 2 * 3 * 2 * 3 == len(runs)
    lrs = sorted({r.optimizer.lr for r in runs if r.optimizer.name == "adam"})
    assert lrs == [0.001, 0.01]
    assert {r.seed for r in runs} == {0, 1, 2}
    assert len({r.run_id for r in runs}) == len(runs)
    # order: problem, optimizer, schedule, seed
    assert [r.seed for r in runs[:3]] == [0, 1, 2]
    assert runs[0].problem.name == "rosenbrock" and runs[-1].problem.name == "mlp"


def test_eval_every_resolves_per_problem() -> None:
    runs = expand(parse_experiment(ISSUE_EXAMPLE))
    by_problem = {r.problem.name: r.eval_every for r in runs}
    # digits: 1,438 training examples in batches of 64, ⌈3 · 1438 / 128⌉ = 34; 1,000 updates at 34
    # would evaluate at 986 and 1,000: 35 ends at 980 and 1,000
    assert by_problem == {"rosenbrock": 1, "mlp": 35}
    doc = dict(ISSUE_EXAMPLE, eval_every=25)
    assert {r.problem.name: r.eval_every for r in expand(parse_experiment(doc))} == {
        "rosenbrock": 1,
        "mlp": 25,
    }
    # a long budget is evaluated at most 50 times, beyond the problem's least interval
    doc = dict(ISSUE_EXAMPLE, steps=10_000)
    assert {r.problem.name: r.eval_every for r in expand(parse_experiment(doc))}["mlp"] == 200


def ends_cleanly(steps: int, every: int) -> bool:
    """The final update is the last scheduled evaluation or at least half an interval after it."""
    last = max((k * every for k in range(1, steps + 1) if k * every < steps), default=0)
    return last == 0 or steps % every == 0 or 2 * (steps - last) >= every


def test_default_eval_every_is_the_first_cadence_that_ends_cleanly() -> None:
    """Against the rule read literally: the smallest interval of at least the problem's least
    (and of at least a fiftieth of the budget) after whose last multiple below the budget the
    final update is at least half an interval away, or which divides the budget."""
    for steps in range(1, 400):
        for least in (1, 2, 3, 7, 22, 34, 45, 150, 500):
            every = default_eval_every(steps, least)
            smallest = max(least, math.ceil(steps / 50))
            assert every == next(e for e in itertools.count(smallest) if ends_cleanly(steps, e))
    assert default_eval_every(10_000, 34) == 200  # fifty evaluations, beyond the least interval


@settings(max_examples=300, deadline=None)
@given(steps=st.integers(1, 20_000), least=st.integers(1, 3_000))
def test_default_eval_every_matches_a_search_over_every_interval(steps: int, least: int) -> None:
    every = default_eval_every(steps, least)
    smallest = max(least, math.ceil(steps / 50))
    assert every == next(e for e in itertools.count(smallest) if ends_cleanly(steps, e))


def evaluating_share(n_train: int, batch_size: int, every: int) -> Fraction:
    """Forward passes of single examples spent evaluating between two evaluations ``every``
    updates apart, an update counted as two forward passes of its batch."""
    return Fraction(n_train, n_train + 2 * every * batch_size)


MINIBATCH_PROBLEMS = [
    {"name": "mlp", "dataset": "digits", "hidden": [64], "batch_size": 64},
    {"name": "mlp", "dataset": "iris", "hidden": [4], "batch_size": 40},
    {"name": "mlp", "dataset": "digits", "batchnorm": True, "batch_size": 7, "test_fraction": 0.5},
    {"name": "mlp", "dataset": "moons", "n_samples": 300, "batch_size": 16},
    {"name": "logistic_regression", "dataset": "digits", "batch_size": 32},
    {"name": "linear_regression", "batch_size": 50},
    {"name": "conv_digits", "batch_size": 128},
]


@pytest.mark.parametrize("problem", MINIBATCH_PROBLEMS, ids=lambda p: p["name"])
def test_the_default_keeps_evaluating_to_a_quarter_of_the_arithmetic(
    problem: dict[str, Any],
) -> None:
    """Every minibatch learning problem: the least interval is the smallest, found by search, at
    which evaluating the training set the problem builds (its real size, not the spec's
    arithmetic) is at most a quarter of the forward passes; the default starts from it."""
    spec = parse_experiment(
        {"name": "q", "problems": [problem], "optimizers": [{"name": "sgd"}], "steps": 1}
    )
    (built,) = spec.problems
    n_train = len(build_problem(built, [0], "float64").data.X_train)
    batch = problem["batch_size"]
    least = next(
        e for e in itertools.count(1) if evaluating_share(n_train, batch, e) <= Fraction(1, 4)
    )
    assert built.least_eval_every() == least
    for steps in (1, least + 1, 3 * least - 1, 200, 1000, 60 * least):
        (run,) = expand(parse_experiment({**spec.model_dump(mode="json"), "steps": steps}))
        assert run.eval_every == default_eval_every(steps, least)


def test_problems_without_a_data_set_keep_their_own_default() -> None:
    """The noisy quadratic model evaluates its loss in closed form: at most 50 times, no floor."""
    doc = {
        "name": "n",
        "problems": [{"name": "nqm", "batch_size": 8}],
        "optimizers": [{"name": "sgd"}],
    }
    for steps, every in ((10, 1), (200, 4), (1000, 20)):
        (run,) = expand(parse_experiment({**doc, "steps": steps}))
        assert run.eval_every == every


def test_the_default_cadence_of_the_mlp_sweep_evaluates_seven_times() -> None:
    """200 updates of batches of 64 on digits (1,438 training examples): ⌈3 · 1438 / 128⌉ = 34,
    evaluations at 0, 34, …, 170 and 200 (30 updates apart last), as the results list."""
    doc = {
        "name": "mlp-digits",
        "problems": [{"name": "mlp", "dataset": "digits", "hidden": [64], "batch_size": 64}],
        "optimizers": [{"name": "sgd", "lr": 0.1, "momentum": 0.9}],
        "steps": 200,
    }
    (run,) = expand(parse_experiment(doc))
    assert run.eval_every == 34
    assert plain_one(run)["eval_steps"] == [0, 34, 68, 102, 136, 170, 200]


def test_changing_the_default_cadence_leaves_stored_run_ids_valid() -> None:
    """The default is resolved into the run before it is hashed: a run stored at the previous
    default (23 for this sweep) keeps its id, and a default-cadence run now has a new one."""
    doc = {
        "name": "mlp-digits",
        "problems": [{"name": "mlp", "dataset": "digits", "hidden": [64], "batch_size": 64}],
        "optimizers": [{"name": "sgd", "lr": 0.1, "momentum": 0.9}],
        "steps": 200,
    }
    (stored,) = expand(parse_experiment({**doc, "eval_every": 23}))
    assert stored.run_id == "ea91ff2be8062927"  # its id before the default changed
    assert RunSpec.model_validate(stored.model_dump(mode="json")).run_id == stored.run_id
    (now,) = expand(parse_experiment(doc))
    assert now.run_id != stored.run_id
    assert (
        now.run_id
        == RunSpec.model_validate({**stored.model_dump(mode="json"), "eval_every": 34}).run_id
    )


def test_grids_multiply_and_tuples_are_values() -> None:
    doc = {
        "name": "g",
        "problems": [{"name": "quadratic", "dim": [2, 5], "condition_number": [10.0, 100.0]}],
        "optimizers": [{"name": "adam", "betas": [[0.9, 0.999], [0.5, 0.9]], "lr": [0.1, 0.2]}],
        "steps": 3,
    }
    runs = expand(parse_experiment(doc))
    assert len(runs) == 2 * 2 * 2 * 2
    assert {tuple(r.optimizer.betas) for r in runs} == {(0.9, 0.999), (0.5, 0.9)}
    single = expand(parse_experiment(dict(doc, optimizers=[{"name": "adam", "betas": [0.5, 0.9]}])))
    assert len(single) == 4 and tuple(single[0].optimizer.betas) == (0.5, 0.9)


def test_grids_inside_nested_schedules_expand() -> None:
    doc = {
        "name": "w",
        "problems": [{"name": "beale"}],
        "optimizers": [{"name": "sgd", "lr": 0.01}],
        "schedules": [
            {
                "name": "warmup",
                "warmup_steps": [5, 10],
                "then": {"name": "step", "step_size": [10, 20, 30]},
            }
        ],
        "steps": 3,
    }
    spec = parse_experiment(doc)
    runs = expand(spec)
    assert spec.count_runs() == 6 == len(runs)
    assert {(r.schedule.warmup_steps, r.schedule.then.step_size) for r in runs} == {
        (w, s) for w in (5, 10) for s in (10, 20, 30)
    }


def test_identical_runs_collapse_and_ids_are_content_hashes() -> None:
    doc = {
        "name": "d",
        "problems": [{"name": "beale"}],
        "optimizers": [{"name": "adam"}, {"name": "adam", "lr": 1e-3}],
        "seeds": [3, 3],
        "steps": 10,
    }
    spec = parse_experiment(doc)
    assert spec.count_runs() == 4
    runs = expand(spec)
    assert len(runs) == 1
    again = RunSpec.model_validate(runs[0].model_dump(mode="json"))
    assert again.run_id == runs[0].run_id
    other = expand(parse_experiment(dict(doc, seeds=[4])))[0]
    assert other.run_id != runs[0].run_id
    assert len(runs[0].run_id) == 16 and int(runs[0].run_id, 16) >= 0


def test_resolved_spec_carries_every_default() -> None:
    run = expand(
        parse_experiment(
            {
                "name": "x",
                "problems": [{"name": "beale"}],
                "optimizers": [{"name": "adam"}],
                "steps": 5,
            }
        )
    )[0]
    dumped = run.model_dump(mode="json")
    assert dumped["optimizer"] == {
        "name": "adam",
        "lr": 0.001,
        "betas": [0.9, 0.999],
        "eps": 1e-8,
        "weight_decay": 0.0,
        "amsgrad": False,
    }
    assert dumped["schedule"] == {"name": "constant"}
    assert dumped["seed"] == 0 and dumped["dtype"] == "float64"


def test_unknown_names_list_the_allowed_ones() -> None:
    errs = errors_of(dict(ISSUE_EXAMPLE, optimizers=[{"name": "adamm"}]))
    ((path, message),) = errs.items()
    assert path == "optimizers[0]"
    assert "'adamm'" in message
    for name in OPTIMIZERS.names():
        assert name in message
    errs = errors_of(dict(ISSUE_EXAMPLE, problems=[{"name": "nope"}]))
    assert all(n in errs["problems[0]"] for n in PROBLEMS.names())
    errs = errors_of(dict(ISSUE_EXAMPLE, schedules=[{"name": "nope"}]))
    assert all(n in errs["schedules[0]"] for n in SCHEDULES.names())


def test_field_errors_name_the_exact_path() -> None:
    errs = errors_of(dict(ISSUE_EXAMPLE, optimizers=[{"name": "adam", "lr": -1}]))
    assert list(errs) == ["optimizers[0].lr"]
    assert "greater than 0" in errs["optimizers[0].lr"] and "'adam'" in errs["optimizers[0].lr"]
    errs = errors_of(dict(ISSUE_EXAMPLE, optimizers=[{"name": "sgd", "lrr": 0.1}]))
    assert errs == {"optimizers[0].lrr": "unknown field for 'sgd'"}
    errs = errors_of(dict(ISSUE_EXAMPLE, steps=0, colour="red"))
    assert set(errs) == {"steps", "colour"}
    errs = errors_of({k: v for k, v in ISSUE_EXAMPLE.items() if k != "problems"})
    assert errs == {"problems": "Field required"}
    errs = errors_of(dict(ISSUE_EXAMPLE, seeds=[-1]))
    assert list(errs) == ["seeds[0]"]


def test_format_errors_is_one_paragraph() -> None:
    with pytest.raises(ValidationError) as info:
        parse_experiment(
            dict(ISSUE_EXAMPLE, steps=-5, optimizers=[{"name": "sgd", "momentum": -1}])
        )
    text = format_errors(info.value)
    assert "\n" not in text
    assert "steps:" in text and "optimizers[0].momentum:" in text


RPROP_OUT_OF_ORDER = {"name": "rprop", "step_sizes": [1.0, 0.5]}


@pytest.mark.parametrize(
    ("change", "beyond"),
    [
        ({"problems": [{"name": "rosenbrock", "dim": 3, "init": [1.0, 2.0]}]}, True),
        ({"optimizers": [RPROP_OUT_OF_ORDER]}, True),
        # a sweepable value: the one reading breaks a rule, the other (a grid) the schema
        ({"schedules": [{"name": "multistep", "milestones": [5, 3]}]}, True),
        # a tuple whose item broke a rule is also "too short" to pydantic
        (
            {"optimizers": [{"name": "partition", "groups": [{"optimizer": RPROP_OUT_OF_ORDER}]}]},
            True,
        ),
        ({"steps": 0}, False),
        ({"optimizers": [{"name": "partition", "groups": []}]}, False),
        ({"optimizers": [RPROP_OUT_OF_ORDER, {"name": "adam", "lr": -1.0}]}, False),
    ],
)
def test_only_rules_beyond_schema_tells_custom_rules_from_schema_errors(
    change: dict[str, object], beyond: bool
) -> None:
    spec = {
        "name": "x",
        "problems": [{"name": "rosenbrock"}],
        "optimizers": [{"name": "adam"}],
        "steps": 10,
        **change,
    }
    with pytest.raises(ValidationError) as exc:
        parse_experiment(spec)
    assert only_rules_beyond_schema(exc.value) is beyond


def test_sweep_fields_of_one_type_share_the_schema_pydantic_generates() -> None:
    """Every ``Sweep[T]`` field's schema equals pydantic's own for ``T`` or a non-empty list of
    ``T`` (the marker hands later fields of a type a copy of the first one's), and a swept model
    type, whose schema refers to its definition, still validates in two models."""
    from typing import Annotated, Union

    from pydantic import Field, TypeAdapter

    from engine.optimizers.base import Positive
    from engine.specbase import SpecModel, Sweep

    def field_schema(model: type[SpecModel], name: str) -> Any:
        with_default = model.__pydantic_core_schema__["schema"]["fields"][name]["schema"]
        return with_default["schema"]

    class First(SpecModel):
        lr: Sweep[Positive] = 1e-3

    class Second(SpecModel):
        eps: Sweep[Positive] = 1e-8

    grid = Annotated[list[Positive], Field(min_length=1)]  # type: ignore[valid-type]
    want = TypeAdapter(Union[Positive, grid]).core_schema  # noqa: UP007
    assert field_schema(First, "lr") == field_schema(Second, "eps") == want
    assert Second(eps=[1e-8, 1e-6]).eps == [1e-8, 1e-6]
    with pytest.raises(ValidationError):
        Second(eps=[])

    class Inner(SpecModel):
        x: int = 1

    class A(SpecModel):
        a: Sweep[Inner]

    class B(SpecModel):
        b: Sweep[Inner]

    assert A(a=[{"x": 2}]).a == [Inner(x=2)] and B(b={"x": 3}).b == Inner(x=3)
