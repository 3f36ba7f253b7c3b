"""rollouts.kube.light: the kubeconfig forms it speaks, against real local servers, and when it steps aside.

The TLS cases run against a real HTTPS server (http.server with an ssl context) that records
each request's path, headers and client certificate and answers a Rollout or a list. The
certificates in tests/cli/tls/ are static test fixtures valid for 100 years, made once with
`openssl req -x509 -newkey ec ...` (a CA whose key was thrown away, a server certificate
for 127.0.0.1/localhost and a client certificate, both signed by it). The plain-HTTP cases use
the embedded API server (rollouts.memory.server); every `get rollout` test in tests/cli runs
through this reader too, so its output is the one those tests pin.
"""

from __future__ import annotations

import argparse
import base64
import socket
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from rollouts.cli import connect, main
from rollouts.kube.light import LightCluster, light_cluster
from rollouts.platform.cluster import ClusterError, Forbidden, NotFound, Unavailable
from tests.cli.conftest import NS, Shop
from tests.http_server import HttpServer, Request, Response

TLS = Path(__file__).resolve().parent / "tls"
ROLLOUT = {"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout", "metadata": {"name": "checkout", "namespace": NS}}


class Seen:
    """What the recording server saw of each request, and the status it answers with."""

    def __init__(self) -> None:
        self.answer = 200
        self.server = HttpServer(self._answer, tls=_context(), keep_alive=True, name="light-reader-https")

    @property
    def paths(self) -> list[str]:
        return [request.path for request in self.server.requests]

    @property
    def headers(self) -> list[dict[str, str]]:
        return [request.headers for request in self.server.requests]

    @property
    def peers(self) -> list[Any]:
        return [request.peer_cert for request in self.server.requests]

    def _answer(self, request: Request) -> Response:
        if self.answer != 200:
            return Response.json({"kind": "Status", "code": self.answer, "message": f"answer {self.answer}"},
                                 self.answer)
        if "/rollouts/" in request.path:
            return Response.json(ROLLOUT)
        return Response.json({"kind": "ReplicaSetList", "items": [{"metadata": {"name": "a"}}]})


