"""The demo's third release: a subtle regression the threshold template misses and the judge catches.

Rules:
- The judge's template is examples/judge's `judge-sequential` (canary against stable, the
  anytime-valid sequential judge), loaded from the package's examples and adjusted only where
  the demo needs it; each adjustment is listed in `adjust_judge()`. A missing or changed
  example is a `ScenarioError` naming the file and what was expected.
- The judge release's Rollout is the demo's own with one change (`judge_patch`): an
  `analysis` step running `judge-sequential` after `setWeight: 50`, with the canary and
  stable pod hashes as args (`podTemplateHashValue: Latest` / `Stable`), so the Rollout waits
  for the judge's verdict: aborted on decisive harm, promoted on decisive safety. The
  threshold template stays the background analysis, as in the other releases.
- What the threshold template would have said is not guessed: `threshold_replay` replays
  the demo's threshold template with analysis.backtest over the release's window, against the
  demo's Prometheus, for the release's canary (its answers are the ones the live run read).
  No failed measurement means it would have let the release through.
- `judge_template` and `judge_patch` are pure; `threshold_replay` queries Prometheus.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from analysis import backtest, build
from analysis.model import AnalysisPhase, AnalysisTemplate, Argument
from analysis.providers.registry import default_providers
from rollouts.demo.scenario import EXAMPLE_DIR, HASH_ARG, ScenarioError, Timing, load_kind

JUDGE_DIR = EXAMPLE_DIR.parent / "judge"
JUDGE_TEMPLATE = "judge-sequential"
STABLE_HASH_ARG = "stable-hash"
STEP = "5s"  # one judge bucket: five 1 s scrapes, so increase() sees several samples
LOOKBACK = "5m"  # covers the whole release: every measurement replays the canary's buckets from the start
COUNT = 30


def _selector(hash_arg: str) -> str:
    return ('reporter="source",destination_service=~"{{args.service-name}}",'
            f'destination_workload=~".+-{{{{args.{hash_arg}}}}}"')


def _queries(name: str) -> dict[str, str]:
    """The demo's Istio series for one judge metric, canary and stable side."""
    sides = {"canary": HASH_ARG, "baseline": STABLE_HASH_ARG}
    if name == "errors":
        found = {side: f'sum(increase(istio_requests_total{{{_selector(arg)},response_code=~"5.*"}}[{STEP}]))'
                 for side, arg in sides.items()}
        found |= {f"{side}Total": f"sum(increase(istio_requests_total{{{_selector(arg)}}}[{STEP}]))"
                  for side, arg in sides.items()}
        return found
    return {side: ("histogram_quantile(0.99, sum by (le) "
                   f"(rate(istio_request_duration_milliseconds_bucket{{{_selector(arg)}}}[{STEP}])))")
            for side, arg in sides.items()}


def adjust_judge(template: dict[str, Any], *, timing: Timing, namespace: str) -> None:
    """The demo's changes to examples/judge's sequential template, in place."""
    template["metadata"]["namespace"] = namespace
    # args: the demo's service name (not an app label) and the two pod hashes
    template["spec"]["args"] = [{"name": "service-name"}, {"name": HASH_ARG}, {"name": STABLE_HASH_ARG}]
    metric = template["spec"]["metrics"][0]
    if metric.get("failureCondition") != 'result.verdict == "Fail"':
        raise ScenarioError(f'{JUDGE_DIR / "judge-sequential.yaml"}: {JUDGE_TEMPLATE} changed; the demo expects '
                            'failureCondition: result.verdict == "Fail"')
    # measured as often as the threshold template, for as long as the release may take
    metric.update(interval=timing.interval, count=COUNT, inconclusiveLimit=COUNT)
    judge = metric["provider"]["plugin"]["rollouts/judge"]
    judge.pop("address", None)  # the demo's controller asks its own Prometheus
    judge.update(lookback=LOOKBACK, step=STEP)
    names = [m["name"] for m in judge["metrics"]]
    if names != ["errors", "latency-p99"]:
        raise ScenarioError(f"{JUDGE_TEMPLATE} judges {names}; the demo expects errors and latency-p99")
    for judged in judge["metrics"]:
        judged.update(_queries(judged["name"]))


