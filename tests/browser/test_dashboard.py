"""The dashboard in headless Chromium against a live service, at 1280×800.

Needs Debian's ``chromium`` (``apt-get install chromium``); skipped only when it is absent and
``CI`` is unset. Playwright drives the system browser (no downloaded browser build). The tests also
write the screenshots the README links to (``docs/screenshots/``).
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.client.live import LiveService
from tests.conftest import ROOT, wait_for

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
SHOTS = ROOT / "docs" / "screenshots"
VIEWPORT = {"width": 1280, "height": 800}
#: An lr sweep on Rosenbrock where SGD at the largest rate diverges (loss ~1e13 within 10 steps)
#: while Adam at lr=0.1 reaches ~1e-22: ten groups, three seeds.
SWEEP: dict[str, Any] = {
    "name": "lr-sweep",
    "description": "SGD with momentum, Adam and RMSprop over learning-rate grids on Rosenbrock; "
    "the largest SGD rate diverges.",
    "tags": ["sweep", "demo"],
    "problems": [{"name": "rosenbrock", "dim": 2, "init": [-1.5, 2.0]}],
    "optimizers": [
        {"name": "sgd", "lr": [0.0001, 0.0003, 0.001, 0.003], "momentum": 0.9},
        {"name": "adam", "lr": [0.003, 0.01, 0.03, 0.1]},
        {"name": "rmsprop", "lr": [0.001, 0.01]},
    ],
    "seeds": [0, 1, 2],
    "steps": 2000,
    "target_loss": 0.01,
}
SMALL: dict[str, Any] = {
    "name": "browser-e2e",
    "description": "Adam at two learning rates against SGD with momentum.",
    "problems": [{"name": "rosenbrock", "dim": 2}],
    "optimizers": [{"name": "adam", "lr": [0.01, 0.05]}, {"name": "sgd", "lr": 0.001}],
    "seeds": [0, 1, 2],
    "steps": 30000,
    "target_loss": 0.01,
}
# Rosenbrock in 3-D: the general loop (the compiled one would finish 2-D runs before the click)
LONG: dict[str, Any] = {
    **SMALL,
    "name": "to-cancel",
    "problems": [{"name": "rosenbrock", "dim": 3}],
    "steps": 100000,
    "seeds": list(range(20)),
}


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


def new_page(browser: Any, **context: Any) -> Any:
    ctx = browser.new_context(viewport=VIEWPORT, accept_downloads=True, **context)
    page = ctx.new_page()
    page.set_default_timeout(30_000)
    page.errors = []
    page.requests = []
    page.on("pageerror", lambda exc: page.errors.append(str(exc)))
    page.on("console", lambda msg: page.errors.append(msg.text) if msg.type == "error" else None)
    page.on("request", lambda req: page.requests.append(req))
    return page


@pytest.fixture
def page(browser: Any, live_service: LiveService) -> Iterator[Any]:
    page = new_page(browser)
    yield page
    page.context.close()


def submit(url: str, spec: dict[str, Any]) -> str:
    response = httpx.post(f"{url}/v1/experiments", json=spec, timeout=30)
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


def finished(url: str, experiment_id: str, timeout: float = 180.0) -> dict[str, Any]:
    def done() -> bool:
        body = httpx.get(f"{url}/v1/experiments/{experiment_id}", timeout=10).json()
        terminal = body["status"] in ("succeeded", "failed", "cancelled")
        return terminal and not body["counts"]["running"]

    wait_for(done, timeout, f"experiment {experiment_id} to finish", interval=0.5)
    return dict(httpx.get(f"{url}/v1/experiments/{experiment_id}", timeout=10).json())


@pytest.fixture(scope="module")
def sweep(live_service: LiveService) -> str:
    experiment_id = submit(live_service.url, SWEEP)
    finished(live_service.url, experiment_id)
    return experiment_id


def shot(page: Any, name: str, selector: str | None = None) -> None:
    """A 1280×800 screenshot of the view (scrolled to ``selector`` first) for the README."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    if selector:
        page.locator(selector).first.scroll_into_view_if_needed()
        page.evaluate(f"document.querySelector({json.dumps(selector)}).scrollIntoView()")
    page.wait_for_timeout(300)
    page.screenshot(path=str(SHOTS / f"{name}.png"))


