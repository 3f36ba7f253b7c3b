"""What /metrics says about a release, from the controller's own reconciles (rollouts.controller.metrics).

Covers, through the istio-canary example on the stepped clock: a canary that promotes (step,
set and actual weight, the measured value and its threshold, one promotion, the lead time), one
aborted by its analysis, one aborted by the user, one past its progress deadline with
progressDeadlineAbort (each abort counted once, by its reason, also after a controller
restart); Argo's per-run phase series; a deleted Rollout (and one gone while the watch was
down) losing every series; the hook counters; bounded labels."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest

from rollouts.controller.metrics import ControllerMetrics
from tests.controller.dsl import Scenario

NEW_IMAGE = "argoproj/rollouts-demo:yellow"
HEALTHY, FAILING = [0.99], [0.42]
ROLLOUT = {"namespace": "default", "rollout": "rollout-example"}
VALUE = {**ROLLOUT, "analysis": "Background", "metric": "success-rate"}
REASONS = ("analysis", "gate", "deadline", "manual")


@pytest.fixture
def istio() -> Iterator[Scenario]:
    scenario = Scenario("istio-canary")
    yield scenario
    scenario.close()


def sample(scenario: Scenario, name: str, labels: dict[str, str]) -> float | None:
    return scenario.manager.metrics.registry.get_sample_value(name, labels)


def aborts(scenario: Scenario) -> dict[str, float | None]:
    return {reason: sample(scenario, "rollouts_aborts_total", {**ROLLOUT, "reason": reason}) for reason in REASONS}


def long_pause(scenario: Scenario, seconds: int = 1800) -> None:
    rollout = next(doc for doc in scenario.docs if doc["kind"] == "Rollout")
    rollout["spec"]["strategy"]["canary"]["steps"][1] = {"pause": {"duration": seconds}}


def test_a_promoted_canary_shows_its_steps_weights_value_threshold_and_one_promotion(istio: Scenario) -> None:
    istio.provider.script("success-rate", HEALTHY)
    istio.given_healthy()
    # the first deploy has no update to promote: every counter is there, at 0
    assert sample(istio, "rollouts_promotions_total", ROLLOUT) == 0
    assert aborts(istio) == dict.fromkeys(REASONS, 0.0)
    istio.when_image(NEW_IMAGE).run_until(lambda: istio.phase == "Paused")
    assert sample(istio, "rollouts_rollout_step", ROLLOUT) == 1
    assert sample(istio, "rollouts_rollout_set_weight", ROLLOUT) == 50
    assert sample(istio, "rollouts_rollout_actual_weight", ROLLOUT) == 50
    assert sample(istio, "rollouts_analysis_metric_value", VALUE) == 0.99
    assert sample(istio, "rollouts_analysis_metric_threshold", {**VALUE, "condition": "success"}) == 0.95
    assert sample(istio, "rollouts_analysis_metric_threshold", {**VALUE, "condition": "failure"}) is None
    [run] = istio.analysis_runs()
    run_labels = {"namespace": "default", "name": run["metadata"]["name"], "metric": "success-rate",
                  "type": "prometheus", "dry_run": "false"}
    assert sample(istio, "analysis_run_metric_phase", {**run_labels, "phase": "Running"}) == 1
    assert sample(istio, "analysis_run_metric_phase", {**run_labels, "phase": "Failed"}) == 0
    assert sample(istio, "analysis_run_phase", {"namespace": "default", "name": run["metadata"]["name"],
                                                "phase": "Running"}) == 1
    istio.run_until(lambda: istio.phase == "Healthy")
    assert sample(istio, "rollouts_promotions_total", ROLLOUT) == 1
    assert aborts(istio) == dict.fromkeys(REASONS, 0.0)
    # the update (its new ReplicaSet, at the image change) to its promotion: the 10-minute pause
    assert sample(istio, "rollouts_lead_time_seconds_count", ROLLOUT) == 1
    assert sample(istio, "rollouts_lead_time_seconds_sum", ROLLOUT) == 600
    assert sample(istio, "rollout_duration_seconds_sum", {"status": "Promoted"}) == 600
    assert sample(istio, "rollouts_rollout_step", ROLLOUT) == 2
    assert sample(istio, "rollouts_rollout_set_weight", ROLLOUT) == 100
    assert sample(istio, "rollouts_rollout_actual_weight", ROLLOUT) == 0  # the new stable takes the traffic
    assert sample(istio, "rollouts_analysis_metric_value", VALUE) == 0.99, "the last value stays after the run"
    assert sample(istio, "rollout_info", {"namespace": "default", "name": "rollout-example", "strategy": "canary",
                                          "traffic_router": "istio", "phase": "Healthy"}) == 1
    # more reconciles (and a new controller reading the promoted status back) count nothing again
    istio.run_for(3600)
    assert sample(istio, "rollouts_promotions_total", ROLLOUT) == 1
    istio.manager = istio.new_manager()
    istio.run_for(600)
    assert sample(istio, "rollouts_promotions_total", ROLLOUT) == 0
    assert sample(istio, "rollouts_rollout_step", ROLLOUT) == 2


def test_an_analysis_abort_is_counted_once_with_the_failing_value(istio: Scenario) -> None:
    long_pause(istio)
    istio.provider.script("success-rate", HEALTHY)
    istio.given_healthy()
    istio.provider.script("success-rate", FAILING)
    istio.when_image(NEW_IMAGE).run_until(lambda: istio.phase == "Degraded")
    assert aborts(istio) == {**dict.fromkeys(REASONS, 0.0), "analysis": 1.0}
    assert sample(istio, "rollouts_promotions_total", ROLLOUT) == 0
    assert sample(istio, "rollouts_analysis_metric_value", VALUE) == 0.42
    assert sample(istio, "rollouts_analysis_metric_threshold", {**VALUE, "condition": "success"}) == 0.95
    assert sample(istio, "rollout_duration_seconds_sum", {"status": "Aborted"}) == 900  # the 4th failure, at 15m
    assert sample(istio, "rollouts_rollout_set_weight", ROLLOUT) == 0
    assert sample(istio, "rollouts_rollout_actual_weight", ROLLOUT) == 0
    assert sample(istio, "rollouts_lead_time_seconds_count", ROLLOUT) == 0
    istio.run_for(3600)
    assert aborts(istio)["analysis"] == 1


def test_an_abort_by_the_user_is_manual(istio: Scenario) -> None:
    istio.provider.script("success-rate", HEALTHY)
    istio.given_healthy()
    istio.when_image(NEW_IMAGE).run_until(lambda: istio.phase == "Paused")
    istio.run_for(120)
    istio.when_abort().run_until(lambda: istio.phase == "Degraded")
    assert aborts(istio) == {**dict.fromkeys(REASONS, 0.0), "manual": 1.0}
    assert sample(istio, "rollout_duration_seconds_sum", {"status": "Aborted"}) == 120
    istio.run_for(600)
    assert aborts(istio)["manual"] == 1


def test_a_progress_deadline_abort_is_counted_as_deadline(istio: Scenario) -> None:
    rollout = next(doc for doc in istio.docs if doc["kind"] == "Rollout")
    rollout["spec"].update(progressDeadlineSeconds=120, progressDeadlineAbort=True)
    istio.provider.script("success-rate", HEALTHY)
    istio.given_healthy()
    workloads = istio.cluster.workloads
    assert workloads is not None
    workloads.ready_delay = timedelta(days=1)  # the new pods never become available
    istio.when_image(NEW_IMAGE).run_until(lambda: istio.phase == "Degraded")
    assert istio.status["abort"] is True
    assert aborts(istio) == {**dict.fromkeys(REASONS, 0.0), "deadline": 1.0}
    assert sample(istio, "rollout_duration_seconds_sum", {"status": "Aborted"}) == 120


def test_a_deleted_rollout_loses_every_series(istio: Scenario) -> None:
    istio.provider.script("success-rate", HEALTHY)
    istio.given_healthy()
    istio.when_image(NEW_IMAGE).run_until(lambda: istio.phase == "Paused")
    metrics = istio.manager.metrics
    assert labelled_with(metrics, "rollout-example")
    istio.cluster.delete("Rollout", "rollout-example", "default")
    for run in istio.analysis_runs():  # what the garbage collector does for the owned runs
        istio.cluster.delete("AnalysisRun", run["metadata"]["name"], "default")
    istio.run_for(60)
    assert labelled_with(metrics, "rollout-example") == []


def test_a_rollout_gone_while_the_watch_was_down_loses_its_series_at_the_relist(istio: Scenario) -> None:
    istio.provider.script("success-rate", HEALTHY)
    istio.given_healthy()
    metrics = istio.manager.metrics
    assert labelled_with(metrics, "rollout-example")
    istio.cluster.delete("Rollout", "rollout-example", "default")
    istio.manager.relist("Rollout")  # a Gone watch: a fresh list, and no DELETED event ever comes
    assert labelled_with(metrics, "rollout-example") == []


def labelled_with(metrics: ControllerMetrics, rollout: str) -> list[str]:
    """Every sample naming `rollout` (by `rollout` or, for the Rollout's own series, `name`)."""
    return [f"{s.name}{s.labels}" for family in metrics.registry.collect() for s in family.samples
            if s.labels.get("rollout") == rollout or (s.labels.get("name") == rollout
                                                       and not s.name.startswith(("rollout_reconcile",
                                                                                  "controller_clientset",
                                                                                  "rollout_events")))]


def test_hook_calls_are_counted_by_type_and_result_with_bounded_labels() -> None:
    metrics = ControllerMetrics()
    metrics.hook_call("confirm-promotion", "failure", 0.2, namespace="shop", rollout="web")
    metrics.hook_call("confirm-promotion", "success", 0.1, namespace="shop", rollout="web")
    metrics.hook_call("confirm-promotion", "success", 0.3, namespace="shop", rollout="web")
    metrics.hook_call("made-up", "Connection refused: http://10.0.0.1:80", 5.0, namespace="shop", rollout="web")
    labels = {"namespace": "shop", "rollout": "web", "type": "confirm-promotion"}
    assert metrics.value("rollouts_hook_calls_total", {**labels, "result": "success"}) == 2
    assert metrics.value("rollouts_hook_calls_total", {**labels, "result": "failure"}) == 1
    assert metrics.value("rollouts_hook_calls_total", {**labels, "type": "other", "result": "other"}) == 1
    assert metrics.value("rollouts_hook_duration_seconds_count", {"type": "confirm-promotion"}) == 3
    assert metrics.value("rollouts_hook_duration_seconds_sum", {"type": "confirm-promotion"}) == pytest.approx(0.6)
    metrics.forget("Rollout", "shop", "web")
    assert metrics.registry.get_sample_value("rollouts_hook_calls_total", {**labels, "result": "success"}) is None


def run_doc(name: str, created: str, value: str, *, kind: str = "Background", metric: str = "success-rate",
            condition: str = "result[0] >= 0.95") -> dict[str, object]:
    return {
        "kind": "AnalysisRun",
        "metadata": {"name": name, "namespace": "shop", "creationTimestamp": created,
                     "labels": {"rollout-type": kind},
                     "ownerReferences": [{"kind": "Rollout", "name": "web", "controller": True}]},
        "spec": {"metrics": [{"name": metric, "successCondition": condition, "provider": {"web": {}}}]},
        "status": {"phase": "Running", "metricResults": [
            {"name": metric, "phase": "Running", "measurements": [{"phase": "Successful", "value": value}]}]},
    }


def test_the_newest_run_of_a_kind_sets_the_values_and_an_older_one_does_not() -> None:
    metrics = ControllerMetrics()
    labels = {"namespace": "shop", "rollout": "web", "analysis": "Background", "metric": "success-rate"}
    metrics.observe_analysis_run(run_doc("web-2", "2024-01-01T01:00:00Z", "[0.97]"))
    metrics.observe_analysis_run(run_doc("web-1", "2024-01-01T00:00:00Z", "0.5"))  # a late event of an older run
    assert metrics.value("rollouts_analysis_metric_value", labels) == 0.97
    # a newer run with another metric replaces the kind's metric set; the Step kind is kept apart
    metrics.observe_analysis_run(run_doc("web-3", "2024-01-01T02:00:00Z", "12", metric="latency",
                                         condition="result < 300 && result > 1"))
    metrics.observe_analysis_run(run_doc("web-3-step", "2024-01-01T02:00:00Z", "0.9", kind="Step"))
    assert metrics.registry.get_sample_value("rollouts_analysis_metric_value", labels) is None
    assert metrics.value("rollouts_analysis_metric_value", {**labels, "metric": "latency"}) == 12
    assert metrics.registry.get_sample_value("rollouts_analysis_metric_threshold", {
        **labels, "metric": "latency", "condition": "success"}) is None, "two comparisons: no single threshold"
    assert metrics.value("rollouts_analysis_metric_value", {**labels, "analysis": "Step"}) == 0.9
    # a value that is not one number gives no value series
    metrics.observe_analysis_run(run_doc("web-4", "2024-01-01T03:00:00Z", "[0.9,0.8]"))
    assert metrics.registry.get_sample_value("rollouts_analysis_metric_value", labels) is None
    assert metrics.value("rollouts_analysis_metric_threshold", {**labels, "condition": "success"}) == 0.95


def test_a_blue_green_promotion_is_counted_with_its_pre_promotion_value_and_no_weights() -> None:
    scenario = Scenario("blue-green", vs="none")
    try:
        scenario.provider.script("preview-success-rate", HEALTHY)
        scenario.given_healthy()
        scenario.when_image(NEW_IMAGE).run_until(lambda: scenario.phase == "Paused")
        scenario.when_promote().run_until(lambda: scenario.phase == "Healthy")
        labels = {"namespace": "default", "rollout": "rollout-bluegreen"}
        assert sample(scenario, "rollouts_promotions_total", labels) == 1
        assert sample(scenario, "rollouts_analysis_metric_value", {
            **labels, "analysis": "PrePromotion", "metric": "preview-success-rate"}) == 0.99
        assert sample(scenario, "rollouts_rollout_set_weight", labels) is None  # no canary weights
        assert sample(scenario, "rollout_info", {"namespace": "default", "name": "rollout-bluegreen",
                                                 "strategy": "blueGreen", "traffic_router": "none",
                                                 "phase": "Healthy"}) == 1
    finally:
        scenario.close()


def test_the_queue_duration_is_how_long_a_due_key_waited_for_a_worker() -> None:
    from rollouts.controller.workqueue import Key, WorkQueue
    from rollouts.platform.clock import SteppedClock
    from tests.controller.dsl import START

    clock, waited = SteppedClock(START), []
    queue = WorkQueue(clock, on_take=lambda key, seconds: waited.append((key.name, seconds)))
    queue.add(Key("Rollout", "shop", "web"))
    queue.add_after(Key("Rollout", "shop", "api"), 5)
    clock.advance(3)
    assert queue.pop_ready() == Key("Rollout", "shop", "web")
    clock.advance(4)  # api was due at 5 s and is taken at 7 s
    assert queue.pop_ready() == Key("Rollout", "shop", "api")
    assert waited == [("web", 3.0), ("api", 2.0)]


def test_a_hook_call_before_the_first_reconcile_still_leaves_every_counter_at_zero() -> None:
    metrics = ControllerMetrics()
    metrics.hook_call("confirm-rollout", "success", 0.1, namespace="shop", rollout="web")
    doc = {"kind": "Rollout", "metadata": {"name": "web", "namespace": "shop"}}
    metrics.observe_rollout(doc, None, {})
    labels = {"namespace": "shop", "rollout": "web"}
    assert metrics.registry.get_sample_value("rollouts_promotions_total", labels) == 0
    assert metrics.registry.get_sample_value("rollouts_aborts_total", {**labels, "reason": "gate"}) == 0
