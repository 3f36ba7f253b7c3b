"""The Rollout reconciler remembers one validation per Rollout, not one per update (issue 14: memory flat over a day).

Found by benchmarks/bench_scale.py's day, measuring what the controller alone holds: the memo of
validate_rollout answers was keyed by (generation, versions of the referenced objects) and kept
every key until 10,000 had piled up, so it grew with every update and every referenced object's
new version. Now a new key replaces the Rollout's old one, and a deleted Rollout's goes with it;
a changed spec is still validated afresh.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.controller.dsl import Scenario

HEALTHY = [0.99]


@pytest.fixture
def istio() -> Iterator[Scenario]:
    scenario = Scenario("istio-canary")
    yield scenario
    scenario.close()


def test_updates_keep_one_remembered_validation_and_a_deleted_rollout_keeps_none(istio: Scenario) -> None:
    istio.provider.script("success-rate", HEALTHY)
    istio.given_healthy()
    memo = istio.manager.rollouts._validated
    for colour in ("yellow", "green", "purple", "orange"):
        istio.when_image(f"argoproj/rollouts-demo:{colour}").run_until(lambda: istio.phase == "Paused")
        istio.run_until(lambda: istio.phase == "Healthy")
        assert len(memo) == 1  # one per Rollout, however many generations and referenced versions
    assert istio.rollout["metadata"]["generation"] >= 5
    istio.cluster.delete("Rollout", "rollout-example", "default")
    istio.run_for(60.0)
    assert memo == {}


def test_a_changed_spec_is_validated_again_not_answered_from_the_memo(istio: Scenario) -> None:
    istio.provider.script("success-rate", HEALTHY)
    istio.given_healthy()
    rollout = istio.rollout
    rollout["spec"]["strategy"]["canary"]["canaryService"] = "no-such-svc"
    istio.cluster.replace(rollout)
    istio.run_for(60.0)
    conditions = {c["type"]: c for c in istio.status.get("conditions") or []}
    assert conditions["InvalidSpec"]["status"] == "True" and "no-such-svc" in conditions["InvalidSpec"]["message"]
    assert istio.phase == "Degraded"
    rollout = istio.rollout
    rollout["spec"]["strategy"]["canary"]["canaryService"] = "canary-svc"
    istio.cluster.replace(rollout)
    istio.run_until(lambda: istio.phase == "Healthy")
    assert len(istio.manager.rollouts._validated) == 1
