"""Benchmark: one controller holding many Rollouts (issue 14 item 5), and a simulated day.

Run: .venv/bin/python benchmarks/bench_scale.py [--rollouts 10000] [--wave 1000] [--day-rollouts 1000]
     [--hours 24] [--warm-up] [--quick] [--json]
     (`--quick`: 1,000 Rollouts, a wave of 100, 200 Rollouts for 6 hours)

The fleet: N Rollouts (canary, Istio VirtualService with canary and stable Services, a background
analysis and an analysis step), each deployed and then updated once to completion, so the cache
holds per Rollout: the Rollout, two ReplicaSets, two Services, a VirtualService and two finished
AnalysisRuns. Everything runs in one process: an InMemoryCluster on a SteppedClock and the
controller Manager with its real watches, cache, queue and reconcilers (step mode). Printed:

- memory per Rollout: what a Manager that listed and reconciled the N Rollouts holds
  (tracemalloc, live bytes after a gc) minus what a Manager over an empty cluster holds, measured
  in the same run; and the process RSS delta of the same sync (RSS counts allocator pages too, and
  freed pages of the fleet's build are reused, so it is a cross-check, not the figure);
- idle: after everything finished, an hour of controller time in step mode, and a quiet wall
  window in threaded mode (a second Manager on the real clock, its watch and worker threads
  running): reconciles (target 0: finished runs cost nothing) and process CPU seconds per second;
- a wave: `--wave` Rollouts get a new image at once, one in ten of them failing its analysis:
  Rollout reconcile p50/p99 (wall) during the wave against a no-op reconcile of a settled Rollout
  (same run), and the worst lag from the write of a failed measurement to the write of canary
  weight 0 to the VirtualService (wall, and controller time);
- a simulated day at `--day-rollouts`: a steady stream of updates (one in ten of each Rollout's
  updates failing, staggered: `fails`), with `--warm-up` after every Rollout was aborted twice and
  promoted once (WARM_UP: each run history at its limit before the first hour), at every
  simulated hour the whole process's traced memory (the API server and the controller together)
  and what the controller alone holds (`held`: objects and getsizeof bytes reachable from each
  Manager structure without entering the API server's side; `held_counts`: entries per index),
  each with its least-squares slope per hour, and the largest AnalysisRun status (JSON bytes)
  seen (bounded by measurement retention). The slopes are given three ways, none replacing
  another: the whole day after its first quarter; the steady state, from the first hour at which
  every Rollout had been updated twice and every capped structure (CAPS: the event recorder's
  keys and recent events) was at its cap, with the hour each cap was reached; and the last half.
  Events older than an hour are deleted every hour, as
  kube-apiserver's default --event-ttl does.

Nothing here asserts a time; tests/benchmarks/test_bench_scale.py runs small sizes and asserts
the figures that do not depend on the machine's speed.
"""

from __future__ import annotations

import argparse
import gc
import json
import re
import statistics
import sys
import threading
import time
import tracemalloc
import types
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from analysis.model import Metric
from analysis.providers import Providers, Result
from rollouts.controller.fanin import finished_run
from rollouts.controller.manager import Manager
from rollouts.memory.cluster import InMemoryCluster
from rollouts.plan.replicas import pod_template_hash
from rollouts.plan.steplist import step_hash
from rollouts.platform.clock import SteppedClock, SystemClock
from rollouts.platform.events import _CACHE_SIZE as EVENT_KEYS
from rollouts.platform.events import _KEEP as RECENT_EVENTS
from rollouts.platform.labels import HASH_LABEL
from rollouts.spec.model import Rollout

KIB = 1024
TARGET_PER_ROLLOUT = 100 * KIB
QUERY = re.compile(r'service="([^"]+)"')

TEMPLATES = """
apiVersion: argoproj.io/v1alpha1
kind: AnalysisTemplate
metadata: {name: success-rate, namespace: default}
spec:
  args: [{name: service}]
  metrics:
    - name: success-rate
      interval: 1m
      successCondition: result[0] >= 0.95
      failureLimit: 0
      provider:
        prometheus:
          address: http://prometheus.istio-system:9090
          query: sum(rate(ok{service="{{args.service}}"}[1m])) / sum(rate(all{service="{{args.service}}"}[1m]))
---
apiVersion: argoproj.io/v1alpha1
kind: AnalysisTemplate
metadata: {name: success-rate-gate, namespace: default}
spec:
  args: [{name: service}]
  metrics:
    - name: success-rate
      interval: 1m
      count: 2
      successCondition: result[0] >= 0.95
      failureLimit: 0
      provider:
        prometheus:
          address: http://prometheus.istio-system:9090
          query: sum(rate(ok{service="{{args.service}}"}[1m])) / sum(rate(all{service="{{args.service}}"}[1m]))
"""

