"""``optbench`` against a live service (uvicorn + a Celery worker), checked against the engine.

The engine is exact and deterministic, so what the service computed must equal, to the last
digit, what ``engine.runner`` computes for the same spec in this process.
"""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from scipy import stats

from client.commands import main
from engine.runner import run_batch
from engine.spec import expand, parse_experiment
from tests.client.live import LiveService

pytestmark = pytest.mark.e2e

SPEC: dict[str, Any] = {
    "name": "cli-e2e",
    "problems": [{"name": "rosenbrock", "dim": 2}],
    "optimizers": [{"name": "adam", "lr": [0.01, 0.05]}, {"name": "sgd", "lr": 0.001}],
    "seeds": [0, 1, 2, 3, 4, 5],
    "steps": 150,
    "target_loss": 0.5,
}


def cli(argv: list[str]) -> tuple[int, str]:
    out = io.StringIO()
    with pytest.raises(SystemExit) as exc:
        main(argv, out=out)
    return int(exc.value.code or 0), out.getvalue()


@pytest.fixture(scope="module")
def local_results() -> dict[str, dict[str, Any]]:
    return {r["run_id"]: r for r in run_batch(expand(parse_experiment(SPEC)))}


@pytest.fixture(scope="module")
def finished(
    live_service: LiveService, tmp_path_factory: pytest.TempPathFactory
) -> tuple[str, Path, Path]:
    """The spec submitted with ``--wait``: (experiment id, spec file, results file)."""
    tmp = tmp_path_factory.mktemp("cli")
    spec = tmp / "spec.json"
    spec.write_text(json.dumps(SPEC))
    results = tmp / "results.json"
    code, out = cli(
        ["--url", live_service.url, "submit", str(spec), "--wait", "--quiet", "--out", str(results)]
    )
    assert code == 0, out + live_service.logs()
    match = re.search(r"experiment ([0-9a-f]{24}): 18 runs", out)
    assert match, out
    assert f"{match.group(1)}: succeeded 100% (18 succeeded)" in out
    return match.group(1), spec, results


def test_results_equal_the_engine_to_the_last_digit(
    live_service: LiveService,
    finished: tuple[str, Path, Path],
    local_results: dict[str, dict[str, Any]],
) -> None:
    experiment_id, _, results_file = finished
    code, out = cli(["--url", live_service.url, "results", experiment_id, "--format", "json"])
    assert code == 0
    doc = json.loads(out)
    assert doc == json.loads(results_file.read_text())
    assert len(doc["runs"]) == 18
    for row in doc["runs"]:
        local = local_results[row["spec_hash"]]
        for key in ("final_loss", "best_loss", "steps_to_target", "diverged", "steps_done"):
            assert row[key] == local[key], key
        assert row["optimizer.lr"] == local["spec"]["optimizer"]["lr"]
        assert row["status"] == "succeeded"


def test_results_as_csv_and_table(
    live_service: LiveService, finished: tuple[str, Path, Path]
) -> None:
    experiment_id = finished[0]
    code, out = cli(["--url", live_service.url, "results", experiment_id, "--format", "csv"])
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert len(rows) == 18 and {r["solver"] for r in rows} == {
        "adam(lr=0.01) / constant",
        "adam(lr=0.05) / constant",
        "sgd / constant",
    }
    code, out = cli(["--url", live_service.url, "results", experiment_id])
    lines = out.splitlines()
    assert code == 0 and len(lines) == 20
    assert lines[0].split() == [
        "problem",
        "solver",
        "seed",
        "status",
        "final_loss",
        "best_loss",
        "steps_to_target",
        "diverged",
        "wall_time_s",
    ]


def test_status(live_service: LiveService, finished: tuple[str, Path, Path]) -> None:
    code, out = cli(["--url", live_service.url, "status", finished[0]])
    assert code == 0
    assert out.splitlines()[:3] == [
        f"cli-e2e ({finished[0]})",
        "  status:   succeeded 100% (18 succeeded)",
        "  runs:     18",
    ]


def test_compare_reports_wilcoxon_and_holm(
    live_service: LiveService,
    finished: tuple[str, Path, Path],
    local_results: dict[str, dict[str, Any]],
) -> None:
    experiment_id = finished[0]
    code, out = cli(
        [
            "--url",
            live_service.url,
            "compare",
            experiment_id,
            "--baseline",
            "sgd",
            "--format",
            "json",
        ]
    )
    assert code == 0
    (comp,) = json.loads(out)
    assert comp["baseline"] == "sgd / constant"
    finals: dict[float | None, list[float]] = {}
    for r in sorted(local_results.values(), key=lambda r: r["spec"]["seed"]):
        lr = r["spec"]["optimizer"]["lr"] if r["spec"]["optimizer"]["name"] == "adam" else None
        finals.setdefault(lr, []).append(r["final_loss"])
    raw = []
    for pair, lr in zip(comp["pairs"], (0.01, 0.05), strict=True):
        diffs = [a - b for a, b in zip(finals[lr], finals[None], strict=True)]
        expected = stats.wilcoxon(diffs)
        assert pair["p_value"] == pytest.approx(float(expected.pvalue))
        raw.append(float(expected.pvalue))
    low, high = sorted(raw)
    assert sorted(p["p_holm"] for p in comp["pairs"]) == pytest.approx(
        sorted([min(1, 2 * low), max(min(1, 2 * low), high)])
    )
    code, table = cli(["--url", live_service.url, "compare", experiment_id, "--baseline", "sgd"])
    assert code == 0
    assert table.startswith("rosenbrock — baseline sgd / constant, metric final_loss")
    assert "baseline" in table.splitlines()[3] and "Wilcoxon signed-rank" in table


