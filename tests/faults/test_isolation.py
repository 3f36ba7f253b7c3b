"""One broken Rollout never stops the others (DESIGN §6).

Several Rollouts share one controller: three healthy ones, one whose every pass raises
(its ReplicaSet create hits a bug-shaped RuntimeError in a FaultyCluster), one with a
spec the plan cannot run (setWeight 120) and one the models cannot read at all
(replicas: "many"). The healthy ones go through a whole canary update; the broken ones
are recorded (a Warning event and a metric) and retried with bounded backoff. Reconcile
attempts are counted (the `rollout_reconcile` histogram's count) over stepped minutes:
no hot loop.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from tests.controller.dsl import route_weights
from tests.faults.faulty import FaultyCluster
from tests.faults.harness import NEW_IMAGE, FaultScenario

GOOD = ("rollout-example", "good-a", "good-b")
BROKEN, INVALID, UNREADABLE = "broken", "invalid", "unreadable"


def renamed(docs: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    """The istio-canary objects as Rollout `name` with its own VirtualService and Services."""
    text = json.dumps([doc for doc in docs if doc["kind"] != "AnalysisTemplate"])
    for old in ("rollout-vsvc", "canary-svc", "stable-svc"):
        text = text.replace(old, f"{name}-{old}")
    return json.loads(text.replace("rollout-example", name))  # type: ignore[no-any-return]


def rollout_of(docs: list[dict[str, Any]]) -> dict[str, Any]:
    return next(doc for doc in docs if doc["kind"] == "Rollout")


def test_broken_rollouts_are_recorded_and_retried_with_backoff_while_the_others_complete(
        caplog: pytest.LogCaptureFixture) -> None:
    # each failed pass logs its traceback; formatting ~100 of them for the report takes seconds
    caplog.set_level(logging.CRITICAL, logger="rollouts.controller.manager")
    scenario = FaultScenario()
    faulty = FaultyCluster(scenario.cluster)
    faulty.always_fail("create", "ReplicaSet", f"{BROKEN}-", RuntimeError("boom: a bug in a hook"))
    scenario.manager = scenario.new_manager(cluster=faulty)
    scenario.provider.script("success-rate", [0.99])
    cluster = scenario.cluster
    metrics = scenario.manager.metrics

    def reconciles(name: str) -> float:
        return metrics.value("rollout_reconcile_count", {"namespace": "default", "name": name})

    def phase(name: str) -> str | None:
        return (cluster.get("Rollout", name, "default").get("status") or {}).get("phase")

    def promoted(name: str) -> bool:
        status = cluster.get("Rollout", name, "default").get("status") or {}
        return status.get("phase") == "Healthy" and status.get("stableRS") == status.get("currentPodHash")

    try:
        extra = {name: renamed(scenario.docs, name) for name in (*GOOD[1:], BROKEN, INVALID, UNREADABLE)}
        rollout_of(extra[INVALID])["spec"]["strategy"]["canary"]["steps"][0]["setWeight"] = 120
        rollout_of(extra[UNREADABLE])["spec"]["replicas"] = "many"
        scenario.given_objects()
        for docs in extra.values():
            for doc in docs:
                cluster.create(doc)
        # When the controller runs for one stepped minute from the start
        scenario.run_for(60)
        # Then the good ones are deployed, the broken ones are not, and nothing raised for the good ones
        assert all(phase(name) == "Healthy" for name in GOOD)
        assert phase(BROKEN) is None
        assert phase(INVALID) == "Degraded"
        # and the raising one was retried with the queue's backoff (5 ms doubling to a 10 s cap:
        # about 16 passes in the first minute), never in a hot loop
        assert 10 <= reconciles(BROKEN) <= 20, reconciles(BROKEN)
        assert reconciles(INVALID) <= 6 and reconciles(UNREADABLE) <= 6
        # When the good ones are updated, while the broken ones keep failing
        for name in GOOD:
            rollout = cluster.get("Rollout", name, "default")
            rollout["spec"]["template"]["spec"]["containers"][0]["image"] = NEW_IMAGE
            cluster.replace(rollout)
        scenario.run_until(lambda: all(promoted(name) for name in GOOD), max_seconds=3600)
        # Then each good one went 50% -> 100% -> stable and is fully promoted
        for name in GOOD:
            vs = cluster.get("VirtualService", f"{name}-rollout-vsvc" if name != "rollout-example" else "rollout-vsvc",
                             "default")
            stable, canary = ("stable-svc", "canary-svc") if name == "rollout-example" else (
                f"{name}-stable-svc", f"{name}-canary-svc")
            assert route_weights(vs, "primary", stable=stable, canary=canary) == (100, 0)
            assert metrics.value("rollout_reconcile_error_total", {"namespace": "default", "name": name}) == 0
        assert [canary for _, _, canary in scenario.weights.entries] == [0, 50, 100, 0]
        # and the broken ones are recorded: a Warning event (aggregated) and the error metric
        events = [e for e in cluster.list("Event", "default") if e["type"] == "Warning"]
        [boom] = [e for e in events if e["involvedObject"]["name"] == BROKEN]
        assert boom["reason"] == "ReconcileError" and "RuntimeError: boom" in boom["message"]
        assert boom["count"] >= 10
        assert metrics.value("rollout_reconcile_error_total", {"namespace": "default", "name": BROKEN}) >= 10
        [invalid] = [e for e in events if e["involvedObject"]["name"] == INVALID]
        assert invalid["reason"] == "InvalidSpec" and "steps[0].setWeight" in invalid["message"]
        [unreadable] = [e for e in events if e["involvedObject"]["name"] == UNREADABLE]
        assert unreadable["reason"] == "InvalidSpec" and "spec.replicas" in unreadable["message"]
        assert not [e for e in events if "Traceback" in e["message"]]
        # When, after the old ReplicaSets' 30 s scale-down delay, one more stepped minute passes
        scenario.run_for(60)
        before = {name: reconciles(name) for name in (*GOOD, BROKEN, INVALID, UNREADABLE)}
        scenario.run_for(60)
        spent = {name: reconciles(name) - count for name, count in before.items()}
        # Then the raising one is retried at the 10 s cap, the invalid ones every 20 s, the good ones not at all
        assert 5 <= spent[BROKEN] <= 7, spent
        assert 2 <= spent[INVALID] <= 4 and 2 <= spent[UNREADABLE] <= 4, spent
        assert all(spent[name] <= 1 for name in GOOD), spent
    finally:
        scenario.close()
