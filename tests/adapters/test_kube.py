"""KubeCluster beyond the shared contract: typed errors for every kind of failure,
configuration errors, and the wire format it sends (checked by a recording Cluster
behind the embedded API server)."""

from __future__ import annotations

import ast
import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from rollouts.kube.cluster import KubeCluster, _error, load_api_client
from rollouts.memory.cluster import InMemoryCluster
from rollouts.memory.server import serve
from rollouts.platform.cluster import (
    AlreadyExists,
    ClusterError,
    Conflict,
    Forbidden,
    Gone,
    Invalid,
    NotFound,
    Unavailable,
)


def status(code: int, reason: str, message: str = "the message") -> bytes:
    return json.dumps({"kind": "Status", "code": code, "reason": reason, "message": message}).encode()


@pytest.mark.parametrize(("code", "reason", "error"), [
    (404, "NotFound", NotFound),
    (409, "AlreadyExists", AlreadyExists),
    (409, "Conflict", Conflict),
    (410, "Expired", Gone),
    (401, "Unauthorized", Forbidden),
    (403, "Forbidden", Forbidden),
    (400, "BadRequest", Invalid),
    (415, "UnsupportedMediaType", Invalid),
    (422, "Invalid", Invalid),
    (429, "TooManyRequests", Unavailable),
    (500, "InternalError", Unavailable),
    (503, "ServiceUnavailable", Unavailable),
])
def test_api_answers_map_to_typed_errors(code: int, reason: str, error: type[ClusterError]) -> None:
    mapped = _error(code, status(code, reason), "fallback")
    assert type(mapped) is error and str(mapped) == "the message"


def test_an_answer_without_a_status_body_keeps_the_http_reason() -> None:
    mapped = _error(502, b"<html>bad gateway</html>", "Bad Gateway")
    assert isinstance(mapped, Unavailable) and str(mapped) == "Bad Gateway"
    odd = _error(418, b"", "I'm a teapot")
    assert type(odd) is ClusterError and odd.code == 418


def test_a_missing_kubeconfig_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ClusterError, match=r"no usable Kubernetes configuration.*pass --kubeconfig"):
        load_api_client(tmp_path / "nope")


def test_an_unknown_context_is_a_clear_error(server: Any, tmp_path: Path) -> None:
    path = server.write_kubeconfig(tmp_path / "config")
    with pytest.raises(ClusterError, match="no usable Kubernetes configuration"):
        load_api_client(path, context="prod")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_an_unreachable_server_is_unavailable(memory: InMemoryCluster, tmp_path: Path) -> None:
    with serve(memory) as running:
        kubeconfig = running.write_kubeconfig(tmp_path / "config")
    config = kubeconfig.read_text().replace(running.url, f"http://127.0.0.1:{free_port()}")
    kubeconfig.write_text(config)
    with (
        KubeCluster(kubeconfig=kubeconfig, request_timeout=2) as cluster,
        pytest.raises(Unavailable, match="cannot reach the Kubernetes API"),
    ):
        cluster.get("Rollout", "web")


