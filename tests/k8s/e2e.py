"""Helpers of the end-to-end suite on the real control plane (tests/k8s/test_e2e_*.py).

Rules:
- The controller under test is what users install: the chart's ServiceAccount and RBAC,
  rendered by `helm template` (the helm of tools/helm.sh) and applied to the real API
  server, and `rollouts controller` run as a subprocess whose kubeconfig impersonates
  that ServiceAccount, so a missing RBAC rule is a 403 the test sees.
- Each test works in a namespace of its own (`namespace()`), deleted afterwards (the real
  namespace controller removes what is left), so tests do not see each other's objects.
- Every wait is bounded: `eventually` polls until a deadline and returns the last value,
  which the test asserts on (never sleep-and-hope). Processes are stopped by their Popen.
- Watches (`Recorder`) run in a thread and keep every object version they saw, in
  order, so a test asserts on the whole history (weights, step indexes), not a sample.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from rollouts.kube.cluster import KubeCluster
from rollouts.kube.controlplane import ControlPlane
from rollouts.platform.cluster import ClusterError, NotFound
from tests.http_server import HttpServer, Response

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "rollouts"
RBAC_KINDS = ("ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding")
STOP_SECONDS = 10.0


def eventually(check: Callable[[], Any], timeout: float = 60.0, interval: float = 0.2) -> Any:
    """Poll `check` until it returns something truthy or `timeout` passes; its last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


def admin(plane: ControlPlane, tmp: Path, namespace: str = "default") -> KubeCluster:
    return KubeCluster(kubeconfig=plane.kubeconfig(tmp / f"admin-{namespace}", namespace=namespace),
                       request_timeout=15)


# --- the chart -----------------------------------------------------------------------------

def helm_binary() -> Path:
    where = subprocess.run([str(ROOT / "tools" / "helm.sh"), "--where"], capture_output=True, text=True, check=True)
    path = Path(where.stdout.strip())
    assert os.access(path, os.X_OK), f"helm is not installed at {path}: run `make deps` (tools/helm.sh)"
    return path


