"""AnalysisRuns of a Rollout: names, adoption after a lost status write, verdicts, documents."""

from __future__ import annotations

from typing import Any

import pytest

from analysis.build import SpecError
from rollouts.plan import runs
from rollouts.platform.labels import INSTANCE_LABEL
from rollouts.spec.model import Rollout, RolloutAnalysis
from tests.plan.builders import analysis_run, analysis_template, rollout


def test_run_names() -> None:
    assert runs.run_base_name("web", "abc", 2, None) == "web-abc-2"
    assert runs.run_base_name("web", "abc", 2, 3) == "web-abc-2-3"


BASE = "web-abc-2-1"


@pytest.mark.parametrize(("existing", "recorded", "follow", "create"), [
    ([], None, None, BASE),
    ([analysis_run(BASE, phase="Running")], BASE, BASE, BASE),
    ([], BASE, None, BASE),  # recorded but gone: made again under the same name
    ([analysis_run(BASE, phase="Running")], None, BASE, BASE),  # created, status write lost: adopted
    ([analysis_run(BASE)], None, BASE, BASE),  # no status yet counts as live
    ([analysis_run(BASE, phase="Successful")], None, BASE, BASE),
    # a lost status write (a killed controller) never buys a second measurement: the verdict stands
    ([analysis_run(BASE, phase="Failed")], None, BASE, BASE),
    ([analysis_run(BASE, phase="Error")], None, BASE, BASE),
    ([analysis_run(BASE, phase="Inconclusive")], None, BASE, BASE),
    ([analysis_run(BASE, phase="Running", terminate=True)], None, None, f"{BASE}.1"),
    ([analysis_run(BASE, phase="Failed"), analysis_run(f"{BASE}.1", phase="Failed")], None, f"{BASE}.1", f"{BASE}.1"),
    ([analysis_run(BASE, phase="Failed", terminate=True), analysis_run(f"{BASE}.1", phase="Failed",
                                                                      terminate=True)], None, None, f"{BASE}.2"),
    ([analysis_run(BASE, phase="Failed"), analysis_run(f"{BASE}.1", phase="Running")], None, f"{BASE}.1", f"{BASE}.1"),
    ([analysis_run("web-abc-2-10", phase="Running")], None, None, BASE),  # step 10 is another family
    ([analysis_run(BASE, phase="Running")], "web-abc-2-0", BASE, BASE),  # a recorded run of another step
])  # fmt: skip
def test_pick_run(existing: list[dict[str, Any]], recorded: str | None, follow: str | None, create: str) -> None:
    doc, name = runs.pick_run(existing, base=BASE, recorded=recorded)
    assert (doc["metadata"]["name"] if doc else None) == follow
    assert name == create


@pytest.mark.parametrize(("existing", "follow", "create"), [
    ([analysis_run(BASE, phase="Inconclusive")], None, f"{BASE}.1"),
    ([analysis_run(BASE, phase="Failed"), analysis_run(f"{BASE}.1", phase="Failed")], None, f"{BASE}.2"),
    ([analysis_run(BASE, phase="Inconclusive"), analysis_run(f"{BASE}.1", phase="Running")], f"{BASE}.1", f"{BASE}.1"),
])  # fmt: skip
def test_pick_run_again_after_a_resumed_inconclusive_run_skips_finished_bad_ones(
        existing: list[dict[str, Any]], follow: str | None, create: str) -> None:
    doc, name = runs.pick_run(existing, base=BASE, recorded=None, again=True)
    assert (doc["metadata"]["name"] if doc else None) == follow
    assert name == create


def test_verdict_prefers_the_run_message_then_the_metric() -> None:
    run = analysis_run(BASE, phase="Failed", message='Metric "x" assessed Failed due to failed (2) > failureLimit (1)')
    assert runs.verdict(run) == 'Metric "x" assessed Failed due to failed (2) > failureLimit (1)'
    run["status"] = {"phase": "Failed", "metricResults": [
        {"name": "latency", "phase": "Successful"},
        {"name": "errors", "phase": "Failed", "message": "too many",
         "measurements": [{"phase": "Failed", "value": "0.2"}]},
    ]}  # fmt: skip
    assert runs.verdict(run) == 'Metric "errors" assessed Failed: too many (last value 0.2)'


def test_build_run_doc_resolves_rollout_args_and_labels() -> None:
    doc = rollout()
    doc["status"] = {"stableRS": "stablehash"}
    analysis = RolloutAnalysis.load({
        "templates": [{"templateName": "success-rate"}],
        "args": [{"name": "service", "valueFrom": {"podTemplateHashValue": "Latest"}}],
        "analysisRunMetadata": {"labels": {"team": "a"}, "annotations": {"note": "x"}},
    })  # fmt: skip
    request = runs.RunRequest(runs.STEP_RUN, "web-newhash-2-1", analysis, 1, "newhash", "stablehash", 2)
    run = runs.build_run_doc(Rollout.load(doc), request, [analysis_template()])
    assert run["metadata"]["labels"] == {"team": "a", "app": "web", "rollouts-pod-template-hash": "newhash",
                                         "rollout-type": "Step", "step-index": "1"}
    assert run["metadata"]["annotations"] == {"note": "x", "rollout.argoproj.io/revision": "2"}
    assert run["spec"]["args"] == [{"name": "service", "value": "newhash"}]
    assert "dryRun" not in run["spec"]


def test_build_run_doc_names_a_missing_template() -> None:
    analysis = RolloutAnalysis.load({"templates": [{"templateName": "nope", "clusterScope": True}]})
    request = runs.RunRequest(runs.BACKGROUND_RUN, "web-h-1", analysis, None, "h", None, 1)
    with pytest.raises(SpecError, match="ClusterAnalysisTemplate 'nope' not found"):
        runs.build_run_doc(Rollout.load(rollout()), request, [analysis_template()])


@pytest.mark.parametrize("instance", [None, "blue"])
def test_build_run_doc_copies_the_rollouts_instance_id_label(instance: str | None) -> None:
    doc = rollout()
    if instance is not None:
        doc["metadata"]["labels"] = {INSTANCE_LABEL: instance, "team": "not copied"}
    analysis = RolloutAnalysis.load({"templates": [{"templateName": "success-rate"}],
                                     "args": [{"name": "service", "value": "web"}]})
    request = runs.RunRequest(runs.BACKGROUND_RUN, "web-h-1", analysis, None, "h", None, 1)
    labels = runs.build_run_doc(Rollout.load(doc), request, [analysis_template()])["metadata"]["labels"]
    assert labels.get(INSTANCE_LABEL) == instance
    assert "team" not in labels
