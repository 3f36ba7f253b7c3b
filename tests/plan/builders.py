"""Builders for Rollout-core tests, and `World`: plan() plus a faithful-enough cluster.

`World` keeps the objects as plain dicts, calls `plan(observed, now)` and applies the
actions the way the shell and the ReplicaSet controller would: no I/O, no clock (the
test passes `now`), pods become available only when the test says so (or at once with
`auto_ready=True`). Pod objects exist only where a test adds them (`add_pods`); a pod
deleted is replaced by a new one created at the world's clock, not Ready until
`set_pods_ready` (or at once with `auto_ready=True`), and its ReplicaSet's available
count follows.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from rollouts.plan.planner import Observed, Plan, plan
from rollouts.plan.replicas import pod_template_hash
from rollouts.platform.actions import (
    Action,
    CreateAnalysisRun,
    CreateReplicaSet,
    DeletePod,
    Event,
    PatchVirtualService,
    ScaleReplicaSet,
    apply_request,
)  # fmt: skip
from rollouts.platform.labels import HASH_LABEL, MANAGED_BY, REVISION
from rollouts.spec.model import Rollout
from rollouts.spec.problems import Problem

T0 = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
UID = "0b5e3c1a-0000-4000-8000-000000000001"


def seconds(n: float) -> timedelta:
    return timedelta(seconds=n)


def template(image: str = "app:v1") -> dict[str, Any]:
    return {"metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "app", "image": image}]}}


def rollout(*, name: str = "web", replicas: int = 4, image: str = "app:v1", steps: Sequence[dict[str, Any]] = (),
            routed: bool = True, subsets: bool = False, services: bool = True, status: dict[str, Any] | None = None,
            analysis: dict[str, Any] | None = None, vs_routes: list[str] | None = None,
            spec: dict[str, Any] | None = None, **canary: Any) -> dict[str, Any]:
    """A canary Rollout document (Istio host routing by default)."""
    strategy: dict[str, Any] = {"steps": list(steps), **canary}
    if services:
        strategy |= {"canaryService": f"{name}-canary", "stableService": f"{name}-stable"}
    if routed:
        istio: dict[str, Any] = {
            "virtualService": {"name": f"{name}-vs", **({"routes": vs_routes} if vs_routes else {})}}
        if subsets:
            istio["destinationRule"] = {"name": f"{name}-dr", "canarySubsetName": "canary",
                                        "stableSubsetName": "stable"}
        strategy["trafficRouting"] = {"istio": istio}
    if analysis:
        strategy["analysis"] = analysis
    doc: dict[str, Any] = {
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
        "metadata": {"name": name, "namespace": "shop", "uid": UID, "generation": 1},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}}, "template": template(image),
                 "strategy": {"canary": strategy}, **(spec or {})},
    }
    if status is not None:
        doc["status"] = status
    return doc


def hash_of(image: str) -> str:
    return pod_template_hash(template(image))


def replicaset(*, rollout_name: str = "web", image: str = "app:v1", replicas: int, available: int | None = None,
               revision: int = 1, annotations: dict[str, str] | None = None) -> dict[str, Any]:
    pod_hash = hash_of(image)
    available = replicas if available is None else available
    return {
        "apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {"name": f"{rollout_name}-{pod_hash}", "namespace": "shop",
                     "labels": {"app": "web", HASH_LABEL: pod_hash},
                     "annotations": {REVISION: str(revision), "rollout.argoproj.io/desired-replicas": str(replicas),
                                     **(annotations or {})},
                     "ownerReferences": [{"kind": "Rollout", "name": rollout_name, "uid": UID, "controller": True}]},
        "spec": {"replicas": replicas},
        "status": {"replicas": replicas, "readyReplicas": available, "availableReplicas": available},
    }


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def pod(rs: dict[str, Any], name: str, *, created: datetime, ready: bool = True, ready_since: datetime | None = None,
        deleting: bool = False) -> dict[str, Any]:
    """A pod of `rs`, as the ReplicaSet controller and kubelet leave it."""
    meta: dict[str, Any] = {"name": name, "namespace": "shop", "creationTimestamp": stamp(created),
                            "labels": dict(rs["metadata"]["labels"]),
                            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                                                 "name": rs["metadata"]["name"], "controller": True}]}
    if deleting:
        meta["deletionTimestamp"] = stamp(created)
    condition = {"type": "Ready", "status": "True" if ready else "False",
                 "lastTransitionTime": stamp(ready_since or created)}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta,
            "status": {"phase": "Running", "conditions": [condition]}}


def service(name: str, pod_hash: str | None = None, *, managed_by: str | None = "web") -> dict[str, Any]:
    selector = {"app": "web", **({HASH_LABEL: pod_hash} if pod_hash else {})}
    annotations = {MANAGED_BY: managed_by} if managed_by else {}
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": "shop", "annotations": annotations},
            "spec": {"selector": selector}}


def route(name: str | None, *destinations: tuple[str, int] | tuple[str, int, str]) -> dict[str, Any]:
    """An http/tls/tcp route; a destination is (host, weight) or (host, weight, subset)."""
    out: dict[str, Any] = {"name": name} if name else {}
    out["route"] = [{"destination": {"host": d[0], **({"subset": d[2]} if len(d) > 2 else {})}, "weight": d[1]}
                    for d in destinations]
    return out


def virtual_service(name: str = "web-vs", *, http: list[dict[str, Any]] | None = None,
                    tls: list[dict[str, Any]] | None = None, tcp: list[dict[str, Any]] | None = None,
                    resource_version: str = "1") -> dict[str, Any]:
    if http is None and tls is None and tcp is None:
        http = [route("primary", ("web-stable", 100), ("web-canary", 0))]
    spec: dict[str, Any] = {"hosts": ["web.example.com"]}
    for key, value in (("http", http), ("tls", tls), ("tcp", tcp)):
        if value is not None:
            spec[key] = value
    return {"apiVersion": "networking.istio.io/v1alpha3", "kind": "VirtualService",
            "metadata": {"name": name, "namespace": "shop", "resourceVersion": resource_version}, "spec": spec}


def destination_rule(name: str = "web-dr", *, canary: str | None = None, stable: str | None = None,
                     extra: Iterable[str] = ()) -> dict[str, Any]:
    def subset(sub: str, pod_hash: str | None) -> dict[str, Any]:
        return {"name": sub, "labels": {"app": "web", **({HASH_LABEL: pod_hash} if pod_hash else {})}}

    subsets = [subset("canary", canary), subset("stable", stable), *(subset(e, None) for e in extra)]
    return {"apiVersion": "networking.istio.io/v1alpha3", "kind": "DestinationRule",
            "metadata": {"name": name, "namespace": "shop", "resourceVersion": "1"},
            "spec": {"host": "web", "subsets": subsets}}


def analysis_template(name: str = "success-rate", *, count: int = 3) -> dict[str, Any]:
    return {"apiVersion": "argoproj.io/v1alpha1", "kind": "AnalysisTemplate",
            "metadata": {"name": name, "namespace": "shop"},
            "spec": {"args": [{"name": "service"}],
                     "metrics": [{"name": name, "interval": "1m", "count": count, "failureLimit": 1,
                                  "successCondition": "result[0] >= 0.95",
                                  "provider": {"prometheus": {"address": "http://prom:9090",
                                                              "query": "rate({{args.service}})"}}}]}}


def analysis_run(name: str, *, phase: str | None = None, message: str | None = None, pod_hash: str = "",
                 kind: str = "Step", terminate: bool = False, created: datetime | None = None) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "apiVersion": "argoproj.io/v1alpha1", "kind": "AnalysisRun",
        "metadata": {"name": name, "namespace": "shop", "labels": {HASH_LABEL: pod_hash, "rollout-type": kind},
                     "ownerReferences": [{"kind": "Rollout", "name": "web", "uid": UID, "controller": True}],
                     **({"creationTimestamp": stamp(created)} if created else {})},
        "spec": {"metrics": [RUN_METRIC], **({"terminate": True} if terminate else {})},
    }
    if phase:
        doc["status"] = run_status(phase, message)
    return doc


RUN_METRIC = {"name": "rate", "successCondition": "result[0] >= 0.95",
              "provider": {"prometheus": {"address": "http://prometheus:9090", "query": "rate"}}}
_COUNTER = {"Successful": "successful", "Failed": "failed", "Inconclusive": "inconclusive", "Error": "error"}


def run_status(phase: str, message: str | None = None, *, metrics: list[str] | None = None) -> dict[str, Any]:
    """An AnalysisRun status as the analysis controller writes it: each metric measured once, with
    the counter of `phase` (a Successful run is evidence: analysis.evidence)."""
    counter = _COUNTER.get(phase)
    results = [{"name": name, "phase": phase, "count": 1, **({counter: 1} if counter else {})}
               for name in metrics or [RUN_METRIC["name"]]] if counter else []
    return {"phase": phase, **({"message": message} if message else {}),
            **({"metricResults": results} if results else {})}


def events(p: Plan) -> list[tuple[str, str]]:
    return [(a.reason, a.message) for a in p.actions if isinstance(a, Event)]


def reasons(p: Plan) -> list[str]:
    return [a.reason for a in p.actions if isinstance(a, Event)]


def changes(p: Plan) -> list[Action]:
    """The actions that change the cluster (events left out)."""
    return [a for a in p.actions if not isinstance(a, Event)]


def weights(vs: dict[str, Any], section: str = "http", index: int = 0) -> dict[str, int]:
    return {f"{d['destination']['host']}{'/' + d['destination']['subset'] if 'subset' in d['destination'] else ''}":
            d.get("weight", 0) for d in vs["spec"][section][index]["route"]}


@dataclass
class World:
    """One Rollout and its objects, planned and applied on a stepped clock."""

    rollout: dict[str, Any]
    replica_sets: list[dict[str, Any]] = field(default_factory=list)
    analysis_runs: list[dict[str, Any]] = field(default_factory=list)
    templates: list[dict[str, Any]] = field(default_factory=list)
    virtual_services: list[dict[str, Any]] = field(default_factory=list)
    destination_rule: dict[str, Any] | None = None
    services: list[dict[str, Any]] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    pods: list[dict[str, Any]] = field(default_factory=list)
    auto_ready: bool = True
    now: datetime = T0
    recorded: list[tuple[str, str]] = field(default_factory=list)

    @classmethod
    def of(cls, doc: dict[str, Any], **kwargs: Any) -> World:
        strategy = doc["spec"]["strategy"]["canary"]
        world = cls(rollout=doc, **kwargs)
        if not world.services and "canaryService" in strategy:
            world.services = [service(strategy["stableService"], managed_by=None),
                              service(strategy["canaryService"], managed_by=None)]
        istio = (strategy.get("trafficRouting") or {}).get("istio") or {}
        if not world.virtual_services and istio:
            if "destinationRule" in istio:
                world.virtual_services = [virtual_service(http=[route("primary", ("web", 100, "stable"),
                                                                      ("web", 0, "canary"))])]
            else:
                world.virtual_services = [virtual_service()]
        if world.destination_rule is None and "destinationRule" in istio:
            world.destination_rule = destination_rule()
        return world

    def observed(self) -> Observed:
        return Observed(rollout=Rollout.load(copy.deepcopy(self.rollout)),
                        replica_sets=copy.deepcopy(self.replica_sets),
                        analysis_runs=copy.deepcopy(self.analysis_runs), templates=copy.deepcopy(self.templates),
                        virtual_services=copy.deepcopy(self.virtual_services),
                        destination_rule=copy.deepcopy(self.destination_rule), services=copy.deepcopy(self.services),
                        problems=list(self.problems), pods=copy.deepcopy(self.pods))

    def plan(self, at: datetime | None = None) -> Plan:
        return plan(self.observed(), at or self.now)

    def step(self, at: datetime | None = None) -> Plan:
        """plan() at `at` (default: the world's clock), apply its actions and status."""
        if at is not None:
            self.now = at
        result = plan(self.observed(), self.now)
        for action in result.actions:
            self.apply(action)
        self.rollout["status"] = result.status
        return result

    def settle(self, at: datetime | None = None, *, limit: int = 30) -> list[Plan]:
        """Step until a pass changes nothing (the fixed point); the passes are returned."""
        passes = []
        for _ in range(limit):
            before = copy.deepcopy(self.rollout.get("status"))
            passes.append(self.step(at))
            if not changes(passes[-1]) and not [a for a in passes[-1].actions if isinstance(a, Event)] \
                    and self.rollout["status"] == before:
                return passes
        raise AssertionError(f"no fixed point after {limit} passes: {passes[-1].actions}")

    def advance(self, delta: timedelta) -> datetime:
        self.now += delta
        return self.now

    # -- the cluster side
    def rs(self, image: str) -> dict[str, Any]:
        pod_hash = hash_of(image)
        return next(r for r in self.replica_sets if r["metadata"]["labels"][HASH_LABEL] == pod_hash)

    def run(self, name: str) -> dict[str, Any]:
        return next(r for r in self.analysis_runs if r["metadata"]["name"] == name)

    def set_ready(self, image: str, available: int | None = None) -> None:
        rs = self.rs(image)
        count = rs["spec"]["replicas"] if available is None else available
        rs["status"] |= {"readyReplicas": count, "availableReplicas": count}

    def add_pods(self, image: str, *, created: datetime, ready: bool = True) -> list[str]:
        """Pods for every replica the ReplicaSet of `image` asks for; their names."""
        rs = self.rs(image)
        names = [f"{rs['metadata']['name']}-{len(self.pods) + i:05d}" for i in range(rs["spec"]["replicas"])]
        self.pods += [pod(rs, name, created=created, ready=ready) for name in names]
        self._count_pods(rs)
        return names

    def set_pods_ready(self) -> None:
        for doc in self.pods:
            doc["status"]["conditions"][0] |= {"status": "True", "lastTransitionTime": stamp(self.now)}
        for rs in self.replica_sets:
            self._count_pods(rs)

    def pods_of(self, image: str) -> list[dict[str, Any]]:
        name = self.rs(image)["metadata"]["name"]
        return [p for p in self.pods if p["metadata"]["ownerReferences"][0]["name"] == name]

    def _count_pods(self, rs: dict[str, Any]) -> None:
        mine = [p for p in self.pods if p["metadata"]["ownerReferences"][0]["name"] == rs["metadata"]["name"]]
        ready = sum(1 for p in mine if p["status"]["conditions"][0]["status"] == "True")
        rs["status"] |= {"replicas": len(mine), "readyReplicas": ready, "availableReplicas": ready}

    def finish_run(self, name: str, phase: str, message: str | None = None) -> None:
        run = self.run(name)
        names = [str(m.get("name")) for m in (run.get("spec") or {}).get("metrics") or []]
        run["status"] = run_status(phase, message, metrics=names or None)

    def set_status(self, **fields: Any) -> None:
        self.rollout.setdefault("status", {}).update(fields)

    def set_image(self, image: str) -> None:
        self.rollout["spec"]["template"] = template(image)

    @property
    def status(self) -> dict[str, Any]:
        return self.rollout.get("status") or {}

    @property
    def vs(self) -> dict[str, Any]:
        return self.virtual_services[0]

    def selector(self, name: str) -> str | None:
        svc = next(s for s in self.services if s["metadata"]["name"] == name)
        return svc["spec"]["selector"].get(HASH_LABEL)

    def apply(self, action: Action) -> None:
        """The action's own Request, applied as plan.written applies it (platform.actions), then
        what the cluster's controllers would do next (this stand-in's part): a ReplicaSet's
        pods become ready at once with `auto_ready`, a deleted pod is replaced, a run gets its
        creationTimestamp, a VirtualService its next resourceVersion."""
        if isinstance(action, Event):
            self.recorded.append((action.reason, action.message))
            return
        if isinstance(action, CreateAnalysisRun):
            assert all(r["metadata"]["name"] != action.name for r in self.analysis_runs), "run created twice"
        if isinstance(action, PatchVirtualService):
            vs = next(v for v in self.virtual_services if v["metadata"]["name"] == action.name)
            assert vs["metadata"]["resourceVersion"] == action.resource_version, "stale VirtualService patch"
        owner = None
        if isinstance(action, DeletePod):
            [gone] = [p for p in self.pods if p["metadata"]["name"] == action.name]
            owner = gone["metadata"]["ownerReferences"][0]["name"]
        request = action.request(str(self.rollout["metadata"].get("namespace") or "default"),
                                 str(self.rollout["metadata"]["name"]))
        lists = {"ReplicaSet": "replica_sets", "AnalysisRun": "analysis_runs", "Service": "services",
                 "VirtualService": "virtual_services", "Pod": "pods"}
        if request.kind == "DestinationRule":
            assert self.destination_rule is not None
            [self.destination_rule] = apply_request([self.destination_rule], request)
        else:
            setattr(self, lists[request.kind], apply_request(getattr(self, lists[request.kind]), request))
        self._after(action, owner)

    def _after(self, action: Action, owner: str | None) -> None:
        if isinstance(action, CreateReplicaSet | ScaleReplicaSet):
            rs = next(r for r in self.replica_sets if r["metadata"]["name"] == action.name)
            count = rs["spec"]["replicas"]
            available = (rs.get("status") or {}).get("availableReplicas", 0)
            available = count if self.auto_ready else min(available, count)
            rs["status"] = {"replicas": count, "readyReplicas": available, "availableReplicas": available}
        elif isinstance(action, PatchVirtualService):
            vs = next(v for v in self.virtual_services if v["metadata"]["name"] == action.name)
            vs["metadata"]["resourceVersion"] = str(int(vs["metadata"]["resourceVersion"]) + 1)
        elif isinstance(action, CreateAnalysisRun):
            self.run(action.name)["metadata"]["creationTimestamp"] = stamp(self.now)
        elif isinstance(action, DeletePod):
            rs = next(r for r in self.replica_sets if r["metadata"]["name"] == owner)
            self.pods.append(pod(rs, f"{action.name}-r", created=self.now, ready=self.auto_ready))
            self._count_pods(rs)
