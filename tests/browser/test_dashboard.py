"""The dashboard in headless Chromium against a live service: submit → watch progress → curves.

Needs Debian's ``chromium`` (``apt-get install chromium``); skipped only when it is absent and
``CI`` is unset. Playwright drives the system browser (no downloaded browser build).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.client.live import LiveService

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SPEC: dict[str, Any] = {
    "name": "browser-e2e",
    "description": "Adam at two learning rates against SGD with momentum.",
    "problems": [{"name": "rosenbrock", "dim": 2}],
    "optimizers": [
        {"name": "adam", "lr": [0.01, 0.05]},
        {"name": "sgd", "lr": 0.001, "momentum": 0.9},
    ],
    "seeds": [0, 1, 2],
    "steps": 30000,
    "target_loss": 0.01,
}
LONG_SPEC: dict[str, Any] = {**SPEC, "name": "to-cancel", "steps": 100000, "seeds": list(range(20))}


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not os.path.exists(CHROMIUM):
        if os.environ.get("CI"):
            pytest.fail("chromium is required in CI (apt-get install chromium)", pytrace=False)
        pytest.skip("chromium is not installed")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Any, live_service: LiveService) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(30_000)
    page.errors = []
    page.requests = []
    page.on("pageerror", lambda exc: page.errors.append(str(exc)))
    page.on("console", lambda msg: page.errors.append(msg.text) if msg.type == "error" else None)
    page.on("request", lambda req: page.requests.append(req))
    yield page
    context.close()


def submit_from_form(page: Any, url: str, spec: dict[str, Any], runs: int) -> str:
    page.goto(f"{url}/#/new")
    page.wait_for_selector("#catalog .chip >> text=adam")
    page.fill("#spec-text", json.dumps(spec, indent=2))
    page.click("#dry-run")
    page.wait_for_selector("#form-msg.ok")
    assert page.inner_text("#form-msg") == f"Valid: {runs} runs."
    page.click("#submit-spec")
    page.wait_for_url("**/#/experiments/*")
    return str(page.url.rsplit("/", 1)[1])


def test_submit_watch_progress_and_see_the_curves(
    page: Any, live_service: LiveService, tmp_path: Path
) -> None:
    url = live_service.url
    experiment_id = submit_from_form(page, url, SPEC, 9)
    page.wait_for_selector("#exp-name >> text=browser-e2e")
    # Watch: the progress bar moves while runs are running, with partial curves on the page.
    page.wait_for_function(
        "() => { const p = document.querySelector('#exp-progress');"
        " return p.value > 0 && p.value < 1 && document.querySelector('#curves canvas')"
        " && document.querySelector('#exp-status').textContent === 'running'; }",
        timeout=60_000,
    )
    page.wait_for_selector("#exp-status >> text=succeeded", timeout=120_000)
    assert page.eval_on_selector("#exp-progress", "p => p.value") == 1
    assert "9 runs: 9 succeeded" in page.inner_text("#exp-counts")

    # Loss curves: one plot for the problem, a legend entry per solver, drawn pixels.
    page.wait_for_selector("#curves .legend-item >> text=sgd / constant")
    legend = page.locator("#curves .legend-item").all_inner_texts()
    assert legend == ["adam(lr=0.01) / constant", "adam(lr=0.05) / constant", "sgd / constant"]
    drawn = page.eval_on_selector(
        "#curves canvas",
        "c => { const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
        " let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i]) n++; return n; }",
    )
    assert drawn > 1000
    page.select_option("#x-axis", "wall")
    page.wait_for_selector("#curves [aria-label='loss vs wall time (s)'] canvas")
    assert page.locator("#lr-curves canvas").count() == 1

    # The summary table: a row per group, sortable by any metric.
    rows = page.locator("#summary-table tbody tr")
    assert rows.count() == 3
    page.click("#summary-table th[data-key='metric_mean']")
    first = rows.first.get_attribute("data-group")
    page.click("#summary-table th[data-key='metric_mean']")
    assert rows.last.get_attribute("data-group") == first

    # Rankings, tuning, comparison and the loss landscape.
    assert page.locator("#profile-plot canvas").count() == 1
    assert page.locator("#ecdf-plot canvas").count() == 1
    assert page.locator("#tuning canvas").count() == 1
    assert page.locator("#comparisons table tbody tr").count() == 2
    contour_pixels = page.eval_on_selector(
        "#contours canvas",
        "c => { const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
        " const seen = new Set(); for (let i = 0; i < d.length; i += 4 * 97)"
        " seen.add(d[i] + ',' + d[i + 1] + ',' + d[i + 2]); return seen.size; }",
    )
    assert contour_pixels > 20  # shading, contour lines and trajectories, not a blank canvas
    page.screenshot(path=str(tmp_path / "experiment.png"), full_page=True)

    # Polling is conditional, and nothing is fetched from anywhere but the service.
    polls = [
        r
        for r in page.requests
        if r.url.startswith(f"{url}/v1/experiments/{experiment_id}") and r.method == "GET"
    ]
    assert any("if-none-match" in r.headers for r in polls)
    assert all(r.url.startswith(url) for r in page.requests), [r.url for r in page.requests]
    assert page.errors == []

    # The list shows it.
    page.goto(f"{url}/#/")
    page.wait_for_selector(f"#experiment-list tr[data-id='{experiment_id}'] >> text=succeeded")


def test_cancel_button(page: Any, live_service: LiveService) -> None:
    submit_from_form(page, live_service.url, LONG_SPEC, 60)
    page.wait_for_selector("#cancel-btn:visible")
    page.click("#cancel-btn")
    page.wait_for_selector("#exp-status >> text=cancelled", timeout=60_000)
    assert page.locator("#cancel-btn:visible").count() == 0
    assert page.errors == []