APP = """
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata: {name: NAME, namespace: default}
spec:
  replicas: 1
  revisionHistoryLimit: 1
  analysis: {successfulRunHistoryLimit: 2, unsuccessfulRunHistoryLimit: 2}
  selector: {matchLabels: {app: NAME}}
  template:
    metadata: {labels: {app: NAME}}
    spec:
      containers: [{name: app, image: "demo:v1", ports: [{name: http, containerPort: 8080}]}]
  strategy:
    canary:
      canaryService: NAME-canary
      stableService: NAME-stable
      analysis:
        templates: [{templateName: success-rate}]
        args: [{name: service, value: NAME}]
      trafficRouting:
        istio:
          virtualService: {name: NAME-vsvc, routes: [primary]}
      steps:
        - setWeight: 20
        - analysis:
            templates: [{templateName: success-rate-gate}]
            args: [{name: service, value: NAME}]
        - setWeight: 50
        - pause: {duration: PAUSE}
---
apiVersion: v1
kind: Service
metadata: {name: NAME-stable, namespace: default}
spec: {selector: {app: NAME}, ports: [{name: http, port: 80, targetPort: http}]}
---
apiVersion: v1
kind: Service
metadata: {name: NAME-canary, namespace: default}
spec: {selector: {app: NAME}, ports: [{name: http, port: 80, targetPort: http}]}
---
apiVersion: networking.istio.io/v1alpha3
kind: VirtualService
metadata: {name: NAME-vsvc, namespace: default}
spec:
  hosts: [NAME]
  http:
    - name: primary
      route:
        - {destination: {host: NAME-stable}, weight: 100}
        - {destination: {host: NAME-canary}, weight: 0}
"""


class Backend:
    """The metric backend: a success rate per Service, 1.0 unless the Rollout is in `failing`."""

    def __init__(self) -> None:
        self.failing: set[str] = set()
        self.calls = 0

    def measure(self, metric: Metric, *, at: datetime) -> Result:
        self.calls += 1
        prometheus = metric.provider.prometheus
        found = QUERY.search(prometheus.query if prometheus is not None else "")
        return Result(value=[0.5 if found and found.group(1) in self.failing else 1.0])


class Recorder:
    """The Cluster the controller is given: the in-memory one, with the moments that make an abort's lag
    (first failed measurement written; canary weight 0 written afterwards) recorded per Rollout."""

    def __init__(self, inner: InMemoryCluster, clock: SteppedClock) -> None:
        self.inner, self.clock = inner, clock
        self.writes = 0
        self.failed: dict[str, tuple[float, datetime]] = {}  # rollout -> (perf_counter, controller time)
        self.zeroed: dict[str, tuple[float, datetime]] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def create(self, obj: dict[str, Any]) -> dict[str, Any]:
        self.writes += 1
        return self.inner.create(obj)

    def replace(self, obj: dict[str, Any]) -> dict[str, Any]:
        self.writes += 1
        return self.inner.replace(obj)

    def delete(self, kind: str, name: str, namespace: str | None = None) -> None:
        self.writes += 1
        self.inner.delete(kind, name, namespace)

    def patch(self, kind: str, name: str, namespace: str | None, patch: Any, **kwargs: Any) -> dict[str, Any]:
        self.writes += 1
        written = self.inner.patch(kind, name, namespace, patch, **kwargs)
        if kind == "VirtualService":
            rollout = name.removesuffix("-vsvc")
            if rollout in self.failed and rollout not in self.zeroed and canary_weight(written, rollout) == 0:
                self.zeroed[rollout] = (time.perf_counter(), self.clock.now())
        return written

    def patch_status(self, kind: str, name: str, namespace: str | None, patch: dict[str, Any]) -> dict[str, Any]:
        self.writes += 1
        written = self.inner.patch_status(kind, name, namespace, patch)
        if kind == "AnalysisRun":
            owner = next((ref["name"] for ref in written["metadata"].get("ownerReferences") or []), None)
            results = (written.get("status") or {}).get("metricResults") or []
            if owner and owner not in self.failed and any(
                    m.get("phase") == "Failed" for r in results for m in r.get("measurements") or []):
                self.failed[owner] = (time.perf_counter(), self.clock.now())
        return written


def canary_weight(vs: dict[str, Any], rollout: str) -> int | None:
    for route in vs["spec"]["http"]:
        for dest in route.get("route") or []:
            if dest["destination"]["host"] == f"{rollout}-canary":
                return int(dest.get("weight") or 0)
    return None


@dataclass
class Fleet:
    cluster: InMemoryCluster
    recorder: Recorder
    clock: SteppedClock
    backend: Backend
    names: list[str]
    reconcile_times: list[float] = field(default_factory=list)
    reconcile_cpu: list[float] = field(default_factory=list)  # the same reconciles in thread CPU time

    def manager(self, *, clock: Any = None, timed: bool = False, **kwargs: Any) -> Manager:
        manager = Manager(self.recorder, Providers({"prometheus": self.backend}), clock=clock or self.clock,  # type: ignore[arg-type]
                          leader_election=False, **kwargs)
        if timed:
            reconcile = manager.rollouts.reconcile

            def timed_reconcile(namespace: str, name: str) -> float | None:
                started, cpu = time.perf_counter(), time.thread_time()
                try:
                    return reconcile(namespace, name)
                finally:
                    self.reconcile_times.append(time.perf_counter() - started)
                    self.reconcile_cpu.append(time.thread_time() - cpu)

            manager.rollouts.reconcile = timed_reconcile  # type: ignore[method-assign]
        return manager


