"""End-to-end helpers: the engine CLI as the reference, and polling the API."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.conftest import ROOT, wait_for

#: Curves and metrics that must match the engine exactly (everything but wall-clock times).
EXACT_CURVES = ("eval_steps", "losses", "params_x", "params_y", "lrs", "grad_norms", "update_norms")
EXACT_METRICS = (
    "final_loss",
    "best_loss",
    "f_star",
    "suboptimality",
    "steps_to_target",
    "diverged",
    "divergence_step",
    "steps_done",
)


def engine_cli(spec: dict[str, Any], tmp_path: Path) -> dict[str, dict[str, Any]]:
    """``python -m engine run`` on the spec; results by engine run id."""
    spec_file = tmp_path / "spec.json"
    out_file = tmp_path / "out.json"
    spec_file.write_text(json.dumps(spec))
    subprocess.run(
        [sys.executable, "-m", "engine", "run", str(spec_file), "--out", str(out_file), "--quiet"],
        cwd=ROOT,
        check=True,
        timeout=120,
    )
    return {r["run_id"]: r for r in json.loads(out_file.read_text())["runs"]}


def assert_matches_engine(run: dict[str, Any], reference: dict[str, Any]) -> None:
    assert run["spec"] == reference["spec"]
    for key in EXACT_METRICS:
        assert run["metrics"][key] == reference[key], key
    for key in EXACT_CURVES:
        if key in reference:
            assert run["curves"][key] == reference[key], key
    assert run["curves"]["update_steps"] == list(range(len(reference["lrs"])))
    assert len(run["curves"]["wall_times"]) == len(reference["wall_times"])


def wait_finished(get: Any, experiment_id: str, timeout: float) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        body: dict[str, Any] = get(f"/v1/experiments/{experiment_id}").json()
        return body if body["finished_at"] is not None else None

    result: dict[str, Any] = wait_for(done, timeout, f"experiment {experiment_id}", interval=0.1)
    return result


def all_runs(get: Any, experiment_id: str) -> list[dict[str, Any]]:
    page: dict[str, Any] = get(f"/v1/experiments/{experiment_id}/runs?limit=1000").json()
    return list(page["items"])
