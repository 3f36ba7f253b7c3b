"""rollouts.plan.timing_checks: a background analysis that cannot fail before the steps end.

Tables over the pure functions (earliest failure, end of the steps), the warning as
validate_rollout gives it, and `rollouts lint` on the reference example, whose
success-rate metric (failureLimit 3, every 5m) fails at 15m while the pause ends at 10m.
"""

from __future__ import annotations

import doctest
from pathlib import Path
from typing import Any

import pytest

from analysis.model import AnalysisTemplate, Metric
from rollouts.cli import main
from rollouts.demo import scenario
from rollouts.plan import timing_checks, validation
from rollouts.plan.timing_checks import earliest_failure, format_seconds, steps_end
from rollouts.spec.model import CanaryStep, Rollout
from rollouts.spec.problems import Severity

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_WARNING = (
    "warning: examples/istio-canary/rollout.yaml: Rollout/rollout-example: "
    "spec.strategy.canary.analysis.templates[0].templateName: metric 'success-rate' can fail at the earliest after "
    "15m (failureLimit 3 + 1 failures, every 5m), but the steps end after 10m, so a failing canary keeps the last "
    "step's weight until then, and one that succeeded once is promoted "
    "(lower failureLimit, shorten interval, or lengthen the pauses)"
)
WEB = {"web": {"url": "http://checks/{{args.x}}"}}


def metric(name: str = "m", **fields: Any) -> Metric:
    return Metric.load({"name": name, "provider": WEB, **fields})


def test_the_docstring_examples_hold() -> None:
    result = doctest.testmod(timing_checks)
    assert result.attempted >= 10 and result.failed == 0


@pytest.mark.parametrize(("fields", "seconds"), [
    ({"interval": "5m", "failureLimit": 3}, 900),                       # the reference example
    ({"interval": "5m"}, 0),                                            # default failureLimit 0: first measurement
    ({"interval": "5m", "failureLimit": "3"}, 900),                     # IntOrString
    ({"interval": 30, "failureLimit": 2, "initialDelay": "1m"}, 120),   # 60 + 2 × 30
    ({"interval": "1m30s", "failureLimit": 1, "initialDelay": 10}, 100),
    ({"initialDelay": "2m"}, 120),                                      # no interval: one measurement, at 2m
    ({"interval": "1m", "count": 4, "failureLimit": 3}, 180),           # 4 measurements: the 4th can fail
    ({"count": 0, "interval": "1m", "failureLimit": 2}, 120),           # count 0 with interval: unbounded
    ({"failureLimit": 1}, None),                                        # one measurement, two failures needed
    ({"interval": "1m", "count": 3, "failureLimit": 3}, None),          # count <= failureLimit: cannot fail
    ({"interval": "1m", "failureLimit": -1, "consecutiveSuccessLimit": 2}, None),  # no failure limit
    ({"interval": "{{args.every}}", "failureLimit": 1}, None),          # known when the run is built
    ({"interval": "5m", "failureLimit": "{{args.limit}}"}, None),
    ({"interval": "1m", "count": "{{args.n}}"}, None),
    ({"interval": "1d", "failureLimit": 1}, None),                      # invalid: template_checks reports it
    ({"interval": "1m", "initialDelay": "soon"}, None),
])  # fmt: skip
def test_earliest_failure(fields: dict[str, Any], seconds: int | None) -> None:
    assert earliest_failure(metric(**fields)) == seconds


P10M, P1M = {"pause": {"duration": "10m"}}, {"pause": {"duration": 60}}