def fleet(n: int, *, pause: str = "2m") -> Fleet:
    """N Rollouts with their Services and VirtualServices, not yet reconciled."""
    clock = SteppedClock(datetime.now(UTC).replace(microsecond=0) - timedelta(days=3))
    cluster = InMemoryCluster(clock=clock.now, history=max(1000, 4 * n))
    for doc in yaml.safe_load_all(TEMPLATES):
        cluster.create(doc)
    app = APP.replace("PAUSE", pause)
    names = [f"app{i:05d}" for i in range(n)]
    for name in names:
        for doc in yaml.safe_load_all(app.replace("NAME", name)):
            cluster.create(doc)
    return Fleet(cluster, Recorder(cluster, clock), clock, Backend(), names)


def replicated(n: int, *, pause: str = "2m", history: int | None = None) -> Fleet:
    """N settled Rollouts, cloned from one settled by the controller (a cache fill without N updates).

    Each object of the seed (Rollout, ReplicaSets, Services, VirtualService, AnalysisRuns) is
    written again under each new name, with its pod-template hashes recomputed for the new
    template and its owner uids pointing at the new owners; generations are brought to the seed's
    with spec writes, and status is written as the seed's. Pods come from the cluster's workloads
    hook. `memory()` counts the writes of a fresh Manager's sync: 0 proves each clone is settled.
    """
    seed = fleet(1, pause=pause)
    settle(seed)
    clock = SteppedClock(seed.clock.now())
    cluster = InMemoryCluster(clock=clock.now, history=history or max(1000, 4 * n))
    for doc in yaml.safe_load_all(TEMPLATES):
        cluster.create(doc)
    old = seed.names[0]
    kinds = ("Rollout", "Service", "VirtualService", "ReplicaSet", "AnalysisRun")
    objects = {kind: seed.cluster.list(kind, "default") for kind in kinds}
    names = [f"app{i:05d}" for i in range(n)]
    for name in names:
        swap = {old: name}
        for rollout in objects["Rollout"]:  # the step hash covers the steps, whose args name the Rollout
            steps = Rollout.model_validate(json.loads(json.dumps(rollout).replace(old, name))).spec.strategy.canary
            swap[rollout["status"]["currentStepHash"]] = step_hash(steps.steps if steps and steps.steps else [])
        for rs in objects["ReplicaSet"]:
            template = json.loads(json.dumps(rs["spec"]["template"]).replace(old, name))
            swap[rs["metadata"]["labels"][HASH_LABEL]] = pod_template_hash(template)
        for kind in kinds:
            for obj in objects[kind]:
                clone = json.loads(_swap(json.dumps(obj), swap))
                meta, status = clone["metadata"], clone.pop("status", None)
                moves = meta.get("generation", 1) - 1  # spec writes after the create, the last one the seed's spec
                written = cluster.create({**clone, "spec": {**clone["spec"], "x-bench": 0}} if moves else clone)
                for step in range(1, moves + 1):
                    spec = clone["spec"] if step == moves else {**clone["spec"], "x-bench": step}
                    written = cluster.replace({**written, "spec": spec})
                swap[obj["metadata"]["uid"]] = written["metadata"]["uid"]
                if status is not None and kind != "ReplicaSet":  # a ReplicaSet's status is the workloads hook's
                    cluster.patch_status(kind, meta["name"], "default", {"status": status})
    return Fleet(cluster, Recorder(cluster, clock), clock, Backend(), names)


def _swap(text: str, swap: dict[str, str]) -> str:
    for old, new in swap.items():
        text = text.replace(old, new)
    return text


def update(f: Fleet, names: list[str], image: str) -> None:
    for name in names:
        rollout = f.cluster.get("Rollout", name, "default")
        rollout["spec"]["template"]["spec"]["containers"][0]["image"] = image
        f.cluster.replace(rollout)


def finished(f: Fleet, names: list[str], image: str) -> Callable[[], bool]:
    """Every named Rollout runs `image` as its stable version, or was aborted by its analysis."""
    def done() -> bool:
        for name in names:
            rollout = f.cluster.get("Rollout", name, "default")
            status = rollout.get("status") or {}
            if status.get("abort") and status.get("phase") == "Degraded":
                continue
            if (rollout["spec"]["template"]["spec"]["containers"][0]["image"] != image
                    or status.get("phase") != "Healthy" or status.get("stableRS") != status.get("currentPodHash")):
                return False
        return True
    return done


def settle(f: Fleet) -> None:
    """Deploy every Rollout, update each once to completion (two finished AnalysisRuns each), go quiet."""
    manager = f.manager()
    manager.run_until(finished(f, f.names, "demo:v1"))
    update(f, f.names, "demo:v2")
    manager.run_until(finished(f, f.names, "demo:v2"))
    quiet(manager)


def quiet(manager: Manager, *, limit: float = 6 * 3600.0) -> None:
    """Run (stepped) until nothing is scheduled: scale-down delays and last requeues done."""
    end = manager.clock.monotonic() + limit
    while (wait := manager.next_due()) is not None and manager.clock.monotonic() < end:
        manager.run_for(min(wait + 1e-6, 3600.0))


def synced(f: Fleet, **kwargs: Any) -> Manager:
    """A new Manager that listed the whole fleet into its cache and reconciled every key once."""
    manager = f.manager(**kwargs)
    manager.step()
    quiet(manager)
    return manager


def rss() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * KIB
    return 0


