"""Controller metrics in Prometheus format, named as Argo Rollouts names them.

Rules:
- Every metric lives in a `CollectorRegistry` passed in (never the global one), so
  two managers in one test process do not collide.
- Names and labels follow Argo's (argo-rollouts.md §8) where we have the same thing:
  `rollout_info{namespace,name,strategy,traffic_router,phase}` (1 per Rollout, the
  old phase series is removed when the phase changes), `rollout_reconcile`
  (histogram, seconds), `rollout_reconcile_error`, `rollout_events_total{namespace,
  name,type,reason}`, `analysis_run_info{namespace,name,phase}`,
  `analysis_run_reconcile`, `analysis_run_reconcile_error`, `experiment_reconcile`,
  `experiment_reconcile_error`,
  `controller_clientset_k8s_request_total{kind,namespace,name,verb,status_code}` (every
  API request, faults included; counted by rollouts.controller.clientset), and client-go style
  `workqueue_*` series for the shared queue.
- Extra series (ours): `rollouts_controller_leader` (1 while this replica leads)
  and `rollouts_controller_info{version}`.
- `serve(...)` exposes `/metrics` and `/healthz` on an address; health is a callable
  so the HTTP thread never touches controller state directly.

What the controller explains about itself (the README's metrics table lists every series):
- Argo's AnalysisRun series `analysis_run_phase{namespace,name,phase}` and
  `analysis_run_metric_phase{namespace,name,metric,type,dry_run,phase}` (1 for the current
  phase, 0 for the others, as Argo) follow the run's watch events (rollouts.controller.fanin:
  `observe_analysis_run`); runs are few per Rollout (the run history limits), and a deleted
  run's series go with it, its `rollout_events` series too (events are recorded on runs, and
  every run has a new name: kept, they would grow with every update).
- Ours, labelled by Rollout and metric name, never by run name (so a Rollout has a bounded
  set whatever its number of updates): `rollouts_analysis_metric_value{namespace,rollout,
  analysis,metric}`, the last measured value of each metric of the newest run of each kind
  (`analysis`: the run's `rollout-type` label, Step|Background|PrePromotion|PostPromotion),
  when that value is one number (a scalar, or a one-element vector); and
  `rollouts_analysis_metric_threshold{...,condition="success|failure"}`, the constant its
  condition compares with (analysis.expr.thresholds; none when the condition has no single
  threshold). A newer run of the same kind replaces that kind's metric set; the values stay
  after the run ends (the last measured value) until the Rollout is gone. Runs owned by an
  Experiment are not labelled by a Rollout and give none.
- From each successful Rollout reconcile (`observe_rollout`: the observed document and the
  plan, no extra read): `rollouts_rollout_step{namespace,rollout}` (status.currentStepIndex,
  canary steps only), `rollouts_rollout_set_weight` (Argo's GetCurrentSetWeight: 0 when
  aborted, 100 past the last step) and `rollouts_rollout_actual_weight` (the canary weight the
  controller wrote to the VirtualService, status.canary.weights; traffic-routed canaries only).
- Counters from the plan's outcomes (rollouts.plan.outcomes), counted once per transition,
  never from status that persists, so a restarted controller does not count again:
  `rollouts_promotions_total{namespace,rollout}`, `rollouts_aborts_total{namespace,rollout,
  reason}` (reason: analysis|gate|deadline|manual; all four start at 0 when a Rollout is first
  seen, so `increase()` sees the first abort), Argo's `rollout_duration_seconds{status=
  Promoted|Aborted}` (update to outcome) and `rollouts_lead_time_seconds{namespace,rollout}`
  (update to promotion). Promotions are DORA's deployments and aborts its failed deployments:
  change failure rate = aborts / (promotions + aborts) over a window (README).
- Hooks: `hook_call(...)` counts `rollouts_hook_calls_total{namespace,rollout,type,result}`
  and observes `rollouts_hook_duration_seconds{type}`; a type outside Flagger's eight and a
  result that is not a short lowercase word are counted as `other` (labels stay bounded).
- `workqueue_queue_duration_seconds{name}`: how long a key waited between due and taken.
- A Rollout gone (its DELETED event, a reconcile that finds it gone or out of scope, a relist
  without it: `forget` / `retain`) loses every series labelled with it, counters included.
  Nothing here reads the cluster: a scrape costs what the registry holds.
"""