def helm_template(tmp: Path, release: str, namespace: str,
                  values: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """The chart rendered as `helm install RELEASE --namespace NAMESPACE -f values` would apply it."""
    home = tmp / "helm-home"
    env = {**os.environ, "HELM_CACHE_HOME": str(home / "cache"), "HELM_CONFIG_HOME": str(home / "config"),
           "HELM_DATA_HOME": str(home / "data"), "KUBECONFIG": str(home / "no-kubeconfig")}
    values_file = tmp / f"values-{release}.yaml"
    values_file.write_text(yaml.safe_dump(values or {}))
    done = subprocess.run([str(helm_binary()), "template", release, str(CHART), "--namespace", namespace,
                           "-f", str(values_file)], capture_output=True, text=True, env=env, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


def rbac(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The ServiceAccount and the (Cluster)Role(Binding)s of rendered chart documents, in apply order."""
    return sorted((d for d in docs if d["kind"] in RBAC_KINDS), key=lambda d: RBAC_KINDS.index(d["kind"]))


def service_account_user(docs: list[dict[str, Any]]) -> str:
    account = next(d for d in docs if d["kind"] == "ServiceAccount")["metadata"]
    return f"system:serviceaccount:{account['namespace']}:{account['name']}"


def delete_cluster_scoped(plane: ControlPlane, docs: list[dict[str, Any]]) -> None:
    with plane.session() as http:
        for doc in docs:
            if doc["kind"] in ("ClusterRole", "ClusterRoleBinding"):
                plural = "clusterroles" if doc["kind"] == "ClusterRole" else "clusterrolebindings"
                http.delete(f"{plane.url}/apis/rbac.authorization.k8s.io/v1/{plural}/{doc['metadata']['name']}",
                            timeout=15)


@contextlib.contextmanager
def namespace(plane: ControlPlane, name: str) -> Iterator[str]:
    """A fresh namespace for one test, deleted afterwards (not waited for: the namespace
    controller empties it in the background)."""
    plane.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    try:
        yield name
    finally:
        with plane.session() as http:
            http.delete(f"{plane.url}/api/v1/namespaces/{name}", timeout=15)


@contextlib.contextmanager
def installed(plane: ControlPlane, tmp: Path, release: str, namespace: str,
              values: dict[str, Any] | None = None) -> Iterator[list[dict[str, Any]]]:
    """The chart's ServiceAccount and RBAC for `release` applied (removed afterwards)."""
    docs = rbac(helm_template(tmp, release, namespace, values))
    plane.apply(*docs)
    try:
        yield docs
    finally:
        delete_cluster_scoped(plane, docs)


# --- the controller, as a process ------------------------------------------------------------

@dataclass
class Controller:
    """`rollouts controller` in a subprocess, its JSON log lines in `log`."""

    kubeconfig: Path
    log: Path
    namespace: str | None = None
    leader_elect: bool = False
    extra: tuple[str, ...] = ()
    popen: subprocess.Popen[bytes] | None = None

    def argv(self) -> list[str]:
        argv = [sys.executable, "-m", "rollouts", "controller", "--kubeconfig", str(self.kubeconfig),
                "--metrics-addr", "127.0.0.1:0", "--health-addr", "127.0.0.1:0", "--log-format", "json",
                "--workers", "2", "--analysis-workers", "2",
                "--leader-elect" if self.leader_elect else "--no-leader-elect", *self.extra]
        return argv + (["--namespace", self.namespace] if self.namespace else [])

    def start(self) -> Controller:
        with self.log.open("ab") as out:
            self.popen = subprocess.Popen(self.argv(), stdout=out, stderr=subprocess.STDOUT,
                                          stdin=subprocess.DEVNULL, cwd=ROOT, start_new_session=True)
        return self

    def lines(self) -> list[dict[str, Any]]:
        found = []
        with contextlib.suppress(OSError):
            for line in self.log.read_text(errors="replace").splitlines():
                with contextlib.suppress(ValueError):
                    parsed = json.loads(line)
                    if isinstance(parsed, dict):
                        found.append(parsed)
        return found

    def messages(self) -> list[str]:
        return [str(line.get("msg", "")) + " " + str(line.get("error", "")) for line in self.lines()]

    def forbidden(self) -> list[str]:
        """Log lines that carry an API server 403 (`... is forbidden: User ... cannot ...`)."""
        return [m for m in self.messages() if "is forbidden" in m]

    def tail(self, lines: int = 25) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        return ""

    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def kill(self) -> None:
        assert self.popen is not None
        self.popen.send_signal(signal.SIGKILL)
        self.popen.wait(STOP_SECONDS)

    def stop(self) -> int | None:
        if self.popen is None:
            return None
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(STOP_SECONDS)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(STOP_SECONDS)
        return self.popen.returncode

    def __enter__(self) -> Controller:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def controller_for(plane: ControlPlane, tmp: Path, docs: list[dict[str, Any]], *, name: str = "controller",
                   namespace: str | None = None, leader_elect: bool = False,
                   extra: tuple[str, ...] = ()) -> Controller:
    """A controller process (not started) acting as the chart's ServiceAccount of `docs`."""
    user = service_account_user(docs)
    kubeconfig = plane.kubeconfig(tmp / f"kubeconfig-{name}", as_user=user, namespace=namespace or "default")
    return Controller(kubeconfig, tmp / f"{name}.log", namespace=namespace, leader_elect=leader_elect, extra=extra)


# --- watching ------------------------------------------------------------------------------------

class Recorder:
    """Every version of the objects of one kind in a namespace, in the order a watch delivered them."""

    def __init__(self, cluster: KubeCluster, kind: str, namespace: str) -> None:
        self.cluster, self.kind, self.namespace = cluster, kind, namespace
        self.seen: list[tuple[str, dict[str, Any]]] = []  # (event type, object)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"watch-{kind}", daemon=True)
        self._lock = threading.Lock()

    def __enter__(self) -> Recorder:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(STOP_SECONDS)

    def objects(self, name: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            return [obj for _, obj in self.seen if name is None or obj["metadata"]["name"] == name]

    def _run(self) -> None:
        version: str | None = None  # None: the watch lists first (every object as ADDED)
        while not self._stop.is_set():
            try:
                stream = self.cluster.watch(self.kind, self.namespace, resource_version=version, timeout=1.0)
                for event in stream:
                    self._add(event.type, event.object)
                    if self._stop.is_set():
                        break
                version = stream.resource_version or version
                stream.close()
            except ClusterError:
                version = None
                self._stop.wait(0.2)

    def _add(self, kind: str, obj: dict[str, Any]) -> None:
        with self._lock:
            versions = {o["metadata"].get("resourceVersion") for _, o in self.seen
                        if o["metadata"]["name"] == obj["metadata"]["name"]}
            if obj["metadata"].get("resourceVersion") not in versions:
                self.seen.append((kind, obj))


# --- a metric backend --------------------------------------------------------------------------

class WebMetric(HttpServer):
    """A real HTTP server answering `{"ok": <healthy>}` for the web metric provider."""

    def __init__(self, healthy: bool = True) -> None:
        super().__init__(lambda _: Response.json({"ok": self.healthy}), name="web-metric")
        self.healthy = healthy

    @property
    def url(self) -> str:
        return super().url + "/health"


def web_template(name: str, url: str, *, count: int = 2, interval: str = "1s") -> dict[str, Any]:
    return {"apiVersion": "argoproj.io/v1alpha1", "kind": "AnalysisTemplate", "metadata": {"name": name},
            "spec": {"metrics": [{"name": "webhook", "count": count, "interval": interval,
                                  "successCondition": "result == true", "failureLimit": 0,
                                  "provider": {"web": {"url": url, "jsonPath": "{$.ok}"}}}]}}


# --- manifests -------------------------------------------------------------------------------------

def rollout(name: str, steps: list[dict[str, Any]], *, replicas: int = 2, image: str = "app:v1",
            canary: dict[str, Any] | None = None, **spec: Any) -> dict[str, Any]:
    labels = {"app": name}
    return {
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout", "metadata": {"name": name},
        "spec": {"replicas": replicas, "revisionHistoryLimit": 2, "selector": {"matchLabels": labels},
                 "template": {"metadata": {"labels": labels},
                              "spec": {"containers": [{"name": "app", "image": image}]}},
                 "strategy": {"canary": {"steps": steps, **(canary or {})}}, **spec},
    }


def service(name: str, app: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
            "spec": {"ports": [{"port": 80, "targetPort": 8080, "name": "http"}], "selector": {"app": app}}}


def virtual_service(name: str, stable: str, canary: str, route: str = "primary") -> dict[str, Any]:
    return {"apiVersion": "networking.istio.io/v1alpha3", "kind": "VirtualService", "metadata": {"name": name},
            "spec": {"hosts": [name], "http": [{"name": route, "route": [
                {"destination": {"host": stable}, "weight": 100},
                {"destination": {"host": canary}, "weight": 0}]}]}}


def istio_canary(name: str, steps: list[dict[str, Any]], **spec: Any) -> list[dict[str, Any]]:
    """A Rollout routed by an Istio VirtualService through a stable and a canary Service."""
    stable, canary, vs = f"{name}-stable", f"{name}-canary", f"{name}-vsvc"
    routing = {"canaryService": canary, "stableService": stable,
               "trafficRouting": {"istio": {"virtualService": {"name": vs, "routes": ["primary"]}}}}
    return [service(stable, name), service(canary, name), virtual_service(vs, stable, canary),
            rollout(name, steps, canary=routing, **spec)]


def canary_weight(vs: dict[str, Any], canary_host: str) -> int:
    route = ((vs.get("spec") or {}).get("http") or [{}])[0]
    return sum(int(d.get("weight", 0)) for d in route.get("route") or []
               if d["destination"]["host"] == canary_host)


def create_all(cluster: KubeCluster, namespace: str, objects: list[dict[str, Any]]) -> None:
    for obj in objects:
        obj = json.loads(json.dumps(obj))
        obj["metadata"]["namespace"] = namespace
        cluster.create(obj)


def status(cluster: KubeCluster, name: str, namespace: str) -> dict[str, Any]:
    try:
        return dict(cluster.get("Rollout", name, namespace).get("status") or {})
    except NotFound:
        return {}


def healthy(cluster: KubeCluster, name: str, namespace: str) -> bool:
    current = status(cluster, name, namespace)
    return current.get("phase") == "Healthy" and bool(current.get("stableRS")) and \
        current.get("stableRS") == current.get("currentPodHash")


def set_image(cluster: KubeCluster, name: str, namespace: str, image: str) -> None:
    cluster.patch("Rollout", name, namespace,
                  {"spec": {"template": {"spec": {"containers": [{"name": "app", "image": image}]}}}})


def pods_by_hash(cluster: KubeCluster, namespace: str, app: str) -> dict[str, int]:
    """Live (not being deleted) Pods of the app, counted by their pod-template-hash label."""
    counts: dict[str, int] = {}
    for pod in cluster.list("Pod", namespace, label_selector={"app": app}):
        if pod["metadata"].get("deletionTimestamp"):
            continue
        pod_hash = pod["metadata"].get("labels", {}).get("rollouts-pod-template-hash", "")
        counts[pod_hash] = counts.get(pod_hash, 0) + 1
    return counts
