"""Run a list of Argo-shaped objects on the InMemoryCluster controller and record what moved.

`Run(docs)` creates the objects on an InMemoryCluster with a SteppedClock and a Manager
running both controllers (the scripted provider answers prometheus and web metrics), and
after every controller step records, from the objects themselves (never from inside the
controller): every distinct set of VirtualService destination weights, every Service's
hash selector, every ReplicaSet's replicas and the Rollout's stableRS. `timeline` keeps,
in resourceVersion order (one counter for every kind, so the order is the API server's),
each Service selector, AnalysisRun phase and Experiment phase as written: what had passed
when the active Service switched. The conformance corpus and the safety walk both run on it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from analysis.providers import Providers
from rollouts.controller.manager import Manager
from rollouts.memory.cluster import InMemoryCluster
from rollouts.platform import commands
from rollouts.platform.clock import SteppedClock
from rollouts.platform.cluster import Conflict
from rollouts.platform.labels import HASH_LABEL
from tests.controller.dsl import START, ScriptedProvider

Doc = dict[str, Any]
ROUTE_SECTIONS = ("http", "tls", "tcp")
WATCHED = ("VirtualService", "Service", "ReplicaSet", "Rollout", "AnalysisRun", "Experiment")


@dataclass(frozen=True)
class Moment:
    """One write seen on a watch: its resourceVersion, kind, name, and what it set
    (a Service's hash selector; a run's or an Experiment's phase, with its labels)."""

    version: int
    kind: str
    name: str
    value: str | None
    labels: Mapping[str, str]


def vs_weights(vs: Mapping[str, Any]) -> tuple[tuple[str, int, str, int], ...]:
    """(section, route index, destination host/subset, weight) of every weighted destination."""
    found = []
    for section in ROUTE_SECTIONS:
        for index, route in enumerate((vs.get("spec") or {}).get(section) or []):
            for dest in route.get("route") or []:
                target = dest.get("destination") or {}
                name = target.get("subset") or str(target.get("host", "")).split(".")[0]
                found.append((section, index, name, int(dest.get("weight") or 0)))
    return tuple(found)


class Run:
    def __init__(self, docs: Iterable[Doc], *, namespace: str = "default",
                 script: Mapping[str, list[Any]] | None = None) -> None:
        self.namespace = namespace
        self.docs = [dict(d) for d in docs]
        for doc in self.docs:
            if doc.get("kind") != "ClusterAnalysisTemplate":
                doc.setdefault("metadata", {})["namespace"] = namespace
        self.clock = SteppedClock(START)
        self.cluster = InMemoryCluster(clock=self.clock.now)
        self.provider = ScriptedProvider()
        for metric, values in (script or {}).items():
            self.provider.script(metric, *values)
        providers = Providers({"prometheus": self.provider, "web": self.provider})
        self.manager = Manager(self.cluster, providers, clock=self.clock, leader_election=False)
        self.name = next(d["metadata"]["name"] for d in self.docs if d["kind"] == "Rollout")
        self.vs_history: dict[str, list[tuple[tuple[str, int, str, int], ...]]] = {}
        self.selector_history: dict[str, list[str | None]] = {}
        self.replica_history: dict[str, list[int]] = {}
        self.stable_history: list[str | None] = []
        self.phases: list[str | None] = []
        self.timeline: list[Moment] = []
        self._cursors: dict[str, str | None] = {}

    # ------------------------------------------------------------ given / when

    def given(self) -> Run:
        self.record()  # the cursors start before the first object: every change is seen
        for doc in self.docs:
            self.cluster.create(doc)
        self.record()
        return self

    def record(self) -> None:
        """Take in every change since the last call, from watches (each intermediate state too)."""
        def keep(history: list[Any], value: Any) -> None:
            if not history or history[-1] != value:
                history.append(value)
        for kind in WATCHED:
            stream = self.cluster.watch(kind, self.namespace, resource_version=self._cursors.get(kind), timeout=0)
            for event in stream:
                obj, name = event.object, event.object["metadata"]["name"]
                if event.type == "DELETED":
                    continue
                self._note(kind, obj)
                if kind == "VirtualService":
                    keep(self.vs_history.setdefault(name, []), vs_weights(obj))
                elif kind == "Service":
                    keep(self.selector_history.setdefault(name, []),
                         ((obj.get("spec") or {}).get("selector") or {}).get(HASH_LABEL))
                elif kind == "ReplicaSet":
                    keep(self.replica_history.setdefault(name, []), int(obj["spec"].get("replicas") or 0))
                elif name == self.name:
                    status = obj.get("status") or {}
                    keep(self.stable_history, status.get("stableRS"))
                    keep(self.phases, status.get("phase"))
            self._cursors[kind] = stream.resource_version
        self.timeline.sort(key=lambda moment: moment.version)

    def _note(self, kind: str, obj: Doc) -> None:
        if kind == "Service":
            value = ((obj.get("spec") or {}).get("selector") or {}).get(HASH_LABEL)
        elif kind in ("AnalysisRun", "Experiment"):
            value = (obj.get("status") or {}).get("phase")
        else:
            return
        meta = obj["metadata"]
        last = next((m for m in reversed(self.timeline) if (m.kind, m.name) == (kind, meta["name"])), None)
        if last is None or last.value != value:
            self.timeline.append(Moment(int(meta["resourceVersion"]), kind, meta["name"], value,
                                        dict(meta.get("labels") or {})))

    def run_until(self, predicate: Callable[[], bool], *, max_seconds: float = 6 * 3600.0) -> Run:
        self.manager.run_until(predicate, max_seconds=max_seconds, after_step=self.record)
        self.record()
        return self

    def run_for(self, seconds: float) -> Run:
        self.manager.run_for(seconds, after_step=self.record)
        self.record()
        return self

    def until_phase(self, *phases: str, max_seconds: float = 6 * 3600.0) -> Run:
        return self.run_until(lambda: self.phase in phases, max_seconds=max_seconds)

    def update(self, change: Callable[[Doc], None]) -> Run:
        for _ in range(5):
            rollout = self.rollout
            change(rollout)
            try:
                self.cluster.replace(rollout)
                return self
            except Conflict:
                continue
        raise AssertionError("could not update the Rollout")

    def new_image(self, image: str = "registry.example.com/app:2.0.0") -> Run:
        def change(rollout: Doc) -> None:
            rollout["spec"]["template"]["spec"]["containers"][0]["image"] = image
        return self.update(change)

    def promote(self, *, full: bool = False) -> Run:
        commands.promote(self.cluster, self.name, self.namespace, full=full)  # as `rollouts promote`
        return self

    def abort(self) -> Run:
        self.cluster.patch_status("Rollout", self.name, self.namespace, {"status": {"abort": True}})
        return self

    # ------------------------------------------------------------ then

    @property
    def rollout(self) -> Doc:
        return self.cluster.get("Rollout", self.name, self.namespace)

    @property
    def status(self) -> Doc:
        return self.rollout.get("status") or {}

    @property
    def phase(self) -> str | None:
        return self.status.get("phase")

    def condition(self, kind: str) -> Doc | None:
        return next((c for c in self.status.get("conditions") or [] if c.get("type") == kind), None)

    def events(self, kind: str | None = None, reason: str | None = None) -> list[Doc]:
        found = [e for e in self.cluster.list("Event", self.namespace)
                 if e["involvedObject"]["kind"] == "Rollout" and e["involvedObject"]["name"] == self.name]
        return [e for e in found if (kind is None or e["type"] == kind) and (reason is None or e["reason"] == reason)]

    def reconcile_errors(self) -> float:
        """Reconciles that raised, Rollouts and AnalysisRuns (the manager counts and retries them)."""
        return sum(sample.value for metric in self.manager.metrics.registry.collect()
                   if metric.name.endswith("_reconcile_error")
                   for sample in metric.samples if sample.name.endswith("_total"))

    def replica_sets(self) -> list[Doc]:
        return self.cluster.list("ReplicaSet", self.namespace)

    def selector(self, service: str) -> str | None:
        svc = self.cluster.get("Service", service, self.namespace)
        return ((svc.get("spec") or {}).get("selector") or {}).get(HASH_LABEL)

    def weights(self, vs: str) -> tuple[tuple[str, int, str, int], ...]:
        return vs_weights(self.cluster.get("VirtualService", vs, self.namespace))

    def weight_of(self, vs: str, destination: str, section: str = "http", index: int = 0) -> int:
        return next(w for s, i, name, w in self.weights(vs) if (s, i, name) == (section, index, destination))


def assert_refused(run: Run, path: str | None) -> None:
    """InvalidSpec naming `path` (when given) with a fix, Degraded, nothing moved however long
    it waits (requeued every 20 s), and exactly one Warning event."""
    condition = run.condition("InvalidSpec")
    assert condition is not None and condition["status"] == "True", run.status
    where = re.escape(path) if path else r"[\w.\[\]'-]+"
    assert re.search(rf"(^|; ){where}: [^;]+ \([^;)]+\)", condition["message"]), condition["message"]
    assert run.phase == "Degraded"
    run.run_for(600)
    assert run.replica_sets() == [] and run.replica_history == {}
    assert all(len(history) == 1 for history in run.selector_history.values()), run.selector_history
    assert all(len(history) == 1 for history in run.vs_history.values()), run.vs_history
    warnings = run.events("Warning")
    assert [e["reason"] for e in warnings] == ["InvalidSpec"] and warnings[0].get("count", 1) == 1
    assert run.reconcile_errors() == 0


# ---------------------------------------------------------------- builders


def service(name: str, app: str) -> Doc:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
            "spec": {"ports": [{"port": 80, "targetPort": "http", "name": "http"}], "selector": {"app": app}}}


