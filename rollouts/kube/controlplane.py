"""A real Kubernetes control plane on loopback: etcd, kube-apiserver, kube-controller-manager.

For the end-to-end and contract suites and `rollouts demo --kube`: the real API server
(RBAC on, real watches, resourceVersions, field validation, status subresources) with the
real ReplicaSet controller and garbage collector. The binaries come from
`tools/k8s/build.sh` (Kubernetes 1.20.2 built from Debian's source package).

Rules:
- Every process listens on 127.0.0.1 on a free port, keeps its data in a temp dir of its
  own, and is stopped (SIGTERM, then SIGKILL after a bound) by `stop()`, in reverse start
  order, whatever happened before. Each one's output goes to a log file in that dir, and
  a start that fails raises `ControlPlaneError` with the log's last lines.
- Authentication is a static admin token (`system:masters`); `kubeconfig(as_user=...)`
  writes a kubeconfig that impersonates another user (a ServiceAccount), so RBAC rules
  are enforced for real on everything that process does.
- There is no kubelet and no scheduler: `PodReadiness` stands in for the kubelet, marking
  every new Pod Running and Ready (status subresource), so the real ReplicaSet controller
  counts it available. Pods never run anything.
- Istio's CRDs are not part of Kubernetes: VirtualService and DestinationRule are
  installed as schemaless CRDs (served at v1alpha3, v1beta1 and v1), enough for the
  controller, which only reads and patches their spec.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
import yaml

from rollouts.platform.kinds import KINDS, KindInfo

START_TIMEOUT = 60.0
STOP_TIMEOUT = 10.0


class ControlPlaneError(RuntimeError):
    """A part of the control plane did not start; the message has its log's tail."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class _Process:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        if self.popen.poll() is not None:
            return
        self.popen.send_signal(signal.SIGTERM)
        try:
            self.popen.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait(STOP_TIMEOUT)


def _istio_crd(kind: str, plural: str) -> dict[str, Any]:
    schema = {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}
    return {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.networking.istio.io"},
        "spec": {
            "group": "networking.istio.io", "scope": "Namespaced",
            "names": {"kind": kind, "plural": plural, "singular": kind.lower(), "listKind": f"{kind}List"},
            "versions": [
                {"name": version, "served": True, "storage": version == "v1alpha3", "schema": schema}
                for version in ("v1alpha3", "v1beta1", "v1")
            ],
        },
    }


ISTIO_CRDS = (_istio_crd("VirtualService", "virtualservices"), _istio_crd("DestinationRule", "destinationrules"))


