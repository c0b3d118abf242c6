"""Experiment specs: expansion into runs, stable run ids, precise validation errors."""

from __future__ import annotations

import itertools
import math

import pytest
from pydantic import ValidationError

from engine.optimizers import OPTIMIZERS
from engine.problems import PROBLEMS
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
    # digits: 1,438 training examples in batches of 64 make a 22-update epoch; 1,000 updates at
    # 22 would evaluate at 990 and 1,000, at 23 at 989 and 1,000: 24 ends at 984 and 1,000
    assert by_problem == {"rosenbrock": 1, "mlp": 24}
    doc = dict(ISSUE_EXAMPLE, eval_every=25)
    assert {r.problem.name: r.eval_every for r in expand(parse_experiment(doc))} == {
        "rosenbrock": 1,
        "mlp": 25,
    }
    # a long budget is evaluated at most 50 times, beyond one epoch
    doc = dict(ISSUE_EXAMPLE, steps=10_000)
    assert {r.problem.name: r.eval_every for r in expand(parse_experiment(doc))}["mlp"] == 200


def test_default_eval_every_is_the_first_cadence_that_ends_cleanly() -> None:
    """Against the rule read literally: the smallest interval of at least an epoch (and of at
    least a fiftieth of the budget) after whose last multiple below the budget the final update
    is at least half an interval away, or which divides the budget."""

    def clean(steps: int, every: int) -> bool:
        last = max((k * every for k in range(1, steps + 1) if k * every < steps), default=0)
        return last == 0 or steps % every == 0 or 2 * (steps - last) >= every

    for steps in range(1, 400):
        for epoch in (1, 2, 3, 7, 22, 45, 150, 500):
            every = default_eval_every(steps, epoch)
            smallest = max(epoch, math.ceil(steps / 50))
            assert every == next(e for e in itertools.count(smallest) if clean(steps, e))
    assert default_eval_every(10_000, 22) == 200  # fifty evaluations, beyond one epoch


def test_the_default_cadence_has_no_evaluation_just_before_the_final_one() -> None:
    """200 updates of 22-update epochs: 22 would evaluate at 198 and again at 200."""
    doc = {
        "name": "mlp-digits",
        "problems": [{"name": "mlp", "dataset": "digits", "hidden": [64], "batch_size": 64}],
        "optimizers": [{"name": "sgd", "lr": 0.1, "momentum": 0.9}],
        "steps": 200,
    }
    (run,) = expand(parse_experiment(doc))
    assert run.eval_every == 23  # evaluations at 0, 23, …, 184 and 200: ten, 16 updates apart last


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