#: The share of the plot height between the highest and lowest drawn point of the series that did
#: not diverge (measured with the plot's own value→pixel mapping).
SPAN = """(el, wanted) => {
  const u = el.uplot;
  const dpr = window.devicePixelRatio || 1;
  let top = Infinity, bottom = -Infinity;
  u.series.forEach((s, k) => {
    if (!k || !wanted.includes(s.label)) return;
    u.data[k].forEach((v) => {
      if (v === null || v === undefined) return;
      const y = u.valToPos(v, 'y');
      top = Math.min(top, y); bottom = Math.max(bottom, y);
    });
  });
  return (bottom - top) / (u.bbox.height / dpr);
}"""


def test_a_diverged_run_does_not_flatten_the_other_curves(
    page: Any, live_service: LiveService, sweep: str
) -> None:
    url = live_service.url
    page.goto(f"{url}/#/experiments/{sweep}")
    page.wait_for_selector("#exp-status >> text=succeeded")
    page.wait_for_selector("#curves .legend-item >> text=sgd(lr=0.003) / constant")
    legend = page.locator("#curves .legend-item").all_inner_texts()
    assert len(legend) == 10
    summary = httpx.get(f"{url}/v1/experiments/{sweep}/summary", timeout=30).json()
    diverged = {g["solver"] for g in summary["groups"] if g["diverged_rate"] > 0}
    assert diverged == {"sgd(lr=0.003) / constant"}
    calm = [label for label in legend if label not in diverged]
    plot = page.locator("#curves .plot").first
    robust = plot.evaluate(SPAN, calm)
    assert robust > 0.8, robust
    # Colours: one hue per optimizer, so the ten series stay distinguishable.
    hues = page.eval_on_selector_all(
        "#curves .legend-item .swatch", "els => els.map(e => getComputedStyle(e).backgroundColor)"
    )
    assert len(set(hues)) == 10
    shot(page, "experiment-curves", "#sec-curves")
    # The full range brings the blow-up back and squashes the rest.
    page.select_option("#y-range", "full")
    page.wait_for_function(
        "() => document.querySelector('#curves .plot').uplot.scales.y.max > 1e12"
    )
    full = plot.evaluate(SPAN, calm)
    assert full < robust * 0.75, (full, robust)
    page.select_option("#y-range", "robust")

    # Hover values: a tooltip lists every visible series at the cursor.
    box = plot.locator(".u-over").bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.3, box["y"] + box["height"] * 0.5)
    tip = page.locator("#curves .plot-tip")
    tip.wait_for(state="visible")
    assert tip.locator(".tip-head").inner_text().startswith("step = ")
    assert tip.locator(".tip-row").count() == 9  # the diverged run stopped at step ~10
    first = tip.locator(".tip-row b").first.inner_text()
    assert float(first) > 0
    page.mouse.move(0, 0)

    # The summary table fits its box.
    widths = page.eval_on_selector(
        "#summary-table", "t => [t.scrollWidth, t.parentElement.clientWidth]"
    )
    assert widths[0] <= widths[1], widths
    shot(page, "experiment-summary", "#sec-summary")
    shot(page, "experiment-landscape", "#sec-contours")
    assert page.locator("#contours canvas").count() == 1
    assert page.errors == []


def test_drill_down_to_a_run_and_its_gradient_norm(
    page: Any, live_service: LiveService, sweep: str
) -> None:
    url = live_service.url
    page.goto(f"{url}/#/experiments/{sweep}")
    link = page.locator("#summary-table tr", has_text="adam(lr=0.03)").locator("a.group-link")
    link.click()
    page.wait_for_url("**/#/runs/*")
    run_id = page.url.rsplit("/", 1)[1]
    run = httpx.get(f"{url}/v1/runs/{run_id}", timeout=10).json()
    assert run["spec"]["optimizer"] == {**run["spec"]["optimizer"], "name": "adam", "lr": 0.03}
    page.wait_for_selector("#run-title >> text=adam(lr=0.03) / constant")
    assert page.locator("#run-seeds a").count() == 3
    page.wait_for_function(
        "() => { const p = document.querySelector('#plot-grad .plot');"
        " return p && p.uplot && p.uplot.data[1].filter(v => v !== null).length > 100; }"
    )
    drawn = page.eval_on_selector("#plot-grad .plot", "el => el.uplot.data[1]")
    view = httpx.get(f"{url}/v1/runs/{run_id}?max_points=600", timeout=10).json()["curves"]
    assert drawn == pytest.approx(view["grad_norms"], rel=1e-12)  # the page's view of the run
    # The group's seeds, each linking to its own run.
    assert page.locator("#seed-curves .legend-item").count() == 3
    page.wait_for_selector("#run-contour canvas")
    shot(page, "run")
    page.click("#run-seeds a >> text=seed 1")
    page.wait_for_selector("#run-title >> text=seed 1")
    page.click("#run-experiment")
    page.wait_for_selector(f"#exp-id >> text={sweep}")
    assert page.errors == []