class Recording(InMemoryCluster):
    """An InMemoryCluster that remembers the patch calls the API server made on it."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str, Any]] = []
        self.fail_with: Exception | None = None

    def get(self, kind: str, name: str, namespace: str | None = None) -> dict[str, Any]:
        if self.fail_with is not None:
            raise self.fail_with
        return super().get(kind, name, namespace)

    def patch(self, kind: str, name: str, namespace: str | None, patch: Any, *, patch_type: str = "merge") -> Any:
        self.calls.append((patch_type, patch))
        return super().patch(kind, name, namespace, patch, patch_type=patch_type)


@pytest.fixture
def recorded(tmp_path: Path) -> Iterator[tuple[Recording, KubeCluster]]:
    backing = Recording()
    with serve(backing) as running, KubeCluster(kubeconfig=running.write_kubeconfig(tmp_path / "c")) as cluster:
        yield backing, cluster


def test_json_and_merge_patches_arrive_as_what_they_are(recorded: tuple[Recording, KubeCluster]) -> None:
    backing, cluster = recorded
    cluster.create({"kind": "VirtualService", "metadata": {"name": "vs"}, "spec": {"http": []}})
    cluster.patch("VirtualService", "vs", None, [{"op": "add", "path": "/spec/hosts", "value": ["a"]}],
                  patch_type="json")
    cluster.patch("VirtualService", "vs", None, {"spec": {"gateways": ["g"]}})
    assert backing.calls == [("json", [{"op": "add", "path": "/spec/hosts", "value": ["a"]}]),
                             ("merge", {"spec": {"gateways": ["g"]}})]


def test_server_side_failures_are_typed(recorded: tuple[Recording, KubeCluster]) -> None:
    backing, cluster = recorded
    backing.fail_with = Forbidden('rollouts.argoproj.io "web" is forbidden: User "x" cannot get resource')
    with pytest.raises(Forbidden, match="is forbidden"):
        cluster.get("Rollout", "web")
    backing.fail_with = RuntimeError("disk on fire")
    with pytest.raises(Unavailable, match="disk on fire"):
        cluster.get("Rollout", "web")


def test_a_watch_broken_by_the_server_going_away_is_unavailable(memory: InMemoryCluster, tmp_path: Path) -> None:
    running = serve(memory)
    memory.create({"kind": "ConfigMap", "metadata": {"name": "a"}})
    with KubeCluster(kubeconfig=running.write_kubeconfig(tmp_path / "c")) as cluster:
        stream = cluster.watch("ConfigMap", resource_version="0")
        assert next(stream).type == "ADDED"  # the list part
        memory.create({"kind": "ConfigMap", "metadata": {"name": "b"}})
        assert next(stream).object["metadata"]["name"] == "b"  # the watch request is open now
        running.close()
        with pytest.raises(Unavailable):  # the stream breaks, or it ends and reconnecting fails
            next(stream)
        stream.close()


def test_only_rollouts_kube_imports_the_kubernetes_client() -> None:
    root = Path(__file__).resolve().parents[2]
    importers = []
    for source in sorted([*root.joinpath("rollouts").rglob("*.py"), *root.joinpath("analysis").rglob("*.py")]):
        for node in ast.walk(ast.parse(source.read_text(), str(source))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) and node.level == 0 else [])
            if any(n == "kubernetes" or n.startswith("kubernetes.") for n in names):
                importers.append(str(source.relative_to(root)))
    assert sorted(set(importers)) == ["rollouts/kube/cluster.py"]


def _kubeconfig(path: Path, user: dict[str, Any], *, name: str = "me") -> Path:
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "c",
        "clusters": [{"name": "k", "cluster": {"server": "http://127.0.0.1:1"}}],
        "users": [{"name": name, "user": user}],
        "contexts": [{"name": "c", "context": {"cluster": "k", "user": name}}],
    }))
    return path


def test_a_kubeconfig_user_that_impersonates_sends_the_impersonate_headers(tmp_path: Path) -> None:
    """kubectl honours `as`/`as-groups`; the Python client ignores them, and acting with the
    caller's own rights instead would be silent: the adapter sends the headers itself."""
    from rollouts.kube.cluster import load_api_client

    path = _kubeconfig(tmp_path / "kc", {"token": "t", "as": "system:serviceaccount:ops:rollouts",
                                          "as-groups": ["ops"]})
    api = load_api_client(path)
    try:
        assert api.default_headers["Impersonate-User"] == "system:serviceaccount:ops:rollouts"
        assert api.default_headers["Impersonate-Group"] == "ops"
    finally:
        api.close()
    plain = load_api_client(_kubeconfig(tmp_path / "plain", {"token": "t"}))
    try:
        assert "Impersonate-User" not in plain.default_headers
    finally:
        plain.close()


def test_impersonation_is_read_across_the_files_kubeconfig_names(tmp_path: Path, monkeypatch: Any) -> None:
    """KUBECONFIG=a:b: the context in one file, its user (with `as`) in another, a missing one skipped."""
    from kubernetes import config

    from rollouts.kube.cluster import _impersonation

    contexts = tmp_path / "contexts"
    contexts.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "c",
        "clusters": [{"name": "k", "cluster": {"server": "http://127.0.0.1:1"}}],
        "contexts": [{"name": "c", "context": {"cluster": "k", "user": "me"}}]}))
    users = tmp_path / "users"
    users.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "Config",
                                     "users": [{"name": "me", "user": {"token": "t", "as": "ops-bot"}}]}))
    joined = os.pathsep.join(str(p) for p in (tmp_path / "missing", contexts, users))
    monkeypatch.setattr(config, "KUBE_CONFIG_DEFAULT_LOCATION", joined)
    monkeypatch.setattr(config.kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", joined)
    assert _impersonation(None, None) == {"Impersonate-User": "ops-bot"}


def test_more_than_one_impersonated_group_is_a_clear_error(tmp_path: Path) -> None:
    from rollouts.kube.cluster import load_api_client
    from rollouts.platform.cluster import ClusterError

    path = _kubeconfig(tmp_path / "kc", {"token": "t", "as": "u", "as-groups": ["a", "b"]})
    with pytest.raises(ClusterError, match="only one `as-groups` entry"):
        load_api_client(path)
