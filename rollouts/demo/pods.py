"""The demo's kubelet and mesh: app processes for ReplicaSets, routes from the VirtualService.

Rules:
- Every ReplicaSet in the namespace with `spec.replicas > 0` has exactly one app
  process (`rollouts.demo.app`) running its pod template's first container image;
  a ReplicaSet scaled to 0 or deleted, or whose image changed, has its process
  stopped (and, for a changed image, started again). `sync()` converges once; call
  it after each change (the demo calls it on a short tick). With `ready_only` (a real
  cluster, where the ReplicaSet controller makes the pods) a ReplicaSet needs Ready pods
  too (`status.readyReplicas > 0`): the process follows the real pods, not the request.
- `routes()` reads what Envoy would: the named HTTP route of the VirtualService,
  each destination's weight, its host's Service, that Service's selector, and the
  ReplicaSets the selector picks. A destination whose Service selects no running
  process is left out (its requests would fail the same way in a mesh).
  `selected()` reads what kube-proxy would for one Service (blue-green has no
  VirtualService): the running ReplicaSets its selector picks, each at weight 1.
- `sync()` runs on one thread while `routes()` and `metrics_targets()` are read from
  others (the traffic generator, the scrape-target writer): the process table is
  guarded by a lock and readers see whole snapshots. Starting a process (about half a
  second of Python start-up) happens outside the lock.
- Processes are children of this process and are always terminated by `close()`;
  a process that does not exit on SIGTERM within `STOP_SECONDS` is killed. They are
  started by `rollouts.demo.lifetime.popen`, so they also die when this process is
  killed, from whichever thread `sync()` runs on.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rollouts.demo import lifetime
from rollouts.demo.traffic import Backend
from rollouts.platform.cluster import Cluster, NotFound

STOP_SECONDS = 5.0


class AppStartError(RuntimeError):
    """An app process did not print `listening on PORT`."""


@dataclass
class AppProcess:
    image: str
    port: int
    process: subprocess.Popen[str]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=STOP_SECONDS)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()


def _image(rs: dict[str, Any]) -> str:
    containers = ((rs.get("spec") or {}).get("template") or {}).get("spec", {}).get("containers") or [{}]
    return str(containers[0].get("image", ""))


def _template_labels(rs: dict[str, Any]) -> dict[str, str]:
    template = (rs.get("spec") or {}).get("template") or {}
    return dict((template.get("metadata") or {}).get("labels") or {})


def _selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(key) == value for key, value in selector.items())


class PodRunner:
    """Keeps one app process per live ReplicaSet and answers the mesh's routing table."""

    def __init__(self, cluster: Cluster, *, namespace: str, service: str, ready_only: bool = False) -> None:
        self._cluster = cluster
        self._ready_only = ready_only  # a real cluster: only ReplicaSets whose pods are Ready
        self._namespace = namespace
        self._service = service  # destination_service label, e.g. guestbook-svc.default.svc.cluster.local
        self._lock = threading.Lock()
        self._apps: dict[str, AppProcess] = {}  # ReplicaSet name -> process
        self._closed = False

    @property
    def apps(self) -> dict[str, AppProcess]:
        """A snapshot of the running processes by ReplicaSet name."""
        with self._lock:
            return dict(self._apps)

    def sync(self) -> bool:
        """Start and stop processes to match the ReplicaSets; True when anything changed."""
        if self._closed:
            return False
        wanted = {
            rs["metadata"]["name"]: _image(rs)
            for rs in self._cluster.list("ReplicaSet", self._namespace)
            if int((rs.get("spec") or {}).get("replicas") or 0) > 0
            and (not self._ready_only or int((rs.get("status") or {}).get("readyReplicas") or 0) > 0)
        }
        with self._lock:
            stale = [self._apps.pop(n) for n, app in list(self._apps.items()) if wanted.get(n) != app.image]
            missing = {n: image for n, image in wanted.items() if n not in self._apps}
        for app in stale:
            app.stop()
        for name, image in missing.items():
            started = self._start(name, image)
            with self._lock:
                if self._closed:
                    started.stop()
                    break
                self._apps[name] = started
        return bool(stale or missing)

    def _start(self, workload: str, image: str) -> AppProcess:
        process = lifetime.popen(
            [sys.executable, "-m", "rollouts.demo.app", "--image", image,
             "--service", self._service, "--workload", workload],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL, text=True,
        )
        assert process.stdout is not None
        first = process.stdout.readline().strip()
        if not first.startswith("listening on "):
            AppProcess(image, 0, process).stop()
            raise AppStartError(f"demo app for ReplicaSet {workload} ({image}) did not start: {first!r}")
        return AppProcess(image=image, port=int(first.removeprefix("listening on ")), process=process)

    def metrics_targets(self) -> list[str]:
        """`127.0.0.1:PORT` of every running app, sorted (Prometheus scrape targets)."""
        return sorted(f"127.0.0.1:{app.port}" for app in self.apps.values())

    def routes(self, virtual_service: str, route: str) -> Sequence[Backend]:
        try:
            vs = self._cluster.get("VirtualService", virtual_service, self._namespace)
        except NotFound:
            return []
        http = [r for r in (vs.get("spec") or {}).get("http") or [] if r.get("name") == route]
        if not http:
            return []
        apps = self.apps
        replica_sets = self._cluster.list("ReplicaSet", self._namespace)
        backends: list[Backend] = []
        for destination in http[0].get("route") or []:
            host = str(destination.get("destination", {}).get("host", "")).split(".", 1)[0]
            try:
                service = self._cluster.get("Service", host, self._namespace)
            except NotFound:
                continue
            selector = (service.get("spec") or {}).get("selector") or {}
            for rs in replica_sets:
                name = rs["metadata"]["name"]
                if name in apps and _selects(selector, _template_labels(rs)):
                    weight = int(destination.get("weight", 0))
                    backends.append(Backend(workload=name, url=apps[name].url, weight=weight))
                    break
        return backends

    def selected(self, service: str) -> list[Backend]:
        """The running ReplicaSets the Service's selector picks (none when the Service is missing)."""
        try:
            selector = (self._cluster.get("Service", service, self._namespace).get("spec") or {}).get("selector") or {}
        except NotFound:
            return []
        apps = self.apps
        return [Backend(workload=name, url=apps[name].url, weight=1)
                for rs in self._cluster.list("ReplicaSet", self._namespace)
                if (name := rs["metadata"]["name"]) in apps and _selects(selector, _template_labels(rs))]

    def close(self) -> None:
        """Stop every process; later syncs start nothing."""
        with self._lock:
            self._closed = True
            apps, self._apps = list(self._apps.values()), {}
        for app in apps:
            app.stop()