@pytest.mark.parametrize(("steps", "starting", "seconds"), [
    ([{"setWeight": 50}, P10M], 0, 600),
    ([{"setWeight": 20}, P1M, {"setWeight": 50}, P10M], 0, 660),
    ([{"setWeight": 20}, P1M, {"setWeight": 50}, P10M], 2, 600),       # pauses before startingStep do not count
    ([{"setWeight": 20}, P1M], 2, 0),                                   # starts when the steps are done
    ([{"setWeight": 100}], 0, 0),
    ([{"setCanaryScale": {"replicas": 1}}, {"pause": {"duration": "1m30s"}}], 0, 90),
    ([{"setWeight": 20}, {"pause": {"duration": 0}}], 0, 0),
    ([{"setWeight": 20}, {"pause": {}}, P10M], 0, None),                # waits for a human
    ([{"setWeight": 20}, {"pause": {}}, P10M], 2, 600),                 # ... but before the analysis starts
    ([{"setWeight": 20}, {"analysis": {"templates": [{"templateName": "t"}]}}, P10M], 0, None),
    ([{"setWeight": 20}, {"experiment": {"duration": "5m"}}, P10M], 0, None),
    ([{"setWeight": 20}, {"plugin": {"name": "x"}}], 0, None),
    ([{"setWeight": 20}, {"setWeight": 30, "pause": {"duration": 5}}], 0, None),  # two kinds in one step
    ([{"pause": {"duration": "1d"}}], 0, None),                         # invalid: reported elsewhere
])  # fmt: skip
def test_steps_end(steps: list[dict[str, Any]], starting: int, seconds: int | None) -> None:
    assert steps_end([CanaryStep.load(s) for s in steps], starting) == seconds


@pytest.mark.parametrize(("seconds", "text"), [(0, "0s"), (59, "59s"), (600, "10m"), (3600, "1h"), (3661, "1h1m1s")])
def test_format_seconds(seconds: int, text: str) -> None:
    assert format_seconds(seconds) == text


# ---------------------------------------------------------------- the warning, through validate_rollout


def template(name: str, *metrics: Metric, **spec: Any) -> AnalysisTemplate:
    return AnalysisTemplate.load({"metadata": {"name": name}, "spec": {
        "args": [{"name": "x"}], "metrics": [m.dump() for m in metrics], **spec}})  # fmt: skip


def rollout(steps: list[dict[str, Any]], *names: str, **analysis: Any) -> Rollout:
    return Rollout.load({
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout", "metadata": {"name": "web"},
        "spec": {"selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": []}},
                 "strategy": {"canary": {"steps": steps, "analysis": {
                     "templates": [{"templateName": n} for n in names], "args": [{"name": "x", "value": "1"}],
                     **analysis}}}},
    })  # fmt: skip


def warnings(r: Rollout, *templates: AnalysisTemplate) -> list[str]:
    refs = validation.References(templates={t.metadata.name or "": t for t in templates})
    problems = validation.validate_rollout(r, refs)
    assert validation.errors(problems) == []
    assert all(p.severity is Severity.WARNING for p in problems)
    return [str(p) for p in problems]


SLOW = metric("slow", interval="5m", failureLimit=3)  # fails at 15m
QUICK = metric("quick", interval="1m", failureLimit=1)  # fails at 1m
PATH = "spec.strategy.canary.analysis.templates"


@pytest.mark.parametrize(("steps", "warned"), [
    ([{"setWeight": 50}, P10M], ["slow"]),
    ([{"setWeight": 50}, {"pause": {"duration": "15m"}}], []),          # equal: the two race, not reported
    ([{"setWeight": 50}, {"pause": {"duration": "16m"}}], []),
    ([{"setWeight": 20}, P10M, {"setWeight": 50}, P10M], []),           # 20m of pauses
    ([{"setWeight": 50}, {"pause": {}}], []),                           # a human decides: the bound is unknown
    ([{"setWeight": 50},
      {"analysis": {"templates": [{"templateName": "step"}], "args": [{"name": "x", "value": "1"}]}}],
     []),
    ([], []),                                                           # no steps: promotion waits only for pods
])  # fmt: skip
def test_each_metric_is_judged_against_the_end_of_the_steps(steps: list[dict[str, Any]], warned: list[str]) -> None:
    step = template("step", metric("gate", count=1))
    found = warnings(rollout(steps, "t"), template("t", SLOW, QUICK), step)
    assert [line.split("metric '")[1].split("'")[0] for line in found] == warned


def test_the_warning_names_the_metric_the_times_and_the_fix() -> None:
    [line] = warnings(rollout([{"setWeight": 50}, P10M], "t"), template("t", SLOW))
    assert line == (f"{PATH}[0].templateName: metric 'slow' can fail at the earliest after 15m (failureLimit 3 + 1 "
                    "failures, every 5m), but the steps end after 10m, so a failing canary keeps the last step's "
                    "weight until then, and one that succeeded once is promoted (lower "
                    "failureLimit, shorten interval, or lengthen the pauses)")  # fmt: skip