@dataclass
class ControlPlane:
    """etcd + kube-apiserver + kube-controller-manager; `start()`, use `url`/`kubeconfig()`, `stop()`."""

    bin_dir: Path
    etcd: str = "etcd"
    root: Path | None = None
    controllers: Sequence[str] = ("replicaset", "garbagecollector", "namespace")
    token: str = field(default_factory=lambda: secrets.token_hex(16))
    _processes: list[_Process] = field(default_factory=list)
    _own_root: bool = False
    port: int = 0

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    # --- lifecycle ---------------------------------------------------------------------
    def start(self) -> ControlPlane:
        if self.root is None:
            self.root = Path(tempfile.mkdtemp(prefix="rollouts-k8s-"))
            self._own_root = True
        try:
            self._start_etcd()
            self._start_apiserver()
            self._start_controller_manager()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        while self._processes:
            self._processes.pop().stop()
        if self._own_root and self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None

    def __enter__(self) -> ControlPlane:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- clients -----------------------------------------------------------------------
    def kubeconfig(self, path: Path | None = None, *, as_user: str | None = None, namespace: str = "default") -> Path:
        """A kubeconfig for the admin token; with `as_user`, every request impersonates that user."""
        assert self.root is not None, "start() the control plane first"
        user: dict[str, Any] = {"token": self.token}
        if as_user:
            user["as"] = as_user
        name = "rollouts-k8s"
        config = {
            "apiVersion": "v1", "kind": "Config", "current-context": name, "preferences": {},
            "clusters": [{"name": name, "cluster": {"server": self.url, "certificate-authority": str(self.ca)}}],
            "users": [{"name": name, "user": user}],
            "contexts": [{"name": name, "context": {"cluster": name, "user": name, "namespace": namespace}}],
        }
        target = path or self.root / (f"kubeconfig-{as_user.replace(':', '_')}" if as_user else "kubeconfig")
        target.write_text(yaml.safe_dump(config, sort_keys=False))
        return target

    @property
    def ca(self) -> Path:
        """The API server's self-signed serving certificate, with the CA that signed it."""
        assert self.root is not None, "start() the control plane first"
        return self.root / "certs" / "apiserver.crt"

    def session(self) -> requests.Session:
        """An admin HTTP session that verifies the server against its own CA."""
        http = requests.Session()
        http.headers["Authorization"] = f"Bearer {self.token}"
        http.verify = str(self.ca)
        http.trust_env = False  # else REQUESTS_CA_BUNDLE in the environment overrides `verify`
        return http

    def apply(self, *objects: dict[str, Any]) -> None:
        """Create each object as the admin (CRDs are waited for until they are served)."""
        with self.session() as http:
            for obj in objects:
                _create(http, self.url, obj)
                if obj.get("kind") == "CustomResourceDefinition":
                    self._wait_established(http, obj["metadata"]["name"])

    # --- the parts ---------------------------------------------------------------------
    def _spawn(self, name: str, argv: list[str]) -> _Process:
        assert self.root is not None
        log = self.root / f"{name}.log"
        with log.open("wb") as out:
            popen = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     cwd=self.root, start_new_session=True)
        process = _Process(name, popen, log)
        self._processes.append(process)
        return process

    def _start_etcd(self) -> None:
        assert self.root is not None
        client, peer = free_port(), free_port()
        self.etcd_url = f"http://127.0.0.1:{client}"
        process = self._spawn("etcd", [
            self.etcd, "--data-dir", str(self.root / "etcd"), "--name", "default",
            "--listen-client-urls", self.etcd_url, "--advertise-client-urls", self.etcd_url,
            "--listen-peer-urls", f"http://127.0.0.1:{peer}",
            "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer}",
            "--initial-cluster", f"default=http://127.0.0.1:{peer}",
        ])
        self._wait(process, lambda: requests.get(f"{self.etcd_url}/health", timeout=2).ok)

    def _start_apiserver(self) -> None:
        assert self.root is not None
        key, pub = self.root / "sa.key", self.root / "sa.pub"
        subprocess.run(["openssl", "genrsa", "-out", str(key), "2048"], check=True, capture_output=True)
        subprocess.run(["openssl", "rsa", "-in", str(key), "-pubout", "-out", str(pub)], check=True,
                       capture_output=True)
        tokens = self.root / "tokens.csv"
        tokens.write_text(f"{self.token},admin,admin,system:masters\n")
        tokens.chmod(0o600)
        self.port = free_port()
        process = self._spawn("kube-apiserver", [
            str(self.bin_dir / "kube-apiserver"), f"--etcd-servers={self.etcd_url}",
            "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1", f"--secure-port={self.port}",
            f"--cert-dir={self.root / 'certs'}", f"--token-auth-file={tokens}", "--authorization-mode=RBAC",
            "--service-account-issuer=https://kubernetes.default.svc", f"--service-account-key-file={pub}",
            f"--service-account-signing-key-file={key}", "--service-cluster-ip-range=10.0.0.0/24",
            "--disable-admission-plugins=ServiceAccount", "--insecure-port=0",
        ])
        with self.session() as http:
            def ready() -> bool:
                if not self.ca.exists():
                    return False
                http.verify = str(self.ca)
                answer = http.get(f"{self.url}/readyz?verbose", timeout=2)
                self._last_readyz = answer.text
                return answer.ok

            self._wait(process, ready)

    def _start_controller_manager(self) -> None:
        kubeconfig = self.kubeconfig()
        process = self._spawn("kube-controller-manager", [
            str(self.bin_dir / "kube-controller-manager"), f"--kubeconfig={kubeconfig}",
            f"--controllers={','.join(self.controllers)}", "--leader-elect=false", "--port=0", "--secure-port=0",
        ])
        time.sleep(0.2)
        if process.popen.poll() is not None:
            raise ControlPlaneError(f"kube-controller-manager exited at once:\n{process.tail()}")

    def _wait(self, process: _Process, ready: Any) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if process.popen.poll() is not None:
                raise ControlPlaneError(f"{process.name} exited with {process.popen.returncode}:\n{process.tail()}")
            with contextlib.suppress(requests.RequestException):
                if ready():
                    return
            time.sleep(0.2)
        raise ControlPlaneError(f"{process.name} was not ready in {START_TIMEOUT:.0f} s:\n{process.tail()}\n"
                                f"{getattr(self, '_last_readyz', '')}")

    def _wait_established(self, http: requests.Session, name: str) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        path = f"{self.url}/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}"
        while time.monotonic() < deadline:
            conditions = (http.get(path, timeout=5).json().get("status") or {}).get("conditions") or []
            if any(c.get("type") == "Established" and c.get("status") == "True" for c in conditions):
                return
            time.sleep(0.1)
        raise ControlPlaneError(f"CRD {name} was not established in {START_TIMEOUT:.0f} s")


