"""The controller shell: writes only on change, isolation of a broken Rollout, scoping,
VirtualService fan-in and 409 handling, API faults, leader election, threads.

Everything runs on the InMemoryCluster with a SteppedClock; API writes are counted by a
wrapper around the Cluster, faults are injected by the same wrapper.
"""

from __future__ import annotations

import collections
import json
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
import tenacity
from pydantic import ValidationError

from analysis.providers import Providers
from rollouts.controller.manager import INSTANCE_LABEL, Manager, Stalled
from rollouts.controller.reconciler import unreadable_problems
from rollouts.controller.workqueue import Key
from rollouts.memory.cluster import InMemoryCluster
from rollouts.platform.clock import SteppedClock
from rollouts.platform.cluster import Unavailable
from rollouts.spec.model import Rollout
from tests.controller.dsl import START, CountingCluster, Follower, Scenario, ScriptedProvider, load_example, wait_for

NEW_IMAGE = "argoproj/rollouts-demo:yellow"


def count_writes(scenario: Scenario) -> CountingCluster:
    """Put a write-counting wrapper between the scenario's controller and its cluster."""
    counting = CountingCluster(scenario.cluster)
    scenario.cluster = counting
    scenario.manager = scenario.new_manager()
    return counting


@pytest.fixture
def counted() -> Iterator[Scenario]:
    scenario = Scenario("istio-canary", manager_options={"retry_wait": tenacity.wait_none()})
    count_writes(scenario)
    scenario.provider.script("success-rate", [0.99])
    yield scenario
    scenario.close()


# ------------------------------------------------------------ writes


def test_a_reconcile_with_nothing_to_do_makes_no_write(counted: Scenario) -> None:
    counted.given_healthy()
    counted.when_image(NEW_IMAGE).run_until(lambda: counted.phase == "Paused")
    cluster: CountingCluster = counted.cluster  # type: ignore[assignment]
    before = len(cluster.writes)
    for _ in range(3):
        counted.manager.rollouts.reconcile("default", "rollout-example")
        counted.manager.queue.add(Key("Rollout", "default", "rollout-example"))
        counted.manager.step()
    assert cluster.writes[before:] == []



def test_the_multi_step_update_writes_each_step_index_once_and_each_weight_once() -> None:
    scenario = Scenario("multi-step", stable="stable", canary="canary")
    try:
        counting = count_writes(scenario)
        scenario.provider.script("error-rate", [0.01])
        scenario.given_healthy()
        steps = Follower(counting, scenario.clock, kind="Rollout", name="multi-step", namespace="default",
                         extract=lambda ro: (ro.get("status") or {}).get("currentStepIndex"))
        scenario.when_image(NEW_IMAGE)
        counting.writes.clear()
        scenario.run_until(lambda: scenario.phase == "Healthy"
                           and scenario.status["stableRS"] == scenario.status["currentPodHash"])
        steps.poll()
        assert [index for _, index in steps.values] == [8, 0, 1, 2, 3, 4, 5, 6, 7, 8], "every index, once"
        writes = collections.Counter((verb, kind) for verb, kind, _ in counting.writes
                                     if kind != "Event" and (verb, kind) != ("patch_status", "AnalysisRun"))
        assert writes == {
            ("patch_status", "Rollout"): 9 + 1,  # one per step index 0..8, one when the step run turns Running
            ("patch", "VirtualService"): 5,  # 10, 25, 50, 100, then 0 on the promoted stable
            ("patch", "DestinationRule"): 2,  # the canary subset onto the new pods; the stable one at promotion
            ("create", "ReplicaSet"): 1,
            ("patch", "ReplicaSet"): 3,  # scaled up for 50% and 100%; the old stable's scale-down deadline
            ("create", "AnalysisRun"): 1,
        }
    finally:
        scenario.close()

def test_a_pause_writes_nothing_but_the_analysis_and_its_end_writes_weight_and_status(counted: Scenario) -> None:
    counted.given_healthy()
    counted.when_image(NEW_IMAGE).run_until(lambda: counted.phase == "Paused")
    cluster: CountingCluster = counted.cluster  # type: ignore[assignment]
    before = len(cluster.writes)
    counted.run_for(599)
    during = {kind for _, kind, _ in cluster.writes[before:]}
    assert during == {"AnalysisRun"}, "while paused only the background analysis measures"
    before = len(cluster.writes)
    counted.run_for(1)
    kinds = [(verb, kind) for verb, kind, _ in cluster.writes[before:] if kind in ("Rollout", "VirtualService")]
    assert ("patch", "VirtualService") in kinds and ("patch_status", "Rollout") in kinds


