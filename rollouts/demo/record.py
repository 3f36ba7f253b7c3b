"""What the demo records while it runs: canary weights, live traffic, facts read off objects.

Rules:
- `WeightLog` sees every VirtualService write, in order: it drains a watch with
  timeout 0 from its last resourceVersion, so a weight held for a few milliseconds
  (100 then 0 at a promotion) is still recorded. Only changes of the canary weight
  are kept.
- `TrafficWindow` keeps cumulative request counts (workload -> response code ->
  count) sampled over the last `window` seconds, and answers requests/s and the
  non-5xx share per workload from the oldest and newest sample. Time is passed in.
- The free functions are pure readers of API objects; a half-written object reads as
  "not yet" (0, False, empty), never raises.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

from rollouts.platform.cluster import Cluster
from rollouts.platform.labels import HASH_LABEL

Counts = dict[str, dict[str, int]]  # workload -> response code -> requests
RUNNING_PHASES = (None, "", "Pending", "Running")


def canary_weight(vs: Mapping[str, Any], route: str, canary_service: str) -> int:
    """The weight of the canary Service's destinations in the named HTTP route.

    >>> vs = {"spec": {"http": [{"name": "primary", "route": [
    ...     {"destination": {"host": "stable-svc"}, "weight": 80},
    ...     {"destination": {"host": "canary-svc.ns.svc.cluster.local"}, "weight": 20}]}]}}
    >>> canary_weight(vs, "primary", "canary-svc"), canary_weight(vs, "other", "canary-svc")
    (20, 0)
    """
    for http in (vs.get("spec") or {}).get("http") or []:
        if http.get("name") == route:
            return sum(int(d.get("weight", 0)) for d in http.get("route") or []
                       if str((d.get("destination") or {}).get("host", "")).split(".")[0] == canary_service)
    return 0


class WeightLog:
    def __init__(self, cluster: Cluster, *, namespace: str, name: str, route: str, canary_service: str) -> None:
        self._cluster, self._namespace, self._name = cluster, namespace, name
        self._route, self._canary_service = route, canary_service
        self._cursor: str | None = None
        self.weights: list[int] = []

    def drain(self) -> None:
        """Take in every change since the last drain (the first drain lists the current state)."""
        stream = self._cluster.watch("VirtualService", self._namespace, resource_version=self._cursor, timeout=0)
        try:
            for event in stream:
                if event.object.get("metadata", {}).get("name") == self._name and event.type != "DELETED":
                    weight = canary_weight(event.object, self._route, self._canary_service)
                    if not self.weights or self.weights[-1] != weight:
                        self.weights.append(weight)
        finally:
            self._cursor = stream.resource_version
            stream.close()

    def restart(self) -> None:
        """Start a new history from the current weight."""
        self.drain()
        self.weights = self.weights[-1:] or [0]


def delta(after: Mapping[str, int], before: Mapping[str, int]) -> dict[str, int]:
    """Counts that grew between two samples: {"200": 5, "500": 1} - {"200": 2} -> {"200": 3, "500": 1}."""
    return {code: n - before.get(code, 0) for code, n in after.items() if n - before.get(code, 0) > 0}


def errors(counts: Mapping[str, int]) -> int:
    return sum(n for code, n in counts.items() if code.startswith("5"))


class TrafficWindow:
    def __init__(self, counts: Callable[[], Counts], *, window: float = 5.0) -> None:
        self._counts = counts
        self._window = window
        self._samples: deque[tuple[float, Counts]] = deque()

    def sample(self, now: float) -> None:
        self._samples.append((now, self._counts()))
        while len(self._samples) > 2 and self._samples[1][0] < now - self._window:
            self._samples.popleft()

    def rates(self) -> dict[str, tuple[float, float]]:
        """workload -> (requests/s, non-5xx share) between the oldest and newest sample."""
        if len(self._samples) < 2:
            return {}
        (t0, first), (t1, last) = self._samples[0], self._samples[-1]
        rates: dict[str, tuple[float, float]] = {}
        for workload, codes in last.items():
            grown = delta(codes, first.get(workload, {}))
            total = sum(grown.values())
            if total and t1 > t0:
                rates[workload] = (total / (t1 - t0), (total - errors(grown)) / total)
        return rates


def healthy(rollout: Mapping[str, Any]) -> bool:
    """Healthy, with a stable ReplicaSet, and the controller has seen the latest spec."""
    status, meta = rollout.get("status") or {}, rollout.get("metadata") or {}
    try:
        observed = int(status.get("observedGeneration") or 0) >= int(meta.get("generation") or 0)
    except ValueError:
        observed = False
    return status.get("phase") == "Healthy" and bool(status.get("stableRS")) and observed


def run_for(runs: list[dict[str, Any]], pod_hash: str, *, metric: str | None = None) -> dict[str, Any] | None:
    """The newest AnalysisRun measuring the ReplicaSet with `pod_hash` (and holding `metric`, when given)."""
    mine = [r for r in runs if ((r.get("metadata") or {}).get("labels") or {}).get(HASH_LABEL) == pod_hash
            and (metric is None or metric in _metric_names(r))]
    return mine[-1] if mine else None


def run_phase(run: Mapping[str, Any] | None) -> str | None:
    return None if run is None else (run.get("status") or {}).get("phase")


def measurements(run: Mapping[str, Any] | None) -> tuple[str, ...]:
    """Every measured value of the run, as stored (`[0.85]`), metric by metric."""
    results = ((run or {}).get("status") or {}).get("metricResults") or []
    return tuple(str(m["value"]) for r in results for m in r.get("measurements") or [] if m.get("value") is not None)


def _metric_names(run: Mapping[str, Any]) -> set[str]:
    return {str(m.get("name")) for m in ((run.get("spec") or {}).get("metrics") or []) if isinstance(m, dict)}


def judge_message(run: Mapping[str, Any] | None) -> str | None:
    """The judgement of the run's last measurement, from its value (`{score, verdict, metrics}`): the
    verdict, the score and each metric that is not undecided (what moved, how decisively); in
    sequential mode also the false-abort bound, alpha from the run's judge config."""
    results = ((run or {}).get("status") or {}).get("metricResults") or []
    values = [str(m["value"]) for r in results for m in r.get("measurements") or [] if m.get("value")]
    try:
        judged = json.loads(values[-1])
        notes = [str(m["message"]) for m in judged["metrics"] if m.get("classification") != "Undecided"]
        text = f"{judged['verdict']} (score {judged['score']:g}): " + "; ".join(notes or ["nothing decisive"])
    except (IndexError, ValueError, KeyError, TypeError):
        return None
    alpha = _sequential_alpha(run or {})
    if judged.get("mode") == "sequential" and alpha is not None:
        text += (f" [anytime-valid at alpha {alpha:g}: a canary no worse than stable is aborted with probability "
                 f"at most {alpha:.0%}, however often it is checked]")
    return text


def _sequential_alpha(run: Mapping[str, Any]) -> float | None:
    for metric in (run.get("spec") or {}).get("metrics") or []:
        judge = (((metric or {}).get("provider") or {}).get("plugin") or {}).get("rollouts/judge")
        if isinstance(judge, dict):
            try:
                return float((judge.get("sequential") or {}).get("alpha", 0.01))
            except (TypeError, ValueError):
                return None
    return None
