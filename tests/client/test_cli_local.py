"""``optbench submit --local`` and ``gate --local``: the engine in-process, no service."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from client.commands import main
from engine.runner import run_batch
from engine.spec import expand, parse_experiment

ROOT = Path(__file__).resolve().parents[2]
SPEC: dict[str, Any] = {
    "name": "cli-local",
    "problems": [{"name": "quadratic", "dim": 5, "condition_number": 20.0}],
    "optimizers": [{"name": "sgd", "lr": [0.02, 0.05], "momentum": 0.9}],
    "seeds": [0, 1, 2],
    "steps": 80,
    "target_loss": 1e-3,
}


def cli(argv: list[str]) -> tuple[int, str]:
    out = io.StringIO()
    with pytest.raises(SystemExit) as exc:
        main(argv, out=out)
    return int(exc.value.code or 0), out.getvalue()


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps(SPEC))
    base = tmp_path / "baseline.json"
    code, out = cli(["submit", str(spec), "--local", "--quiet", "--out", str(base)])
    assert code == 0
    assert len(out.splitlines()) == 2 + 6
    return spec, base


def test_local_results_are_the_engines(files: tuple[Path, Path]) -> None:
    doc = json.loads(files[1].read_text())
    expected = {r["run_id"]: r for r in run_batch(expand(parse_experiment(SPEC)))}
    assert len(doc["runs"]) == 6
    for row in doc["runs"]:
        assert row["final_loss"] == expected[row["run_id"]]["final_loss"]
        assert row["optimizer.momentum"] == 0.9


def test_gate_local_passes_against_its_own_results(
    files: tuple[Path, Path], tmp_path: Path
) -> None:
    spec, base = files
    saved = tmp_path / "current.json"
    code, out = cli(
        [
            "gate",
            str(spec),
            "--baseline",
            str(base),
            "--local",
            "--quiet",
            "--save-results",
            str(saved),
        ]
    )
    assert code == 0, out
    assert out.rstrip().endswith("PASSED: no regression in 2 groups")

    CLOCK = ("wall_time_s", "batch_wall_time_s")

    def numbers(doc: dict[str, Any]) -> list[dict[str, Any]]:
        return [{k: v for k, v in r.items() if k not in CLOCK} for r in doc["runs"]]

    assert numbers(json.loads(saved.read_text())) == numbers(json.loads(base.read_text()))


def test_gate_local_fails_on_a_regression_and_writes_junit(
    files: tuple[Path, Path], tmp_path: Path
) -> None:
    spec, base = files
    doc = json.loads(base.read_text())
    for row in doc["runs"]:
        if row["optimizer.lr"] == 0.02:
            row["auc_log_subopt"] -= 1.0  # the baseline's mean log-suboptimality a decade lower
    doctored = tmp_path / "doctored.json"
    doctored.write_text(json.dumps(doc))
    junit = tmp_path / "junit.xml"
    code, out = cli(
        [
            "gate",
            str(spec),
            "--baseline",
            str(doctored),
            "--metric",
            "auc_log_subopt",
            "--local",
            "--quiet",
            "--junit",
            str(junit),
        ]
    )
    assert code == 1
    (fail,) = [line for line in out.splitlines() if line.startswith("FAIL ")]
    assert "sgd(lr=0.02) / constant" in fail and "REGRESSION: auc_log_subopt worse by 1" in fail
    cases = ET.parse(junit).getroot().iter("testcase")
    assert sorted((c.attrib["name"], c.find("failure") is not None) for c in cases) == [
        ("sgd(lr=0.02) / constant", True),
        ("sgd(lr=0.05) / constant", False),
    ]


def test_gate_refuses_changed_hyperparameters_before_running_anything(
    files: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A spec whose groups differ from the baseline's (a changed lr, steps) is an error before
    any run: exit 2, nothing computed, nothing saved — never a PASSED over zero comparisons."""
    base = files[1]
    saved = tmp_path / "saved.json"
    changed = {**SPEC, "optimizers": [{"name": "sgd", "lr": [0.03, 0.05], "momentum": 0.9}]}
    for spec in (changed, {**SPEC, "steps": 81}):
        other = tmp_path / "other.json"
        other.write_text(json.dumps(spec))
        argv = ["gate", str(other), "--baseline", str(base), "--local", "--quiet"]
        code, out = cli([*argv, "--save-results", str(saved)])
        assert code == 2 and out == ""
        assert not saved.exists()  # nothing ran
        err = capsys.readouterr().err
        assert "cannot be gated against" in err and "--allow-mismatch" in err
    assert "steps differs: 81 now, 80 in the baseline" in err
    other.write_text(json.dumps(changed))
    code, _ = cli(["gate", str(other), "--baseline", str(base), "--local", "--quiet"])
    err = capsys.readouterr().err
    assert "only now: quadratic / sgd(lr=0.03) / constant" in err
    assert "only in the baseline: quadratic / sgd(lr=0.02) / constant" in err
    # allowed explicitly: the groups both sides have are compared (here sgd(lr=0.05))
    code, out = cli([*argv[:-1], "--allow-mismatch", "--quiet"])
    assert code == 0 and "NEW" in out and "MISSING" in out


def test_invalid_spec_is_one_readable_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({**SPEC, "problems": [{"name": "quadratic", "dimm": 3}]}))
    code, _ = cli(["submit", str(spec), "--local"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith(f"optbench: error: {spec}: invalid experiment spec — problems[0].dimm")
    assert err.count("\n") == 1


def test_the_github_actions_example_gate_passes() -> None:
    """The committed example (spec + baseline) that examples/ci/github-actions.yml runs."""
    ci = ROOT / "examples" / "ci"
    workflow = (ci / "github-actions.yml").read_text()
    assert "optbench gate examples/ci/gate-spec.json --baseline examples/ci/baseline.json" in (
        " ".join(workflow.split())
    )
    code, out = cli(
        [
            "gate",
            str(ci / "gate-spec.json"),
            "--baseline",
            str(ci / "baseline.json"),
            "--max-regression",
            "5%",
            "--local",
            "--quiet",
        ]
    )
    assert code == 0, out


def test_the_optbench_process_writes_what_the_command_does(
    files: tuple[Path, Path], tmp_path: Path
) -> None:
    """``python -m client`` (the console script's entry, :func:`client.run`): the process's
    table, results file and status are those of :func:`client.commands.main` in-process (times
    aside)."""
    spec, base = files
    clock = ("wall_time_s", "batch_wall_time_s")

    def numbers(path: Path) -> list[dict[str, Any]]:
        return [
            {k: v for k, v in r.items() if k not in clock}
            for r in json.loads(path.read_text())["runs"]
        ]

    def untimed(table: str) -> list[list[str]]:
        """The table's cells but the last column's (``wall_time_s``)."""
        return [line.split()[:-1] for line in table.splitlines()]

    out = tmp_path / "process.json"
    argv = ["submit", str(spec), "--local", "--quiet", "--out", str(out)]
    proc = subprocess.run(
        [sys.executable, "-m", "client", *argv], cwd=ROOT, capture_output=True, text=True
    )
    assert proc.returncode == 0 and proc.stderr == ""
    assert numbers(out) == numbers(base)
    table = cli(["submit", str(spec), "--local", "--quiet"])[1]
    assert untimed(proc.stdout) == untimed(table) and len(table.splitlines()) == 2 + 6
    proc = subprocess.run(
        [sys.executable, "-m", "client", "submit", str(tmp_path / "missing.json"), "--local"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2 and proc.stderr.startswith("optbench: error: ")
