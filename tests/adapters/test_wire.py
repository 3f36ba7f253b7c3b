"""The wire, side by side: the same raw HTTP requests to the embedded API server and to the
real kube-apiserver 1.20 (slow), with the same expected answers — status codes, Status
bodies (reason, message, details), list and watch formats, DELETE answers. Each case pins
a line of tests/adapters/REAL_API_DIFFERENCES.md: the embedded server was changed to give
the real server's answer, and this proves both give it.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests

from rollouts.kube.controlplane import ControlPlane
from rollouts.memory.cluster import InMemoryCluster
from rollouts.memory.server import serve

MERGE = {"Content-Type": "application/merge-patch+json"}
JSON_PATCH = {"Content-Type": "application/json-patch+json"}
STRATEGIC = {"Content-Type": "application/strategic-merge-patch+json"}
GENERIC_422 = "the server rejected our request due to an error in our request"


@dataclass
class Wire:
    """One API server, a session to it and the namespace this test owns there."""

    name: str
    http: requests.Session
    base: str
    namespace: str

    def url(self, group_version: str, plural: str, name: str = "", sub: str = "") -> str:
        prefix = f"/api/{group_version}" if "/" not in group_version else f"/apis/{group_version}"
        path = f"{self.base}{prefix}/namespaces/{self.namespace}/{plural}"
        return "/".join(p for p in (path, name, sub) if p)

    def rollouts(self, name: str = "", sub: str = "") -> str:
        return self.url("argoproj.io/v1alpha1", "rollouts", name, sub)

    def config_maps(self, name: str = "") -> str:
        return self.url("v1", "configmaps", name)


@pytest.fixture(params=["embedded", pytest.param("real", marks=pytest.mark.slow)])
def wire(request: pytest.FixtureRequest) -> Iterator[Wire]:
    if request.param == "real":
        plane: ControlPlane = request.getfixturevalue("control_plane")
        namespace = f"w{secrets.token_hex(3)}"
        plane.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
        with plane.session() as http:
            yield Wire("real", http, plane.url, namespace)
            http.delete(f"{plane.url}/api/v1/namespaces/{namespace}", timeout=30)
        return
    with serve(InMemoryCluster(prune=True, history=1)) as server, requests.Session() as http:
        yield Wire("embedded", http, server.url, "team")


def rollout(name: str = "web") -> dict[str, Any]:
    return {"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout", "metadata": {"name": name},
            "spec": {"replicas": 3, "strategy": {"canary": {"steps": [{"setWeight": 20}]}}}}


def failure(answer: requests.Response, code: int, reason: str) -> dict[str, Any]:
    assert answer.status_code == code, answer.text
    body: dict[str, Any] = answer.json()
    assert (body["kind"], body["status"], body["code"], body["reason"]) == ("Status", "Failure", code, reason)
    return body


def created(answer: requests.Response) -> dict[str, Any]:
    assert answer.status_code == 201, answer.text
    body: dict[str, Any] = answer.json()
    return body


def test_not_found_and_conflicts_carry_details_naming_the_object(wire: Wire) -> None:
    missing = failure(wire.http.get(wire.rollouts("missing")), 404, "NotFound")
    assert missing["message"] == 'rollouts.argoproj.io "missing" not found'
    assert missing["details"] == {"name": "missing", "group": "argoproj.io", "kind": "rollouts"}
    core = failure(wire.http.get(wire.config_maps("nope")), 404, "NotFound")
    assert core["details"] == {"name": "nope", "kind": "configmaps"}
    first = created(wire.http.post(wire.rollouts(), json=rollout()))
    again = failure(wire.http.post(wire.rollouts(), json=rollout()), 409, "AlreadyExists")
    assert again["message"] == 'rollouts.argoproj.io "web" already exists'
    assert again["details"] == {"name": "web", "group": "argoproj.io", "kind": "rollouts"}
    wire.http.patch(wire.rollouts("web"), json={"spec": {"replicas": 2}}, headers=MERGE)
    stale = {"metadata": {"resourceVersion": first["metadata"]["resourceVersion"]}, "spec": {"replicas": 9}}
    conflict = failure(wire.http.patch(wire.rollouts("web"), json=stale, headers=MERGE), 409, "Conflict")
    assert conflict["message"] == ('Operation cannot be fulfilled on rollouts.argoproj.io "web": the object has '
                                   "been modified; please apply your changes to the latest version and try again")
    assert conflict["details"] == {"name": "web", "group": "argoproj.io", "kind": "rollouts"}
    failure(wire.http.put(wire.rollouts("web"), json=first), 409, "Conflict")  # a stale PUT too


def test_every_failing_json_patch_is_the_same_generic_422(wire: Wire) -> None:
    before = created(wire.http.post(wire.rollouts(), json=rollout()))
    for ops in ([{"op": "test", "path": "/spec/replicas", "value": 7}],
                [{"op": "remove", "path": "/spec/nothing"}],
                [{"op": "add", "path": "/metadata/labels/app", "value": "web"}]):  # no labels: empty maps are omitted
        body = failure(wire.http.patch(wire.rollouts("web"), data=json.dumps(ops), headers=JSON_PATCH), 422, "Invalid")
        assert (body["message"], body["details"]) == (GENERIC_422, {})
    mislabelled = wire.http.patch(wire.rollouts("web"), data=json.dumps([{"op": "remove", "path": "/spec"}]),
                                  headers=MERGE)
    assert "cannot unmarshal array" in failure(mislabelled, 422, "Invalid")["message"]
    not_a_list = failure(wire.http.patch(wire.rollouts("web"), json={"spec": {}}, headers=JSON_PATCH), 400,
                         "BadRequest")
    assert not_a_list["message"] == "json: cannot unmarshal object into Go value of type jsonpatch.Patch"
    assert wire.http.get(wire.rollouts("web")).json()["metadata"]["resourceVersion"] == before["metadata"][
        "resourceVersion"]


def test_patch_types_custom_resources_refuse_strategic_merge(wire: Wire) -> None:
    created(wire.http.post(wire.rollouts(), json=rollout()))
    refused = failure(wire.http.patch(wire.rollouts("web"), json={"spec": {}}, headers=STRATEGIC), 415,
                      "UnsupportedMediaType")
    assert refused["message"] == ("the body of the request was in an unknown format - accepted media types include: "
                                  "application/json-patch+json, application/merge-patch+json, "
                                  "application/apply-patch+yaml")
    created(wire.http.post(wire.config_maps(), json={"apiVersion": "v1", "kind": "ConfigMap",
                                                     "metadata": {"name": "c"}, "data": {"a": "1"}}))
    merged = wire.http.patch(wire.config_maps("c"), json={"data": {"b": "2"}}, headers=STRATEGIC)
    assert merged.status_code == 200 and merged.json()["data"] == {"a": "1", "b": "2"}


def test_bodies_that_cannot_be_decoded_are_400(wire: Wire) -> None:
    wrong_group = dict(rollout("g"), apiVersion="apps/v1")
    body = failure(wire.http.post(wire.rollouts(), json=wrong_group), 400, "BadRequest")
    assert body["message"] == ("the API version in the data (apps/v1) does not match the expected API version "
                               "(argoproj.io/v1alpha1)")
    numeric = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "n", "labels": {"version": 2}}}
    body = failure(wire.http.post(wire.config_maps(), json=numeric), 400, "BadRequest")
    assert body["message"].startswith('ConfigMap in version "v1" cannot be handled as a ConfigMap: ')
    assert "Labels: ReadString: expects \" or n" in body["message"]
    other_ns = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "o", "namespace": "elsewhere"}}
    body = failure(wire.http.post(wire.config_maps(), json=other_ns), 400, "BadRequest")
    assert body["message"] == "the namespace of the provided object does not match the namespace sent on the request"
    created(wire.http.post(wire.config_maps(), json={"apiVersion": "v1", "kind": "ConfigMap",
                                                     "metadata": {"name": "x"}}))
    renamed = failure(wire.http.put(wire.config_maps("x"), json={"apiVersion": "v1", "kind": "ConfigMap",
                                                                 "metadata": {"name": "y"}}), 400, "BadRequest")
    assert renamed["message"] == "the name of the object (y) does not match the name on the URL (x)"


def test_names_and_generate_names_are_rfc_1123_subdomains(wire: Wire) -> None:
    rule = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters"
    for name in ("Bad_Name", "a..b", "-a"):
        body = failure(wire.http.post(wire.config_maps(), json={"apiVersion": "v1", "kind": "ConfigMap",
                                                                "metadata": {"name": name}}), 422, "Invalid")
        assert body["message"].startswith(f'ConfigMap "{name}" is invalid: metadata.name: Invalid value: "{name}": '
                                          f"{rule}")
    body = failure(wire.http.post(wire.config_maps(), json={"apiVersion": "v1", "kind": "ConfigMap",
                                                            "metadata": {"generateName": "web."}}), 422, "Invalid")
    assert f'metadata.generateName: Invalid value: "web.": {rule}' in body["message"]
    made = created(wire.http.post(wire.config_maps(), json={"apiVersion": "v1", "kind": "ConfigMap",
                                                            "metadata": {"generateName": "web-"}}))
    name = made["metadata"]["name"]
    assert name.startswith("web-") and len(name) == 9 and set(name[4:]) <= set("bcdfghjklmnpqrstvwxz2456789")


def test_a_custom_resource_update_needs_a_resource_version_a_built_in_one_does_not(wire: Wire) -> None:
    created(wire.http.post(wire.rollouts(), json=rollout()))
    body = failure(wire.http.put(wire.rollouts("web"), json=rollout()), 422, "Invalid")
    assert body["message"] == ('rollouts.argoproj.io "web" is invalid: metadata.resourceVersion: Invalid value: 0x0: '
                               "must be specified for an update")
    created(wire.http.post(wire.config_maps(), json={"apiVersion": "v1", "kind": "ConfigMap",
                                                     "metadata": {"name": "c"}}))
    plain = wire.http.put(wire.config_maps("c"), json={"apiVersion": "v1", "kind": "ConfigMap",
                                                       "metadata": {"name": "c"}, "data": {"a": "1"}})
    assert plain.status_code == 200 and plain.json()["data"] == {"a": "1"}


def test_generation_and_empty_metadata_as_stored(wire: Wire) -> None:
    with_empty = dict(rollout(), metadata={"name": "web", "labels": {}, "annotations": {}})
    ro = created(wire.http.post(wire.rollouts(), json=with_empty))
    assert ro["metadata"]["generation"] == 1 and not {"labels", "annotations"} & set(ro["metadata"])
    cm = created(wire.http.post(wire.config_maps(), json={"apiVersion": "v1", "kind": "ConfigMap",
                                                          "metadata": {"name": "c", "labels": {}}}))
    assert not {"generation", "labels"} & set(cm["metadata"])
    relabelled = wire.http.patch(wire.rollouts("web"), json={"metadata": {"labels": {"a": "b"}}}, headers=MERGE)
    assert relabelled.json()["metadata"]["generation"] == 1
    respecced = wire.http.patch(wire.rollouts("web"), json={"spec": {"replicas": 1}}, headers=MERGE)
    assert respecced.json()["metadata"]["generation"] == 2


def test_unknown_fields_of_a_structural_schema_are_pruned(wire: Wire) -> None:
    typo = rollout()
    typo["spec"]["strategy"]["canary"]["steps"] = [{"setWieght": 20}]
    typo["spec"]["replicaz"] = 1
    body = created(wire.http.post(wire.rollouts(), json=typo))
    assert body["spec"] == {"replicas": 3, "strategy": {"canary": {"steps": [{}]}}}


def test_lists_have_a_resource_version_and_built_in_items_carry_no_kind(wire: Wire) -> None:
    created(wire.http.post(wire.config_maps(), json={"apiVersion": "v1", "kind": "ConfigMap",
                                                     "metadata": {"name": "a"}}))
    created(wire.http.post(wire.rollouts(), json=rollout()))
    listing = wire.http.get(wire.config_maps()).json()
    assert (listing["kind"], listing["apiVersion"]) == ("ConfigMapList", "v1")
    assert int(listing["metadata"]["resourceVersion"]) > 0 and "continue" not in listing["metadata"]
    assert [set(item) for item in listing["items"]] == [{"metadata"}]
    [ro] = wire.http.get(wire.rollouts()).json()["items"]
    assert (ro["kind"], ro["apiVersion"]) == ("Rollout", "argoproj.io/v1alpha1")  # custom resources keep them


def test_delete_answers_a_status_with_the_uid_and_a_pod_with_itself(wire: Wire) -> None:
    cm = created(wire.http.post(wire.config_maps(), json={"apiVersion": "v1", "kind": "ConfigMap",
                                                          "metadata": {"name": "a"}}))
    gone = wire.http.delete(wire.config_maps("a"))
    assert gone.status_code == 200
    assert gone.json() == {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                           "details": {"name": "a", "kind": "configmaps", "uid": cm["metadata"]["uid"]}}
    ro = created(wire.http.post(wire.rollouts(), json=rollout()))
    assert wire.http.delete(wire.rollouts("web")).json()["details"] == {
        "name": "web", "group": "argoproj.io", "kind": "rollouts", "uid": ro["metadata"]["uid"]}
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
           "spec": {"containers": [{"name": "app", "image": "app:v1"}]}}
    created(wire.http.post(wire.url("v1", "pods"), json=pod))
    deleted = wire.http.delete(wire.url("v1", "pods", "p"))
    assert deleted.status_code == 200 and deleted.json()["kind"] == "Pod"
    assert deleted.json()["metadata"]["deletionTimestamp"] and deleted.json()["metadata"][
        "deletionGracePeriodSeconds"] == 0
    assert wire.http.get(wire.url("v1", "pods", "p")).status_code == 404  # unscheduled: gone at once


def watch_lines(wire: Wire, url: str, **params: str) -> tuple[int, list[dict[str, Any]]]:
    answer = wire.http.get(url, params={"watch": "true", **params}, timeout=30)
    return answer.status_code, [json.loads(line) for line in answer.text.splitlines() if line.strip()]


def test_watch_expired_is_an_error_event_in_a_200_and_a_short_watch_ends_without_a_bookmark(wire: Wire) -> None:
    services = wire.url("networking.istio.io/v1alpha3", "virtualservices")
    for name in ("a", "b", "c"):  # the embedded server keeps 1 change a kind; the real cache started after rv 1
        created(wire.http.post(services, json={"apiVersion": "networking.istio.io/v1alpha3", "kind": "VirtualService",
                                               "metadata": {"name": name}, "spec": {}}))
    code, events = watch_lines(wire, services, resourceVersion="1", timeoutSeconds="1")
    assert code == 200 and [e["type"] for e in events] == ["ERROR"]
    status = events[0]["object"]
    assert (status["kind"], status["code"], status["reason"]) == ("Status", 410, "Expired")
    assert status["message"].startswith("too old resource version: 1 (")
    code, events = watch_lines(wire, services, resourceVersion="0", timeoutSeconds="1", allowWatchBookmarks="true")
    assert code == 200 and sorted((e["type"], e["object"]["metadata"]["name"]) for e in events) == [
        ("ADDED", "a"), ("ADDED", "b"), ("ADDED", "c")]
    assert all(e["object"]["kind"] == "VirtualService" for e in events)
    fraction = wire.http.get(services, params={"watch": "true", "timeoutSeconds": "0.5"}, timeout=30)
    assert 'strconv.ParseInt: parsing "0.5": invalid syntax' in failure(fraction, 400, "BadRequest")["message"]


def test_strategic_merge_merges_keyed_lists_of_built_in_kinds(wire: Wire) -> None:
    deployments = wire.url("apps/v1", "deployments")
    labels = {"app": "d"}
    created(wire.http.post(deployments, json={
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
        "spec": {"replicas": 0, "selector": {"matchLabels": labels}, "template": {
            "metadata": {"labels": labels}, "spec": {"containers": [{"name": "c", "image": "c1", "args": ["a"]}]}}}}))

    def smp(patch: dict[str, Any]) -> dict[str, Any]:
        answer = wire.http.patch(wire.url("apps/v1", "deployments", "d"), json=patch, headers=STRATEGIC)
        assert answer.status_code == 200, answer.text
        body: dict[str, Any] = answer.json()
        return body

    def containers(*items: dict[str, Any], **directives: Any) -> dict[str, Any]:
        return {"spec": {"template": {"spec": {"containers": list(items), **directives}}}}

    def seen(body: dict[str, Any], field: str = "image") -> list[tuple[str, Any]]:
        return [(c["name"], c.get(field)) for c in body["spec"]["template"]["spec"]["containers"]]

    assert seen(smp(containers({"name": "side", "image": "s1"}))) == [("side", "s1"), ("c", "c1")]
    assert seen(smp(containers({"name": "c", "image": "c2"}, {"name": "x", "image": "x1"}))) == [
        ("side", "s1"), ("c", "c2"), ("x", "x1")]  # kept in place; a new one goes before the next kept one
    assert seen(smp(containers({"name": "x", "$patch": "delete"}))) == [("side", "s1"), ("c", "c2")]
    assert seen(smp(containers({"name": "new", "image": "n1"}, {"name": "c", "image": "c2"}))) == [
        ("new", "n1"), ("side", "s1"), ("c", "c2")]
    smp(containers({"name": "new", "$patch": "delete"}))
    ordered = smp(containers({"name": "c", "image": "c3"}, **{"$setElementOrder/containers": [
        {"name": "c"}, {"name": "side"}]}))
    assert seen(ordered) == [("c", "c3"), ("side", "s1")]
    assert seen(smp(containers({"name": "c", "args": ["b"]})), "args") == [("c", ["b"]), ("side", None)]  # replaced
    smp(containers({"name": "c", "env": [{"name": "A", "value": "1"}]}))
    assert seen(smp(containers({"name": "c", "env": [{"name": "B", "value": "2"}]})), "env")[0] == (
        "c", [{"name": "B", "value": "2"}, {"name": "A", "value": "1"}])
    smp({"metadata": {"finalizers": ["example.com/a"]}})
    assert smp({"metadata": {"finalizers": ["example.com/b"]}})["metadata"]["finalizers"] == [
        "example.com/b", "example.com/a"]
    assert "finalizers" not in smp({"metadata": {"finalizers": None}})["metadata"]
