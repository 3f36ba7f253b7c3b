"""`rollouts backtest` of examples/judge's templates against a real Prometheus holding a good and a bad canary.

History (backfilled with promtool, samples every 15 s from 10:00:00 to 10:59:45, app `shop`):
- stable pods (hash `stable`): 400 requests per 15 s, 4 of them 5xx (1%);
- the good canary (`good`) and the bad one (`bad`) after CANARY_FROM (10:05): 100 requests per
  15 s, 1 of them 5xx (1%) for the good one, 4 (4%) for the bad one; the canaries' own traffic
  pauses between GAP and GAP_END (10:20-10:30) in the gap variant (`gappy`);
- every side's latency histogram the same (60/30/10 of each 100 in 0.05/0.1/0.25 s).
So `increase(...[1m])` reads exact per-minute counts (4 samples over 45 s, extrapolated to 60 s).

What the semantics say (README: Statistical judge, Backtest):
- judge-fixed measures once, at initialDelay 10m after --from, over the 10 minutes before: the
  good canary is the stable's twin (Pass, score 100: Successful); the bad one's error rate is
  4x (critical errors High: Fail, score 0: Failed). Both decided at 10:15.
- judge-sequential measures every minute from --from: the bad canary fails at the first minute its
  harm e-value crosses 1/alpha, the good one passes at the first minute its errors' safety e-value
  does (the latency's, identical sides, crosses earlier). The expected minutes are computed from the
  e-process on the same per-minute counts; the bad release is decided before the fixed window.
- `inconclusive.hold`: judge-fixed's one measurement, taken while the canary has no traffic, is
  Inconclusive "insufficient data" and held (not counted); the run waits through the gap and
  decides once the canary's data fills the window.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from analysis.judge.sequential import _RATIO_GRID, _SAFE_GRID, count_eprocess
from rollouts.cli import main
from rollouts.demo.prometheus import PrometheusServer, Series, counter, render_openmetrics
from tests.conftest import require_prometheus

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "judge"
FIXED, SEQUENTIAL = EXAMPLES / "judge-fixed.yaml", EXAMPLES / "judge-sequential.yaml"
START = datetime(2024, 3, 5, 10, 0, tzinfo=UTC)
STEP, SAMPLES = 15, 240
CANARY_FROM = START + timedelta(minutes=5)
GAP, GAP_END = START + timedelta(minutes=20), START + timedelta(minutes=30)
ERRORS = {"stable": (400, 4), "good": (100, 1), "bad": (100, 4), "gappy": (100, 4)}  # (requests, 5xx) per 15 s
LATENCY = (("0.05", 60), ("0.1", 90), ("0.25", 100), ("+Inf", 100))  # cumulative of each 100 requests


def _live(side: str, moment: datetime) -> bool:
    if side == "stable":
        return True
    return moment > CANARY_FROM and not (side == "gappy" and GAP <= moment < GAP_END)


def history() -> Iterator[Series]:
    moments = [START + timedelta(seconds=STEP * i) for i in range(SAMPLES)]
    for side, (requests, errors) in ERRORS.items():
        live = [_live(side, moment) for moment in moments]
        labels = {"app": "shop", "rollouts_pod_template_hash": side}
        for code, count in (("200", requests - errors), ("500", errors)):
            yield counter("http_requests_total", labels | {"code": code}, start=START.timestamp(), step=STEP,
                          increments=[count if on else 0 for on in live])
        for le, share in LATENCY:
            yield counter("http_request_duration_seconds_bucket", labels | {"le": le}, start=START.timestamp(),
                          step=STEP, increments=[requests * share / 100 if on else 0 for on in live])


@pytest.fixture(scope="module")
def prometheus() -> Iterator[str]:
    require_prometheus()
    with PrometheusServer(backfill=render_openmetrics(history())) as server:
        yield server.url


def backtest(capsys: pytest.CaptureFixture[str], template: Path, canary: str, start: datetime,
             end: datetime, prometheus: str) -> tuple[int, dict[str, Any]]:
    code = main(["backtest", str(template), "--prometheus", prometheus, "--arg", "app=shop",
                 "--arg", f"canary-hash={canary}", "--arg", "stable-hash=stable",
                 "--from", _stamp(start), "--to", _stamp(end), "--json"])
    return code, json.loads(capsys.readouterr().out)


def _stamp(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def first_minute(canary: str, *, harm: bool) -> int:
    """The first whole minute after CANARY_FROM at which the sequential errors test is decisive.

    Per minute: the canary's 4x its 15 s counts, the stable's likewise (what increase()[1m] reads);
    harm is the e-process against ratio 1, safety against passBelow 1.5; alpha 0.01 (the template's).
    """
    (n, k), (m, j) = (tuple(4 * v for v in ERRORS[canary]), tuple(4 * v for v in ERRORS["stable"]))
    minutes = 25
    path = count_eprocess([k] * minutes, [n] * minutes, [j] * minutes, [m] * minutes,
                          null_ratio=1.0 if harm else 1.5, grid=_RATIO_GRID if harm else _SAFE_GRID, alpha=0.01)
    assert path.crossed_at is not None
    return path.crossed_at + 1


def test_fixed_judge_passes_the_good_canary_and_fails_the_bad_one_at_initial_delay(
        prometheus: str, capsys: pytest.CaptureFixture[str]) -> None:
    start, end = CANARY_FROM, START + timedelta(minutes=59)
    code, good = backtest(capsys, FIXED, "good", start, end, prometheus)
    assert (code, good["phase"], good["decidedAt"]) == (0, "Successful", "2024-03-05T10:15:00Z")
    [measured] = good["measurements"]
    assert (json.loads(measured["value"])["score"], json.loads(measured["value"])["verdict"]) == (100, "Pass")
    code, bad = backtest(capsys, FIXED, "bad", start, end, prometheus)
    assert (code, bad["phase"], bad["decidedAt"]) == (1, "Failed", "2024-03-05T10:15:00Z")
    [measured] = bad["measurements"]
    value = json.loads(measured["value"])
    assert (value["score"], value["verdict"]) == (0, "Fail")
    errors = next(m for m in value["metrics"] if m["name"] == "errors")
    assert errors["classification"] == "High" and errors["critical"] is True
    assert errors["estimate"] == pytest.approx(0.03) and errors["canaryN"] == 20  # 4% against 1%, 10:05:30..10:15
    assert measured["message"].startswith("Fail (score 0): critical metric errors rose")


def test_sequential_judge_aborts_the_bad_canary_early_and_passes_the_good_one_when_safe(
        prometheus: str, capsys: pytest.CaptureFixture[str]) -> None:
    start, end = CANARY_FROM, START + timedelta(minutes=59)
    harm, safe = first_minute("bad", harm=True), first_minute("good", harm=False)
    # the bad release is decided first, and before the fixed window's 10 minutes; with 1% errors on both sides
    # safety takes longer to be decisive (a pass early is never a pass on thin evidence)
    assert harm < 10 and harm < safe <= 25
    code, bad = backtest(capsys, SEQUENTIAL, "bad", start, end, prometheus)
    assert (code, bad["phase"]) == (1, "Failed")
    assert bad["decidedAt"] == _stamp(CANARY_FROM + timedelta(minutes=harm))
    phases = [m["phase"] for m in bad["measurements"]]
    assert phases == ["Inconclusive"] * harm + ["Failed"]  # measured at 10:05 (no bucket yet), 10:06, ...
    assert "errors rose decisively" in bad["measurements"][-1]["message"]
    code, good = backtest(capsys, SEQUENTIAL, "good", start, end, prometheus)
    assert (code, good["phase"]) == (0, "Successful")
    assert good["decidedAt"] == _stamp(CANARY_FROM + timedelta(minutes=safe))
    assert json.loads(good["measurements"][-1]["value"])["verdict"] == "Pass"
    assert "decisively safe" in good["measurements"][-1]["message"]


def test_the_insufficient_data_hold_waits_through_the_canary_gap(prometheus: str, tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """judge-fixed with `inconclusive.hold`, started at the gap: 10:30 sees no canary bucket (held), 10:40
    sees the ten minutes after it (Failed). Without the hold the same measurement ends the run Inconclusive."""
    doc = yaml.safe_load(FIXED.read_text())
    doc["spec"]["metrics"][0] |= {"initialDelay": "0s", "inconclusive": {"hold": True}, "count": 1}
    held = tmp_path / "held.yaml"
    held.write_text(yaml.safe_dump(doc))
    start, end = GAP_END, START + timedelta(minutes=59)
    code, out = backtest(capsys, held, "gappy", start, end, prometheus)
    assert [(m["time"], m["phase"], m.get("held", False)) for m in out["measurements"]] == [
        ("2024-03-05T10:30:00Z", "Inconclusive", True), ("2024-03-05T10:40:00Z", "Failed", False)]
    assert "insufficient data" in out["measurements"][0]["message"]
    assert (code, out["phase"], out["decidedAt"]) == (1, "Failed", "2024-03-05T10:40:00Z")

    doc["spec"]["metrics"][0].pop("inconclusive")
    plain = tmp_path / "plain.yaml"
    plain.write_text(yaml.safe_dump(doc))
    code, out = backtest(capsys, plain, "gappy", start, end, prometheus)
    assert (code, out["phase"], out["decidedAt"]) == (1, "Inconclusive", "2024-03-05T10:30:00Z")
