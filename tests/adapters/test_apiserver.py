"""HTTP-level behaviour of the embedded API server that a client library would hide:
status codes, Status bodies, Content-Type handling, the status subresource, the watch
stream format and 410, discovery. Raw `requests` calls, plus the official client where
its own quirks are the point.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from kubernetes import client, config, watch
from kubernetes.client.exceptions import ApiException

from rollouts.memory.cluster import InMemoryCluster
from rollouts.memory.server import ApiServer, serve

ROLLOUTS = "/apis/argoproj.io/v1alpha1/namespaces/team/rollouts"
CONFIGMAPS = "/api/v1/namespaces/default/configmaps"
MERGE = {"Content-Type": "application/merge-patch+json"}
JSON_PATCH = {"Content-Type": "application/json-patch+json"}


@pytest.fixture
def http(server: ApiServer) -> Iterator[requests.Session]:
    with requests.Session() as session:
        yield session


def url(server: ApiServer, path: str) -> str:
    return server.url + path


def rollout(name: str = "web") -> dict[str, Any]:
    return {"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout", "metadata": {"name": name},
            "spec": {"replicas": 3}, "status": {"phase": "Ignored"}}


def create_rollout(http: requests.Session, server: ApiServer, name: str = "web") -> dict[str, Any]:
    answer = http.post(url(server, ROLLOUTS), json=rollout(name))
    assert answer.status_code == 201, answer.text
    return answer.json()  # type: ignore[no-any-return]


def assert_status(answer: requests.Response, code: int, reason: str) -> dict[str, Any]:
    assert answer.status_code == code, answer.text
    body = answer.json()
    assert body["kind"] == "Status" and body["apiVersion"] == "v1" and body["status"] == "Failure"
    assert body["code"] == code and body["reason"] == reason
    return body  # type: ignore[no-any-return]


def test_create_answers_201_with_server_fields_and_namespace_from_the_url(http: requests.Session,
                                                                           server: ApiServer) -> None:
    body = create_rollout(http, server)
    assert body["metadata"]["namespace"] == "team" and body["metadata"]["resourceVersion"]
    assert "status" not in body  # the status subresource: create drops status
    assert_status(http.post(url(server, ROLLOUTS), json=rollout()), 409, "AlreadyExists")
    wrong_ns = dict(rollout("x"), metadata={"name": "x", "namespace": "other"})
    assert_status(http.post(url(server, ROLLOUTS), json=wrong_ns), 400, "BadRequest")
    assert_status(http.post(url(server, ROLLOUTS), data=b"{not json"), 400, "BadRequest")


def test_not_found_answers_carry_status_bodies(http: requests.Session, server: ApiServer) -> None:
    body = assert_status(http.get(url(server, f"{ROLLOUTS}/missing")), 404, "NotFound")
    assert body["message"] == 'rollouts.argoproj.io "missing" not found'
    assert_status(http.get(url(server, "/apis/argoproj.io/v1alpha1/namespaces/team/widgets")), 404, "NotFound")
    assert_status(http.get(url(server, "/apis/argoproj.io/v1alpha1/namespaces/team/analysistemplates/x/status")),
                  404, "NotFound")  # no status subresource on templates
    assert_status(http.delete(url(server, f"{ROLLOUTS}/missing")), 404, "NotFound")


def test_patch_is_chosen_by_content_type_not_by_body_shape(http: requests.Session, server: ApiServer) -> None:
    before = create_rollout(http, server)
    ops = [{"op": "replace", "path": "/spec/replicas", "value": 1}]
    # The kubernetes client's bug: a JSON-patch list labelled as a merge patch. A real server says 422.
    mislabelled = assert_status(http.patch(url(server, f"{ROLLOUTS}/web"), data=json.dumps(ops), headers=MERGE),
                                422, "Invalid")
    assert "cannot unmarshal array" in mislabelled["message"]
    assert_status(http.patch(url(server, f"{ROLLOUTS}/web"), json={"spec": {}}, headers=JSON_PATCH), 400, "BadRequest")
    assert_status(http.patch(url(server, f"{ROLLOUTS}/web"), json={"spec": {}},
                             headers={"Content-Type": "application/strategic-merge-patch+json"}),
                  415, "UnsupportedMediaType")  # custom resources take no strategic merge
    assert_status(http.patch(url(server, f"{ROLLOUTS}/web"), json={"spec": {}}), 415, "UnsupportedMediaType")
    assert http.get(url(server, f"{ROLLOUTS}/web")).json() == before
    done = http.patch(url(server, f"{ROLLOUTS}/web"), data=json.dumps(ops), headers=JSON_PATCH)
    assert done.status_code == 200 and done.json()["spec"]["replicas"] == 1


def test_strategic_merge_is_accepted_for_built_in_kinds(http: requests.Session, server: ApiServer) -> None:
    http.post(url(server, CONFIGMAPS), json={"kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "1"}})
    answer = http.patch(url(server, f"{CONFIGMAPS}/c"), json={"data": {"b": "2"}},
                        headers={"Content-Type": "application/strategic-merge-patch+json; charset=utf-8"})
    assert answer.status_code == 200 and answer.json()["data"] == {"a": "1", "b": "2"}


def test_a_stale_resource_version_is_a_409_conflict(http: requests.Session, server: ApiServer) -> None:
    created = create_rollout(http, server)
    stale = created["metadata"]["resourceVersion"]
    http.patch(url(server, f"{ROLLOUTS}/web"), json={"spec": {"replicas": 2}}, headers=MERGE)
    patch = {"metadata": {"resourceVersion": stale}, "spec": {"replicas": 9}}
    body = assert_status(http.patch(url(server, f"{ROLLOUTS}/web"), json=patch, headers=MERGE), 409, "Conflict")
    assert "the object has been modified" in body["message"]
    assert_status(http.put(url(server, f"{ROLLOUTS}/web"), json=created), 409, "Conflict")
    assert_status(http.put(url(server, f"{ROLLOUTS}/other"), json=created), 400, "BadRequest")  # name mismatch


def test_the_status_subresource_is_isolated(http: requests.Session, server: ApiServer) -> None:
    create_rollout(http, server)
    status_url = url(server, f"{ROLLOUTS}/web/status")
    answer = http.patch(status_url, json={"spec": {"replicas": 0}, "status": {"phase": "Paused"}}, headers=MERGE)
    assert answer.status_code == 200
    assert answer.json()["spec"]["replicas"] == 3 and answer.json()["status"] == {"phase": "Paused"}
    main = http.patch(url(server, f"{ROLLOUTS}/web"), json={"status": {"phase": "Hacked"}}, headers=MERGE).json()
    assert main["status"] == {"phase": "Paused"}
    current = http.get(status_url).json()
    replaced = http.put(status_url, json=dict(current, spec={"replicas": 7}, status={"abort": True}))
    assert replaced.status_code == 200
    assert replaced.json()["status"] == {"abort": True} and replaced.json()["spec"]["replicas"] == 3
    assert_status(http.put(status_url, json=current), 409, "Conflict")  # current's rv is stale now
    ops = [{"op": "add", "path": "/status/phase", "value": "Healthy"}, {"op": "replace", "path": "/spec/replicas",
                                                                       "value": 1}]
    patched = http.patch(status_url, data=json.dumps(ops), headers=JSON_PATCH).json()
    assert patched["status"] == {"abort": True, "phase": "Healthy"} and patched["spec"]["replicas"] == 3
    failing = [{"op": "test", "path": "/status/phase", "value": "Degraded"}]
    assert_status(http.patch(status_url, data=json.dumps(failing), headers=JSON_PATCH), 422, "Invalid")


def test_lists_have_kind_and_resource_version_and_honour_label_selectors(http: requests.Session,
                                                                          server: ApiServer) -> None:
    for name, app in (("a", "web"), ("b", "db")):
        http.post(url(server, CONFIGMAPS),
                  json={"kind": "ConfigMap", "metadata": {"name": name, "labels": {"app": app}}})
    listing = http.get(url(server, "/api/v1/configmaps"), params={"labelSelector": "app==web"}).json()
    assert listing["kind"] == "ConfigMapList" and listing["apiVersion"] == "v1"
    assert listing["metadata"]["resourceVersion"] == "2"
    assert [i["metadata"]["name"] for i in listing["items"]] == ["a"]
    assert_status(http.get(url(server, CONFIGMAPS), params={"labelSelector": "app!=web"}), 400, "BadRequest")
    assert_status(http.get(url(server, CONFIGMAPS), params={"fieldSelector": "metadata.name=a"}), 400, "BadRequest")


def test_watch_streams_newline_delimited_events_and_no_bookmark(http: requests.Session, server: ApiServer,
                                                                memory: InMemoryCluster) -> None:
    memory.create({"kind": "ConfigMap", "metadata": {"name": "a"}})
    memory.patch("ConfigMap", "a", None, {"data": {"x": "1"}})
    answer = http.get(url(server, CONFIGMAPS), params={
        "watch": "true", "resourceVersion": "0", "timeoutSeconds": "1", "allowWatchBookmarks": "true"})
    assert answer.status_code == 200 and answer.headers["Transfer-Encoding"] == "chunked"
    lines = answer.text.splitlines()
    events = [json.loads(line) for line in lines]
    assert [e["type"] for e in events] == ["ADDED"]  # as the real server: no BOOKMARK when a short watch ends
    assert events[0]["object"]["data"] == {"x": "1"}
    replay = http.get(url(server, CONFIGMAPS), params={"watch": "1", "resourceVersion": "1", "timeoutSeconds": "1"})
    assert [json.loads(line)["type"] for line in replay.text.splitlines()] == ["MODIFIED"]
    fraction = http.get(url(server, CONFIGMAPS), params={"watch": "true", "timeoutSeconds": "0.1"})
    assert "strconv.ParseInt" in assert_status(fraction, 400, "BadRequest")["message"]  # whole seconds only


def test_watch_from_an_expired_resource_version_sends_a_410_error_event(server: ApiServer, tmp_path: Path) -> None:
    small = InMemoryCluster(history=2)
    with serve(small) as tiny, requests.Session() as http:
        for i in range(4):
            small.create({"kind": "ConfigMap", "metadata": {"name": f"c{i}"}})
        answer = http.get(tiny.url + CONFIGMAPS, params={"watch": "true", "resourceVersion": "1"})
        assert answer.status_code == 200
        (event,) = [json.loads(line) for line in answer.text.splitlines()]
        assert event["type"] == "ERROR"
        assert event["object"]["code"] == 410 and event["object"]["reason"] == "Expired"


def test_discovery_and_version(http: requests.Session, server: ApiServer) -> None:
    assert http.get(url(server, "/version")).json()["major"] == "1"
    assert http.get(url(server, "/version/")).status_code == 200  # VersionApi calls it with a slash
    assert http.get(url(server, "/api")).json()["versions"] == ["v1"]
    group_names = [g["name"] for g in http.get(url(server, "/apis")).json()["groups"]]
    assert {"argoproj.io", "apps", "networking.istio.io", "coordination.k8s.io"} <= set(group_names)
    argo = http.get(url(server, "/apis/argoproj.io/v1alpha1")).json()
    names = {r["name"]: r for r in argo["resources"]}
    assert names["rollouts"]["kind"] == "Rollout" and "rollouts/status" in names
    assert names["clusteranalysistemplates"]["namespaced"] is False
    assert_status(http.get(url(server, "/apis/nothing.io/v1")), 404, "NotFound")


def test_the_official_client_works_through_the_written_kubeconfig(server: ApiServer, tmp_path: Path) -> None:
    path = server.write_kubeconfig(tmp_path / "config", context="demo")
    with config.new_client_from_config(config_file=str(path), context="demo") as api_client:
        custom = client.CustomObjectsApi(api_client)
        created = custom.create_namespaced_custom_object("argoproj.io", "v1alpha1", "team", "rollouts", rollout())
        assert created["metadata"]["name"] == "web"  # a 201, so the client deserializes it
        ops = [{"op": "replace", "path": "/spec/replicas", "value": 1}]
        with pytest.raises(ApiException) as mislabelled:  # the client's own bug, caught as a real server would
            custom.patch_namespaced_custom_object("argoproj.io", "v1alpha1", "team", "rollouts", "web", ops)
        assert mislabelled.value.status == 422
        fixed = custom.patch_namespaced_custom_object("argoproj.io", "v1alpha1", "team", "rollouts", "web", ops,
                                                      _content_type="application/json-patch+json")
        assert fixed["spec"]["replicas"] == 1
        assert client.VersionApi(api_client).get_code().major == "1"
        events = watch.Watch().stream(custom.list_namespaced_custom_object, "argoproj.io", "v1alpha1", "team",
                                      "rollouts", resource_version="0", timeout_seconds=1)
        first = next(events)
        events.close()
        assert first["type"] == "ADDED" and first["object"]["spec"]["replicas"] == 1


def test_close_ends_open_watches_and_idle_connections(memory: InMemoryCluster) -> None:
    running = serve(memory)
    session = requests.Session()
    session.get(running.url + "/version")  # leaves an idle keep-alive connection
    started = threading.Event()

    def watch_forever() -> None:
        with session.get(running.url + CONFIGMAPS, params={"watch": "true"}, stream=True) as answer:
            started.set()
            try:
                for _ in answer.iter_lines():
                    pass
            except requests.exceptions.ChunkedEncodingError:
                pass  # the server went away mid-stream: what a watcher must expect

    watcher = threading.Thread(target=watch_forever)
    watcher.start()
    assert started.wait(10)
    running.close()  # returns only once every handler thread has ended
    watcher.join(10)
    assert not watcher.is_alive()
    session.close()
    running.close()  # closing twice is harmless


def test_status_bodies_carry_details_as_the_real_server_does(http: requests.Session, server: ApiServer) -> None:
    missing = assert_status(http.get(url(server, f"{ROLLOUTS}/missing")), 404, "NotFound")
    assert missing["details"] == {"name": "missing", "group": "argoproj.io", "kind": "rollouts"}
    create_rollout(http, server)
    again = assert_status(http.post(url(server, ROLLOUTS), json=rollout()), 409, "AlreadyExists")
    assert again["details"] == {"name": "web", "group": "argoproj.io", "kind": "rollouts"}
    core = assert_status(http.get(url(server, f"{CONFIGMAPS}/nope")), 404, "NotFound")
    assert core["details"] == {"name": "nope", "kind": "configmaps"}  # no group for the core group
    stale = {"metadata": {"resourceVersion": "1"}, "spec": {"replicas": 2}}
    http.patch(url(server, f"{ROLLOUTS}/web"), json={"spec": {"replicas": 4}}, headers=MERGE)
    conflict = assert_status(http.patch(url(server, f"{ROLLOUTS}/web"), json=stale, headers=MERGE), 409, "Conflict")
    assert conflict["details"] == {"name": "web", "group": "argoproj.io", "kind": "rollouts"}


def test_a_failing_json_patch_is_the_real_servers_generic_422(http: requests.Session, server: ApiServer) -> None:
    before = create_rollout(http, server)
    for ops in ([{"op": "test", "path": "/spec/replicas", "value": 7}],
                [{"op": "remove", "path": "/spec/nothing"}],
                [{"op": "add", "path": "/metadata/labels/app", "value": "web"}]):  # no labels map to add to
        body = assert_status(http.patch(url(server, f"{ROLLOUTS}/web"), data=json.dumps(ops), headers=JSON_PATCH),
                             422, "Invalid")
        assert body["message"] == "the server rejected our request due to an error in our request"
        assert body["details"] == {}
    assert http.get(url(server, f"{ROLLOUTS}/web")).json() == before


def test_undecodable_bodies_are_400_and_unknown_patch_types_list_what_is_accepted(http: requests.Session,
                                                                                   server: ApiServer) -> None:
    wrong_group = dict(rollout("g"), apiVersion="apps/v1")
    body = assert_status(http.post(url(server, ROLLOUTS), json=wrong_group), 400, "BadRequest")
    assert body["message"] == ("the API version in the data (apps/v1) does not match the expected API version "
                               "(argoproj.io/v1alpha1)")
    numeric = {"kind": "ConfigMap", "metadata": {"name": "n", "labels": {"version": 2}}}
    body = assert_status(http.post(url(server, CONFIGMAPS), json=numeric), 400, "BadRequest")
    assert 'ConfigMap in version "v1" cannot be handled as a ConfigMap' in body["message"]
    create_rollout(http, server)
    body = assert_status(http.patch(url(server, f"{ROLLOUTS}/web"), json={}, headers={"Content-Type": "text/plain"}),
                         415, "UnsupportedMediaType")
    assert body["message"].endswith("application/json-patch+json, application/merge-patch+json, "
                                    "application/apply-patch+yaml")


def test_a_custom_resource_update_must_carry_a_resource_version(http: requests.Session, server: ApiServer) -> None:
    create_rollout(http, server)
    unconditional = {"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout", "metadata": {"name": "web"},
                     "spec": {"replicas": 1}}
    body = assert_status(http.put(url(server, f"{ROLLOUTS}/web"), json=unconditional), 422, "Invalid")
    assert "metadata.resourceVersion: Invalid value: 0x0: must be specified for an update" in body["message"]
    http.post(url(server, CONFIGMAPS), json={"kind": "ConfigMap", "metadata": {"name": "c"}})
    plain = http.put(url(server, f"{CONFIGMAPS}/c"), json={"kind": "ConfigMap", "metadata": {"name": "c"},
                                                           "data": {"a": "1"}})
    assert plain.status_code == 200 and plain.json()["data"] == {"a": "1"}  # built-in kinds allow it


def test_a_client_that_goes_away_prints_nothing_and_other_failures_are_logged(
        server: ApiServer, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture) -> None:
    httpd = server._httpd  # the socketserver's error hook: what runs when a handler raises
    try:
        raise BrokenPipeError(32, "Broken pipe")  # a demo stopping while its dashboard still watches
    except BrokenPipeError:
        httpd.handle_error(None, ("127.0.0.1", 1))
    try:
        raise RuntimeError("a bug")
    except RuntimeError:
        httpd.handle_error(None, ("127.0.0.1", 2))
    assert capsys.readouterr().err == ""  # socketserver's default prints a traceback to stderr
    assert [r.getMessage() for r in caplog.records if r.name == "rollouts.memory.server"] == [
        "request from ('127.0.0.1', 2) failed"]


def test_a_watch_started_while_the_server_closes_is_closed_at_once(server: ApiServer) -> None:
    # a kept-alive connection can start a watch after close() took its list of streams (the
    # dashboard reconnects at once): that stream must end, or close() waits on its thread forever
    server.close()
    stream = server.cluster.watch("Rollout", "default", timeout=None)
    server._track(stream, server._streams, True)
    assert list(stream) == [] and not server._streams
