"""`make run` installs what serving needs and nothing of the test or browser tooling.

The run venv is ``pip install -e '.[server]'`` (the Makefile's ``$(STAMP)``, which ``run`` depends
on); its packages are the closure of those requirements. The closure is computed from the
installed distributions' own metadata, so a dependency that drags in a test tool is caught too.
"""

from __future__ import annotations

import re
from importlib import metadata

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.conftest import ROOT

#: Tooling that belongs to `make test` only.
TOOLING = {
    "pytest",
    "pytest-timeout",
    "hypothesis",
    "schemathesis",
    "ruff",
    "mypy",
    "playwright",
    "pyee",
    "pyyaml",
}


def closure(root: str, extras: set[str]) -> set[str]:
    """Names of the distributions ``root[extras]`` installs (itself included)."""
    visited: set[tuple[str, frozenset[str]]] = set()
    todo = [(root, frozenset(extras))]
    while todo:
        name, wanted = todo.pop()
        key = (canonicalize_name(name), wanted)
        if key in visited:
            continue
        visited.add(key)
        envs = [{"extra": e} for e in wanted] or [{"extra": ""}]
        for line in metadata.requires(name) or []:
            req = Requirement(line)
            if req.marker is not None and not any(req.marker.evaluate(env) for env in envs):
                continue
            todo.append((req.name, frozenset(req.extras)))
    return {name for name, _ in visited}


def test_the_run_venv_holds_no_test_or_browser_tooling() -> None:
    served = closure("optbench", {"server"})
    assert {"fastapi", "uvicorn", "celery", "sqlalchemy", "numpy"} <= served
    assert served & TOOLING == set()
    # The dev extra is where the tooling comes from: the check would notice it.
    assert {"pytest", "playwright"} <= closure("optbench", {"server", "dev"}) & TOOLING


def test_make_run_installs_only_the_server_extra() -> None:
    makefile = (ROOT / "Makefile").read_text()
    rules = dict(re.findall(r"^(\S[^:\n]*):[^\n]*\n((?:\t[^\n]*\n)*)", makefile, re.M))
    assert re.search(r"^run: \$\(STAMP\)$", makefile, re.M)
    assert "-e '.[server]'" in rules["$(STAMP)"] and "dev" not in rules["$(STAMP)"]
    assert "'.[server,dev]'" in rules["$(DEV_STAMP)"]