def traced(build: Callable[[], Any]) -> tuple[int, Any, tracemalloc.Snapshot]:
    """(live bytes allocated by build() and still held after a gc, its result, the snapshot)."""
    gc.collect()
    tracemalloc.start(1)
    before = tracemalloc.get_traced_memory()[0]
    kept = build()
    gc.collect()
    held = tracemalloc.get_traced_memory()[0] - before
    snapshot = tracemalloc.take_snapshot()
    tracemalloc.stop()
    return held, kept, snapshot


def memory(f: Fleet, *, profile: int = 0) -> dict[str, Any]:
    """Bytes per Rollout a synced Manager holds, against a Manager over an empty cluster (same run)."""
    empty = fleet(0)
    base, kept, _ = traced(lambda: synced(empty))
    del kept
    writes = f.recorder.writes
    held, manager, snapshot = traced(lambda: synced(f))
    sync_writes = f.recorder.writes - writes
    del manager
    gc.collect()
    before = rss()
    manager = synced(f)
    gc.collect()
    rss_delta = rss() - before
    n = max(len(f.names), 1)
    top = [(f"{stat.traceback[0].filename.split('/rollouts/')[-1]}:{stat.traceback[0].lineno}", stat.size / n)
           for stat in snapshot.statistics("lineno")[:profile]]
    return {"n": len(f.names), "baseline_bytes": base, "held_bytes": held, "per_rollout": (held - base) / n,
            "rss_per_rollout": rss_delta / n, "sync_writes": sync_writes, "cache_objects": len(manager.cache),
            "top": top}


def idle_stepped(f: Fleet, manager: Manager, *, seconds: float = 3600.0) -> dict[str, Any]:
    """An hour of controller time with everything finished: reconciles, measurements, CPU."""
    reconciles, calls, writes = manager.reconciles, f.backend.calls, f.recorder.writes
    cpu = time.process_time()
    manager.run_for(seconds)
    return {"seconds": seconds, "reconciles": manager.reconciles - reconciles, "measurements": f.backend.calls - calls,
            "writes": f.recorder.writes - writes, "cpu": time.process_time() - cpu}


def idle_threaded(f: Fleet, *, window: float = 5.0, sync_limit: float = 1800.0) -> dict[str, Any]:
    """A threaded Manager on the real clock: sync, then a quiet wall window (CPU seconds per second)."""
    manager = f.manager(clock=SystemClock(), workers=2, analysis_workers=2)
    expected = len(manager.cluster.list("Rollout", None)) + sum(  # a finished run is never queued (fanin)
        not finished_run(run) for run in manager.cluster.list("AnalysisRun", None))
    started = time.perf_counter()
    manager.start()
    try:
        while manager.reconciles < expected or len(manager.queue):
            if time.perf_counter() - started > sync_limit:
                raise SystemExit(f"threaded sync: {manager.reconciles} of {expected} reconciles after {sync_limit}s")
            time.sleep(0.2)
        sync_wall = time.perf_counter() - started
        time.sleep(0.5)
        reconciles, calls, writes = manager.reconciles, f.backend.calls, f.recorder.writes
        cpu, wall = time.process_time(), time.perf_counter()
        time.sleep(window)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        return {"window": wall, "cpu": cpu, "cpu_per_second": cpu / wall, "reconciles": manager.reconciles - reconciles,
                "measurements": f.backend.calls - calls, "writes": f.recorder.writes - writes,
                "sync_wall": sync_wall, "threads": threading.active_count()}
    finally:
        manager.stop()


def noop_cost(f: Fleet, manager: Manager, sample: int = 200) -> float:
    names = f.names[:sample]
    writes = f.recorder.writes
    started = time.perf_counter()
    for name in names:
        manager.rollouts.reconcile("default", name)
    cost = (time.perf_counter() - started) / max(len(names), 1)
    if f.recorder.writes != writes:
        raise SystemExit(f"a no-op reconcile wrote ({f.recorder.writes - writes} writes)")
    return cost


def wave(f: Fleet, manager: Manager, size: int, *, fail_every: int = 10) -> dict[str, Any]:
    """`size` Rollouts updated at once, every `fail_every`-th failing its analysis; run until all finished."""
    names = f.names[:size]
    failing = set(names[::fail_every])
    f.backend.failing = failing
    f.recorder.failed.clear()
    f.recorder.zeroed.clear()
    f.reconcile_times.clear()
    f.reconcile_cpu.clear()
    noop = noop_cost(f, manager)
    reconciles, cpu, wall = manager.reconciles, time.process_time(), time.perf_counter()
    update(f, names, "demo:v3")
    manager.run_until(finished(f, names, "demo:v3"))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    times, cpus = sorted(f.reconcile_times), sorted(f.reconcile_cpu)
    aborted = [name for name in names if (f.cluster.get("Rollout", name, "default").get("status") or {}).get("abort")]
    lags = [(f.recorder.zeroed[name][0] - f.recorder.failed[name][0],
             (f.recorder.zeroed[name][1] - f.recorder.failed[name][1]).total_seconds())
            for name in failing if name in f.recorder.zeroed and name in f.recorder.failed]
    f.backend.failing = set()
    return {"size": size, "failing": len(failing), "aborted": sorted(aborted) == sorted(failing),
            "abort_lags": len(lags), "reconciles": manager.reconciles - reconciles,
            "rollout_reconciles": len(times), "p50": percentile(times, 0.50), "p99": percentile(times, 0.99),
            "p50_cpu": percentile(cpus, 0.50), "p99_cpu": percentile(cpus, 0.99),
            "noop": noop, "worst_lag_wall": max((wall_lag for wall_lag, _ in lags), default=float("nan")),
            "worst_lag_clock": max((clock_lag for _, clock_lag in lags), default=float("nan")),
            "wall": wall, "cpu": cpu}


