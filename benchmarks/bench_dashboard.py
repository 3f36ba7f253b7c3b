"""Benchmark: the dashboard's overview with 1,000 Rollouts in the in-memory cluster.

Run: .venv/bin/python benchmarks/bench_dashboard.py [N]   (default: 1000)

N Rollouts (each with two ReplicaSets and a finished AnalysisRun with three measurements)
are created in an InMemoryCluster; a dashboard is served on uvicorn on a free loopback
port, its Store watching that cluster. Printed, each as a ratio against the same thing
for an empty cluster measured in the same run (these machines are noisy):

- the Store's first sync (list every kind into the cache, weight history seeded);
- the overview's first render: `GET /` over HTTP, best of 5;
- a live update: one Rollout's status patched while a browser-like client holds
  `/stream` open; the time until its `rows` event arrives (it includes the stream's
  COALESCE wait of 0.25 s, printed apart), and the server-side work alone (the changed
  rows computed and rendered: `overview_update`), best of 20.

Nothing here asserts a time; the figures are for the report.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import requests

from rollouts.dashboard import pages
from rollouts.dashboard.app import COALESCE, overview_update
from rollouts.dashboard.server import Options, Served, build
from rollouts.memory.cluster import InMemoryCluster

NS = ("shop", "cart", "search", "payments")


def objects(i: int) -> list[tuple[dict[str, Any], dict[str, Any] | None]]:
    name, namespace = f"app-{i:04d}", NS[i % len(NS)]
    labels = {"app": name}
    rollout = {"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
               "metadata": {"name": name, "namespace": namespace, "uid": f"uid-{i}"},
               "spec": {"replicas": 3, "selector": {"matchLabels": labels},
                        "template": {"metadata": {"labels": labels},
                                     "spec": {"containers": [{"name": "app", "image": f"shop/{name}:2"}]}},
                        "strategy": {"canary": {"steps": [{"setWeight": 20}, {"pause": {}}, {"setWeight": 50}]}}}}
    owner = [{"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout", "name": name, "uid": f"uid-{i}",
              "controller": True}]
    docs: list[tuple[dict[str, Any], dict[str, Any] | None]] = [
        (rollout, {"phase": "Paused", "observedGeneration": "1", "currentStepIndex": 1, "stableRS": "aaa",
                   "currentPodHash": "bbb", "message": "CanaryPauseStep",
                   "canary": {"weights": {"canary": {"weight": 20}, "stable": {"weight": 80}}}})]
    for pod_hash, image, replicas in (("aaa", f"shop/{name}:1", 3), ("bbb", f"shop/{name}:2", 1)):
        docs.append(({"apiVersion": "apps/v1", "kind": "ReplicaSet",
                      "metadata": {"name": f"{name}-{pod_hash}", "namespace": namespace, "ownerReferences": owner,
                                   "labels": {**labels, "rollouts-pod-template-hash": pod_hash},
                                   "annotations": {"rollout.argoproj.io/revision": "1" if pod_hash == "aaa" else "2"}},
                      "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                               "template": {"metadata": {"labels": labels},
                                            "spec": {"containers": [{"name": "app", "image": image}]}}}},
                     {"replicas": replicas, "readyReplicas": replicas, "availableReplicas": replicas,
                      "observedGeneration": 1}))
    measurements = [{"phase": "Successful", "value": f"[0.99{k}]", "startedAt": f"2024-05-01T12:0{k}:00Z",
                     "finishedAt": f"2024-05-01T12:0{k}:00Z"} for k in range(3)]
    docs.append(({"apiVersion": "argoproj.io/v1alpha1", "kind": "AnalysisRun",
                  "metadata": {"name": f"{name}-bbb-2", "namespace": namespace, "ownerReferences": owner,
                               "labels": {"rollouts-pod-template-hash": "bbb"}},
                  "spec": {"metrics": [{"name": "success-rate", "successCondition": "result[0] >= 0.95",
                                        "provider": {"prometheus": {"query": "x"}}}]}},
                 {"phase": "Running", "metricResults": [{"name": "success-rate", "phase": "Running",
                                                          "measurements": measurements, "successful": 3}]}))
    return docs


def seeded(n: int) -> InMemoryCluster:
    cluster = InMemoryCluster(workloads=False, history=100_000)
    for i in range(n):
        for doc, status in objects(i):
            cluster.create(doc)
            if status is not None:
                cluster.patch_status(doc["kind"], doc["metadata"]["name"], doc["metadata"]["namespace"],
                                     {"status": status})
    return cluster


def best(times: int, run: Callable[[], object]) -> float:
    found = []
    for _ in range(times):
        start = time.perf_counter()
        run()
        found.append(time.perf_counter() - start)
    return min(found)


def stream_update(served: Served, cluster: InMemoryCluster, n: int) -> float:
    """Seconds from one status patch to its `rows` event on an open /stream."""
    session = requests.Session()
    session.trust_env = False
    with session.get(served.url + "/stream", stream=True, timeout=30) as response:
        lines = response.iter_lines(decode_unicode=True)
        time.sleep(0.5)  # the stream has taken its snapshot
        target = f"app-{max(n - 1, 0):04d}"
        namespace = NS[max(n - 1, 0) % len(NS)]
        if n == 0:
            cluster.create(objects(0)[0][0])
        start = time.perf_counter()
        if n:
            cluster.patch_status("Rollout", target, namespace, {"status": {"phase": "Degraded", "message": "x"}})
        for line in lines:
            if line.startswith("data:") and json.loads(line[5:])["upsert"]:
                return time.perf_counter() - start
    raise RuntimeError("the stream ended")


def measure(n: int) -> dict[str, float]:
    cluster = seeded(n)
    start = time.perf_counter()
    dash = build(cluster, Options(port=0))
    assert dash.store.wait_synced(120)
    sync = time.perf_counter() - start
    served = Served(dash, "127.0.0.1", 0)
    session = requests.Session()
    session.trust_env = False
    try:
        render = best(5, lambda: session.get(served.url + "/", timeout=60).raise_for_status())
        size = len(session.get(served.url + "/", timeout=60).content)
        key = {(NS[max(n - 1, 0) % len(NS)], f"app-{max(n - 1, 0):04d}")}
        shown = {row.id: dash.row_html(row) for row in pages.overview(dash.store, dash.now())}

        def server_update() -> None:
            overview_update(dash, dict(shown), pages.overview(dash.store, dash.now(), "", key), key)

        update = best(20, server_update)
        live = stream_update(served, cluster, n)
    finally:
        served.close()
    return {"sync": sync, "render": render, "bytes": size, "update": update, "live": live}


def main(argv: list[str]) -> None:
    n = int(argv[0]) if argv else 1000
    empty, full = measure(0), measure(n)
    print(f"dashboard overview, {n} Rollouts (2 ReplicaSets and 1 AnalysisRun each) vs an empty cluster")
    print(f"  store first sync:       {full['sync'] * 1000:8.1f} ms   (empty {empty['sync'] * 1000:.1f} ms, "
          f"ratio {full['sync'] / empty['sync']:.1f}x)")
    print(f"  first render (GET /):   {full['render'] * 1000:8.1f} ms   (empty {empty['render'] * 1000:.1f} ms, "
          f"ratio {full['render'] / empty['render']:.1f}x; {full['bytes'] / 1024:.0f} KiB of HTML)")
    print(f"  live update, server:    {full['update'] * 1000:8.1f} ms   (rows of one changed Rollout; empty "
          f"render {empty['render'] * 1000:.1f} ms, ratio {full['update'] / empty['render']:.2f}x)")
    print(f"  live update, end to end:{full['live'] * 1000:8.1f} ms   (patch → `rows` event on /stream, of which "
          f"{COALESCE * 1000:.0f} ms is the coalescing wait; empty {empty['live'] * 1000:.1f} ms, ratio "
          f"{full['live'] / empty['live']:.2f}x)")


if __name__ == "__main__":
    main(sys.argv[1:])