def test_download_a_plot(page: Any, live_service: LiveService, sweep: str, tmp_path: Path) -> None:
    page.goto(f"{live_service.url}/#/experiments/{sweep}")
    page.wait_for_selector("#curves .plot canvas")
    files = {}
    for kind in ("png", "svg", "csv"):
        with page.expect_download() as info:
            page.locator(f"#curves .plot-box button[data-export='{kind}']").first.click()
        target = tmp_path / info.value.suggested_filename
        info.value.save_as(target)
        assert target.suffix == f".{kind}"
        files[kind] = target.read_bytes()
    assert files["png"].startswith(b"\x89PNG\r\n\x1a\n") and len(files["png"]) > 5000
    svg = files["svg"].decode()
    assert svg.startswith("<svg") and svg.count("<path") >= 10 and "sgd(lr=0.001)" in svg
    rows = files["csv"].decode().splitlines()
    assert rows[0].startswith("step,adam(lr=0.003) / constant") or rows[0].startswith("step,")
    assert len(rows) > 100
    assert page.errors == []


def test_cancel_ends_on_the_final_state(page: Any, live_service: LiveService) -> None:
    url = live_service.url
    experiment_id = submit(url, LONG)
    page.goto(f"{url}/#/experiments/{experiment_id}")
    page.wait_for_function("() => document.querySelector('#exp-status').textContent === 'running'")
    page.click("#cancel-btn")
    final = finished(url, experiment_id, 90)
    assert final["status"] == "cancelled" and final["counts"]["running"] == 0
    expected = f"{final['total_runs']} runs: {final['counts']['cancelled']} cancelled"
    page.wait_for_function(
        f"() => document.querySelector('#exp-counts').textContent.includes({json.dumps(expected)})"
    )
    assert "running" not in page.inner_text("#exp-counts")
    assert page.locator("#cancel-btn:visible").count() == 0
    # Settled: the page stops polling.
    time.sleep(1.5)
    before = len(page.requests)
    time.sleep(2.5)
    assert len(page.requests) == before
    assert page.errors == []


def test_unknown_experiment_is_a_clear_not_found(page: Any, live_service: LiveService) -> None:
    missing = "0123456789abcdef01234567"
    page.goto(f"{live_service.url}/#/experiments/{missing}")
    page.wait_for_selector("#not-found >> text=No experiment")
    time.sleep(1.5)
    before = len(page.requests)
    time.sleep(2.5)
    assert len(page.requests) == before
    assert page.locator("#cancel-btn").count() == 0


def test_docs_render_with_the_network_blocked(browser: Any, live_service: LiveService) -> None:
    page = new_page(browser)
    blocked: list[str] = []

    def only_local(route: Any) -> None:
        if route.request.url.startswith(live_service.url):
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort()

    page.context.route("**/*", only_local)
    page.goto(f"{live_service.url}/docs")
    page.wait_for_selector(".swagger-ui .opblock-summary-path")
    paths = page.locator(".swagger-ui .opblock-summary-path").all_inner_texts()
    assert "/v1/experiments" in paths and len(paths) >= 10
    assert blocked == []
    shot(page, "api-docs")
    page.context.close()