def rollout(name: str, strategy: Doc, *, replicas: int = 4, **spec: Any) -> Doc:
    return {"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout", "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": name, "image": "registry.example.com/app:1.0.0"}]}},
                     "strategy": strategy, **spec}}


def istio_host_split(name: str, canary: Doc, *, replicas: int = 4, **spec: Any) -> list[Doc]:
    """Argo's istio-host-split: `NAME-stable` and `NAME-canary` Services, a VirtualService
    `NAME-vsvc` with route `primary`, and a canary Rollout routed through it (`canary` is
    merged over that strategy)."""
    vs = {"apiVersion": "networking.istio.io/v1alpha3", "kind": "VirtualService", "metadata": {"name": f"{name}-vsvc"},
          "spec": {"hosts": [name], "http": [{"name": "primary", "route": [
              {"destination": {"host": f"{name}-stable"}, "weight": 100},
              {"destination": {"host": f"{name}-canary"}, "weight": 0}]}]}}
    strategy = {"canaryService": f"{name}-canary", "stableService": f"{name}-stable",
                "trafficRouting": {"istio": {"virtualService": {"name": f"{name}-vsvc", "routes": ["primary"]}}},
                **canary}
    return [service(f"{name}-stable", name), service(f"{name}-canary", name), vs,
            rollout(name, {"canary": strategy}, replicas=replicas, **spec)]