from __future__ import annotations

import json
import math
import re
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, make_wsgi_app
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

import rollouts
from analysis.expr.thresholds import threshold
from rollouts.plan.outcomes import AbortCause, Outcome
from rollouts.plan.steplist import set_weight_at
from rollouts.platform import wire
from rollouts.spec.model import Rollout

__all__ = ["ControllerMetrics", "MetricsServer", "serve"]

_RECONCILE_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.15, 0.25, 0.5, 1.0, 5.0)
_DURATION_BUCKETS = (30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400, 28800)  # Argo's rollout_duration_seconds
_HOOK_BUCKETS = (0.005, 0.025, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_QUEUE_BUCKETS = (0.001, 0.01, 0.1, 1.0, 10.0, 60.0, 600.0)
PHASES = ("Pending", "Running", "Successful", "Failed", "Error", "Inconclusive")  # Argo's, in its order
HOOK_TYPES = frozenset({"confirm-rollout", "pre-rollout", "rollout", "confirm-traffic-increase",
                        "confirm-promotion", "post-rollout", "rollback", "event"})  # Flagger's
_WORD = re.compile(r"[a-z][a-z0-9-]{0,23}")
_OWN_FAMILIES = {  # the gauges kept per object by _Snapshots: name -> (help, labels)
    "analysis_run_phase": ("Information on the state of an AnalysisRun (1 for its phase).",
                           ("namespace", "name", "phase")),
    "analysis_run_metric_type": ("Information on the type of a specific metric in an AnalysisRun.",
                                 ("namespace", "name", "metric", "type")),
    "analysis_run_metric_phase": ("Information on the duration of a specific metric in an AnalysisRun "
                                  "(1 for its phase).", ("namespace", "name", "metric", "type", "dry_run", "phase")),
    "rollouts_rollout_step": ("The current step index of a Rollout (status.currentStepIndex).",
                              ("namespace", "rollout")),
    "rollouts_rollout_set_weight": ("The canary weight the current step asks for (0 when aborted).",
                                    ("namespace", "rollout")),
    "rollouts_rollout_actual_weight": ("The canary weight written to the VirtualService.", ("namespace", "rollout")),
    "rollouts_analysis_metric_value": ("The last measured value of a metric of a Rollout's newest run of a kind.",
                                       ("namespace", "rollout", "analysis", "metric")),
    "rollouts_analysis_metric_threshold": ("The constant a metric's condition compares the value with.",
                                           ("namespace", "rollout", "analysis", "metric", "condition")),
}
Sample = tuple[tuple[str, ...], float]


class ControllerMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        reg = self.registry
        self.rollout_info = Gauge(
            "rollout_info", "Information about a Rollout (1 per Rollout).",
            ["namespace", "name", "strategy", "traffic_router", "phase"], registry=reg,
        )
        self.rollout_reconcile = Histogram(
            "rollout_reconcile", "Rollout reconciliation performance (seconds).",
            ["namespace", "name"], buckets=_RECONCILE_BUCKETS, registry=reg,
        )
        self.rollout_reconcile_error = Counter(
            "rollout_reconcile_error", "Rollout reconciles that raised.", ["namespace", "name"], registry=reg,
        )
        self._event_series: dict[tuple[str, str], set[tuple[str, ...]]] = {}  # (ns, object name) -> label values
        self.rollout_events = _ByObject(Counter(
            "rollout_events", "Kubernetes events recorded by the controller.",
            ["namespace", "name", "type", "reason"], registry=reg,
        ), self._event_series)
        self.analysis_run_info = Gauge(
            "analysis_run_info", "Information about an AnalysisRun (1 per run).",
            ["namespace", "name", "phase"], registry=reg,
        )
        self.analysis_run_reconcile = Histogram(
            "analysis_run_reconcile", "AnalysisRun reconciliation performance (seconds).",
            ["namespace", "name"], buckets=_RECONCILE_BUCKETS, registry=reg,
        )
        self.analysis_run_reconcile_error = Counter(
            "analysis_run_reconcile_error", "AnalysisRun reconciles that raised.", ["namespace", "name"], registry=reg,
        )
        self.experiment_reconcile = Histogram(
            "experiment_reconcile", "Experiment reconciliation performance (seconds).",
            ["namespace", "name"], buckets=_RECONCILE_BUCKETS, registry=reg,
        )
        self.experiment_reconcile_error = Counter(
            "experiment_reconcile_error", "Experiment reconciles that raised.", ["namespace", "name"], registry=reg,
        )
        self.k8s_requests = Counter(
            "controller_clientset_k8s_request", "API requests made by the controller, by verb and status code.",
            ["kind", "namespace", "name", "verb", "status_code"], registry=reg,
        )
        self.workqueue_adds = Counter("workqueue_adds", "Keys added to the work queue.", ["name"], registry=reg)
        self.workqueue_retries = Counter("workqueue_retries", "Keys requeued after a failure.", ["name"], registry=reg)
        self.watch_event_errors = Counter("controller_watch_event_errors", "Watch events that could not be routed.",
                                          ["kind"], registry=reg)
        self.workqueue_depth = Gauge("workqueue_depth", "Keys queued or waiting.", ["name"], registry=reg)
        self.leader = Gauge("rollouts_controller_leader", "1 while this replica holds the lease.", registry=reg)
        info = Gauge("rollouts_controller_info", "Controller version.", ["version"], registry=reg)
        info.labels(version=rollouts.__version__).set(1)
        self.workqueue_queue_duration = Histogram(
            "workqueue_queue_duration_seconds", "How long a key waited in the work queue once due, before a worker "
            "took it.", ["name"], buckets=_QUEUE_BUCKETS, registry=reg,
        )
        self.promotions = Counter("rollouts_promotions", "Updates promoted (DORA: deployments).",
                                  ["namespace", "rollout"], registry=reg)
        self.aborts = Counter("rollouts_aborts", "Updates aborted, by reason: analysis, gate, deadline, manual "
                              "(DORA: failed deployments).", ["namespace", "rollout", "reason"], registry=reg)
        self.rollout_duration = Histogram(
            "rollout_duration_seconds", "From an update (its new ReplicaSet) to its promotion or abort.", ["status"],
            buckets=_DURATION_BUCKETS, registry=reg,
        )
        self.lead_time = Histogram(
            "rollouts_lead_time_seconds", "From an update (its new ReplicaSet) to its promotion (DORA: lead time "
            "for changes).", ["namespace", "rollout"], buckets=_DURATION_BUCKETS, registry=reg,
        )
        self.hook_calls = Counter("rollouts_hook_calls", "Lifecycle webhook calls, by hook type and result.",
                                  ["namespace", "rollout", "type", "result"], registry=reg)
        self.notifications = Counter("rollouts_notifications", "Notifications by result: sent, failed (after "
                                     "its retries), dropped (the queue was full).", ["result"], registry=reg)
        for result in ("sent", "failed", "dropped"):
            self.notifications.labels(result)
        self.hook_duration = Histogram("rollouts_hook_duration_seconds", "Lifecycle webhook latency.", ["type"],
                                       buckets=_HOOK_BUCKETS, registry=reg)
        self._snapshots = _Snapshots(_OWN_FAMILIES)
        reg.register(self._snapshots)
        self._info_labels: dict[tuple[str, str, str], tuple[str, ...]] = {}
        self._newest: dict[tuple[str, str], dict[str, _Newest]] = {}  # (ns, rollout) -> run kind -> newest run
        self._labelled: dict[tuple[str, str], set[tuple[str, tuple[str, ...]]]] = {}  # counters by Rollout
        self._started: set[tuple[str, str]] = set()  # Rollouts whose counters exist (at 0 or more)
        self._requests: dict[tuple[str, str, str], set[tuple[str, str]]] = {}  # object -> (verb, code) counted
        self._lock = threading.RLock()

    def count_request(self, kind: str, namespace: str, name: str, verb: str, code: str) -> None:
        """One API request (rollouts.controller.clientset). An Event is counted without its name: every
        Event has a new one, so a series per name would grow without limit (issue 14: flat memory)."""
        name = "" if kind == "Event" else name
        with self._lock:
            self._requests.setdefault((kind, namespace, name), set()).add((verb, code))
        self.k8s_requests.labels(kind, namespace, name, verb, code).inc()

    def forget_requests(self, kind: str, namespace: str, name: str) -> None:
        """Drop the request series of an object that is gone (a deleted run or ReplicaSet has a new name
        after it: its series would otherwise stay for good)."""
        if not name:
            return
        with self._lock:
            for verb, code in self._requests.pop((kind, namespace, name), ()):
                self.k8s_requests.remove(kind, namespace, name, verb, code)

    # The info gauges keep exactly one series per object: the old phase is removed.

    def set_analysis_run_info(self, namespace: str, name: str, *, phase: str) -> None:
        self._set_info(self.analysis_run_info, ("AnalysisRun", namespace, name), (namespace, name, phase))

    def set_rollout_info(self, namespace: str, name: str, *, phase: str, traffic_router: str,
                         strategy: str = "canary") -> None:
        labels = (namespace, name, strategy, traffic_router, phase)
        self._set_info(self.rollout_info, ("Rollout", namespace, name), labels)

    def forget(self, kind: str, namespace: str, name: str) -> None:
        """Drop every series of an object that is gone (a Rollout's counters and analysis values too)."""
        gauge = self.rollout_info if kind == "Rollout" else self.analysis_run_info
        with self._lock:
            labels = self._info_labels.pop((kind, namespace, name), None)
            if labels is not None:
                gauge.remove(*labels)
            self._snapshots.drop((kind, namespace, name))
            self.forget_requests(kind, namespace, name)
            self.rollout_events.forget(namespace, name)  # events name their object: a run's name never returns
            reconcile, errors = ((self.rollout_reconcile, self.rollout_reconcile_error) if kind == "Rollout"
                                 else (self.analysis_run_reconcile, self.analysis_run_reconcile_error))
            for per_object in (reconcile, errors):
                try:
                    per_object.remove(namespace, name)
                except KeyError:  # never reconciled by this process, or never failed
                    pass
            if kind != "Rollout":
                return
            self._snapshots.drop(("Analysis", namespace, name))
            self._newest.pop((namespace, name), None)
            self._started.discard((namespace, name))
            for family, values in self._labelled.pop((namespace, name), set()):
                self._families()[family].remove(*values)

    def retain(self, kind: str, present: Iterable[tuple[str, str]], *, namespace: str | None = None) -> None:
        """After a fresh list of `kind` (in `namespace`, or everywhere): forget the objects it no longer has."""
        keep = set(present)
        with self._lock:
            known = {(ns, name) for k, ns, name in [*self._info_labels, *self._snapshots.keys()] if k == kind}
            if kind == "Rollout":
                known |= set(self._labelled) | set(self._newest)
            gone = [key for key in known if key not in keep and (namespace is None or key[0] == namespace)]
            for ns, name in gone:
                self.forget(kind, ns, name)

    # ------------------------------------------------------------ what a Rollout reconcile observed and planned

    def observe_rollout(self, doc: Mapping[str, Any], rollout: Rollout | None, status: Mapping[str, Any],
                        outcomes: Sequence[Outcome] = ()) -> None:
        """One successful Rollout pass: its step and weights from the planned `status`, and its
        promotions and aborts (each Outcome is counted here once: the plan makes it only in the
        pass that changed the status)."""
        namespace, name = wire.name_of(dict(doc))
        with self._lock:
            self._start_counters(namespace, name)
            for outcome in outcomes:
                self._count(namespace, name, outcome)
            self._snapshots.put(("Rollout", namespace, name), _rollout_samples(namespace, name, rollout, status))

    def _start_counters(self, namespace: str, name: str) -> None:
        """Every counter of a Rollout at 0 when it is first seen, so `increase()` counts its first event."""
        if (namespace, name) in self._started:
            return
        self._started.add((namespace, name))
        self._labels("rollouts_promotions", namespace, name)
        for cause in AbortCause:
            self._labels("rollouts_aborts", namespace, name, str(cause))
        self._labels("rollouts_lead_time_seconds", namespace, name)

    def _count(self, namespace: str, name: str, outcome: Outcome) -> None:
        seconds = outcome.seconds
        if outcome.kind == "promoted":
            self._labels("rollouts_promotions", namespace, name).inc()
            if seconds is not None:
                self._labels("rollouts_lead_time_seconds", namespace, name).observe(seconds)
        else:
            self._labels("rollouts_aborts", namespace, name, str(outcome.cause or AbortCause.MANUAL)).inc()
        if seconds is not None:
            self.rollout_duration.labels("Promoted" if outcome.kind == "promoted" else "Aborted").observe(seconds)

    def _families(self) -> dict[str, Any]:
        return {"rollouts_promotions": self.promotions, "rollouts_aborts": self.aborts,
                "rollouts_lead_time_seconds": self.lead_time, "rollouts_hook_calls": self.hook_calls}

    def _labels(self, family: str, namespace: str, name: str, *rest: str) -> Any:
        """The child of a per-Rollout counter or histogram, remembered so `forget` removes it."""
        values = (namespace, name, *rest)
        self._labelled.setdefault((namespace, name), set()).add((family, values))
        return self._families()[family].labels(*values)

    # ------------------------------------------------------------ what an AnalysisRun's watch event carries

    def observe_analysis_run(self, doc: Mapping[str, Any]) -> None:
        """A run as its watch event has it: Argo's info and phase series by run name, and (for a run
        a Rollout owns) the last measured value and the threshold of each metric by Rollout."""
        run = dict(doc)
        namespace, name = wire.name_of(run)
        phase = wire.text(run, "status", "phase") or "Pending"
        self.set_analysis_run_info(namespace, name, phase=phase)
        results = {wire.text(r, "name"): r for r in wire.items(run, "status", "metricResults")}
        dry = _dry_run_names(run)
        by_family: dict[str, list[Sample]] = {
            "analysis_run_phase": [((namespace, name, each), float(each == phase)) for each in PHASES]}
        for metric in wire.items(run, "spec", "metrics"):
            metric_name, kind = str(wire.text(metric, "name") or ""), _provider_type(metric)
            current = wire.text(results.get(metric_name), "phase") or "Pending"
            by_family.setdefault("analysis_run_metric_type", []).append(((namespace, name, metric_name, kind), 1.0))
            by_family.setdefault("analysis_run_metric_phase", []).extend(
                ((namespace, name, metric_name, kind, str(metric_name in dry).lower(), each), float(each == current))
                for each in PHASES)
        with self._lock:
            for family, samples in by_family.items():
                self._snapshots.put(("AnalysisRun", namespace, name), family, samples)
            owner = _rollout_owner(run)
            if owner is not None:
                self._measured(namespace, owner, run, results)

    def _measured(self, namespace: str, rollout: str, run: dict[str, Any], results: Mapping[Any, Any]) -> None:
        kind = wire.text(run, "metadata", "labels", "rollout-type")
        kind = kind if kind in _RUN_KINDS else "Other"
        name, created = wire.name_of(run)[1], str(wire.text(run, "metadata", "creationTimestamp") or "")
        runs = self._newest.setdefault((namespace, rollout), {})
        newest = runs.get(kind)
        if newest is not None and (created, name) < (newest.created, newest.name):
            return  # an older run of this kind (a relist, a late event): the newer one's values stay
        metrics: dict[str, tuple[float | None, float | None, float | None]] = {}
        for metric in wire.items(run, "spec", "metrics"):
            metric_name = str(wire.text(metric, "name") or "")
            success, failure = (threshold(wire.text(metric, key)) for key in ("successCondition", "failureCondition"))
            metrics[metric_name] = (_last_value(results.get(metric_name)), success.value if success else None,
                                    failure.value if failure else None)
        runs[kind] = _Newest(name, created, metrics)
        values: list[Sample] = []
        thresholds: list[Sample] = []
        for run_kind, seen in sorted(runs.items()):
            for metric_name, (value, success_at, failure_at) in sorted(seen.metrics.items()):
                labels = (namespace, rollout, run_kind, metric_name)
                values += [] if value is None else [(labels, value)]
                thresholds += [] if success_at is None else [((*labels, "success"), success_at)]
                thresholds += [] if failure_at is None else [((*labels, "failure"), failure_at)]
        key = ("Analysis", namespace, rollout)
        self._snapshots.put(key, "rollouts_analysis_metric_value", values)
        self._snapshots.put(key, "rollouts_analysis_metric_threshold", thresholds)

    # ------------------------------------------------------------ hooks (called by the hooks shell)

    def hook_call(self, hook_type: str, result: str, seconds: float, *, namespace: str, rollout: str) -> None:
        """One lifecycle webhook call: counted by type and result, its latency observed by type."""
        kind = hook_type if hook_type in HOOK_TYPES else "other"
        outcome = result if _WORD.fullmatch(result) else "other"
        with self._lock:
            self._labels("rollouts_hook_calls", namespace, rollout, kind, outcome).inc()
        self.hook_duration.labels(kind).observe(max(seconds, 0.0) if math.isfinite(seconds) else 0.0)

    def _set_info(self, gauge: Gauge, key: tuple[str, str, str], labels: tuple[str, ...]) -> None:
        with self._lock:
            old = self._info_labels.get(key)
            if old == labels:
                return
            if old is not None:
                gauge.remove(*old)
            gauge.labels(*labels).set(1)
            self._info_labels[key] = labels

    def value(self, name: str, labels: dict[str, str] | None = None) -> float:
        """A sample's current value (0.0 when absent), for tests and the CLI."""
        found = self.registry.get_sample_value(name, labels or {})
        return 0.0 if found is None else found


_RUN_KINDS = frozenset({"Step", "Background", "PrePromotion", "PostPromotion"})  # the runs' rollout-type label


class _ByObject:
    """`rollout_events` as the EventRecorder counts it (`.labels(namespace, name, type, reason)`), each
    series remembered by its object's (namespace, name) so `forget` drops them with the object: events
    are recorded on AnalysisRuns too, and every run has a new name (a series per run name ever seen
    would grow with every update; found by bench_scale's day measuring the controller alone)."""

    def __init__(self, family: Counter, series: dict[tuple[str, str], set[tuple[str, ...]]]) -> None:
        self._family, self._series, self._lock = family, series, threading.Lock()

    def labels(self, *values: str) -> Any:
        with self._lock:
            self._series.setdefault((values[0], values[1]), set()).add(values)
        return self._family.labels(*values)

    def forget(self, namespace: str, name: str) -> None:
        with self._lock:
            gone = self._series.pop((namespace, name), set())
        for values in gone:
            try:
                self._family.remove(*values)
            except KeyError:  # already removed (the registry's own clear)
                pass


@dataclass
class _Newest:
    """The newest run of one kind seen for a Rollout, and per metric (value, success, failure threshold)."""

    name: str
    created: str
    metrics: dict[str, tuple[float | None, float | None, float | None]] = field(default_factory=dict)


class _Snapshots(Collector):
    """Gauges kept as whole sample lists per object and family: replaced at once, dropped at once,
    and only copied out at scrape time (no work per object per scrape but the copy)."""

    def __init__(self, families: Mapping[str, tuple[str, tuple[str, ...]]]) -> None:
        self._families = dict(families)
        self._objects: dict[tuple[str, str, str], dict[str, list[Sample]]] = {}
        self._lock = threading.Lock()

    def put(self, key: tuple[str, str, str], family: str | Mapping[str, list[Sample]],
            samples: list[Sample] | None = None) -> None:
        found = {family: samples or []} if isinstance(family, str) else dict(family)
        with self._lock:
            self._objects.setdefault(key, {}).update(found)

    def drop(self, key: tuple[str, str, str]) -> None:
        with self._lock:
            self._objects.pop(key, None)

    def keys(self) -> list[tuple[str, str, str]]:
        with self._lock:
            return list(self._objects)

    def describe(self) -> Iterable[Metric]:
        return [GaugeMetricFamily(name, doc, labels=list(labels)) for name, (doc, labels) in self._families.items()]

    def collect(self) -> Iterable[Metric]:
        with self._lock:
            held = [(family, list(samples)) for families in self._objects.values()
                    for family, samples in families.items()]
        out = {name: GaugeMetricFamily(name, doc, labels=list(labels))
               for name, (doc, labels) in self._families.items()}
        for family, samples in held:
            for labels, value in samples:
                out[family].add_metric(list(labels), value)
        return list(out.values())


def _rollout_samples(namespace: str, name: str, rollout: Rollout | None,
                     status: Mapping[str, Any]) -> dict[str, list[Sample]]:
    """Step index, set weight (Argo's GetCurrentSetWeight) and actual weight of a canary."""
    labels = (namespace, name)
    found: dict[str, list[Sample]] = {family: [] for family in (
        "rollouts_rollout_step", "rollouts_rollout_set_weight", "rollouts_rollout_actual_weight")}
    if rollout is None or rollout.canary is None or rollout.blue_green is not None:
        return found
    steps, index = rollout.steps, status.get("currentStepIndex")
    step = index if isinstance(index, int) and not isinstance(index, bool) else 0
    if steps:
        found["rollouts_rollout_step"] = [(labels, float(step))]
    weight = 0 if status.get("abort") is True else set_weight_at(steps, step)
    found["rollouts_rollout_set_weight"] = [(labels, float(weight))]
    actual = wire.section(dict(status), "canary", "weights", "canary").get("weight")
    if isinstance(actual, int | float) and not isinstance(actual, bool):
        found["rollouts_rollout_actual_weight"] = [(labels, float(actual))]
    return found


def _rollout_owner(run: dict[str, Any]) -> str | None:
    for ref in wire.items(run, "metadata", "ownerReferences"):
        if wire.text(ref, "kind") == "Rollout" and ref.get("controller", True) and wire.text(ref, "name"):
            return wire.text(ref, "name")
    return None


def _provider_type(metric: Mapping[str, Any]) -> str:
    """The metric's provider (`prometheus`, `web`, ...), as Argo's `type` label; `unknown` without one."""
    provider = metric.get("provider")
    names = sorted(k for k in provider if isinstance(k, str)) if isinstance(provider, Mapping) else []
    return names[0] if names and _WORD.fullmatch(names[0].lower()) else "unknown"


def _dry_run_names(run: dict[str, Any]) -> set[str]:
    """The metrics a run's dryRun rules name (Go-style unanchored regexps, as analysis.build reads them)."""
    names = [str(wire.text(m, "name") or "") for m in wire.items(run, "spec", "metrics")]
    found: set[str] = set()
    for rule in wire.items(run, "spec", "dryRun"):
        pattern = str(wire.text(rule, "metricName") or "")
        try:
            found.update(name for name in names if re.search(pattern, name))
        except re.error:
            continue
    return found


def _last_value(result: Any) -> float | None:
    """The newest measurement's value when it is one number (`0.97`, `[0.97]`, `NaN`); else None."""
    for measurement in reversed(wire.items(result, "measurements")):
        text = wire.text(measurement, "value")
        if text is None:
            continue
        return _number(text)
    return None


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        pass
    try:
        decoded = json.loads(text)
    except ValueError:
        return None
    if isinstance(decoded, list) and len(decoded) == 1:
        decoded = decoded[0]
    if isinstance(decoded, int | float) and not isinstance(decoded, bool):
        return float(decoded)
    return None


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass


class MetricsServer:
    """A running `/metrics` + `/healthz` endpoint; `close()` stops it."""

    def __init__(self, server: WSGIServer, thread: threading.Thread) -> None:
        self._server = server
        self._thread = thread

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def serve(
    metrics: ControllerMetrics, address: str = "127.0.0.1:8090", *, healthy: Callable[[], bool] = lambda: True
) -> MetricsServer:
    """Serve metrics on `host:port` (port 0 picks a free one) in a daemon thread."""
    host, _, port = address.rpartition(":")
    metrics_app = make_wsgi_app(metrics.registry)

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == "/healthz":
            ok = healthy()
            start_response("200 OK" if ok else "503 Service Unavailable", [("Content-Type", "text/plain")])
            return [b"ok\n" if ok else b"unhealthy\n"]
        served: Iterable[bytes] = metrics_app(environ, start_response)
        return served

    server = make_server(host or "127.0.0.1", int(port), app, handler_class=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, name="rollouts-metrics", daemon=True)
    thread.start()
    return MetricsServer(server, thread)