def test_rerun_opens_the_form_prefilled(page: Any, live_service: LiveService, sweep: str) -> None:
    url = live_service.url
    page.goto(f"{url}/#/experiments/{sweep}")
    page.wait_for_selector("#exp-name >> text=lr-sweep")
    page.click("#rerun-btn")
    page.wait_for_url("**/#/new?from=*")
    page.wait_for_function(
        "() => document.querySelector('#spec-text').value.includes('lr-sweep (re-run)')"
    )
    spec = json.loads(page.input_value("#spec-text"))
    original = httpx.get(f"{url}/v1/experiments/{sweep}", timeout=10).json()["spec"]
    assert spec == {**original, "name": "lr-sweep (re-run)"}
    page.wait_for_selector("#catalog .chip >> text=adam")
    shot(page, "new-experiment")
    page.click("#dry-run")
    page.wait_for_selector("#form-msg.ok")
    assert page.inner_text("#form-msg") == "Valid: 30 runs."
    page.click("#submit-spec")
    page.wait_for_url("**/#/experiments/*")
    page.wait_for_selector("#exp-name >> text=lr-sweep (re-run)")
    assert page.url.rsplit("/", 1)[1] != sweep
    page.wait_for_selector("#exp-tags >> text=sweep")
    assert page.errors == []


def test_list_filters_compare_and_dark_mode(
    browser: Any, live_service: LiveService, sweep: str
) -> None:
    url = live_service.url
    other = submit(url, {**SMALL, "name": "small", "steps": 300, "tags": ["other"]})
    finished(url, other)
    page = new_page(browser, color_scheme="dark")
    page.goto(f"{url}/#/?tag=sweep")
    page.wait_for_selector(f"#experiment-list tr[data-id='{sweep}']")
    assert page.locator(f"#experiment-list tr[data-id='{other}']").count() == 0
    page.goto(f"{url}/#/")
    page.wait_for_selector(f"#experiment-list tr[data-id='{other}']")
    shot(page, "experiments-dark")
    page.check(f"#experiment-list tr[data-id='{sweep}'] input.pick")
    page.check(f"#experiment-list tr[data-id='{other}'] input.pick")
    page.click("#compare-btn")
    page.wait_for_selector("#compare-table tbody tr")
    assert page.locator("#compare-table tbody tr").count() >= 10
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(20, 23, 28)"
    # Archive hides it from the list; the archived view shows it.
    page.goto(f"{url}/#/")
    row = page.locator(f"#experiment-list tr[data-id='{other}']")
    row.locator("button >> text=Archive").click()
    row.wait_for(state="detached")
    page.goto(f"{url}/#/?archived=true")
    page.wait_for_selector(f"#experiment-list tr[data-id='{other}']")
    assert page.errors == []
    page.context.close()


def test_the_page_asks_for_a_token_on_401(browser: Any, live_service: LiveService) -> None:
    """A service that answers 401 (as with OPTBENCH_AUTH_REQUIRED) gets the token asked once per
    tab and sent as a bearer token on every request."""
    page = new_page(browser)
    seen: list[str | None] = []

    def guarded(route: Any) -> None:
        auth = route.request.headers.get("authorization")
        seen.append(auth)
        if auth != "Bearer s3cret":
            route.fulfill(
                status=401,
                content_type="application/problem+json",
                body=json.dumps({"title": "Unauthorized", "status": 401, "detail": "token"}),
            )
        else:
            route.continue_()

    page.route(f"{live_service.url}/v1/**", guarded)
    page.goto(f"{live_service.url}/#/")
    page.wait_for_selector("#token-dialog")
    page.fill("#token-input", "s3cret")
    page.click("#token-dialog button[type=submit]")
    page.wait_for_selector("#experiment-list tbody tr")
    assert seen[0] is None and seen[-1] == "Bearer s3cret"
    assert page.evaluate("sessionStorage.getItem('optbench-token')") == "s3cret"
    page.context.close()


#: Records every CSP violation of the page (directive, blocked resource, sample) in window.__csp.
RECORD_CSP_VIOLATIONS = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", (e) =>
  window.__csp.push(`${e.violatedDirective} ${e.blockedURI} ${e.sample || ""}`));