# ------------------------------------------------------------ isolation


def make_rollout(docs: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    """The istio-canary objects renamed to `name` (its own VS and Services; the template is shared)."""
    text = json.dumps([doc for doc in docs if doc["kind"] != "AnalysisTemplate"])
    for old in ("rollout-vsvc", "canary-svc", "stable-svc"):
        text = text.replace(old, f"{name}-{old}")
    return json.loads(text.replace("rollout-example", name))  # type: ignore[no-any-return]


def test_one_broken_rollout_never_stops_the_others() -> None:
    scenario = Scenario("istio-canary")
    try:
        counting = count_writes(scenario)
        scenario.provider.script("success-rate", [0.99])
        scenario.given_objects()
        for doc in make_rollout(scenario.docs, "other"):
            counting.create(doc)
        # a bug-shaped failure on every write to "other"'s VirtualService
        counting.fail[("patch", "VirtualService", "other-rollout-vsvc")] = [RuntimeError("boom")] * 1000
        scenario.run_until(lambda: scenario.phase == "Healthy")
        scenario.when_image(NEW_IMAGE)
        other = counting.get("Rollout", "other", "default")
        other["spec"]["template"]["spec"]["containers"][0]["image"] = NEW_IMAGE
        counting.replace(other)
        scenario.run_until(lambda: scenario.phase == "Healthy" and scenario.status["stableRS"]
                           == scenario.status["currentPodHash"] and scenario.vs_weights == (100, 0)
                           and scenario.clock.now() > START + timedelta(minutes=5))
        metrics = scenario.manager.metrics
        assert metrics.value("rollout_reconcile_error_total", {"namespace": "default", "name": "other"}) >= 3
        assert metrics.value("rollout_reconcile_error_total", {"namespace": "default", "name": "rollout-example"}) == 0
        [event] = [e for e in counting.list("Event", "default") if e["reason"] == "ReconcileError"]
        assert event["involvedObject"]["name"] == "other" and "boom" in event["message"]
        assert event["type"] == "Warning" and event["count"] >= 3
        # retried with backoff capped at 10 s (11 doublings from 5 ms to get there), never in a hot loop
        elapsed = (scenario.clock.now() - START).total_seconds()
        retries = scenario.manager.queue.num_requeues(Key("Rollout", "default", "other"))
        assert elapsed / 10 <= retries <= 11 + elapsed / 10 + 15
    finally:
        scenario.close()


def test_an_unreadable_rollout_is_reported_and_others_proceed() -> None:
    scenario = Scenario("istio-canary")
    try:
        scenario.provider.script("success-rate", [0.99])
        scenario.given_objects()
        bad = make_rollout(scenario.docs, "bad")
        for doc in bad:
            if doc["kind"] == "Rollout":
                doc["spec"]["replicas"] = "many"
            scenario.cluster.create(doc)
        scenario.run_until(lambda: scenario.phase == "Healthy")
        [event] = [e for e in scenario.cluster.list("Event", "default") if e["involvedObject"]["name"] == "bad"]
        assert event["reason"] == "InvalidSpec" and "spec.replicas" in event["message"]
        assert "Traceback" not in event["message"]
    finally:
        scenario.close()



def _bad_weight(spec: dict[str, Any]) -> None:
    spec["strategy"]["canary"]["steps"][0]["setWeight"] = "abc"


def _no_strategy(spec: dict[str, Any]) -> None:
    del spec["strategy"]


@pytest.mark.parametrize(("breaks", "names"), [
    (_bad_weight, "spec.strategy.canary.steps[0].setWeight: must be an integer, got 'abc' "
                  "(write a whole number such as 20, without quotes)"),
    (_no_strategy, "spec.strategy: is required (add strategy.canary with its steps)"),
])  # fmt: skip
def test_a_rollout_the_models_cannot_load_is_invalid_spec_and_shifts_no_traffic(
        breaks: Callable[[dict[str, Any]], None], names: str) -> None:
    scenario = Scenario("istio-canary")
    try:
        counting = count_writes(scenario)
        scenario.provider.script("success-rate", [0.99])
        scenario.given_objects()
        for doc in make_rollout(scenario.docs, "bad"):
            counting.create(doc)
        scenario.run_until(lambda: scenario.phase == "Healthy"
                           and counting.get("Rollout", "bad", "default")["status"].get("phase") == "Healthy")
        # When a user applies a new image to both, one of them with a spec the models cannot read
        bad = counting.get("Rollout", "bad", "default")
        healthy_status, good_spec = bad["status"], json.loads(json.dumps(bad["spec"]))
        breaks(bad["spec"])
        if "strategy" in bad["spec"]:
            bad["spec"]["template"]["spec"]["containers"][0]["image"] = NEW_IMAGE
        counting.replace(bad)
        counting.writes.clear()
        scenario.when_image(NEW_IMAGE)
        scenario.run_until(lambda: scenario.phase == "Healthy" and scenario.status["stableRS"]
                           == scenario.status["currentPodHash"] and scenario.clock.now() > START + timedelta(minutes=5))
        # Then the other Rollout went through its update
        assert scenario.weights.canary_weights == [0, 50, 100, 0]
        # and the broken one says what is wrong and how to fix it, in status: InvalidSpec, Degraded
        status = counting.get("Rollout", "bad", "default")["status"]
        [invalid] = [c for c in status["conditions"] if c["type"] == "InvalidSpec"]
        assert (invalid["status"], invalid["reason"], invalid["message"]) == ("True", "InvalidSpec", names)
        assert status["phase"] == "Degraded" and status["message"] == f"InvalidSpec: {names}"
        assert status["observedGeneration"] == str(counting.get("Rollout", "bad", "default")["metadata"]["generation"])
        assert {k: status[k] for k in ("stableRS", "currentPodHash", "canary")} == {
            k: healthy_status[k] for k in ("stableRS", "currentPodHash", "canary")}, "nothing else moved"
        # with one status write and one Warning event in 10 minutes, and no write to its objects at all
        mine = [(verb, kind) for verb, kind, name in counting.writes if name.startswith("bad") and kind != "Event"]
        assert mine == [("patch_status", "Rollout")]
        [event] = [e for e in counting.list("Event", "default")
                   if e["involvedObject"]["name"] == "bad" and e["reason"] == "InvalidSpec"]
        assert event["type"] == "Warning" and event["message"] == names and event["count"] == 1
        vs = counting.get("VirtualService", "bad-rollout-vsvc", "default")
        assert vs["spec"]["http"][0]["route"][1]["weight"] == 0
        # When the spec is fixed, the update runs and the condition goes
        fixed = counting.get("Rollout", "bad", "default")
        fixed["spec"] = good_spec
        fixed["spec"]["template"]["spec"]["containers"][0]["image"] = NEW_IMAGE
        counting.replace(fixed)
        scenario.run_until(lambda: (lambda st: st.get("phase") == "Healthy" and st["stableRS"] == st["currentPodHash"]
                                    != healthy_status["stableRS"])(counting.get("Rollout", "bad", "default")["status"]))
        conditions = counting.get("Rollout", "bad", "default")["status"]["conditions"]
        assert "InvalidSpec" not in [c["type"] for c in conditions]
    finally:
        scenario.close()



def test_unreadable_problems_fall_back_to_pydantics_errors_at_wire_paths() -> None:
    [rollout] = [doc for doc in load_example("istio-canary") if doc["kind"] == "Rollout"]
    broken = json.loads(json.dumps(rollout))
    broken["spec"]["strategy"]["canary"]["steps"][0]["setWeight"] = "abc"
    with pytest.raises(ValidationError) as caught:
        Rollout.load(broken)
    # the CRD schema names the field and the fix
    [schema] = unreadable_problems(broken, caught.value)
    assert str(schema) == ("spec.strategy.canary.steps[0].setWeight: must be an integer, got 'abc' "
                           "(write a whole number such as 20, without quotes)")
    # a model rule the schema does not express (here: the schema finds nothing) keeps pydantic's wording
    [fallback] = unreadable_problems(rollout, caught.value)
    assert fallback.path == "spec.strategy.canary.steps[0].setWeight" and "integer" in fallback.message


# ------------------------------------------------------------ scoping


def test_instance_ids_split_rollouts_between_controllers() -> None:
    clock_owner = Scenario("istio-canary")
    try:
        cluster, clock = clock_owner.cluster, clock_owner.clock
        blue_docs = make_rollout(clock_owner.docs, "blue")
        for doc in blue_docs:
            if doc["kind"] == "Rollout":
                doc["metadata"].setdefault("labels", {})[INSTANCE_LABEL] = "blue"
        for doc in clock_owner.docs + blue_docs:
            cluster.create(doc)
        provider = ScriptedProvider()
        provider.script("success-rate", [0.99])
        plain = Manager(cluster, Providers({"prometheus": provider}), clock=clock, leader_election=False)
        blue = Manager(cluster, Providers({"prometheus": provider}), clock=clock, leader_election=False,
                       instance_id="blue")
        plain.step()
        assert cluster.get("Rollout", "rollout-example", "default").get("status", {}).get("phase") == "Healthy"
        assert "status" not in cluster.get("Rollout", "blue", "default"), "the unlabelled controller leaves it"
        blue.step()
        assert cluster.get("Rollout", "blue", "default")["status"]["phase"] == "Healthy"
        # the blue controller's AnalysisRuns carry its label, so only it measures them
        rollout = cluster.get("Rollout", "blue", "default")
        rollout["spec"]["template"]["spec"]["containers"][0]["image"] = NEW_IMAGE
        cluster.replace(rollout)
        blue.step()
        [run] = list(cluster.list("AnalysisRun", "default"))
        assert run["metadata"]["labels"][INSTANCE_LABEL] == "blue"
        assert Key("AnalysisRun", "default", run["metadata"]["name"]) not in plain.route("AnalysisRun", "MODIFIED", run)
        assert Key("AnalysisRun", "default", run["metadata"]["name"]) in blue.route("AnalysisRun", "MODIFIED", run)
        assert len(provider.calls) == 1
    finally:
        clock_owner.close()


def test_a_namespaced_controller_only_sees_its_namespace() -> None:
    scenario = Scenario("istio-canary", namespace="team-a")
    try:
        scenario.provider.script("success-rate", [0.99])
        for doc in scenario.docs + load_example("istio-canary", "team-b"):
            scenario.cluster.create(doc)
        manager = Manager(scenario.cluster, Providers({"prometheus": scenario.provider}), clock=scenario.clock,
                          namespace="team-a", leader_election=False)
        manager.step()
        assert scenario.cluster.get("Rollout", "rollout-example", "team-a")["status"]["phase"] == "Healthy"
        assert "status" not in scenario.cluster.get("Rollout", "rollout-example", "team-b")
    finally:
        scenario.close()


# ------------------------------------------------------------ VirtualService


def test_an_out_of_band_weight_edit_is_corrected(counted: Scenario) -> None:
    counted.given_healthy()
    counted.when_image(NEW_IMAGE).run_until(lambda: counted.phase == "Paused")
    vs = counted.cluster.get("VirtualService", "rollout-vsvc", "default")
    for destination in vs["spec"]["http"][0]["route"]:
        destination["weight"] = 100 if destination["destination"]["host"] == "stable-svc" else 0
    counted.cluster.replace(vs)  # e.g. a GitOps sync
    counted.manager.step()  # no time passes: the VirtualService event itself brings the Rollout back
    counted.settle_history()
    assert counted.vs_weights == (50, 50)
    assert counted.weights.canary_weights[-3:] == [50, 0, 50]


def test_a_409_on_the_virtual_service_reads_it_again_and_retries(counted: Scenario) -> None:
    counted.given_healthy()
    cluster: CountingCluster = counted.cluster  # type: ignore[assignment]

    def someone_else_edits() -> None:
        vs = cluster.inner.get("VirtualService", "rollout-vsvc", "default")
        vs["metadata"].setdefault("labels", {})["edited-by"] = "someone-else"
        cluster.inner.replace(vs)

    cluster.before[("patch", "VirtualService", "rollout-vsvc")] = someone_else_edits
    counted.when_image(NEW_IMAGE).run_until(lambda: counted.phase == "Paused")
    vs = cluster.get("VirtualService", "rollout-vsvc", "default")
    assert vs["metadata"]["labels"]["edited-by"] == "someone-else", "their edit is kept"
    assert counted.vs_weights == (50, 50), "and ours is applied on the fresh copy"
    assert counted.manager.metrics.value("rollout_reconcile_error_total",
                                         {"namespace": "default", "name": "rollout-example"}) == 0


def test_unavailable_api_is_retried_with_bounded_backoff(counted: Scenario) -> None:
    counted.given_healthy()
    cluster: CountingCluster = counted.cluster  # type: ignore[assignment]
    cluster.fail[("patch", "VirtualService", "rollout-vsvc")] = [Unavailable("etcd leader changed")] * 2
    counted.when_image(NEW_IMAGE).run_until(lambda: counted.phase == "Paused")
    assert counted.vs_weights == (50, 50)
    assert counted.manager.metrics.value("rollout_reconcile_error_total",
                                         {"namespace": "default", "name": "rollout-example"}) == 0
    # a longer outage fails the pass (bounded), is counted, and is retried by the queue
    counted.when_promote()
    cluster.fail[("patch_status", "Rollout", "rollout-example")] = [Unavailable("down")] * 4
    counted.run_until(lambda: counted.phase == "Healthy")
    assert counted.manager.metrics.value("rollout_reconcile_error_total",
                                         {"namespace": "default", "name": "rollout-example"}) == 1


# ------------------------------------------------------------ leader election and threads


def test_only_the_leader_reconciles_and_a_successor_takes_over_after_expiry() -> None:
    scenario = Scenario("istio-canary")
    try:
        scenario.provider.script("success-rate", [0.99])
        scenario.given_objects()
        options = {"leader_election": True, "lease_namespace": "argo-rollouts"}
        one = Manager(scenario.cluster, Providers({"prometheus": scenario.provider}), clock=scenario.clock,
                      identity="one", **options)
        two = Manager(scenario.cluster, Providers({"prometheus": scenario.provider}), clock=scenario.clock,
                      identity="two", **options)
        assert one.step() > 0
        assert two.step() == 0
        assert scenario.phase == "Healthy"
        # one dies without releasing; two keeps trying and leads once the lease expired
        scenario.when_image(NEW_IMAGE)
        two.run_until(lambda: scenario.phase == "Paused")
        lease = scenario.cluster.get("Lease", "rollouts-controller-lock", "argo-rollouts")["spec"]
        assert lease["holderIdentity"] == "two" and lease["leaseTransitions"] == 1
        assert scenario.clock.now() - START >= timedelta(seconds=15)
        assert two.metrics.value("rollouts_controller_leader") == 1
    finally:
        scenario.close()


def test_the_threaded_manager_runs_a_canary_on_a_stepped_clock() -> None:
    scenario = Scenario("istio-canary", manager_options={"leader_election": True, "workers": 3})
    try:
        scenario.provider.script("success-rate", [0.99])
        scenario.given_objects()
        manager = scenario.manager
        manager.start()
        wait_for(lambda: scenario.phase == "Healthy", "the first revision to be healthy")
        scenario.when_image(NEW_IMAGE)
        wait_for(lambda: scenario.phase == "Paused" and scenario.vs_weights == (50, 50), "the pause at 50%")
        scenario.clock.advance(timedelta(minutes=10))
        wait_for(lambda: scenario.phase == "Healthy" and scenario.vs_weights == (100, 0), "promotion")
        manager.stop()
        assert not manager.healthy()
        lease = scenario.cluster.get("Lease", "rollouts-controller-lock", "default")["spec"]
        assert lease["holderIdentity"] == "", "a graceful stop releases the lease"
    finally:
        scenario.close()


def test_run_until_says_when_nothing_is_scheduled() -> None:
    clock = SteppedClock(START)
    manager = Manager(InMemoryCluster(clock=clock.now), Providers({}), clock=clock, leader_election=False)
    with pytest.raises(Stalled, match="nothing is scheduled"):
        manager.run_until(lambda: False)