def test_initial_delay_and_starting_step_are_named_with_their_fixes() -> None:
    late = metric("late", initialDelay="2m")
    steps = [{"setWeight": 20}, {"pause": {"duration": "30m"}}, {"setWeight": 50}]
    [line] = warnings(rollout(steps, "t", startingStep=2), template("t", late))
    assert line == (f"{PATH}[0].templateName: metric 'late' can fail at the earliest after 2m (initialDelay 2m, then "
                    "failureLimit 0 + 1 failures), but the steps from startingStep 2 on have no timed pause, so a "
                    "failing canary keeps the last step's weight until then, and one that succeeded once is promoted "
                    "(shorten initialDelay, start the analysis at an earlier step, or lengthen the pauses)"
                    )  # fmt: skip
    assert warnings(rollout(steps, "t", startingStep=1), template("t", late)) == []


def test_the_path_points_at_the_template_ref_that_brings_the_metric_nested_ones_too() -> None:
    outer = AnalysisTemplate.load({"metadata": {"name": "outer"}, "spec": {"templates": [{"templateName": "inner"}]}})
    found = warnings(rollout([{"setWeight": 50}, P10M], "quick", "outer"),
                     template("quick", QUICK), outer, template("inner", SLOW))  # fmt: skip
    assert [line.split(": metric")[0] for line in found] == [f"{PATH}[1].templateName"]


@pytest.mark.parametrize("where", ["rollout", "template"])
def test_dry_run_metrics_never_abort_so_they_are_not_reported(where: str) -> None:
    rule = [{"metricName": "^sl"}]
    spec, analysis = ({"dryRun": rule}, {}) if where == "template" else ({}, {"dryRun": rule})
    r = rollout([{"setWeight": 50}, P10M], "t", **analysis)
    assert warnings(r, template("t", SLOW, metric("slower", interval="5m", failureLimit=4), **spec)) == []


def test_unknown_or_missing_templates_report_nothing_more() -> None:
    r = rollout([{"setWeight": 50}, P10M], "t", "missing")
    assert validation.validate_rollout(r) == []  # templates not known: lint was given none
    problems = validation.validate_rollout(r, validation.References(templates={"t": template("t", SLOW)}))
    assert [p.message for p in problems] == ["AnalysisTemplate 'missing' not found"]


def test_out_of_range_starting_step_is_only_the_error() -> None:
    r = rollout([{"setWeight": 50}, P10M], "t", startingStep=5)
    problems = validation.validate_rollout(r, validation.References(templates={"t": template("t", QUICK, SLOW)}))
    assert [p.path for p in problems] == ["spec.strategy.canary.analysis.startingStep"]


# ---------------------------------------------------------------- the reference example


def test_lint_warns_about_the_reference_example_and_still_passes(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(ROOT)
    assert main(["lint", "examples/istio-canary/"]) == 0
    assert capsys.readouterr().out.splitlines() == [EXAMPLE_WARNING, "OK: 4 files, 5 objects, 1 warning"]


def test_the_fixes_the_example_readme_gives_silence_the_warning() -> None:
    """failureLimit 1 (fails at 5m), interval 2m (fails at 6m), or a 15m pause (the race is not reported)."""
    base = {"name": "success-rate", "interval": "5m", "failureLimit": 3, "provider": WEB}
    for fields, pause in (({"failureLimit": 1}, "10m"), ({"interval": "2m"}, "10m"), ({}, "20m")):
        t = AnalysisTemplate.load({"metadata": {"name": "t"}, "spec": {"args": [{"name": "x"}],
                                                                     "metrics": [{**base, **fields}]}})  # fmt: skip
        assert warnings(rollout([{"setWeight": 50}, {"pause": {"duration": pause}}], "t"), t) == []


@pytest.mark.parametrize("timing", ["FULL", "SHORT"])
def test_the_demo_timings_can_abort_in_time(timing: str) -> None:
    """The example README says the demo's timings are the safe kind."""
    built = scenario.build(getattr(scenario, timing))
    t = AnalysisTemplate.load(built.template)
    assert warnings(Rollout.load(built.rollout), t) == []
    r = Rollout.load(built.rollout)
    assert r.spec.strategy.canary is not None and r.spec.strategy.canary.steps is not None
    [m] = t.spec.metrics
    assert (earliest_failure(m) or 0) < (steps_end(r.spec.strategy.canary.steps) or 0)