def percentile(values: list[float], q: float) -> float:
    return values[min(len(values) - 1, int(q * len(values)))] if values else float("nan")


def status_sizes(cluster: InMemoryCluster) -> Iterator[int]:
    for run in cluster.list("AnalysisRun", "default"):
        yield len(json.dumps(run.get("status") or {}, separators=(",", ":")))


def expire_events(cluster: InMemoryCluster, older_than: datetime) -> None:
    for event in cluster.list("Event", "default"):
        stamp = event.get("lastTimestamp") or event["metadata"].get("creationTimestamp")
        if stamp and datetime.fromisoformat(str(stamp).replace("Z", "+00:00")) < older_than:
            cluster.delete("Event", event["metadata"]["name"], "default")


# What the controller holds, structure by structure: an object reached from two is counted under the first.
STRUCTURES = ("cache", "queue", "metrics", "router", "recorder", "notifier", "analysis", "experiments", "rollouts")
CODE = (type, types.ModuleType, types.FunctionType, types.BuiltinFunctionType, types.MethodDescriptorType,
        types.WrapperDescriptorType, types.CodeType, types.FrameType, types.GeneratorType)


def held(manager: Manager, *, outside: tuple[Any, ...]) -> dict[str, tuple[int, int]]:
    """What the controller alone holds: per Manager structure (STRUCTURES, then "rest": the Manager
    itself and whatever else it reaches), (objects, bytes by sys.getsizeof) reachable from it.

    The walk (gc.get_referents) does not enter the API server's side: the `outside` objects (the
    cluster the Manager was given, the metric backend, the clock) and any object of a class defined
    in rollouts.memory (the store, its watch log and history). A watch event's object the
    controller keeps (its cache) is the controller's, so it is counted; a clone the API server keeps
    in its history is not. Code (modules, classes, functions, frames) is not walked: its size does
    not depend on the fleet or the hour. Flat counts hour by hour are the no-leak proof; bytes are
    getsizeof's (the object headers and containers, not the allocator's pages)."""
    seen = {id(obj) for obj in outside}
    out: dict[str, tuple[int, int]] = {}
    for name in (*STRUCTURES, "rest"):
        root = manager if name == "rest" else getattr(manager, name)
        count = size = 0
        stack: list[Any] = [root]
        while stack:
            obj = stack.pop()
            if id(obj) in seen:
                continue
            seen.add(id(obj))
            if isinstance(obj, CODE) or type(obj).__module__.startswith("rollouts.memory"):
                continue
            count += 1
            size += sys.getsizeof(obj)
            stack.extend(gc.get_referents(obj))
        out[name] = (count, size)
    return out


def held_counts(manager: Manager) -> dict[str, int]:
    """Entries per index the controller keeps (cheap, exact): what a leak would make grow."""
    metrics, router, cache = manager.metrics, manager.router, manager.cache
    return {"cached objects": len(cache), "label index": len(cache._labels), "queue": len(manager.queue),
            "metric samples": sum(len(family.samples) for family in metrics.registry.collect()),
            "request series": sum(len(v) for v in metrics._requests.values()),
            "router refs": len(router._refs) + len(router._ref_of),
            "event keys": len(manager.recorder._seen), "recent events": len(manager.recorder.recorded)}


CAPS = {"event keys": EVENT_KEYS, "recent events": RECENT_EVENTS}  # the held_counts entries that have a cap


def steady_from(counts: list[dict[str, int]], updated: list[int], *, times: int = 2) -> int | None:
    """The first hour (index) at which every Rollout had been updated at least `times` times and every
    capped structure (CAPS) was at its cap; None if the day never got there."""
    for hour, (entries, least) in enumerate(zip(counts, updated, strict=True)):
        if least >= times and all(entries[name] >= cap for name, cap in CAPS.items()):
            return hour
    return None


def slopes(controller: list[dict[str, tuple[int, int]]], samples: list[int], start: int) -> dict[str, Any]:
    """Least-squares slopes per hour from hour index `start` on: traced bytes, the controller's bytes and
    objects in all, and bytes and objects per structure."""
    part = controller[start:]
    return {"from_hour": start + 1, "hours": len(part), "traced": least_squares_slope(samples[start:]),
            "held_bytes": least_squares_slope([sum(b for _, b in hour.values()) for hour in part]),
            "held_objects": least_squares_slope([sum(c for c, _ in hour.values()) for hour in part]),
            "bytes": {name: least_squares_slope([hour[name][1] for hour in part]) for name in part[0]} if part else {},
            "objects": {name: least_squares_slope([hour[name][0] for hour in part]) for name in part[0]}
            if part else {}}


