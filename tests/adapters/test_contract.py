"""The Cluster contract: every test runs against InMemoryCluster, against KubeCluster
over HTTP (rollouts.memory.server serving an InMemoryCluster) and against KubeCluster on the
real kube-apiserver 1.20 ("real", slow; tests/adapters/conftest.py). See the port's
docstring in rollouts/platform/cluster.py for the rules checked here, and
tests/adapters/REAL_API_DIFFERENCES.md for what the real server taught the embedded one.

The real cluster's controllers (ReplicaSet, garbage collector) act asynchronously:
`backend.settled(check)` polls them with a deadline there, and checks at once elsewhere
(the in-memory cluster acts within the write). Tests of the in-memory cluster's own
workload simulation (ready_delay, the stepped clock) take the `simulated` backend.

A choice documented here: a failing JSON-patch `test` op is `Invalid` (the API server's
422), not `Conflict`; optimistic concurrency is a merge patch carrying
metadata.resourceVersion, which is `Conflict` when stale.
"""

from __future__ import annotations

import itertools
import re
import threading
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pytest

from rollouts.memory.workloads import ReplicaSets
from rollouts.platform.cluster import (
    AlreadyExists,
    Cluster,
    Conflict,
    Gone,
    Invalid,
    NotFound,
    UnknownKind,
    WatchEvent,
)
from rollouts.platform.kinds import KINDS

if TYPE_CHECKING:
    from tests.adapters.conftest import Backend


def rollout(name: str = "web", **labels: str) -> dict[str, Any]:
    return {
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
        "metadata": {"name": name, "namespace": "team", "labels": labels},
        "spec": {"replicas": 3, "strategy": {"canary": {"steps": [{"setWeight": 20}, {"pause": {}}]}}},
    }


