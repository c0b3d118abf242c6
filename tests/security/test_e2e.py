"""Tokens, scopes, owners and quotas end to end: ``optbench-admin`` makes the tokens, the
``optbench`` client talks to a real uvicorn + Celery worker on the machine's Redis."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from client.commands import main
from tests.client.live import LiveService, live_settings, running_service
from tests.conftest import ROOT, Broker, settings_env, wait_for

pytestmark = pytest.mark.e2e

SPEC: dict[str, Any] = {
    "name": "auth-e2e",
    "problems": [{"name": "rosenbrock", "dim": 2}],
    "optimizers": [{"name": "adam", "lr": 0.01}],
    "seeds": [0, 1],
    "steps": 100,
}
#: Room for exactly three experiments of SPEC a day.
STEPS_PER_DAY = 3 * 2 * 100


@pytest.fixture(scope="module")
def service(
    tmp_path_factory: pytest.TempPathFactory, redis_broker: Broker
) -> Iterator[LiveService]:
    settings = live_settings(
        tmp_path_factory.mktemp("secured"),
        redis_broker,
        broker_key_prefix=f"{redis_broker.prefix}{uuid.uuid4().hex[:6]}:",
        auth_required=True,
        max_run_steps_per_day=STEPS_PER_DAY,
    )
    with running_service(settings) as live:
        yield live


def admin(service: LiveService, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "api.admin", "token", *args],
        cwd=ROOT,
        env=settings_env(service.settings),
        capture_output=True,
        text=True,
        timeout=60,
    )


def new_token(service: LiveService, name: str, scope: str) -> str:
    done = admin(service, "create", name, "--scope", scope)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


def cli(
    service: LiveService,
    argv: list[str],
    capsys: pytest.CaptureFixture[str],
    token: str | None,
) -> tuple[int, str, str]:
    capsys.readouterr()
    out = io.StringIO()
    args = ["--url", service.url, *(["--token", token] if token else []), *argv]
    with pytest.raises(SystemExit) as exc:
        main(args, out=out)
    return int(exc.value.code or 0), out.getvalue(), capsys.readouterr().err


def test_tokens_scopes_owners_and_quotas_through_the_client(
    service: LiveService, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    alice = new_token(service, "alice", "write")
    alice_reader = new_token(service, "alice", "read")
    bob = new_token(service, "bob", "write")
    root = new_token(service, "root", "admin")
    assert len({alice, alice_reader, bob, root}) == 4

    listing = admin(service, "list")
    assert listing.returncode == 0
    assert "alice" in listing.stdout and "admin" in listing.stdout
    assert not any(t in listing.stdout for t in (alice, bob, root))

    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps(SPEC))

    code, _, err = cli(service, ["submit", str(spec)], capsys, None)
    assert code == 2 and "OPTBENCH_TOKEN" in err and "needs a token" in err
    code, _, err = cli(service, ["submit", str(spec)], capsys, "optb_wrong")
    assert code == 2 and "not valid" in err
    code, _, err = cli(service, ["submit", str(spec)], capsys, alice_reader)
    assert code == 2 and "'read'" in err

    code, _, err = cli(service, ["submit", str(spec), "--wait", "--quiet"], capsys, alice)
    assert code == 0, err
    experiments = httpx.get(
        f"{service.url}/v1/experiments", headers={"Authorization": f"Bearer {alice}"}
    ).json()["items"]
    assert [e["status"] for e in experiments] == ["succeeded"]
    experiment_id = experiments[0]["id"]

    # The reader of the same owner sees it; bob does not; admin does.
    assert cli(service, ["status", experiment_id], capsys, alice_reader)[0] == 0
    code, _, err = cli(service, ["status", experiment_id], capsys, bob)
    assert code == 2 and "no experiment" in err
    assert cli(service, ["results", experiment_id, "--format", "csv"], capsys, bob)[0] == 2
    code, out, _ = cli(service, ["results", experiment_id, "--format", "json"], capsys, root)
    assert code == 0 and len(json.loads(out)["runs"]) == 2

    # The token from the environment works like --token.
    os.environ["OPTBENCH_TOKEN"] = alice_reader
    try:
        capsys.readouterr()
        with pytest.raises(SystemExit) as exc:
            main(["--url", service.url, "status", experiment_id], out=io.StringIO())
        assert exc.value.code == 0
    finally:
        del os.environ["OPTBENCH_TOKEN"]

    # Run-steps per day: alice has used one third; two more fit, the fourth is refused.
    for _ in range(2):
        assert cli(service, ["submit", str(spec)], capsys, alice)[0] == 0
    code, _, err = cli(service, ["submit", str(spec)], capsys, alice)
    assert code == 3 and "run-steps per day" in err and "retry in" in err
    # Bob's budget is his own.
    assert cli(service, ["submit", str(spec)], capsys, bob)[0] == 0

    # A revoked token stops working at once.
    token_id = next(
        line.split()[0] for line in admin(service, "list").stdout.splitlines() if "bob" in line
    )
    assert admin(service, "revoke", token_id).returncode == 0
    code, _, err = cli(service, ["status", experiment_id], capsys, bob)
    assert code == 2 and "not valid" in err
    assert admin(service, "revoke", token_id).returncode == 2


def test_the_request_id_follows_a_run_into_its_task(service: LiveService) -> None:
    token = new_token(service, "tracer", "write")
    headers = {"Authorization": f"Bearer {token}", "X-Request-ID": "trace-0123456789"}
    with httpx.Client(base_url=service.url, headers=headers, timeout=30) as http:
        created = http.post("/v1/experiments", json={**SPEC, "name": "traced"})
        assert created.status_code == 202
        assert created.headers["x-request-id"] == "trace-0123456789"
        link = created.json()["links"]["self"]
        wait_for(lambda: http.get(link).json()["status"] == "succeeded", 60, "the experiment")

    def task_lines() -> list[dict[str, Any]]:
        lines = []
        for line in service.worker.log().splitlines():
            if line.startswith("{"):
                record = json.loads(line)
                if record.get("request_id") == "trace-0123456789":
                    lines.append(record)
        return lines

    done = wait_for(
        lambda: [
            r for r in task_lines() if r["message"].endswith(" s") and "task done" in r["message"]
        ],
        10,
        "the task's log line",
    )
    assert done[0]["experiment_id"] == created.json()["id"]
    assert done[0]["runs"] == 2 and done[0]["level"] == "info"
    # The API's access log is JSON lines too, with the same id.
    access = [
        json.loads(line)
        for line in service.api_log.read_text().splitlines()
        if line.startswith("{") and "trace-0123456789" in line
    ]
    assert any(r["logger"] == "optbench.access" and r["status"] == 202 for r in access)