"""


def test_the_dashboard_and_docs_run_under_the_served_csp(
    browser: Any, live_service: LiveService, sweep: str
) -> None:
    """The CSP the service sends (no inline script or style, nothing from elsewhere) breaks
    nothing: no violation and no console error on any view of the dashboard or in /docs."""
    page = new_page(browser)
    page.add_init_script(RECORD_CSP_VIOLATIONS)
    served = httpx.get(f"{live_service.url}/", timeout=10).headers["content-security-policy"]
    assert "style-src 'self';" in served and "unsafe-inline" not in served
    run_id = httpx.get(f"{live_service.url}/v1/experiments/{sweep}/runs?limit=1", timeout=10).json()
    for view, ready in (
        (f"#/experiments/{sweep}", "#contours canvas"),
        (f"#/runs/{run_id['items'][0]['id']}", "#plot-grad canvas"),
        ("#/", "#experiment-list tbody tr"),
        ("#/new", "#catalog .chip"),
    ):
        page.goto(f"{live_service.url}/{view}")
        page.wait_for_selector(ready)
        assert page.evaluate("window.__csp") == [], view
    page.goto(f"{live_service.url}/docs")
    page.locator(".swagger-ui .opblock-summary-path").first.click()
    page.locator(".swagger-ui .try-out__btn").first.click()
    page.locator(".swagger-ui .models-control").first.click()
    page.wait_for_timeout(500)
    assert page.evaluate("window.__csp") == []
    assert page.errors == []
    # The recorder does see a violation: an inline style attribute is refused.
    page.evaluate("document.body.insertAdjacentHTML('beforeend', '<b style=\"color: red\">x</b>')")
    page.wait_for_function("window.__csp.length > 0")
    assert page.evaluate("window.__csp")[0].startswith("style-src")
    page.context.close()


def test_the_form_builds_a_chain_from_the_catalogs_transforms(
    page: Any, live_service: LiveService
) -> None:
    page.goto(f"{live_service.url}/#/new")
    for name in ("scale_by_adam", "scale_by_learning_rate"):
        page.click(f"#catalog .chip >> text={name}")
        page.click("#catalog-add-chain")
    chain = json.loads(page.input_value("#spec-text"))["optimizers"][-1]
    assert chain["name"] == "chain"
    assert [t["name"] for t in chain["transforms"]] == ["scale_by_adam", "scale_by_learning_rate"]
    assert chain["transforms"][0]["betas"] == [0.9, 0.999]  # added with its defaults
    page.click("#dry-run")
    # The "Added … to the chain" message is already `.ok`: wait for the dry run's own answer.
    page.wait_for_function(
        "(m => m.textContent.startsWith('Valid: ') || m.classList.contains('error'))"
        "(document.querySelector('#form-msg'))"
    )
    assert page.inner_text("#form-msg").startswith("Valid: ")
    assert page.errors == []


def test_a_big_sweep_draws_the_best_curves_and_fetches_more(
    page: Any, live_service: LiveService
) -> None:
    """55 learning rates: the summary carries the curves of the 50 best groups; the button under
    the plot fetches the other five, drawn with the summary's points per curve."""
    url = live_service.url
    lrs = [round(1e-4 * 1.15**k, 10) for k in range(55)]
    spec = {
        "name": "big-sweep",
        "problems": [{"name": "rosenbrock", "dim": 2, "init": [-1.5, 2.0]}],
        "optimizers": [{"name": "adam", "lr": lrs}],
        "seeds": [0],
        "steps": 20,
    }
    experiment_id = submit(url, spec)
    finished(url, experiment_id)
    page.goto(f"{url}/#/experiments/{experiment_id}")
    page.wait_for_selector("#exp-status >> text=succeeded")
    legend = "#curves .legend-item"
    page.wait_for_function(f"() => document.querySelectorAll({legend!r}).length === 50")
    more = page.locator("#curves-more button.more-curves")
    assert more.inner_text() == "Show 5 more"
    assert "the 50 best of 55 groups" in page.locator("#curves-more").inner_text()
    more.click()
    page.wait_for_function(f"() => document.querySelectorAll({legend!r}).length === 55")
    assert page.locator("#curves-more button.more-curves").count() == 0
    summary = httpx.get(f"{url}/v1/experiments/{experiment_id}/summary", timeout=30).json()
    drawn = page.locator(legend).all_inner_texts()
    assert sorted(drawn) == sorted(g["solver"] for g in summary["groups"])
    # every seed's path of the 55 groups on the landscape, the five fetched ones included
    assert page.locator("#contours canvas").count() == 1
    assert page.errors == []