def config_map(name: str, namespace: str = "default", **labels: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": namespace, "labels": labels}, "data": {"k": name}}


def replica_set(name: str, replicas: int, owner: dict[str, Any] | None = None) -> dict[str, Any]:
    """A ReplicaSet the real API server accepts (selector, template, a container)."""
    meta: dict[str, Any] = {"name": name, "namespace": "team"}
    if owner:
        meta["ownerReferences"] = [owner_ref(owner)]
    labels = {"rs": name}
    return {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": meta,
            "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels}, "spec": {"containers": [CONTAINER]}}}}


CONTAINER = {"name": "app", "image": "app:v1"}


def owner_ref(owner: dict[str, Any], *, controller: bool = True) -> dict[str, Any]:
    return {"apiVersion": owner["apiVersion"], "kind": owner["kind"], "name": owner["metadata"]["name"],
            "uid": owner["metadata"]["uid"], "controller": controller}


TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")


def rv(obj: dict[str, Any]) -> int:
    return int(obj["metadata"]["resourceVersion"])


def summary(events: list[WatchEvent]) -> list[tuple[str, str]]:
    return [(e.type, e.object["metadata"]["name"]) for e in events]


# --- create / get / list / delete -------------------------------------------------------------

def test_create_returns_the_stored_object_with_server_fields(backend: Backend, cluster: Cluster) -> None:
    created = cluster.create(rollout())
    meta = created["metadata"]
    assert rv(created) > 0
    assert meta["uid"] and meta["generation"] == 1
    assert TIMESTAMP.fullmatch(meta["creationTimestamp"])  # RFC 3339, whole seconds, UTC
    if not backend.real:  # the in-memory cluster stamps it from its (stepped) clock
        assert meta["creationTimestamp"] == "2024-01-01T00:00:00Z"
    assert created["apiVersion"] == "argoproj.io/v1alpha1" and created["kind"] == "Rollout"
    assert cluster.get("Rollout", "web", "team") == created


def test_create_defaults_the_namespace_and_generates_names(cluster: Cluster) -> None:
    plain = cluster.create({"kind": "ConfigMap", "metadata": {"name": "plain"}})
    generated = cluster.create({"kind": "Event", "metadata": {"generateName": "web-"}, "reason": "Started",
                                "involvedObject": {"kind": "ConfigMap", "name": "plain", "namespace": "default"}})
    assert plain["metadata"]["namespace"] == "default" and plain["apiVersion"] == "v1"
    assert re.fullmatch(r"web-[bcdfghjklmnpqrstvwxz2456789]{5}", generated["metadata"]["name"])
    assert cluster.get("Event", generated["metadata"]["name"])["reason"] == "Started"


def test_generate_name_is_checked_as_a_name_prefix(cluster: Cluster) -> None:
    with pytest.raises(Invalid, match=r'metadata.generateName: Invalid value: "web\.": a lowercase RFC 1123'):
        cluster.create({"kind": "ConfigMap", "metadata": {"generateName": "web."}})
    dotted = cluster.create({"kind": "ConfigMap", "metadata": {"generateName": "web.x"}})
    assert dotted["metadata"]["name"].startswith("web.x") and len(dotted["metadata"]["name"]) == 10


def test_an_event_lives_in_the_namespace_of_what_it_is_about(cluster: Cluster) -> None:
    about = {"kind": "Rollout", "name": "web", "namespace": "team"}
    with pytest.raises(Invalid, match=r'involvedObject.namespace: Invalid value: "team": does not match'):
        cluster.create({"kind": "Event", "metadata": {"name": "e1", "namespace": "other"}, "involvedObject": about})
    with pytest.raises(Invalid, match=r'involvedObject.namespace: Invalid value: "": does not match'):
        cluster.create({"kind": "Event", "metadata": {"name": "e2", "namespace": "team"}, "involvedObject": {}})
    assert cluster.create({"kind": "Event", "metadata": {"name": "e3", "namespace": "team"},
                           "involvedObject": about})["involvedObject"] == about


def test_create_drops_status_of_kinds_with_a_status_subresource(cluster: Cluster) -> None:
    with_status = dict(rollout(), status={"phase": "Healthy"})
    assert "status" not in cluster.create(with_status)
    vs = {"kind": "VirtualService", "metadata": {"name": "vs"}, "spec": {"hosts": ["web"]}, "status": {"x": 1}}
    assert cluster.create(vs)["status"] == {"x": 1}  # no status subresource: status is a plain field


def test_duplicate_create_is_already_exists(cluster: Cluster) -> None:
    cluster.create(rollout())
    with pytest.raises(AlreadyExists, match=r'rollouts.argoproj.io "web" already exists'):
        cluster.create(rollout())


def test_missing_objects_are_not_found(cluster: Cluster) -> None:
    with pytest.raises(NotFound, match=r'rollouts.argoproj.io "nope" not found'):
        cluster.get("Rollout", "nope", "team")
    with pytest.raises(NotFound):
        cluster.patch("Rollout", "nope", "team", {"spec": {"replicas": 1}})
    with pytest.raises(NotFound):
        cluster.patch_status("Rollout", "nope", "team", {"status": {"phase": "Healthy"}})
    with pytest.raises(NotFound):
        cluster.delete("Rollout", "nope", "team")
    cluster.create(rollout())
    with pytest.raises(NotFound):  # same name, other namespace
        cluster.get("Rollout", "web", "other")


def test_bad_input_is_a_clear_error(cluster: Cluster) -> None:
    with pytest.raises(UnknownKind, match=r"unknown kind 'Rolout'.*Rollout"):
        cluster.get("Rolout", "web")
    with pytest.raises(Invalid, match=r'ConfigMap "Bad_Name" is invalid: metadata.name: Invalid value: "Bad_Name": '
                                      r"a lowercase RFC 1123 subdomain must consist of"):
        cluster.create({"kind": "ConfigMap", "metadata": {"name": "Bad_Name"}})
    with pytest.raises(Invalid, match=r"metadata.name: Invalid value: \"a..b\""):  # each dot-separated part
        cluster.create({"kind": "ConfigMap", "metadata": {"name": "a..b"}})
    with pytest.raises(Invalid, match="kind"):
        cluster.create({"metadata": {"name": "x"}})
    with pytest.raises(Invalid, match=r"metadata\.labels must map strings|Labels: ReadString"):
        cluster.create({"kind": "ConfigMap", "metadata": {"name": "x", "labels": {"version": 2}}})
    cluster.create(config_map("x"))
    with pytest.raises(Invalid, match=r"metadata\.annotations must map strings|Annotations: ReadString"):
        cluster.patch("ConfigMap", "x", "default", {"metadata": {"annotations": {"a": True}}})


def test_list_filters_by_namespace_and_label_selector(cluster: Cluster) -> None:
    cluster.create(config_map("a", "one", app="web", tier="canary"))
    cluster.create(config_map("b", "one", app="web", tier="stable"))
    cluster.create(config_map("c", "two", app="web", tier="canary"))
    cluster.create(config_map("d", "two", app="db"))

    def names(objs: list[dict[str, Any]]) -> list[str]:
        return [o["metadata"]["name"] for o in objs]

    assert names(cluster.list("ConfigMap")) == ["a", "b", "c", "d"]
    assert names(cluster.list("ConfigMap", "two")) == ["c", "d"]
    assert names(cluster.list("ConfigMap", label_selector={"app": "web", "tier": "canary"})) == ["a", "c"]
    assert names(cluster.list("ConfigMap", "one", label_selector={"app": "db"})) == []
    assert all(o["kind"] == "ConfigMap" and o["apiVersion"] == "v1" for o in cluster.list("ConfigMap"))


def test_returned_objects_are_copies(cluster: Cluster) -> None:
    created = cluster.create(config_map("a", app="web"))
    created["data"]["k"] = "mutated"
    listed = cluster.list("ConfigMap")[0]
    listed["metadata"]["labels"]["x"] = "y"
    assert cluster.get("ConfigMap", "a")["data"] == {"k": "a"}
    assert cluster.get("ConfigMap", "a")["metadata"]["labels"] == {"app": "web"}


def test_empty_metadata_maps_are_omitted(cluster: Cluster) -> None:
    created = cluster.create({"kind": "ConfigMap", "metadata": {"name": "a", "labels": {}, "annotations": {},
                                                                 "ownerReferences": [], "finalizers": []}})
    assert not {"labels", "annotations", "ownerReferences", "finalizers"} & set(created["metadata"])
    labelled = cluster.patch("ConfigMap", "a", None, {"metadata": {"labels": {"app": "web"}}})
    assert labelled["metadata"]["labels"] == {"app": "web"}
    cleared = cluster.patch("ConfigMap", "a", None, {"metadata": {"labels": {"app": None}}})
    assert "labels" not in cleared["metadata"] and cluster.get("ConfigMap", "a") == cleared
    with pytest.raises(Invalid):  # so a JSON patch cannot add under the missing map
        cluster.patch("ConfigMap", "a", None, [{"op": "add", "path": "/metadata/labels/app", "value": "x"}],
                      patch_type="json")


def test_generation_is_kept_for_custom_resources_and_apps_only_and_moves_with_the_spec(cluster: Cluster) -> None:
    ro = cluster.create(rollout())
    assert ro["metadata"]["generation"] == 1
    labelled = cluster.patch("Rollout", "web", "team", {"metadata": {"labels": {"a": "b"}}})
    paused = cluster.patch_status("Rollout", "web", "team", {"status": {"phase": "Paused"}})
    scaled = cluster.patch("Rollout", "web", "team", {"spec": {"replicas": 1}})
    assert [o["metadata"]["generation"] for o in (labelled, paused, scaled)] == [1, 1, 2]
    vs = cluster.create({"kind": "VirtualService", "metadata": {"name": "vs"}, "spec": {"hosts": ["a"]}})
    moved = cluster.patch("VirtualService", "vs", None, {"status": {"x": 1}})  # no status subresource: counts
    assert (vs["metadata"]["generation"], moved["metadata"]["generation"]) == (1, 2)
    rs = cluster.create(replica_set("web-abc", 0))
    assert rs["metadata"]["generation"] == 1
    assert cluster.patch("ReplicaSet", "web-abc", "team", {"spec": {"replicas": 0, "minReadySeconds": 1}})[
        "metadata"]["generation"] == 2
    cm = cluster.create(config_map("a"))
    assert "generation" not in cm["metadata"]
    assert "generation" not in cluster.patch("ConfigMap", "a", None, {"data": {"k": "2"}})["metadata"]


ANALYSIS_SPEC = {"metrics": [{"name": "m", "provider": {"web": {"url": "http://metrics/x"}}}]}
WORKLOAD_SPEC = replica_set("x", 0)["spec"]
# A valid object of each kind (the real API server validates built-in kinds and our CRDs'
# schemas) and the path of a field the server keeps as written (it defaults others).
VALID: dict[str, tuple[dict[str, Any], tuple[Any, ...]]] = {
    "Rollout": ({"spec": {"replicas": 1, "strategy": {"canary": {"steps": [{"setWeight": 5}]}}}}, ("spec",)),
    "AnalysisRun": ({"spec": ANALYSIS_SPEC}, ("spec",)),
    "AnalysisTemplate": ({"spec": ANALYSIS_SPEC}, ("spec",)),
    "ClusterAnalysisTemplate": ({"spec": ANALYSIS_SPEC}, ("spec",)),
    "ReplicaSet": ({"spec": WORKLOAD_SPEC}, ("spec", "selector")),
    "Deployment": ({"spec": WORKLOAD_SPEC}, ("spec", "selector")),
    "Pod": ({"spec": {"containers": [CONTAINER]}}, ("spec", "containers", 0, "image")),
    "Service": ({"spec": {"ports": [{"port": 80}], "selector": {"app": "web"}}}, ("spec", "selector")),
    "Secret": ({"data": {"a": "Yg=="}}, ("data",)),
    "ConfigMap": ({"data": {"a": "1"}}, ("data",)),
    "Event": ({"reason": "Started", "involvedObject": {"kind": "Pod", "name": "p", "namespace": "team"}}, ("reason",)),
    "VirtualService": ({"spec": {"hosts": ["web"], "anything": {"kept": True}}}, ("spec",)),
    "DestinationRule": ({"spec": {"host": "web", "subsets": [{"name": "stable"}]}}, ("spec",)),
    "Lease": ({"spec": {"holderIdentity": "a", "leaseDurationSeconds": 15}}, ("spec",)),
    "Experiment": ({"spec": {"duration": "5m", "templates": [{"name": "canary", "replicas": 1, **WORKLOAD_SPEC}]}},
                   ("spec",)),
}


def at(obj: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        obj = obj[part]
    return obj


def test_every_kind_has_a_valid_example() -> None:
    assert sorted(VALID) == sorted(KINDS)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_kind_round_trips(cluster: Cluster, kind: str) -> None:
    namespace = "team" if KINDS[kind].namespaced else None
    fields, probe = VALID[kind]
    created = cluster.create({"kind": kind, "metadata": {"name": "x", "namespace": "team"}, **fields})
    assert created["metadata"].get("namespace") == namespace
    assert created["apiVersion"] == KINDS[kind].api_version
    assert at(cluster.get(kind, "x", namespace), probe) == at(fields, probe)
    assert [o["metadata"]["name"] for o in cluster.list(kind)] == ["x"]
    cluster.delete(kind, "x", namespace)
    assert cluster.list(kind) == []


def test_cluster_scoped_kinds_ignore_namespaces(cluster: Cluster) -> None:
    template = {"kind": "ClusterAnalysisTemplate", "metadata": {"name": "success-rate", "namespace": "team"},
                "spec": {"metrics": [{"name": "m", "provider": {"job": {}}}]}}
    created = cluster.create(template)
    assert "namespace" not in created["metadata"]
    assert cluster.get("ClusterAnalysisTemplate", "success-rate")["spec"] == template["spec"]
    assert cluster.get("ClusterAnalysisTemplate", "success-rate", "anything") == cluster.get(
        "ClusterAnalysisTemplate", "success-rate")
    assert len(cluster.list("ClusterAnalysisTemplate", "team")) == 1
    cluster.patch("ClusterAnalysisTemplate", "success-rate", None, {"metadata": {"labels": {"a": "b"}}})
    cluster.delete("ClusterAnalysisTemplate", "success-rate")
    assert cluster.list("ClusterAnalysisTemplate") == []


# --- patch / replace / optimistic concurrency ----------------------------------------------

def test_merge_patch_replaces_lists_wholesale_and_null_deletes(cluster: Cluster) -> None:
    cluster.create(rollout())
    patched = cluster.patch("Rollout", "web", "team", {
        "metadata": {"annotations": {"note": "x"}},
        "spec": {"strategy": {"canary": {"steps": [{"setWeight": 50}]}}, "replicas": None},
    })
    assert patched["spec"]["strategy"]["canary"]["steps"] == [{"setWeight": 50}]
    assert "replicas" not in patched["spec"]
    assert patched["metadata"]["annotations"] == {"note": "x"}
    assert cluster.get("Rollout", "web", "team") == patched


def test_writes_bump_resource_version_and_spec_changes_bump_generation(cluster: Cluster) -> None:
    created = cluster.create(rollout())
    labelled = cluster.patch("Rollout", "web", "team", {"metadata": {"labels": {"a": "b"}}})
    assert rv(labelled) > rv(created) and labelled["metadata"]["generation"] == 1
    scaled = cluster.patch("Rollout", "web", "team", {"spec": {"replicas": 5}})
    assert rv(scaled) > rv(labelled) and scaled["metadata"]["generation"] == 2
    status = cluster.patch_status("Rollout", "web", "team", {"status": {"phase": "Progressing"}})
    assert rv(status) > rv(scaled) and status["metadata"]["generation"] == 2
    unchanged = cluster.patch("Rollout", "web", "team", {"spec": {"replicas": 5}})
    assert rv(unchanged) == rv(status)  # a no-op write is not a write
    assert scaled["metadata"]["uid"] == created["metadata"]["uid"]
    assert scaled["metadata"]["creationTimestamp"] == created["metadata"]["creationTimestamp"]


def test_merge_patch_with_a_stale_resource_version_is_a_conflict(cluster: Cluster) -> None:
    created = cluster.create(rollout())
    stale = created["metadata"]["resourceVersion"]
    cluster.patch("Rollout", "web", "team", {"spec": {"replicas": 4}, "metadata": {"resourceVersion": stale}})
    with pytest.raises(Conflict, match="the object has been modified"):
        cluster.patch("Rollout", "web", "team", {"spec": {"replicas": 9}, "metadata": {"resourceVersion": stale}})
    with pytest.raises(Conflict):
        cluster.patch_status("Rollout", "web", "team",
                             {"status": {"phase": "x"}, "metadata": {"resourceVersion": stale}})
    assert cluster.get("Rollout", "web", "team")["spec"]["replicas"] == 4


def test_replace_checks_the_resource_version(cluster: Cluster) -> None:
    created = cluster.create(config_map("a"))
    fresh = dict(created, data={"k": "fresh"})
    replaced = cluster.replace(fresh)
    assert replaced["data"] == {"k": "fresh"} and rv(replaced) > rv(created)
    with pytest.raises(Conflict):
        cluster.replace(dict(created, data={"k": "stale"}))
    unconditional = {"kind": "ConfigMap", "metadata": {"name": "a", "namespace": "default"}, "data": {"k": "last"}}
    assert cluster.replace(unconditional)["data"] == {"k": "last"}
    with pytest.raises(NotFound):
        cluster.replace(config_map("missing"))


def test_status_is_kept_apart_from_spec(cluster: Cluster) -> None:
    cluster.create(rollout())
    cluster.patch_status("Rollout", "web", "team", {"status": {"phase": "Paused", "currentStepIndex": 1}})
    after_spec = cluster.patch("Rollout", "web", "team", {"spec": {"replicas": 1}, "status": {"phase": "Hacked"}})
    assert after_spec["status"] == {"phase": "Paused", "currentStepIndex": 1}
    after_status = cluster.patch_status("Rollout", "web", "team",
                                        {"spec": {"replicas": 99}, "status": {"currentStepIndex": None, "abort": True}})
    assert after_status["spec"]["replicas"] == 1
    assert after_status["status"] == {"phase": "Paused", "abort": True}
    replaced = cluster.replace(dict(after_status, status={"phase": "Replaced"},
                                    spec=dict(after_status["spec"], replicas=2)))
    assert replaced["status"] == {"phase": "Paused", "abort": True} and replaced["spec"]["replicas"] == 2


def test_patch_status_wants_an_object_patch(cluster: Cluster) -> None:
    cluster.create(rollout())
    with pytest.raises(Invalid, match="wrap them in 'status'"):
        cluster.patch_status("Rollout", "web", "team", {"phase": "Healthy"})
    cluster.create(config_map("a"))
    with pytest.raises(Invalid, match="ConfigMap has no status subresource"):
        cluster.patch_status("ConfigMap", "a", "default", {"status": {}})


def test_json_patch_ops(cluster: Cluster) -> None:
    created = cluster.create(rollout(tier="web"))
    patched = cluster.patch("Rollout", "web", "team", [
        {"op": "test", "path": "/spec/replicas", "value": 3},
        {"op": "replace", "path": "/spec/replicas", "value": 2},
        {"op": "add", "path": "/spec/strategy/canary/steps/-", "value": {"setWeight": 100}},
        {"op": "add", "path": "/metadata/labels/app~1name", "value": "web"},
        {"op": "remove", "path": "/spec/strategy/canary/steps/1"},
    ], patch_type="json")
    assert patched["spec"]["replicas"] == 2
    assert patched["spec"]["strategy"]["canary"]["steps"] == [{"setWeight": 20}, {"setWeight": 100}]
    assert patched["metadata"]["labels"] == {"tier": "web", "app/name": "web"}
    assert rv(patched) > rv(created)


# The real server answers every failing JSON patch with this generic 422, and so does the embedded one.
JSON_PATCH_FAILED = {"memory": "test", "kube": "the server rejected our request due to an error in our request"}


def test_failing_json_patch_is_invalid_and_changes_nothing(backend: Backend, cluster: Cluster) -> None:
    before = cluster.create(rollout())
    with pytest.raises(Invalid, match=JSON_PATCH_FAILED.get(backend.name, JSON_PATCH_FAILED["kube"])):
        cluster.patch("Rollout", "web", "team", [
            {"op": "replace", "path": "/spec/replicas", "value": 7},
            {"op": "test", "path": "/metadata/resourceVersion", "value": "0"},
        ], patch_type="json")
    with pytest.raises(Invalid):
        cluster.patch("Rollout", "web", "team", [{"op": "remove", "path": "/spec/nothing"}], patch_type="json")
    with pytest.raises(Invalid, match="list of operations"):
        cluster.patch("Rollout", "web", "team", {"spec": {}}, patch_type="json")
    with pytest.raises(Invalid, match="merge patch must be a JSON object"):
        cluster.patch("Rollout", "web", "team", [{"op": "remove", "path": "/spec"}])
    assert cluster.get("Rollout", "web", "team") == before


# --- watch -------------------------------------------------------------------------------

def test_watch_replays_changes_in_order_from_a_resource_version(cluster: Cluster) -> None:
    start = cluster.create(config_map("before"))["metadata"]["resourceVersion"]
    cluster.create(config_map("a"))
    cluster.patch("ConfigMap", "a", "default", {"data": {"k": "2"}})
    cluster.create(rollout())  # another kind: not in this watch
    cluster.delete("ConfigMap", "a", "default")
    stream = cluster.watch("ConfigMap", resource_version=start)
    events = list(itertools.islice(stream, 3))
    stream.close()
    assert summary(events) == [("ADDED", "a"), ("MODIFIED", "a"), ("DELETED", "a")]
    assert events[1].object["data"] == {"k": "2"}
    versions = [rv(e.object) for e in events]
    assert versions == sorted(versions) and len(set(versions)) == 3


def test_watch_without_resource_version_lists_first_then_resumes_safely(cluster: Cluster) -> None:
    cluster.create(config_map("old", "one"))
    cluster.create(config_map("older", "two"))
    cluster.patch("ConfigMap", "old", "one", {"data": {"k": "v2"}})  # now newer than "older"
    stream = cluster.watch("ConfigMap")
    first = [next(stream), next(stream)]
    assert summary(first) == [("ADDED", "older"), ("ADDED", "old")]  # oldest resourceVersion first
    cluster.create(config_map("new", "one"))
    assert summary([next(stream)]) == [("ADDED", "new")]
    resume = stream.resource_version
    stream.close()
    cluster.patch("ConfigMap", "new", "one", {"data": {"k": "v3"}})
    again = cluster.watch("ConfigMap", "one", resource_version=resume)
    assert summary([next(again)]) == [("MODIFIED", "new")]
    again.close()


def test_watch_ends_on_timeout_and_tells_where_to_resume(cluster: Cluster) -> None:
    cluster.create(config_map("a"))
    stream = cluster.watch("ConfigMap", timeout=0.2)  # KubeCluster rounds up to 1 s
    assert summary(list(stream)) == [("ADDED", "a")]
    resume = stream.resource_version
    assert resume is not None
    cluster.create(config_map("b"))
    again = cluster.watch("ConfigMap", resource_version=resume)
    assert summary([next(again)]) == [("ADDED", "b")]
    again.close()


def test_watch_with_timeout_zero_drains_what_is_pending(cluster: Cluster) -> None:
    start = cluster.create(config_map("a"))["metadata"]["resourceVersion"]
    cluster.patch("ConfigMap", "a", "default", {"data": {"k": "2"}})
    stream = cluster.watch("ConfigMap", resource_version=start, timeout=0)
    assert summary(list(stream)) == [("MODIFIED", "a")]
    assert summary(list(cluster.watch("ConfigMap", resource_version=stream.resource_version, timeout=0))) == []


def test_a_watch_closed_before_it_is_read_yields_nothing(cluster: Cluster) -> None:
    cluster.create(config_map("a"))
    stream = cluster.watch("ConfigMap")
    stream.close()
    assert list(stream) == []
    stream.close()  # closing twice is harmless


def test_watch_filters_by_namespace_and_labels(cluster: Cluster) -> None:
    start = cluster.create(config_map("other", "elsewhere", app="web"))["metadata"]["resourceVersion"]
    cluster.create(config_map("a", "one", app="web"))
    cluster.create(config_map("b", "one", app="db"))
    cluster.patch("ConfigMap", "a", "one", {"metadata": {"labels": {"app": "moved"}}})  # leaves the selector
    cluster.patch("ConfigMap", "b", "one", {"metadata": {"labels": {"app": "web"}}})  # enters it
    stream = cluster.watch("ConfigMap", "one", label_selector={"app": "web"}, resource_version=start)
    events = list(itertools.islice(stream, 3))
    stream.close()
    assert summary(events) == [("ADDED", "a"), ("DELETED", "a"), ("ADDED", "b")]


def test_watch_from_an_expired_resource_version_is_gone(simulated: Backend) -> None:
    # Simulation only: history=3 is the in-memory cluster's knob; the real counterpart follows.
    cluster = simulated.make(history=3)
    first = cluster.create(config_map("a0"))["metadata"]["resourceVersion"]
    for i in range(1, 6):
        cluster.create(config_map(f"a{i}"))
    with pytest.raises(Gone, match="too old resource version"):
        list(cluster.watch("ConfigMap", resource_version=first, timeout=5))
    recent = cluster.list("ConfigMap")[-2]["metadata"]["resourceVersion"]
    stream = cluster.watch("ConfigMap", resource_version=recent)
    assert summary([next(stream)]) == [("ADDED", "a5")]
    stream.close()


@pytest.mark.slow
def test_watch_from_before_the_watch_cache_is_gone_on_the_real_server(real_only: Backend) -> None:
    # The real counterpart of the test above: history=3 is the in-memory cluster's knob. The real
    # server's watch cache of a kind starts at the resourceVersion its CRD was established at, so
    # resourceVersion 1 is older than any VirtualService change it kept: a 410 inside a 200 stream.
    cluster = real_only.make()
    with pytest.raises(Gone, match=r"too old resource version: 1 \(\d+\)"):
        list(cluster.watch("VirtualService", resource_version="1", timeout=5))
    start = cluster.create({"kind": "VirtualService", "metadata": {"name": "a"}, "spec": {}})["metadata"]
    cluster.create({"kind": "VirtualService", "metadata": {"name": "b"}, "spec": {}})
    stream = cluster.watch("VirtualService", resource_version=start["resourceVersion"])
    assert summary([next(stream)]) == [("ADDED", "b")]
    stream.close()


def test_a_blocked_watch_sees_writes_from_another_thread_and_closes_from_outside(cluster: Cluster) -> None:
    start = cluster.create(config_map("start"))["metadata"]["resourceVersion"]
    stream = cluster.watch("ConfigMap", resource_version=start)
    seen: list[WatchEvent] = []
    ended = threading.Event()

    def consume() -> None:
        for event in stream:
            seen.append(event)
        ended.set()

    consumer = threading.Thread(target=consume)
    consumer.start()
    cluster.create(config_map("live"))
    stream.close()
    consumer.join(10)
    assert ended.is_set(), "close() did not end a blocked watch"
    assert summary(seen) in ([], [("ADDED", "live")])  # close may win the race; it must still end


def test_a_watcher_in_another_thread_receives_live_events(cluster: Cluster) -> None:
    start = cluster.create(config_map("start"))["metadata"]["resourceVersion"]
    stream = cluster.watch("ConfigMap", resource_version=start, timeout=10)
    got: list[WatchEvent] = []
    consumer = threading.Thread(target=lambda: got.extend(itertools.islice(stream, 2)))
    consumer.start()
    cluster.create(config_map("x"))
    cluster.delete("ConfigMap", "x")
    consumer.join(10)
    stream.close()
    assert summary(got) == [("ADDED", "x"), ("DELETED", "x")]


# --- garbage collection and workloads ------------------------------------------------------

def names_of(objs: list[dict[str, Any]]) -> list[str]:
    return [o["metadata"]["name"] for o in objs]


def test_deleting_an_owner_deletes_its_dependents(backend: Backend, cluster: Cluster) -> None:
    owner = cluster.create(rollout())
    other = cluster.create(rollout("other"))
    rs = cluster.create(replica_set("web-abc", 2, owner))
    pod = {"kind": "Pod", "metadata": {"name": "web-abc-1", "namespace": "team", "labels": {"rs": "web-abc"},
                                       "ownerReferences": [owner_ref(rs)]}, "spec": {"containers": [CONTAINER]}}
    cluster.create(pod)
    shared = replica_set("shared", 1, owner)
    shared["metadata"]["ownerReferences"].append(owner_ref(other, controller=False))
    cluster.create(shared)
    cluster.create(replica_set("unrelated", 1))

    def owners_of_pods() -> list[str]:
        return sorted(p["metadata"]["ownerReferences"][0]["name"] for p in cluster.list("Pod"))

    cluster.delete("Rollout", "web", "team")
    assert backend.settled(lambda: names_of(cluster.list("ReplicaSet")) == ["shared", "unrelated"])
    assert backend.settled(lambda: owners_of_pods() == ["shared", "unrelated"]), cluster.list("Pod")
    cluster.delete("Rollout", "other", "team")
    assert backend.settled(lambda: names_of(cluster.list("ReplicaSet")) == ["unrelated"])
    assert backend.settled(lambda: owners_of_pods() == ["unrelated"])


def test_a_second_controller_owner_reference_is_invalid(cluster: Cluster) -> None:
    first, second = cluster.create(rollout("a")), cluster.create(rollout("b"))
    both = replica_set("web-abc", 0, first)
    both["metadata"]["ownerReferences"].append(owner_ref(second))
    with pytest.raises(Invalid, match=r"Only one reference can have Controller set to true"):
        cluster.create(both)


def test_replica_set_status_follows_spec_replicas(backend: Backend, cluster: Cluster) -> None:
    cluster.create(replica_set("web-abc", 3))

    def status() -> dict[str, Any]:
        return dict(cluster.get("ReplicaSet", "web-abc", "team").get("status") or {})

    assert backend.settled(lambda: status() == {"replicas": 3, "fullyLabeledReplicas": 3, "readyReplicas": 3,
                                                "availableReplicas": 3, "observedGeneration": 1}), status()
    cluster.patch("ReplicaSet", "web-abc", "team", {"spec": {"replicas": 1}})
    assert backend.settled(lambda: (status()["availableReplicas"], status()["observedGeneration"]) == (1, 2)), status()
    cluster.patch("ReplicaSet", "web-abc", "team", {"spec": {"replicas": 0}})
    assert backend.settled(lambda: (status()["replicas"], status().get("availableReplicas", 0)) == (0, 0)), status()


def test_the_in_memory_replica_set_writes_its_status_within_create(simulated: Backend) -> None:
    cluster = simulated.make()  # the simulation's own promise: no controller runs in between
    created = cluster.create(replica_set("web-abc", 3))
    assert created["status"] == cluster.get("ReplicaSet", "web-abc", "team")["status"]
    assert created["status"]["availableReplicas"] == 3


def test_replica_set_pods_become_available_after_a_ready_delay(simulated: Backend) -> None:
    # Simulation only: ready_delay and settle() drive the in-memory kubelet on a stepped clock.
    backend = simulated
    cluster = backend.make(workloads=ReplicaSets(ready_delay=timedelta(seconds=30)))
    assert backend.memory is not None
    cluster.create(replica_set("web-abc", 3))
    assert cluster.get("ReplicaSet", "web-abc", "team")["status"]["availableReplicas"] == 0
    assert backend.memory.settle(backend.clock.advance(29)) == 0
    assert backend.memory.settle(backend.clock.advance(1)) == 1
    assert cluster.get("ReplicaSet", "web-abc", "team")["status"]["availableReplicas"] == 3
    down = cluster.patch("ReplicaSet", "web-abc", "team", {"spec": {"replicas": 1}})
    assert down["status"]["availableReplicas"] == 1  # scaling down is immediate


TEMPLATE_LABELS = {"app": "web", "rollouts-pod-template-hash": "abc"}


def templated_set(name: str, replicas: int) -> dict[str, Any]:
    rs = replica_set(name, replicas)
    rs["spec"]["selector"] = {"matchLabels": TEMPLATE_LABELS}
    rs["spec"]["template"] = {"metadata": {"labels": TEMPLATE_LABELS, "annotations": {"note": "x"}},
                              "spec": {"containers": [CONTAINER]}}
    return rs


def pods_of(cluster: Cluster, rs: str) -> list[dict[str, Any]]:
    return [p for p in cluster.list("Pod", "team") if p["metadata"]["ownerReferences"][0]["name"] == rs]


def is_ready(pod: dict[str, Any]) -> bool:
    [ready] = [c for c in (pod.get("status") or {}).get("conditions") or [{"type": "Ready", "status": "False"}]
               if c["type"] == "Ready"]
    return bool(ready["status"] == "True")


def test_a_replica_set_keeps_spec_replicas_pods_from_its_template(backend: Backend) -> None:
    cluster = backend.make()
    rs = cluster.create(templated_set("web-abc", 3))
    assert backend.settled(lambda: len(pods_of(cluster, "web-abc")) == 3
                           and all(is_ready(p) for p in pods_of(cluster, "web-abc")))
    pods = pods_of(cluster, "web-abc")
    assert len({p["metadata"]["name"] for p in pods}) == 3
    for pod in pods:
        meta = pod["metadata"]
        assert re.fullmatch(r"web-abc-[a-z0-9]{5}", meta["name"]) and pod["apiVersion"] == "v1"
        assert meta["labels"] == TEMPLATE_LABELS
        assert meta["annotations"] == {"note": "x"}
        assert meta["ownerReferences"] == [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-abc",
                                            "uid": rs["metadata"]["uid"], "controller": True,
                                            "blockOwnerDeletion": True}]
        assert TIMESTAMP.fullmatch(meta["creationTimestamp"])
        if not backend.real:
            assert meta["creationTimestamp"] == "2024-01-01T00:00:00Z"
        assert pod["spec"]["containers"][0]["image"] == "app:v1"
        assert pod["status"]["phase"] == "Running" and is_ready(pod)
    assert names_of(cluster.list("Pod", "team", label_selector={"rollouts-pod-template-hash": "abc"})) == names_of(
        pods)
    doomed = pods[0]["metadata"]["name"]
    cluster.delete("Pod", doomed, "team")  # a deleted pod is replaced
    assert backend.settled(lambda: len(pods_of(cluster, "web-abc")) == 3
                           and doomed not in names_of(pods_of(cluster, "web-abc")))
    cluster.patch("ReplicaSet", "web-abc", "team", {"spec": {"replicas": 1}})
    assert backend.settled(lambda: len(pods_of(cluster, "web-abc")) == 1)
    cluster.delete("ReplicaSet", "web-abc", "team")
    assert backend.settled(lambda: cluster.list("Pod") == [])


def test_a_deleted_pod_is_replaced_and_counted_available_after_the_ready_delay(simulated: Backend) -> None:
    # Simulation only: the replacement's creationTimestamp and readiness follow the stepped clock.
    backend = simulated
    cluster = backend.make(workloads=ReplicaSets(ready_delay=timedelta(seconds=30)))
    assert backend.memory is not None
    cluster.create(templated_set("web-abc", 2))
    assert not any(is_ready(p) for p in pods_of(cluster, "web-abc"))
    backend.memory.settle(backend.clock.advance(30))
    before = pods_of(cluster, "web-abc")
    assert all(is_ready(p) for p in before)
    cursor = cluster.watch("Pod", "team", timeout=0)
    list(cursor)
    backend.clock.advance(10)
    cluster.delete("Pod", before[0]["metadata"]["name"], "team")
    after = pods_of(cluster, "web-abc")
    [fresh] = [p for p in after if p["metadata"]["name"] not in {b["metadata"]["name"] for b in before}]
    assert len(after) == 2 and fresh["metadata"]["creationTimestamp"] == "2024-01-01T00:00:40Z"
    assert not is_ready(fresh)
    assert cluster.get("ReplicaSet", "web-abc", "team")["status"]["availableReplicas"] == 1
    events = summary(list(cluster.watch("Pod", "team", resource_version=cursor.resource_version, timeout=0)))
    assert events == [("DELETED", before[0]["metadata"]["name"]), ("ADDED", fresh["metadata"]["name"])]
    assert backend.memory.settle(backend.clock.advance(29)) == 0
    assert backend.memory.settle(backend.clock.advance(1)) == 1
    assert cluster.get("ReplicaSet", "web-abc", "team")["status"]["availableReplicas"] == 2


def test_scaling_down_removes_pods_that_are_not_ready_first_then_the_newest(simulated: Backend) -> None:
    # Simulation only: which pods are Ready, and how old, is set by the stepped clock.
    backend = simulated
    cluster = backend.make(workloads=ReplicaSets(ready_delay=timedelta(seconds=30)))
    assert backend.memory is not None
    cluster.create(templated_set("web-abc", 2))
    backend.memory.settle(backend.clock.advance(30))
    backend.clock.advance(10)
    cluster.patch("ReplicaSet", "web-abc", "team", {"spec": {"replicas": 4}})  # two more, not Ready yet
    backend.memory.settle(backend.clock.advance(30))
    oldest = sorted(p["metadata"]["name"] for p in pods_of(cluster, "web-abc")
                    if p["metadata"]["creationTimestamp"] == "2024-01-01T00:00:00Z")
    backend.clock.advance(10)
    cluster.patch("ReplicaSet", "web-abc", "team", {"spec": {"replicas": 6}})
    cluster.patch("ReplicaSet", "web-abc", "team", {"spec": {"replicas": 2}})
    assert sorted(p["metadata"]["name"] for p in pods_of(cluster, "web-abc")) == oldest
    status = cluster.get("ReplicaSet", "web-abc", "team")["status"]
    assert (status["replicas"], status["availableReplicas"]) == (2, 2)


def test_a_first_watch_with_timeout_zero_is_a_list(cluster: Cluster) -> None:
    cluster.create(config_map("a"))
    cluster.create(config_map("b"))
    stream = cluster.watch("ConfigMap", timeout=0)
    assert summary(list(stream)) == [("ADDED", "a"), ("ADDED", "b")]
    cluster.patch("ConfigMap", "a", "default", {"data": {"k": "2"}})
    assert summary(list(cluster.watch("ConfigMap", resource_version=stream.resource_version, timeout=0))) == [
        ("MODIFIED", "a")]


def test_unknown_fields_of_our_custom_resources_are_pruned_not_refused(cluster: Cluster) -> None:
    typo = rollout()
    typo["spec"]["strategy"]["canary"]["steps"][0] = {"setWieght": 20}
    typo["spec"]["replicaz"] = 3
    typo["unknownTopLevel"] = True
    created = cluster.create(typo)
    assert created["spec"]["strategy"]["canary"]["steps"] == [{}, {"pause": {}}]
    assert "replicaz" not in created["spec"] and "unknownTopLevel" not in created
    patched = cluster.patch("Rollout", "web", "team", {"spec": {"paused": True, "pausedd": True}})
    assert patched["spec"]["paused"] is True and "pausedd" not in patched["spec"]
    dropped_only = cluster.patch("Rollout", "web", "team", {"spec": {"nothing": 1}})
    assert dropped_only["metadata"]["generation"] == patched["metadata"]["generation"]  # nothing changed
    status = cluster.patch_status("Rollout", "web", "team", {"status": {"phase": "Paused", "phaze": "x"}})
    assert status["status"] == {"phase": "Paused", "phaze": "x"}  # our status schema preserves unknown fields
    vs = cluster.create({"kind": "VirtualService", "metadata": {"name": "vs"}, "spec": {"anything": {"goes": 1}}})
    assert vs["spec"] == {"anything": {"goes": 1}}  # a schema that preserves unknown fields keeps them


def test_a_custom_resource_replace_must_carry_its_resource_version(cluster: Cluster) -> None:
    cluster.create(rollout())
    unconditional = rollout()
    unconditional["spec"]["replicas"] = 1
    with pytest.raises(Invalid, match=r"metadata.resourceVersion: Invalid value: 0x0: must be specified for an update"):
        cluster.replace(unconditional)
    current = cluster.get("Rollout", "web", "team")
    assert cluster.replace(dict(current, spec=dict(current["spec"], replicas=1)))["spec"]["replicas"] == 1
