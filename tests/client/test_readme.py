"""The README's curl walk-through runs as written against a live service (bash, curl, jq)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import pytest

from tests.client.live import LiveService
from tests.conftest import ROOT

pytestmark = pytest.mark.e2e


def walk_through() -> str:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## A walk-through with curl", 1)[1]
    match = re.search(r"```sh\n(.*?)```", section, re.S)
    assert match, "the walk-through has no sh block"
    return match.group(1)


def test_the_walk_through_runs_as_written(live_service: LiveService) -> None:
    missing = [tool for tool in ("bash", "curl", "jq") if shutil.which(tool) is None]
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"the walk-through needs {missing} (apt-get install)", pytrace=False)
        pytest.skip(f"{missing} not installed")
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", walk_through()],
        cwd=ROOT,
        env={**os.environ, "OPTBENCH_URL": live_service.url},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr + live_service.logs()
    lines = result.stdout.splitlines()
    experiment = re.fullmatch(r"experiment ([0-9a-f]{24})", lines[0])
    assert experiment, lines[0]
    assert lines[1] == "70"  # seed-rules.json expands to 70 runs
    assert lines[2] in ("304", "200")  # 200 when a run progressed between the two polls
    best = [line.split() for line in lines[3:6]]
    losses = [float(loss) for _, _, loss in best]
    assert losses == sorted(losses) and all(re.fullmatch(r"[0-9a-f]{24}", i) for i, _, _ in best)
    assert 0 < int(lines[6]) <= 200
    assert lines[7] == "500"
    assert lines[-1] == "204"
    assert '"tags":["walk-through"]' in lines[-2]