def test_gate_against_the_service(
    live_service: LiveService, finished: tuple[str, Path, Path], tmp_path: Path
) -> None:
    _, spec, results = finished
    junit = tmp_path / "gate.xml"
    code, out = cli(
        ["--url", live_service.url, "gate", str(spec), "--baseline", str(results), "--quiet"]
    )
    assert code == 0, out
    assert out.rstrip().endswith("PASSED: no regression in 3 groups")
    doc = json.loads(results.read_text())
    for row in doc["runs"]:
        if row["solver"] == "adam(lr=0.05) / constant":
            row["final_loss"] -= 5.0  # the baseline was 5 lower on every seed
    doctored = tmp_path / "doctored.json"
    doctored.write_text(json.dumps(doc))
    code, out = cli(
        [
            "--url",
            live_service.url,
            "gate",
            str(spec),
            "--baseline",
            str(doctored),
            "--max-regression",
            "10%",
            "--junit",
            str(junit),
            "--quiet",
        ]
    )
    assert code == 1, out
    fail = [line for line in out.splitlines() if line.startswith("FAIL ")]
    assert len(fail) == 1 and "adam(lr=0.05) / constant" in fail[0]
    assert out.rstrip().endswith("FAILED: 1 of 3 groups regressed")
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None and suite.attrib["failures"] == "1"


def test_bad_input_is_exit_2_without_a_traceback(
    live_service: LiveService,
    finished: tuple[str, Path, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    url = live_service.url
    code, _ = cli(["--url", url, "status", "0123456789abcdef01234567"])
    assert code == 2
    assert capsys.readouterr().err == (
        f"optbench: error: no experiment '0123456789abcdef01234567' at {url}\n"
    )
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({**SPEC, "optimizers": [{"name": "adam", "lr": -1}]}))
    code, _ = cli(["--url", url, "submit", str(bad)])
    err = capsys.readouterr().err
    assert code == 2 and "optimizers[0].lr" in err and "Traceback" not in err
    code, _ = cli(["--url", url, "compare", finished[0], "--baseline", "rmsprop"])
    err = capsys.readouterr().err
    assert code == 2 and "no solver matches 'rmsprop'; known: adam(lr=0.01)" in err
    assert err.count("no solver matches") == 1  # the detail, not repeated from the field errors


def test_results_filtered_by_names(
    live_service: LiveService, finished: tuple[str, Path, Path]
) -> None:
    base = ["--url", live_service.url, "results", finished[0]]
    code, out = cli([*base, "--format", "json", "--optimizer", "adam"])
    rows = json.loads(out)["runs"]
    assert code == 0 and len(rows) == 12 and {r["optimizer.name"] for r in rows} == {"adam"}
    code, out = cli([*base, "--format", "csv", "--optimizer", "sgd", "--problem", "rosenbrock"])
    table = list(csv.DictReader(io.StringIO(out)))
    assert code == 0 and len(table) == 6 and {r["solver"] for r in table} == {"sgd / constant"}
    code, out = cli([*base, "--format", "json", "--schedule", "cosine"])
    assert code == 0 and json.loads(out)["runs"] == []


def test_output_to_a_closed_pipe_ends_quietly(
    live_service: LiveService, finished: tuple[str, Path, Path]
) -> None:
    """``true`` exits before the client has its answer, so the output meets a closed pipe."""
    script = Path(sys.executable).with_name("optbench")
    proc = subprocess.run(
        f"set -o pipefail; '{script}' results {finished[0]} --format json | true",
        shell=True,
        executable="/bin/bash",
        env={"OPTBENCH_URL": live_service.url, "PATH": str(script.parent) + ":/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0 and proc.stderr == ""


def test_the_console_script(live_service: LiveService, finished: tuple[str, Path, Path]) -> None:
    """Without OPTBENCH_URL it reads make run's OPTBENCH_HOST and OPTBENCH_PORT."""
    script = Path(sys.executable).with_name("optbench")
    host, port = live_service.url.removeprefix("http://").rsplit(":", 1)
    proc = subprocess.run(
        [str(script), "status", finished[0]],
        env={"OPTBENCH_HOST": host, "OPTBENCH_PORT": port, "PATH": str(script.parent)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert "succeeded 100%" in proc.stdout