def fails(index: int, updates: int, fail_every: int) -> bool:
    """Whether the next update of the Rollout at `index`, updated `updates` times so far, fails its
    analysis: one in `fail_every` of each Rollout's own updates, staggered by index so that one in
    `fail_every` of any run of consecutive updates fails too. (A position in the stream alone would
    fail the same Rollouts every time whenever `fail_every` divides the fleet.)"""
    return (index + updates) % fail_every == 0


# The warm-up's rounds, each an update of every Rollout: True fails its analysis. Two aborts fill a
# Rollout's unsuccessful run history (limit 2) and its abort series; the pass fills the successful one.
WARM_UP = (True, True, False)


def outcome(f: Fleet, name: str) -> str:
    """How a Rollout's last update ended: "aborted", or its phase."""
    status = f.cluster.get("Rollout", name, "default").get("status") or {}
    return "aborted" if status.get("abort") else str(status.get("phase"))


def day(n: int, *, hours: int = 24, updates_per_hour: int | None = None, fail_every: int = 10,
        warm_up: bool = False, history: int = 1000, frames: int = 1,
        on_hour: Callable[[int], None] | None = None, progress: bool = False) -> dict[str, Any]:
    """`hours` simulated hours at N Rollouts with a steady update stream; memory per hour.

    Two figures per hour: the whole process's traced memory (tracemalloc: the API server and the
    controller together), and what the controller alone holds (`held`: objects and bytes per
    Manager structure, plus `held_counts`). The in-memory cluster's watch history (`history`
    events per kind, the API server's side) fills in the first hours; the first quarter of the
    samples is left out of the whole-day slopes as warm-up; `steady` (from `steady_from`: every
    Rollout updated twice, every cap in CAPS reached, `caps_reached` says when) and `last_half`
    are the same slopes over those hours, per structure in bytes and in objects. `frames`
    (traceback depth) and `on_hour(hour)` (called after each hour's sample, tracing on) are for
    finding what grows: take tracemalloc snapshots there. `progress` prints each hour's figures as it ends.

    `warm_up`: before the first hour (and before tracing starts), every Rollout is updated once per
    round of WARM_UP at the same rate, so that the day starts where a controller that has run for a
    while is: every Rollout aborted twice and promoted once, each run history at its limit. Each
    round's outcomes are counted (`warm_up["rounds"]`: Rollouts per outcome) when the Rollout is
    next updated, the last round's after the warm-up settles. The day's failures are `fails`'s."""
    f = replicated(n, pause="10m", history=history)
    manager = synced(f)
    per_hour = updates_per_hour if updates_per_hour is not None else max(1, n // 24)
    ticks, image, cursor = 6, 3, 0
    per_tick = max(1, per_hour // ticks)
    updates = dict.fromkeys(f.names, 0)

    def advance(names: list[str], failing: set[str]) -> None:
        """One tick: the named Rollouts get the next image (`failing` ones fail their analysis), then a tick's time."""
        nonlocal image
        f.backend.failing = failing
        update(f, names, f"demo:v{image}")
        for name in names:
            updates[name] += 1
        image += 1
        manager.run_for(3600.0 / ticks)

    warmed: dict[str, Any] | None = None
    if warm_up:
        rounds = [Counter[str]() for _ in WARM_UP]
        started, tick = f.clock.monotonic(), 0
        for round_, failing in enumerate(WARM_UP):
            for at in range(0, n, per_tick):
                names = f.names[at:at + per_tick]
                if round_:
                    rounds[round_ - 1].update(outcome(f, name) for name in names)
                advance(names, set(names) if failing else set())
                tick += 1
                if tick % ticks == 0:
                    expire_events(f.cluster, f.clock.now() - timedelta(hours=1))
        quiet(manager)
        rounds[-1].update(outcome(f, name) for name in f.names)
        warmed = {"updates": n * len(WARM_UP), "seconds": f.clock.monotonic() - started,
                  "rounds": [dict(sorted(c.items())) for c in rounds]}
    samples: list[int] = []
    sizes: list[int] = []
    runs: list[int] = []
    resident: list[int] = []
    controller: list[dict[str, tuple[int, int]]] = []
    counts: list[dict[str, int]] = []
    outside = (f.recorder, f.cluster, f.backend, f.clock)
    reconciles = manager.reconciles
    least_updated: list[int] = []  # per hour: the fewest updates any Rollout had so far
    gc.collect()
    tracemalloc.start(frames)
    for hour in range(hours):
        for _tick in range(ticks):
            indexes = [(cursor + i) % n for i in range(per_tick)]
            names = [f.names[index] for index in indexes]
            cursor += per_tick
            advance(names, {f.names[index] for index in indexes if fails(index, updates[f.names[index]], fail_every)})
        expire_events(f.cluster, f.clock.now() - timedelta(hours=1))
        sizes.append(max(status_sizes(f.cluster), default=0))
        runs.append(len(f.cluster.list("AnalysisRun", "default")))
        gc.collect()
        samples.append(tracemalloc.get_traced_memory()[0])
        resident.append(rss())
        controller.append(held(manager, outside=outside))
        counts.append(held_counts(manager))
        least_updated.append(min(updates.values()))
        if progress:
            mine = controller[-1]
            print(f"  hour {hour + 1}: traced {samples[-1] / KIB / KIB:.2f} MiB, controller holds "
                  f"{sum(c for c, _ in mine.values())} objects, {sum(b for _, b in mine.values()) / KIB / KIB:.2f} MiB "
                  f"({', '.join(f'{k} {v}' for k, v in counts[-1].items())}); KiB by structure: "
                  f"{', '.join(f'{k} {b / KIB:.0f}' for k, (_, b) in mine.items())}", flush=True)
        if on_hour is not None:
            on_hour(hour)
    tracemalloc.stop()
    start = len(samples) // 4  # the first hours fill the run histories and the event window
    warm = samples[start:]
    slope = least_squares_slope(warm)
    noise = statistics.pstdev(warm) if len(warm) > 1 else 0.0
    held_bytes = [sum(b for _, b in hour.values()) for hour in controller]
    held_objects = [sum(c for c, _ in hour.values()) for hour in controller]
    steady = steady_from(counts, least_updated)
    caps = {name: next((hour + 1 for hour, entries in enumerate(counts) if entries[name] >= cap), None)
            for name, cap in CAPS.items()}
    return {"warm_up": warmed, "least_updated": least_updated, "caps_reached": caps, "steady_from": steady,
            "steady": slopes(controller, samples, steady) if steady is not None and hours - steady >= 3 else None,
            "last_half": slopes(controller, samples, hours // 2) if hours >= 4 else None,
            "n": n, "hours": hours, "updates": cursor, "samples": samples, "slope_per_hour": slope, "noise": noise,
            "max_status_bytes": max(sizes, default=0), "status_sizes": sizes, "runs": runs, "rss": resident,
            "reconciles": manager.reconciles - reconciles,
            "held": controller, "held_counts": counts, "held_bytes": held_bytes, "held_objects": held_objects,
            "held_slope_per_hour": least_squares_slope(held_bytes[start:]),
            "held_objects_slope_per_hour": least_squares_slope(held_objects[start:]),
            "held_slopes": {name: least_squares_slope([hour[name][1] for hour in controller[start:]])
                            for name in controller[0]} if controller else {}}


def first_hour(least_updated: list[int], times: int) -> int | None:
    return next((hour + 1 for hour, least in enumerate(least_updated) if least >= times), None)


def least_squares_slope(values: list[int]) -> float:
    if len(values) < 2:
        return 0.0
    xs = range(len(values))
    mean_x, mean_y = statistics.fmean(xs), statistics.fmean(values)
    return sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, values, strict=True)) / sum(
        (x - mean_x) ** 2 for x in xs)


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rollouts", type=int, default=10_000, help="0: only the day")
    parser.add_argument("--also", type=int, default=1_000, help="a second, smaller fleet for memory per Rollout")
    parser.add_argument("--wave", type=int, default=1_000)
    parser.add_argument("--day-rollouts", type=int, default=1_000)
    parser.add_argument("--hours", type=int, default=24)
    parser.add_argument("--updates-per-hour", type=int, default=20, help="the day's update stream")
    parser.add_argument("--warm-up", action="store_true", help="before the day's first hour, update every Rollout "
                        "three times (two failing, one passing): the day then starts with every history at its limit")
    parser.add_argument("--idle-window", type=float, default=10.0)
    parser.add_argument("--skip", default="", help="parts of the --rollouts fleet to leave out, comma-separated: "
                        "memory,idle (e.g. a wave-only run: --also 0 --skip memory,idle --day-rollouts 0)")
    parser.add_argument("--quick", action="store_true", help="1,000 Rollouts, a wave of 100, 200 for 6 hours")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    skip = {part for part in args.skip.split(",") if part}
    if skip - {"memory", "idle"}:
        parser.error(f"--skip: unknown parts {sorted(skip - {'memory', 'idle'})} (memory, idle)")
    if args.quick:
        args.rollouts, args.also, args.wave, args.day_rollouts, args.hours = 1000, 0, 100, 200, 6
        args.updates_per_hour = 12
    out: dict[str, Any] = {}
    started = time.perf_counter()
    for n in sorted({args.also, args.rollouts} - {0}):
        t = time.perf_counter()
        f = replicated(n)
        print(f"N = {n}: fleet built and settled in {time.perf_counter() - t:.0f} s", flush=True)
        if n != args.rollouts or "memory" not in skip:
            mem = memory(f, profile=8)
            report_memory(mem)
            out[f"memory_{n}"] = mem
        if n != args.rollouts:
            continue
        manager = synced(f, timed=True)
        if "idle" not in skip:
            idle_parts(f, manager, out, window=args.idle_window)
        out["wave"] = w = wave(f, manager, min(args.wave, n))
        print(f"  wave of {w['size']} updates ({w['failing']} failing, all aborted: {w['aborted']}): "
              f"{w['rollout_reconciles']} Rollout reconciles, p50 {w['p50'] * 1e3:.1f} ms, p99 {w['p99'] * 1e3:.1f} ms "
              f"(no-op {w['noop'] * 1e3:.2f} ms: p50 {w['p50'] / w['noop']:.1f}x, p99 {w['p99'] / w['noop']:.1f}x); "
              f"{w['wall']:.0f} s wall, {w['cpu']:.0f} s CPU")
        print(f"    in thread CPU time (what the load of other processes does not inflate): p50 "
              f"{w['p50_cpu'] * 1e3:.1f} ms, p99 {w['p99_cpu'] * 1e3:.1f} ms")
        print(f"  worst lag from a failed measurement to canary weight 0: {w['worst_lag_wall'] * 1e3:.0f} ms wall, "
              f"{w['worst_lag_clock']:.0f} s controller time (of {w['abort_lags']} aborts)")
        del f, manager
        gc.collect()
    if args.day_rollouts:
        out["day"] = d = day(args.day_rollouts, hours=args.hours, updates_per_hour=args.updates_per_hour,
                             warm_up=args.warm_up, progress=True)
        first = d["samples"][0]
        print(f"day at {d['n']} Rollouts, {d['hours']} h, {d['updates']} updates, {d['reconciles']} reconciles:")
        if (warmed := d["warm_up"]) is not None:
            print(f"  after a warm-up of {warmed['updates']} updates over {warmed['seconds'] / 3600:.1f} h of "
                  f"controller time, outcomes per round: {'; '.join(str(r) for r in warmed['rounds'])}")
        print(f"  traced memory per hour (MiB): {' '.join(f'{s / KIB / KIB:.1f}' for s in d['samples'])}")
        print(f"  growth after warm-up: {d['slope_per_hour'] / KIB:+.1f} KiB per hour (noise ±{d['noise'] / KIB:.0f} "
              f"KiB; {d['slope_per_hour'] / max(first, 1) * 100:+.3f}% of the total per hour)")
        print(f"  process RSS per hour (MiB): {' '.join(f'{s / KIB / KIB:.0f}' for s in d['rss'])}")
        print(f"  the controller alone holds per hour (MiB, getsizeof): "
              f"{' '.join(f'{s / KIB / KIB:.2f}' for s in d['held_bytes'])}")
        print(f"    objects per hour: {' '.join(str(c) for c in d['held_objects'])}")
        print(f"    growth after warm-up: {d['held_slope_per_hour'] / KIB:+.1f} KiB, "
              f"{d['held_objects_slope_per_hour']:+.0f} objects per hour; by structure (KiB per hour): "
              f"{', '.join(f'{k} {v / KIB:+.1f}' for k, v in d['held_slopes'].items())}")
        first_counts, last_counts = d["held_counts"][0], d["held_counts"][-1]
        print(f"    entries, first hour -> last: "
              f"{', '.join(f'{k} {first_counts[k]} -> {last_counts[k]}' for k in first_counts)}")
        print(f"    every Rollout updated at least once by hour {first_hour(d['least_updated'], 1)}, twice by hour "
              f"{first_hour(d['least_updated'], 2)}; caps reached (hour): "
              f"{', '.join(f'{k} ({CAPS[k]}) {v}' for k, v in d['caps_reached'].items())}")
        for label, part in (("steady state (every Rollout updated twice, every cap reached)", d["steady"]),
                            ("last half of the day", d["last_half"])):
            if part is None:
                print(f"    {label}: not reached (or under 3 hours of it)")
                continue
            print(f"    {label}, hours {part['from_hour']}..{d['hours']}: traced {part['traced'] / KIB:+.1f} KiB/h; "
                  f"the controller alone {part['held_bytes'] / KIB:+.1f} KiB/h, {part['held_objects']:+.0f} objects/h")
            print(f"      by structure, KiB/h: {', '.join(f'{k} {v / KIB:+.1f}' for k, v in part['bytes'].items())}")
            print(f"      by structure, objects/h: {', '.join(f'{k} {v:+.0f}' for k, v in part['objects'].items())}")
        print(f"  AnalysisRun status: max {d['max_status_bytes']} bytes; runs in the cluster per hour: "
              f"{min(d['runs'])}..{max(d['runs'])}")
    print(f"(total {time.perf_counter() - started:.0f} s)")
    if args.json:
        print(json.dumps(out, default=str))


def idle_parts(f: Fleet, manager: Manager, out: dict[str, Any], *, window: float) -> None:
    out["idle_stepped"] = idle = idle_stepped(f, manager)
    print(f"  idle, {idle['seconds'] / 3600:.0f} h of controller time (step mode): "
          f"{idle['reconciles']} reconciles, {idle['measurements']} measurements, {idle['writes']} writes, "
          f"{idle['cpu']:.3f} s CPU")
    out["idle_threaded"] = idle = idle_threaded(f, window=window)
    print(f"  idle, {idle['window']:.1f} s wall (threaded, {idle['threads']} threads; synced in "
          f"{idle['sync_wall']:.0f} s): {idle['reconciles']} reconciles, {idle['measurements']} measurements, "
          f"{idle['writes']} writes, CPU {idle['cpu_per_second'] * 100:.2f}% of one core")


def report_memory(mem: dict[str, Any]) -> None:
    print(f"  memory per Rollout: {mem['per_rollout'] / KIB:.1f} KiB traced (target {TARGET_PER_ROLLOUT // KIB} KiB; "
          f"{mem['per_rollout'] * 10_000 / KIB ** 3:.2f} GiB at 10,000), "
          f"RSS delta {mem['rss_per_rollout'] / KIB:.1f} KiB; "
          f"baseline Manager {mem['baseline_bytes'] / KIB:.0f} KiB; {mem['cache_objects']} objects cached; "
          f"{mem['sync_writes']} writes by the sync")
    for where, size in mem["top"]:
        print(f"    {size / KIB:6.1f} KiB  {where}")


if __name__ == "__main__":
    main(sys.argv[1:])
