"""A shard's watches make only its own Rollouts due.

Every shard watches every ReplicaSet and AnalysisRun (the instance-id filter is the
controller's, as in Argo), so an event on another shard's object must not make that
shard's Rollout a key here: three leaders would each reconcile every Rollout's
ReplicaSet events, two of them for nothing.
"""

from __future__ import annotations

from typing import Any

from rollouts.controller.fanin import EventRouter, Scope
from rollouts.controller.informer import Cache
from rollouts.controller.metrics import ControllerMetrics
from rollouts.controller.workqueue import Key
from rollouts.platform.labels import INSTANCE_LABEL
from tests.shards.shards import rollout


def owned(kind: str, name: str, owner: str) -> dict[str, Any]:
    return {"apiVersion": "apps/v1" if kind == "ReplicaSet" else "argoproj.io/v1alpha1", "kind": kind,
            "metadata": {"name": name, "namespace": "team-0",
                         "ownerReferences": [{"kind": "Rollout", "name": owner, "controller": True}]}}


def vs_rollout(name: str, instance: str | None) -> dict[str, Any]:
    doc = rollout(name, "team-0", instance=instance)
    doc["spec"]["strategy"]["canary"].update(
        canaryService="canary", stableService="stable",
        trafficRouting={"istio": {"virtualService": {"name": "shared", "routes": ["primary"]}}})
    return doc


def router(instance: str) -> EventRouter:
    return EventRouter(cache=Cache(), metrics=ControllerMetrics(), scope=Scope(None, instance))


def test_a_replicaset_or_run_of_another_shards_rollout_makes_no_key() -> None:
    a = router("a")
    assert a.route("Rollout", "ADDED", rollout("mine", "team-0", instance="a")) == [Key("Rollout", "team-0", "mine")]
    assert a.route("Rollout", "ADDED", rollout("theirs", "team-0", instance="b")) == []
    assert a.route("Rollout", "ADDED", rollout("nobodys", "team-0")) == []
    mine = [Key("Rollout", "team-0", "mine")]
    assert a.route("ReplicaSet", "MODIFIED", owned("ReplicaSet", "mine-1", "mine")) == mine
    assert a.route("ReplicaSet", "MODIFIED", owned("ReplicaSet", "theirs-1", "theirs")) == []
    assert a.route("ReplicaSet", "MODIFIED", owned("ReplicaSet", "nobodys-1", "nobodys")) == []
    run = owned("AnalysisRun", "theirs-run", "theirs")
    run["metadata"]["labels"] = {INSTANCE_LABEL: "b"}
    assert a.route("AnalysisRun", "MODIFIED", run) == []


def test_an_owner_the_cache_does_not_hold_is_still_a_key() -> None:
    """Its reconcile reads it (and finds it gone, or out of scope): nothing is lost to a cache race."""
    assert router("a").route("ReplicaSet", "ADDED", owned("ReplicaSet", "x-1", "x")) == [Key("Rollout", "team-0", "x")]


def test_a_virtualservice_event_makes_only_this_shards_rollouts_due() -> None:
    a = router("a")
    a.route("Rollout", "ADDED", vs_rollout("mine", "a"))
    a.route("Rollout", "ADDED", vs_rollout("theirs", "b"))
    shared = {"apiVersion": "networking.istio.io/v1beta1", "kind": "VirtualService",
              "metadata": {"name": "shared", "namespace": "team-0"}, "spec": {}}
    assert a.route("VirtualService", "MODIFIED", shared) == [Key("Rollout", "team-0", "mine")]
    relabelled = vs_rollout("mine", "b")  # moved to shard b: no longer ours
    assert a.route("Rollout", "MODIFIED", relabelled) == []
    assert a.route("VirtualService", "MODIFIED", shared) == []
