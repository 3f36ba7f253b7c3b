"""Benchmark: the controller shell running N copies of examples/multi-step to completion.

Run: .venv/bin/python benchmarks/bench_controller.py [N ...]   (default: 1 100 1000)

For each N, on an InMemoryCluster with a stepped clock and an instant metric provider
(every measurement answers at once with a passing value), N Rollouts are deployed, then
all are updated at once and stepped through their 8 steps until fully promoted. Printed:

- reconciles per second (wall), and the cost of an average reconcile during the update
  as a ratio against a no-op reconcile of a settled Rollout measured in the same run;
- CPU time per step transition (a transition = currentStepIndex moving by one);
- API writes per step transition against the minimum (one weight patch plus one status
  patch = 2), counted by a wrapper around the Cluster: the Rollout controller's own
  writes (ratio target 1.0), with the breakdown, and separately the AnalysisRun
  controller's writes and Events; then the writes of one Rollout's update, kind by kind,
  with why each is there (`WHY`): the plan enters the step it reached in the same pass,
  so what is left above the minimum is inherent;
- peak traced memory per Rollout (tracemalloc, in a second pass of the same N) against
  the memory the cluster itself holds for those objects.

Nothing here asserts a time; figures are printed for the report.
"""

from __future__ import annotations

import collections
import gc
import sys
import time
import tracemalloc
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from analysis.model import Metric
from analysis.providers import Providers, Result
from rollouts.controller.manager import Manager
from rollouts.memory.cluster import InMemoryCluster
from rollouts.platform.clock import SteppedClock

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "multi-step"
NEW_IMAGE = "argoproj/rollouts-demo:yellow"
WRITES = ("create", "patch", "patch_status", "replace", "delete")


class InstantProvider:
    def measure(self, metric: Metric, *, at: datetime) -> Result:
        return Result(value=[0.0])


class CountingCluster:
    """Counts writes by (verb, kind) and whether the AnalysisRun controller made them."""

    def __init__(self, inner: InMemoryCluster) -> None:
        self.inner = inner
        self.writes: collections.Counter[tuple[str, str]] = collections.Counter()

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.inner, name)
        if name not in WRITES:
            return method

        def counted(*args: Any, **kwargs: Any) -> Any:
            kind = args[0].get("kind") if name in ("create", "replace") else args[0]
            self.writes[(name, str(kind))] += 1
            return method(*args, **kwargs)

        return counted


# Why each of the Rollout controller's writes of one update is there (printed with the counts).
WHY = {
    ("patch_status", "Rollout"): "one per step index, each written once (what `get rollout` and a restarted "
                                 "controller see), plus one when the step AnalysisRun turns Running (Argo's "
                                 "currentStepAnalysisRunStatus)",
    ("patch", "VirtualService"): "one per distinct weight of the steps, then 0 once the new pods are the stable "
                                 "ones: fewer than one per transition",
    ("patch", "DestinationRule"): "the canary subset onto the new pods, then the stable subset at promotion",
    ("create", "ReplicaSet"): "the new revision's ReplicaSet (its status write is the step-0 one)",
    ("patch", "ReplicaSet"): "scale-ups: a weight rises only onto available pods, so the pods a step needs start "
                             "one pass and its weight follows in the pass after they are available; and the old "
                             "stable's scale-down-deadline annotation",
    ("create", "AnalysisRun"): "the step analysis, created in the pass that enters its step",
}


def example_docs() -> list[dict[str, Any]]:
    docs = []
    for path in sorted(EXAMPLE.glob("*.yaml")):
        docs += [doc for doc in yaml.safe_load_all(path.read_text()) if isinstance(doc, dict)]
    return docs


def copies(n: int) -> list[dict[str, Any]]:
    """n independent copies of the example (own Rollout, VS, DR, Service); one shared template."""
    docs = example_docs()
    text = yaml.safe_dump([doc for doc in docs if doc["kind"] != "AnalysisTemplate"])
    out = [doc for doc in docs if doc["kind"] == "AnalysisTemplate"]
    for i in range(n):
        out += yaml.safe_load(text.replace("multi-step", f"ms{i}"))
    return out


def rollouts_done(cluster: InMemoryCluster, n: int, *, revision: str) -> Callable[[], bool]:
    def done() -> bool:
        found = cluster.list("Rollout", "default")
        if len(found) != n:
            return False
        for rollout in found:
            status = rollout.get("status") or {}
            image = rollout["spec"]["template"]["spec"]["containers"][0]["image"]
            if image != revision or status.get("phase") != "Healthy" or status.get("stableRS") != status.get(
                    "currentPodHash"):
                return False
        return True
    return done


def setup(n: int) -> tuple[Manager, CountingCluster, SteppedClock]:
    clock = SteppedClock(datetime(2024, 1, 1, tzinfo=UTC))
    inner = InMemoryCluster(clock=clock.now, history=max(1000, 20 * n))
    cluster = CountingCluster(inner)
    for doc in copies(n):
        inner.create(doc)
    manager = Manager(cluster, Providers({"prometheus": InstantProvider()}), clock=clock,  # type: ignore[arg-type]
                      leader_election=False)
    return manager, cluster, clock


def update_all(cluster: CountingCluster, n: int) -> None:
    for rollout in cluster.inner.list("Rollout", "default"):
        rollout["spec"]["template"]["spec"]["containers"][0]["image"] = NEW_IMAGE
        cluster.inner.replace(rollout)


