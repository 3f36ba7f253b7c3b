"""Bad input (DESIGN §6): a user mistake gives InvalidSpec, a clear message, and no traffic shift.

A healthy istio-canary Rollout is updated with a new image AND a mistake in the same
edit. The controller must set the `InvalidSpec` condition whose message names the field
path and the fix, go Degraded, record one Warning event, never raise, never create the
canary's objects and never patch the VirtualService (counted by a FaultyCluster around
the InMemoryCluster). Fixing the mistake lets the same update proceed to its 50% pause.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from tests.faults.harness import NEW_IMAGE, FaultScenario, through_faults

Spec = dict[str, Any]


@dataclass(frozen=True)
class Mistake:
    break_rollout: Callable[[Spec], None] | None  # edits the Rollout's spec
    break_template: Callable[[Spec], None] | None  # or the AnalysisTemplate's spec
    path: str  # the field path the message must name
    fix: str  # words of the fix the message must give


def canary(spec: Spec) -> Spec:
    return spec["strategy"]["canary"]  # type: ignore[no-any-return]


def set_in(spec: Spec, keys: str, value: Any) -> None:
    """Set the field at a dotted path; numeric parts index lists ("steps.0.setWeight")."""
    here: Any = spec
    *parents, last = [int(key) if key.isdigit() else key for key in keys.split(".")]
    for key in parents:
        here = here[key]
    here[last] = value


MISTAKES = {
    "setWeight 120": Mistake(lambda s: set_in(canary(s), "steps.0.setWeight", 120), None,
                             "spec.strategy.canary.steps[0].setWeight", "from 0 to 100"),
    "unknown template": Mistake(lambda s: set_in(canary(s), "analysis.templates.0.templateName", "sucess-rate"), None,
                                "spec.strategy.canary.analysis.templates[0].templateName",
                                "did you mean success-rate?"),
    "missing arg": Mistake(lambda s: set_in(canary(s), "analysis.args", []), None,
                           "spec.strategy.canary.analysis.args", "add {name: service-name, value: ...} under args"),
    "route not in the VirtualService": Mistake(
        lambda s: set_in(canary(s), "trafficRouting.istio.virtualService.routes", ["secondary"]), None,
        "spec.strategy.canary.trafficRouting.istio.virtualService.routes[0]", "routes there: primary"),
    "traffic router this controller does not run": Mistake(
        lambda s: set_in(canary(s), "trafficRouting", {"nginx": {"stableIngress": "rollout-ingress"}}), None,
        "spec.strategy.canary.trafficRouting.nginx", "use trafficRouting.istio"),
    "unknown step": Mistake(lambda s: set_in(canary(s), "steps.0", {"setWait": 50}), None,
                            "spec.strategy.canary.steps[0].setWait", "did you mean setWeight?"),
    "bad duration": Mistake(lambda s: set_in(canary(s), "steps.1", {"pause": {"duration": "1d"}}), None,
                            "spec.strategy.canary.steps[1].pause.duration", "write 24h"),
    "bad expression in the template": Mistake(
        None, lambda t: set_in(t, "metrics.0.successCondition", "result[0] >="),
        "spec.strategy.canary.analysis.templates[0]", "fix the expression"),
}


@pytest.mark.parametrize("mistake", list(MISTAKES))
def test_a_mistake_is_invalid_spec_with_path_and_fix_and_shifts_no_traffic(mistake: str) -> None:
    case = MISTAKES[mistake]
    scenario, faulty = through_faults()
    cluster = scenario.cluster
    try:
        scenario.given_healthy()
        good_template = cluster.get("AnalysisTemplate", "success-rate", "default")
        vs_writes, replica_sets = len(faulty.writes_of("VirtualService")), len(cluster.list("ReplicaSet", "default"))
        # When the template is broken, or the Rollout is updated with a new image and a mistake
        if case.break_template is not None:
            broken = copy.deepcopy(good_template)
            case.break_template(broken["spec"])
            cluster.replace(broken)
        rollout = scenario.rollout
        rollout["spec"]["template"]["spec"]["containers"][0]["image"] = NEW_IMAGE
        good_strategy = copy.deepcopy(rollout["spec"]["strategy"])
        if case.break_rollout is not None:
            case.break_rollout(rollout["spec"])
        cluster.replace(rollout)
        scenario.run_for(600)
        # Then: Degraded with an InvalidSpec condition naming the field path and the fix
        status = scenario.status
        [condition] = [c for c in status.get("conditions") or [] if c["type"] == "InvalidSpec"]
        assert condition["status"] == "True" and condition["reason"] == "InvalidSpec"
        assert case.path in condition["message"], condition["message"]
        assert case.fix in condition["message"], condition["message"]
        assert scenario.phase == "Degraded" and status["message"].startswith("InvalidSpec: ")
        # one Warning event says the same (not one per retry); nothing raised, no traceback
        [event] = scenario.events("InvalidSpec")
        assert event["type"] == "Warning" and case.path in event["message"]
        assert not scenario.events("ReconcileError")
        assert scenario.manager.metrics.value("rollout_reconcile_error_total",
                                              {"namespace": "default", "name": "rollout-example"}) == 0
        assert "Traceback" not in condition["message"]
        # and no traffic shift: the VirtualService was never written, no canary was started
        assert len(faulty.writes_of("VirtualService")) == vs_writes
        assert scenario.vs_weights == (100, 0)
        assert len(cluster.list("ReplicaSet", "default")) == replica_sets
        assert scenario.analysis_runs() == []
        # When the mistake is fixed (the Rollout patched back, or the template)
        if case.break_template is not None:
            fixed = cluster.get("AnalysisTemplate", "success-rate", "default")
            fixed["spec"] = good_template["spec"]
            cluster.replace(fixed)
        else:  # the whole strategy put back (a merge patch would keep a router key the mistake added)
            fixed_rollout = scenario.rollout
            fixed_rollout["spec"]["strategy"] = good_strategy
            cluster.replace(fixed_rollout)
        scenario.run_until(lambda: scenario.phase == "Paused")
        # Then the same update proceeds to its 50% pause, and the condition is gone
        assert scenario.vs_weights == (50, 50)
        assert not [c for c in scenario.status.get("conditions") or [] if c["type"] == "InvalidSpec"
                    and c["status"] == "True"]
    finally:
        scenario.close()


def test_an_unknown_template_suggests_the_templates_that_exist() -> None:
    scenario = FaultScenario()
    scenario.provider.script("success-rate", [0.99])
    try:
        scenario.given_healthy()
        rollout = scenario.rollout
        rollout["spec"]["template"]["spec"]["containers"][0]["image"] = NEW_IMAGE
        set_in(canary(rollout["spec"]), "analysis.templates.0.templateName", "sucess-rate")
        scenario.cluster.replace(rollout)
        scenario.run_for(60)
        message = scenario.status["message"]
        assert "AnalysisTemplate 'sucess-rate' not found" in message
        assert "success-rate" in message.replace("'sucess-rate'", ""), message
    finally:
        scenario.close()