def _context() -> ssl.SSLContext:
    """The server's certificate; client certificates are asked for, not required."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(TLS / "server.pem", TLS / "server-key.pem")
    context.load_verify_locations(TLS / "ca.pem")
    context.verify_mode = ssl.CERT_OPTIONAL
    return context


@pytest.fixture
def https() -> Iterator[tuple[str, Seen]]:
    """A recording HTTPS server on a free port."""
    seen = Seen()
    with seen.server as server:
        yield server.url, seen
    assert server.errors == []


def write(path: Path, cluster: dict[str, Any], user: dict[str, Any], *, namespace: str = NS) -> Path:
    config = {"apiVersion": "v1", "kind": "Config", "current-context": "ctx",
              "clusters": [{"name": "c", "cluster": cluster}], "users": [{"name": "u", "user": user}],
              "contexts": [{"name": "ctx", "context": {"cluster": "c", "user": "u", "namespace": namespace}}]}
    path.write_text(yaml.safe_dump(config))
    return path


def b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


def reader(path: Path) -> LightCluster:
    found = light_cluster(path, None, request_timeout=5)
    assert found is not None
    return found


def test_a_token_over_tls_with_the_ca_as_data(tmp_path: Path, https: tuple[str, Seen]) -> None:
    url, seen = https
    config = write(tmp_path / "kc", {"server": url, "certificate-authority-data": b64(TLS / "ca.pem")},
                   {"token": "s3cr3t"})
    with reader(config) as cluster:
        assert cluster.get("Rollout", "checkout", NS) == ROLLOUT
        assert cluster.list("ReplicaSet", NS, label_selector={"app": "checkout", "tier": "web"}) == [
            {"metadata": {"name": "a"}, "kind": "ReplicaSet", "apiVersion": "apps/v1"}]  # as KubeCluster fills them
    assert seen.paths == [f"/apis/argoproj.io/v1alpha1/namespaces/{NS}/rollouts/checkout",
                          f"/apis/apps/v1/namespaces/{NS}/replicasets?labelSelector=app%3Dcheckout%2Ctier%3Dweb"]
    assert [h["Authorization"] for h in seen.headers] == ["Bearer s3cr3t"] * 2
    assert seen.peers == [None, None]  # no client certificate was offered


def test_a_token_file_wins_over_the_token_and_paths_are_relative_to_the_kubeconfig(
        tmp_path: Path, https: tuple[str, Seen]) -> None:
    url, seen = https
    (tmp_path / "certs").mkdir()
    (tmp_path / "certs" / "ca.pem").write_bytes((TLS / "ca.pem").read_bytes())
    (tmp_path / "certs" / "token").write_text("from-the-file\n")
    config = write(tmp_path / "kc", {"server": url, "certificate-authority": "certs/ca.pem"},
                   {"token": "inline", "tokenFile": "certs/token"})
    with reader(config) as cluster:
        cluster.get("Rollout", "checkout", NS)
    assert seen.headers[0]["Authorization"] == "Bearer from-the-file"


@pytest.mark.parametrize("form", ["files", "data"])
def test_a_client_certificate_is_presented(tmp_path: Path, https: tuple[str, Seen], form: str) -> None:
    url, seen = https
    user = ({"client-certificate": str(TLS / "client.pem"), "client-key": str(TLS / "client-key.pem")}
            if form == "files" else
            {"client-certificate-data": b64(TLS / "client.pem"), "client-key-data": b64(TLS / "client-key.pem")})
    config = write(tmp_path / "kc", {"server": url, "certificate-authority": str(TLS / "ca.pem")}, user)
    before = set(Path(tmp_path).iterdir())
    with reader(config) as cluster:
        cluster.get("Rollout", "checkout", NS)
    subject = dict(pair[0] for pair in seen.peers[0]["subject"])
    assert subject == {"commonName": "rollouts test client"}
    assert "Authorization" not in seen.headers[0]
    assert set(Path(tmp_path).iterdir()) == before


def test_basic_auth_and_a_server_path_prefix(tmp_path: Path, https: tuple[str, Seen]) -> None:
    url, seen = https
    cluster = {"server": f"{url}/k8s/clusters/c-1/", "certificate-authority": str(TLS / "ca.pem")}
    config = write(tmp_path / "kc", cluster, {"username": "admin", "password": "pw"})
    with reader(config) as light:
        light.get("Rollout", "checkout", NS)
    assert seen.paths[0].startswith("/k8s/clusters/c-1/apis/argoproj.io/")
    assert seen.headers[0]["Authorization"] == "Basic " + base64.b64encode(b"admin:pw").decode()


def test_the_server_certificate_is_verified_unless_the_kubeconfig_says_skip(tmp_path: Path,
                                                                           https: tuple[str, Seen]) -> None:
    url, seen = https
    with reader(write(tmp_path / "kc", {"server": url}, {})) as cluster, pytest.raises(Unavailable) as err:
        cluster.get("Rollout", "checkout", NS)
    assert "certificate verify failed" in str(err.value) and url in str(err.value)
    assert seen.paths == []
    with reader(write(tmp_path / "kc", {"server": url, "insecure-skip-tls-verify": True}, {})) as cluster:
        assert cluster.get("Rollout", "checkout", NS)["kind"] == "Rollout"


@pytest.mark.parametrize(("answer", "error"), [(404, NotFound), (403, Forbidden), (401, Forbidden),
                                               (503, Unavailable)])
def test_answers_are_the_ports_errors(tmp_path: Path, https: tuple[str, Seen], answer: int,
                                      error: type[ClusterError]) -> None:
    url, seen = https
    seen.answer = answer
    config = write(tmp_path / "kc", {"server": url, "certificate-authority": str(TLS / "ca.pem")}, {})
    with reader(config) as cluster, pytest.raises(error, match=f"answer {answer}"):
        cluster.get("Rollout", "checkout", NS)


@pytest.mark.parametrize(("cluster", "user"), [
    ({}, {"exec": {"apiVersion": "client.authentication.k8s.io/v1", "command": "aws"}}),
    ({}, {"auth-provider": {"name": "gcp"}}),
    ({}, {"token": "t", "as": "system:serviceaccount:shop:viewer"}),
    ({}, {"as-groups": ["viewers"]}),
    ({"proxy-url": "http://proxy:3128"}, {}),
    ({"tls-server-name": "kubernetes"}, {}),
    ({"server": "unix:///run/k8s.sock"}, {}),
])
def test_what_the_reader_does_not_do_goes_to_the_kubernetes_client(tmp_path: Path, cluster: dict[str, Any],
                                                                    user: dict[str, Any]) -> None:
    config = write(tmp_path / "kc", {"server": "https://127.0.0.1:6443", **cluster}, user)
    """None sends connect() to KubeCluster (the last test here runs that path end to end)."""
    assert light_cluster(config, None) is None


def test_only_a_reading_command_that_does_not_watch_gets_it(kubeconfig: Path) -> None:
    def reader_of(**flags: Any) -> str:
        args = argparse.Namespace(kubeconfig=str(kubeconfig), context=None, namespace=None, **flags)
        chosen, _ = connect.connect(args)
        chosen.close()  # type: ignore[attr-defined]
        return type(chosen).__name__

    assert reader_of(reads_only=True, watch=False) == "LightCluster"
    assert reader_of(reads_only=True, watch=True) == "KubeCluster"
    assert reader_of() == "KubeCluster"


def test_it_never_writes(kubeconfig: Path) -> None:
    with reader(kubeconfig) as cluster:
        for call in (lambda: cluster.create(ROLLOUT), lambda: cluster.delete("Rollout", "checkout", NS),
                     lambda: cluster.patch("Rollout", "checkout", NS, {"spec": {}}),
                     lambda: cluster.patch_status("Rollout", "checkout", NS, {"status": {}}),
                     lambda: cluster.replace(ROLLOUT), lambda: cluster.watch("Rollout", NS)):
            with pytest.raises(ClusterError, match="only reads"):
                call()


def test_it_reads_the_embedded_api_server_as_kube_cluster_does(kubeconfig: Path, shop: Shop) -> None:
    from rollouts.kube.cluster import KubeCluster

    shop.seed("analysis")
    with reader(kubeconfig) as light, KubeCluster(kubeconfig=kubeconfig) as kube:
        assert light.get("Rollout", "checkout", NS) == kube.get("Rollout", "checkout", NS)
        for kind in ("ReplicaSet", "AnalysisRun"):
            assert light.list(kind, NS) == kube.list(kind, NS)
            assert light.list(kind, NS, label_selector={"app": "checkout"}) == kube.list(
                kind, NS, label_selector={"app": "checkout"})
        with pytest.raises(NotFound):
            light.get("Rollout", "nope", NS)


def test_get_rollout_on_a_server_that_is_gone_says_so_in_one_line(tmp_path: Path, shop: Shop,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again at once: nothing listens there
    url = f"http://127.0.0.1:{port}"
    config = write(tmp_path / "kc", {"server": url}, {})
    assert main(["get", "rollout", "checkout", "--kubeconfig", str(config)]) == 1
    assert capsys.readouterr().err == (
        f'rollouts get: cannot reach the cluster of context "ctx" ({url}): Connection refused; '
        "check that the server is up and that --context names the right cluster\n")


def test_get_rollout_through_the_light_reader_prints_what_the_client_path_printed(
        kubeconfig: Path, shop: Shop, capsys: pytest.CaptureFixture[str],
        runtime: connect.Runtime) -> None:
    """The same command, once through each reader (a user entry with `as` sends the other way)."""
    shop.seed("inconclusive")
    assert main(["get", "rollout", "checkout", "--kubeconfig", str(kubeconfig)]) == 0
    light = capsys.readouterr()
    config = yaml.safe_load(kubeconfig.read_text())
    config["users"][0]["user"] = {"as": "admin"}  # the embedded server ignores impersonation
    client_config = kubeconfig.with_name("client-kubeconfig")
    client_config.write_text(yaml.safe_dump(config))
    assert main(["get", "rollout", "checkout", "--kubeconfig", str(client_config)]) == 0
    assert capsys.readouterr() == light