def run(n: int) -> dict[str, Any]:
    manager, cluster, clock = setup(n)
    manager.run_until(rollouts_done(cluster.inner, n, revision="argoproj/rollouts-demo:blue"), max_seconds=3600)
    rollout = next(doc for doc in example_docs() if doc["kind"] == "Rollout")
    steps = len(rollout["spec"]["strategy"]["canary"]["steps"])
    cluster.writes.clear()
    update_all(cluster, n)
    reconciles_before = manager.reconciles
    gc.collect()
    wall, cpu = time.perf_counter(), time.process_time()
    manager.run_until(rollouts_done(cluster.inner, n, revision=NEW_IMAGE), max_seconds=3600)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    reconciles = manager.reconciles - reconciles_before
    writes = dict(cluster.writes)
    # the baseline: a no-op reconcile of each settled Rollout (must make no write)
    cluster.writes.clear()
    names = [r["metadata"]["name"] for r in cluster.inner.list("Rollout", "default")]
    sample = names[: min(len(names), 200)]
    noop = time.perf_counter()
    for _ in range(5):
        for name in sample:
            manager.rollouts.reconcile("default", name)
    noop = (time.perf_counter() - noop) / (5 * len(sample))
    if cluster.writes:
        raise SystemExit(f"a no-op reconcile wrote: {dict(cluster.writes)}")
    return {"n": n, "steps": steps, "wall": wall, "cpu": cpu, "reconciles": reconciles, "writes": writes,
            "noop": noop, "clock": clock.now()}


def peak_memory(n: int) -> tuple[float, float]:
    """(peak traced bytes during deploy+update, bytes the cluster holds at the end) per Rollout."""
    gc.collect()
    tracemalloc.start()
    manager, cluster, _ = setup(n)
    manager.run_until(rollouts_done(cluster.inner, n, revision="argoproj/rollouts-demo:blue"), max_seconds=3600)
    update_all(cluster, n)
    manager.run_until(rollouts_done(cluster.inner, n, revision=NEW_IMAGE), max_seconds=3600)
    _, peak = tracemalloc.get_traced_memory()
    snapshot = tracemalloc.take_snapshot()
    tracemalloc.stop()
    held = sum(stat.size for stat in snapshot.statistics("filename")
               if stat.traceback[0].filename.endswith(("memory.py", "patches.py", "watchlog.py")))
    return peak / n, held / n


def report(result: dict[str, Any], memory: tuple[float, float] | None) -> None:
    n, transitions = result["n"], result["n"] * result["steps"]
    writes = result["writes"]
    analysis = sum(v for (verb, kind), v in writes.items() if kind == "AnalysisRun" and verb == "patch_status")
    events = sum(v for (verb, kind), v in writes.items() if kind == "Event")
    own = sum(writes.values()) - analysis - events
    per_reconcile = result["wall"] / max(result["reconciles"], 1)
    print(f"\nN = {n} Rollouts, {transitions} step transitions, controller time {result['clock'].time()}")
    print(f"  reconciles: {result['reconciles']} ({result['reconciles'] / transitions:.1f} per transition), "
          f"{result['reconciles'] / result['wall']:.0f}/s wall")
    print(f"  reconcile cost: {per_reconcile * 1e3:.2f} ms average vs {result['noop'] * 1e3:.2f} ms no-op "
          f"= {per_reconcile / result['noop']:.1f}x")
    print(f"  CPU per step transition: {result['cpu'] / transitions * 1e3:.2f} ms "
          f"(= {result['cpu'] / transitions / result['noop']:.1f} no-op reconciles)")
    print(f"  Rollout-controller writes per transition: {own / transitions:.2f} vs minimum 2 "
          f"-> ratio {own / transitions / 2:.2f} (target 1.0)")
    detail = ", ".join(f"{verb} {kind} {count / transitions:.2f}" for (verb, kind), count in sorted(writes.items())
                       if kind not in ("Event",) and not (kind == "AnalysisRun" and verb == "patch_status"))
    print(f"    per transition: {detail}")
    print(f"  plus AnalysisRun status writes {analysis / transitions:.2f}, Events {events / transitions:.2f} "
          f"per transition")
    print(f"  one Rollout's update: {own / n:.0f} writes for {result['steps']} transitions "
          f"(minimum {2 * result['steps']}); what is above it is inherent:")
    for (verb, kind), count in sorted(writes.items(), key=lambda item: -item[1]):
        if kind != "Event" and not (kind == "AnalysisRun" and verb == "patch_status"):
            print(f"    {count / n:4.1f} {verb} {kind}: {WHY.get((verb, kind), '(not explained)')}")
    if memory is not None:
        peak, held = memory
        print(f"  peak traced memory per Rollout: {peak / 1024:.0f} KiB "
              f"(the cluster's own objects and history: {held / 1024:.0f} KiB, ratio {peak / max(held, 1):.1f}x)")


def main(argv: list[str]) -> None:
    sizes = [int(arg) for arg in argv] or [1, 100, 1000]
    started = time.perf_counter()
    for n in sizes:
        result = run(n)
        memory = peak_memory(n) if n <= 100 else None
        report(result, memory)
    print(f"\n(total {time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main(sys.argv[1:])