def judge_template(timing: Timing, *, namespace: str = "default", directory: Path = JUDGE_DIR) -> dict[str, Any]:
    found = [t for t in load_kind("judge-sequential.yaml", "AnalysisTemplate", directory, example="judge")
             if t.get("metadata", {}).get("name") == JUDGE_TEMPLATE]
    if not found:
        raise ScenarioError(f"{directory / 'judge-sequential.yaml'} holds no AnalysisTemplate {JUDGE_TEMPLATE}; "
                            "the demo's third release runs it")
    template = copy.deepcopy(found[0])
    try:
        adjust_judge(template, timing=timing, namespace=namespace)
    except (KeyError, IndexError, TypeError) as err:
        raise ScenarioError(f"the judge example no longer has the shape the demo adjusts (missing {err}); "
                            "update rollouts/demo/judge.py") from None
    return template


def judge_patch(rollout: dict[str, Any], image: str, *, service_name: str) -> dict[str, Any]:
    """A merge patch: the image, and the judge as an analysis step after the last setWeight."""
    containers = copy.deepcopy(rollout["spec"]["template"]["spec"]["containers"])
    containers[0]["image"] = image
    steps = copy.deepcopy(rollout["spec"]["strategy"]["canary"]["steps"])
    last_weight = max(i for i, step in enumerate(steps) if "setWeight" in step)
    steps[last_weight + 1:] = [{"analysis": {
        "templates": [{"templateName": JUDGE_TEMPLATE}],
        "args": [{"name": "service-name", "value": service_name},
                 {"name": HASH_ARG, "valueFrom": {"podTemplateHashValue": "Latest"}},
                 {"name": STABLE_HASH_ARG, "valueFrom": {"podTemplateHashValue": "Stable"}}]}}]
    return {"spec": {"template": {"spec": {"containers": containers}},
                     "strategy": {"canary": {"steps": steps}}}}


@dataclass(frozen=True)
class ThresholdReplay:
    """What the threshold template says over a window: its phase (Running: no verdict) and values."""

    phase: str
    measured: int
    failed: int
    values: tuple[str, ...]

    @property
    def would_promote(self) -> bool:
        return self.phase != str(AnalysisPhase.FAILED) and self.failed == 0

    def text(self) -> str:
        rates = [float(v.strip("[]").split(",")[0]) for v in self.values if v.strip("[]")]
        low = f", lowest {min(rates) * 100:.1f}%" if rates else ""
        verdict = "would have promoted" if self.would_promote else "would have aborted"
        phase = "" if self.phase == str(AnalysisPhase.RUNNING) else f"{self.phase}, "
        return (f"threshold template (success rate >= 95%, replayed on the same history): {phase}"
                f"{self.measured - self.failed} of {self.measured} measurements passed{low}: {verdict}")


def threshold_replay(template: dict[str, Any], *, prometheus: str, service_name: str, canary_hash: str,
                     start: datetime, end: datetime) -> ThresholdReplay:
    """The demo's threshold template replayed on the release's window (analysis.backtest)."""
    loaded = AnalysisTemplate.load(copy.deepcopy(template))
    run = build.build_run(name="threshold-replay", namespace="default", templates=[loaded],
                          args=[Argument(name="service-name", value=service_name),
                                Argument(name=HASH_ARG, value=canary_hash)])
    result = backtest.replay(run, default_providers(prometheus_address=prometheus), start=start, end=end)
    values = tuple(t.measurement.value or "" for t in result.timeline)
    failed = sum(t.measurement.phase is AnalysisPhase.FAILED for t in result.timeline)
    return ThresholdReplay(str(result.phase), len(result.timeline), failed, values)
