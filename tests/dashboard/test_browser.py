"""The dashboard in a real browser: Debian's headless Chromium driven by Playwright, against
the controller running a canary on the in-memory cluster (tests/controller/dsl.py's
Scenario: the istio-canary example with short steps, its metric scripted).

The story: a good release paused at its first step is promoted with the page's button and
becomes Healthy; a bad release fails its analysis and the open page turns Degraded without
a reload, its chart showing the failing measurement under the threshold; the Abort button
aborts a third release; a read-only dashboard shows no action and answers 403.
Screenshots go to build/screenshots/ (overview, failing-canary, failing-metric, read-only);
reproduce them with `.venv/bin/python -m pytest tests/dashboard/test_browser.py`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from rollouts.dashboard.server import Options, Served, build
from tests.controller.dsl import Scenario

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "build" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
HEALTHY, FAILING = [0.99], [0.8]
WAIT_MS = 15_000


def short_steps(scenario: Scenario) -> Scenario:
    """Steps 20% → pause (until promoted) → 50% → pause 1m; the metric every 30s, failing at once."""
    rollout = next(doc for doc in scenario.docs if doc["kind"] == "Rollout")
    rollout["spec"]["strategy"]["canary"]["steps"] = [{"setWeight": 20}, {"pause": {}}, {"setWeight": 50},
                                                      {"pause": {"duration": "1m"}}]
    template = next(doc for doc in scenario.docs if doc["kind"] == "AnalysisTemplate")
    template["spec"]["metrics"][0].update({"interval": "30s", "failureLimit": 0})
    return scenario


@pytest.fixture
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield launched
        launched.close()


def serve(scenario: Scenario, **options: Any) -> Served:
    dash = build(scenario.cluster, Options(port=0, **options), clock=scenario.clock)
    assert dash.store.wait_synced(10)
    return Served(dash, "127.0.0.1", 0)


def phase_is(page: Page, phase: str) -> None:
    page.wait_for_selector(f'#phase[data-phase="{phase}"]', timeout=WAIT_MS)


def confirm_and_click(page: Page, button: str) -> str:
    page.once("dialog", lambda dialog: dialog.accept())
    page.click(button)
    page.wait_for_selector("#action-result .result", timeout=WAIT_MS)
    return page.inner_text("#action-result")


def test_the_dashboard_follows_a_good_and_a_bad_release_in_a_real_browser(browser: Browser) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    scenario = short_steps(Scenario("istio-canary"))
    scenario.provider.script("success-rate", HEALTHY)
    scenario.given_healthy()
    dash, viewer = serve(scenario), serve(scenario, read_only=True)
    try:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        # the overview lists the rollout
        page.goto(dash.url + "/")
        page.wait_for_selector("#ro--default--rollout-example", timeout=WAIT_MS)
        assert "Healthy" in page.inner_text("#ro--default--rollout-example")

        # a good release pauses at its first step; the Promote button moves it on
        scenario.when_image("argoproj/rollouts-demo:yellow").run_until(lambda: scenario.phase == "Paused")
        page.wait_for_selector('#ro--default--rollout-example[data-phase="Paused"]', timeout=WAIT_MS)
        page.screenshot(path=str(SHOTS / "overview.png"), full_page=True)
        page.goto(dash.url + "/rollouts/default/rollout-example")
        phase_is(page, "Paused")
        assert "promoted" in confirm_and_click(page, "#do-promote")
        assert not scenario.status.get("pauseConditions")
        scenario.run_until(lambda: scenario.phase == "Healthy")
        phase_is(page, "Healthy")

        # a bad release: the open page turns Degraded without a reload, the chart shows the failure
        page.evaluate("window.__notReloaded = true")
        scenario.provider.script("success-rate", FAILING)
        scenario.when_image("argoproj/rollouts-demo:red").run_until(lambda: scenario.phase == "Degraded")
        phase_is(page, "Degraded")
        assert page.evaluate("window.__notReloaded") is True
        page.wait_for_selector('figure.metric[data-phase="Failed"]', timeout=WAIT_MS)
        chart = page.evaluate("""() => {
            const fig = document.querySelector('figure.metric[data-phase="Failed"] .chart');
            const c = window.dashboardCharts[fig.id];
            return {failing: c.data[2], threshold: c.threshold, labels: c.series.map(s => s.label)};
        }""")
        failing = [v for v in chart["failing"] if v is not None]
        assert failing == [0.8] and chart["threshold"] == 0.95 and failing[0] < chart["threshold"]
        assert "threshold: result[0] >= 0.95" in chart["labels"]
        assert page.locator("figure.metric[data-phase='Failed'] canvas").count() == 1, "uPlot drew it"
        verdict = page.inner_text("figure.metric[data-phase='Failed'] .verdict")
        assert verdict == 'result [0.8] did not satisfy successCondition "result[0] >= 0.95"'
        assert "✖ Degraded" in page.inner_text("#phase")
        page.screenshot(path=str(SHOTS / "failing-canary.png"), full_page=True)
        page.locator("figure.metric[data-phase='Failed']").screenshot(path=str(SHOTS / "failing-metric.png"))

        # the Abort button aborts a release that is paused
        scenario.provider.script("success-rate", HEALTHY)
        scenario.when_image("argoproj/rollouts-demo:blue").run_until(lambda: scenario.phase == "Paused")
        phase_is(page, "Paused")
        assert "aborted" in confirm_and_click(page, "#do-abort")
        assert scenario.status.get("abort") is True

        # a read-only dashboard shows no action and refuses one sent anyway
        page.goto(viewer.url + "/rollouts/default/rollout-example")
        assert page.locator("#do-abort").count() == 0 and "read-only" in page.inner_text("#actions")
        status = page.evaluate("""async () => (await fetch('/rollouts/default/rollout-example/promote', {
            method: 'POST', headers: {'Content-Type': 'application/x-www-form-urlencoded'},
            body: 'confirm=yes&csrf=' + encodeURIComponent(document.cookie)})).status""")
        assert status == 403
        page.screenshot(path=str(SHOTS / "read-only.png"), full_page=True)
    finally:
        dash.close()
        viewer.close()
        scenario.close()
