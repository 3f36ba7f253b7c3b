"""A type-wrong Rollout never kills a watch or a worker (the safety issue, defect 7).

The threaded manager (watch threads, workers) runs on the InMemoryCluster, which stores
whatever it is given, as an API server with a permissive CRD would. Rollouts of every
wrong shape a review found are created while a healthy Rollout is released: each gets
InvalidSpec (or is skipped by the router and counted), the watches keep going, the
healthy release completes, and /healthz stays ok because no thread died.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from rollouts.controller.reconciler import references
from rollouts.platform import wire
from tests.controller.dsl import Scenario, wait_for

NEW_IMAGE = "argoproj/rollouts-demo:yellow"


def odd(name: str, mutate: Any) -> dict[str, Any]:
    """The istio-canary Rollout as `name`, changed by `mutate(doc)`."""
    scenario = Scenario("istio-canary")
    doc: dict[str, Any] = json.loads(json.dumps(next(d for d in scenario.docs if d["kind"] == "Rollout")))
    scenario.close()
    doc["metadata"] = {"name": name, "namespace": "default"}
    mutate(doc)
    return doc


def _set(path: list[str], value: Any) -> Any:
    def mutate(doc: dict[str, Any]) -> None:
        node = doc
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
    return mutate


SHAPES = {
    "strategy-is-a-string": _set(["spec", "strategy"], "canary"),
    "canary-is-a-list": _set(["spec", "strategy", "canary"], [{"steps": []}]),
    "traffic-routing-is-a-string": _set(["spec", "strategy", "canary", "trafficRouting"], "istio"),
    "virtual-services-is-a-number": _set(["spec", "strategy", "canary", "trafficRouting", "istio"],
                                         {"virtualServices": 5}),
    "spec-is-a-list": _set(["spec"], [1, 2]),
    "istio-is-a-list": _set(["spec", "strategy", "canary", "trafficRouting", "istio"], ["vs"]),
    "steps-is-a-map": _set(["spec", "strategy", "canary", "steps"], {"setWeight": 5}),
    "set-weight-is-a-string": _set(["spec", "strategy", "canary", "steps"], [{"setWeight": "50"}]),
    "set-weight-is-true": _set(["spec", "strategy", "canary", "steps"], [{"setWeight": True}]),
    "paused-is-yes": _set(["spec", "paused"], "yes"),
    "huge-pause": _set(["spec", "strategy", "canary", "steps"],
                       [{"setWeight": 5}, {"pause": {"duration": "99999999999h"}}]),
}


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_references_of_any_shape_never_raise(shape: str) -> None:
    assert isinstance(references(odd(shape, SHAPES[shape])), list)


def test_wire_accessors_read_any_shape_as_empty() -> None:
    assert wire.section({"a": "text"}, "a", "b") == {}
    assert wire.items({"a": {"b": 5}}, "a", "b") == []
    assert wire.text([1], "metadata", "name") is None
    assert wire.name_of({"metadata": {"name": "x", "namespace": 3}}) == ("default", "x")


def test_type_wrong_rollouts_never_stop_the_watch_and_the_healthy_release_completes() -> None:
    scenario = Scenario("istio-canary", manager_options={"workers": 2})
    try:
        scenario.provider.script("success-rate", [0.99])
        scenario.given_objects()
        manager = scenario.manager
        manager.start()
        wait_for(lambda: scenario.phase == "Healthy", "the first revision to be healthy")
        for shape, mutate in sorted(SHAPES.items()):
            scenario.cluster.create(odd(shape, mutate))
        # every odd Rollout that has a metadata section gets InvalidSpec from its reconcile
        wait_for(lambda: all((scenario.cluster.get("Rollout", shape, "default").get("status") or {}).get("phase")
                             == "Degraded" for shape in SHAPES), "InvalidSpec on every odd Rollout")
        for shape in SHAPES:
            status = scenario.cluster.get("Rollout", shape, "default")["status"]
            assert status["message"].startswith("InvalidSpec: "), (shape, status["message"])
        # and a change made after them is still seen: the healthy release goes through
        scenario.when_image(NEW_IMAGE)
        wait_for(lambda: scenario.phase == "Paused" and scenario.vs_weights == (50, 50), "the pause at 50%")
        scenario.clock.advance(timedelta(minutes=10))
        wait_for(lambda: scenario.phase == "Healthy" and scenario.vs_weights == (100, 0), "promotion")
        assert manager.healthy() and manager.threads.died == []
    finally:
        scenario.manager.stop()
        scenario.close()


def test_a_thread_that_dies_makes_health_fail() -> None:
    scenario = Scenario("istio-canary", manager_options={"workers": 1})
    try:
        scenario.given_objects()
        manager = scenario.manager

        def broken(*_: Any) -> list[Any]:
            raise SystemExit("a bug outside every guard")

        manager.start()
        wait_for(lambda: scenario.phase == "Healthy", "the first revision to be healthy")
        manager.process = broken  # type: ignore[method-assign]
        scenario.when_image(NEW_IMAGE)
        wait_for(lambda: not manager.healthy(), "health to fail")
        assert manager.threads.died == ["rollouts-work_loop"]
    finally:
        scenario.manager.stop()
        scenario.close()


@pytest.mark.parametrize(("shape", "path"), [
    ("set-weight-is-a-string", "spec.strategy.canary.steps[0].setWeight"),
    ("set-weight-is-true", "spec.strategy.canary.steps[0].setWeight"),
    ("paused-is-yes", "spec.paused"),
    ("huge-pause", "spec.strategy.canary.steps[1].pause.duration"),
])
def test_values_are_as_strict_as_argos_crd_types(shape: str, path: str) -> None:
    """`setWeight: "50"` is not 50, `true` is not 1%, "yes" is not paused; a pause past Go's
    longest duration is not a loop on OverflowError: each is InvalidSpec at its field."""
    scenario = Scenario("istio-canary")
    try:
        scenario.given_objects()
        scenario.cluster.create(odd(shape, SHAPES[shape]))
        scenario.run_for(60)
        status = scenario.cluster.get("Rollout", shape, "default")["status"]
        assert status["phase"] == "Degraded"
        assert status["message"].startswith(f"InvalidSpec: {path}: "), status["message"]
        assert scenario.manager.metrics.rollout_reconcile_error.labels("default", shape)._value.get() == 0
    finally:
        scenario.close()


def test_replicas_are_bounded_by_int32_and_a_typo_sized_count_is_warned() -> None:
    from rollouts.plan.validation import validate_rollout
    from rollouts.spec.model import Rollout

    def problems(replicas: int) -> list[tuple[str, str, bool]]:
        doc = odd("big", _set(["spec", "replicas"], replicas))
        return [(p.path, p.message, p.is_error) for p in validate_rollout(Rollout.load(doc))
                if p.path == "spec.replicas"]

    assert problems(200_000) == [("spec.replicas", "200000 replicas is more than 10000", False)]
    assert problems(2**31) == [("spec.replicas", "2147483648 does not fit Argo's int32", True)]
    assert problems(10_000) == []