def _create(http: requests.Session, url: str, obj: dict[str, Any]) -> None:
    kind, api_version = obj["kind"], obj["apiVersion"]
    group, _, version = api_version.rpartition("/")
    info = KINDS.get(kind)
    if info is None or info.api_version != api_version:
        plural = {"CustomResourceDefinition": "customresourcedefinitions", "Namespace": "namespaces",
                  "ServiceAccount": "serviceaccounts", "ClusterRole": "clusterroles",
                  "ClusterRoleBinding": "clusterrolebindings", "Role": "roles",
                  "RoleBinding": "rolebindings"}.get(kind, kind.lower() + "s")
        namespaced = kind not in {"CustomResourceDefinition", "Namespace", "ClusterRole", "ClusterRoleBinding"}
        info = KindInfo(kind, group, version, plural, namespaced=namespaced)
    namespace = (obj.get("metadata") or {}).get("namespace") or ("default" if info.namespaced else None)
    response = http.post(url + info.collection_path(namespace), json=obj, timeout=30)
    if response.status_code not in (200, 201, 409):
        raise ControlPlaneError(f"creating {kind} {obj['metadata'].get('name')}: {response.status_code} "
                                f"{response.text[:500]}")


class PodReadiness:
    """The kubelet's stand-in: every Pod that appears is marked Running and Ready."""

    def __init__(self, plane: ControlPlane) -> None:
        self._plane = plane
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pod-readiness", daemon=True)
        self.marked = 0

    def start(self) -> PodReadiness:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(STOP_TIMEOUT)

    def __enter__(self) -> PodReadiness:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        with self._plane.session() as http:
            while not self._stop.is_set():
                with contextlib.suppress(requests.RequestException, ValueError):
                    for pod in self._pending(http):
                        self._mark(http, pod)
                self._stop.wait(0.2)

    def _pending(self, http: requests.Session) -> Iterator[dict[str, Any]]:
        listing = http.get(f"{self._plane.url}/api/v1/pods", timeout=10).json()
        for pod in listing.get("items") or []:
            if (pod.get("status") or {}).get("phase") != "Running" and not pod["metadata"].get("deletionTimestamp"):
                yield pod

    def _mark(self, http: requests.Session, pod: dict[str, Any]) -> None:
        meta = pod["metadata"]
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        ready = [{"type": t, "status": "True", "lastTransitionTime": now}
                 for t in ("Initialized", "Ready", "ContainersReady", "PodScheduled")]
        containers = [{"name": c["name"], "image": c.get("image", ""), "imageID": "", "ready": True,
                       "restartCount": 0, "started": True, "state": {"running": {"startedAt": now}}}
                      for c in (pod.get("spec") or {}).get("containers") or []]
        status = {"phase": "Running", "conditions": ready, "containerStatuses": containers, "startTime": now,
                  "podIP": "10.1.0.1", "hostIP": "127.0.0.1"}
        path = f"{self._plane.url}/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}/status"
        response = http.patch(path, json={"status": status}, timeout=10,
                              headers={"Content-Type": "application/merge-patch+json"})
        if response.ok:
            self.marked += 1


def ensure_binaries(build_script: Path) -> Path:
    """Run the build script (a no-op when its cache is warm) and return the bin directory."""
    done = subprocess.run(["bash", str(build_script)], check=False, capture_output=True, text=True,
                          env={**os.environ})
    if done.returncode != 0:
        raise ControlPlaneError(f"{build_script} failed:\n{done.stderr[-3000:]}")
    return Path(done.stdout.strip().splitlines()[-1])
