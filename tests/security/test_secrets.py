"""No secret on the console: a database URL's password never appears in start-up output."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from api.config import redact_url
from api.launcher import api_command, worker_command
from tests.client.live import free_port
from tests.conftest import ROOT

SECRET = "s3cr3t-Pa55word"
#: Well-formed, but nothing listens there: the launcher's migration and the admin CLI fail.
UNREACHABLE = f"postgresql+psycopg://optbench:{SECRET}@127.0.0.1:1/optbench"
#: Refused by the settings: every process stops at start-up.
INVALID = [
    # a scheme this service does not take
    f"mysql://optbench:{SECRET}@db.example/optbench",
    # unparsable
    f"postgresql+psycopg://optbench:{SECRET}@db.example:port/optbench",
    # a driver that is not installed
    f"postgresql+nodriver://optbench:{SECRET}@db.example/optbench",
]
BAD_URLS = [UNREACHABLE, *INVALID]


def start_up_output(command: list[str], url: str, tmp_path: Path) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPTBENCH_")}
    env |= {"OPTBENCH_DATABASE_URL": url, "OPTBENCH_DATA_DIR": str(tmp_path / "data")}
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    return done.stdout + done.stderr


@pytest.mark.parametrize("url", BAD_URLS)
def test_no_password_in_start_up_output(url: str, tmp_path: Path) -> None:
    commands = {
        "launcher": [sys.executable, "-m", "api.launcher", "--port", str(free_port())],
        "admin": [sys.executable, "-m", "api.admin", "token", "list"],
    }
    if url != UNREACHABLE:  # the API connects lazily: only invalid settings stop it at start-up
        commands["uvicorn"] = api_command("127.0.0.1", free_port())
        commands["worker"] = worker_command("q-secrets", 1)
    for name, command in commands.items():
        output = start_up_output(command, url, tmp_path)
        assert output.strip(), name
        assert SECRET not in output, f"{name} printed the password:\n{output}"


def test_urls_render_without_passwords() -> None:
    for url in BAD_URLS:
        shown = redact_url(url)
        assert SECRET not in shown and "optbench" in shown
    assert redact_url(f"redis://:{SECRET}@cache:6379/0") == "redis://:***@cache:6379/0"
    assert redact_url("sqlite:////tmp/x.db") == "sqlite:////tmp/x.db"
