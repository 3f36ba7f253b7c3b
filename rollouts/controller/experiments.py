"""The Experiment reconcile: observe, call the pure Experiment plan, apply its actions, persist status.

Rules (the imperative shell around rollouts.plan.experiment; Argo's `experiments/controller.go`):
- Observe from the reads given (the Manager's watch cache, or the Cluster): the
  Experiment, the ReplicaSets and AnalysisRuns (and, for a template with `service`, the
  Services) of its namespace (the plan keeps those it owns), the AnalysisTemplates /
  ClusterAnalysisTemplates its analyses name (nested ones too).
- Decide nothing: `plan_experiment(observed, now)` does. Actions are applied in order;
  the first failure stops the pass before the status is written (the queue's backoff
  retries; every action is idempotent: a create that finds the object is success).
- Status is written only when it changed, as a merge patch of the difference on the
  object itself carrying the resourceVersion it was planned from (Argo's Experiment CRD
  has no status subresource: its controller patches the whole object). A 409 reads the
  Experiment again and plans again, a bounded number of times.
- Events are recorded on the Experiment after the pass succeeded.
- An Experiment the models cannot read gets the InvalidSpec condition and phase Error
  with the schema's problems, one Warning event, and another look in 20 s.
- The AnalysisRuns it creates are measured by the analysis controller like any other.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

import tenacity
from pydantic import ValidationError

from analysis.model import AnalysisTemplate
from rollouts.controller.passes import API_RETRY_WAIT, Admits, Reads, replanned
from rollouts.plan.experiment import ExperimentObserved, ExperimentPlan, plan_experiment
from rollouts.platform import actions as act
from rollouts.platform import wire
from rollouts.platform.clock import Clock
from rollouts.platform.cluster import AlreadyExists, Cluster, Conflict, NotFound, Unavailable
from rollouts.platform.events import EventRecorder
from rollouts.platform.patches import merge_diff
from rollouts.spec.experiment import Experiment
from rollouts.spec.problems import from_validation_error

__all__ = ["ExperimentReconciler"]

log = logging.getLogger(__name__)

INVALID_REQUEUE = 20.0
Obj = dict[str, Any]


class Cache(Reads, Protocol):
    def update(self, obj: Obj) -> None: ...


class ExperimentReconciler:
    def __init__(self, cluster: Cluster, *, clock: Clock, recorder: EventRecorder, scope: Admits,
                 cache: Cache | None = None,
                 retry_wait: tenacity.wait.wait_base = API_RETRY_WAIT,
                 retry_attempts: int = 4) -> None:
        self.cluster, self.clock, self.recorder, self.scope, self.cache = cluster, clock, recorder, scope, cache
        self.reads: Reads = cache if cache is not None else cluster
        self._retry = tenacity.Retrying(
            retry=tenacity.retry_if_exception_type(Unavailable), wait=retry_wait,
            stop=tenacity.stop_after_attempt(retry_attempts), reraise=True,
        )

    def reconcile(self, namespace: str, name: str) -> float | None:
        return replanned("Experiment", namespace, name, reads=self.reads, scope=self.scope, run=self._pass,
                         refresh=self._refresh)

    def _refresh(self, doc: Obj, err: Conflict) -> None:
        """After a 409, read the Experiment again from the API."""
        namespace, name = wire.name_of(doc)
        self._remember(self._retry(self.cluster.get, "Experiment", name, namespace))

    def _pass(self, doc: Obj) -> float | None:
        try:
            ex = Experiment.load(doc)
        except ValidationError as err:
            return self._unreadable(doc, err)
        plan = plan_experiment(self.observe(ex), self.clock.now())
        namespace, name = wire.name_of(doc)
        for action in plan.actions:
            if not isinstance(action, act.Event):
                self._apply(action.request(namespace, name))
        self._write_status(doc, plan.status)
        self._record(doc, plan)
        return plan.requeue_after

    def observe(self, ex: Experiment) -> ExperimentObserved:
        namespace = ex.metadata.namespace or "default"
        return ExperimentObserved(
            experiment=ex, replica_sets=self.reads.list("ReplicaSet", namespace),
            analysis_runs=self.reads.list("AnalysisRun", namespace), templates=self._templates(ex, namespace),
            services=self.reads.list("Service", namespace) if any(t.service for t in ex.spec.templates) else [])

    def _templates(self, ex: Experiment, namespace: str) -> list[Obj]:
        pending = [("ClusterAnalysisTemplate" if a.cluster_scope else "AnalysisTemplate", a.template_name)
                   for a in ex.spec.analyses or []]
        seen: dict[tuple[str, str], Obj] = {}
        while pending:
            kind, name = pending.pop()
            if (kind, name) in seen:
                continue
            try:
                raw = self.reads.get(kind, name, namespace)
                template = AnalysisTemplate.load(raw)
            except (NotFound, ValidationError):
                continue  # the plan reports the analysis as Error
            seen[(kind, name)] = raw
            pending += [("ClusterAnalysisTemplate" if ref.cluster_scope else "AnalysisTemplate", ref.template_name)
                        for ref in template.spec.templates or []]
        return list(seen.values())

    def _unreadable(self, doc: Obj, err: ValidationError) -> float:
        problems = from_validation_error(err)
        message = "; ".join(dict.fromkeys(str(problem) for problem in problems))
        status = dict(doc.get("status") or {}) if isinstance(doc.get("status"), dict) else {}
        conditions = [c for c in status.get("conditions") or []
                      if isinstance(c, dict) and c.get("type") != "InvalidSpec"]
        now = self.clock.now().strftime("%Y-%m-%dT%H:%M:%SZ")
        before = next((c for c in status.get("conditions") or [] if isinstance(c, dict)
                       and c.get("type") == "InvalidSpec"), None)
        if before is not None and before.get("message") == message:
            return INVALID_REQUEUE
        status.update(phase="Error", message=message, conditions=[*conditions, {
            "type": "InvalidSpec", "status": "True", "reason": "InvalidSpec", "message": message,
            "lastUpdateTime": now, "lastTransitionTime": now}])
        self._write_status(doc, status)
        self.recorder.record(doc, type=act.WARNING, reason="InvalidSpec", message=message)
        return INVALID_REQUEUE

    # ------------------------------------------------------------ applying

    def _apply(self, request: act.Request) -> None:
        if request.verb == "create":
            try:
                self._remember(self._retry(self.cluster.create, request.body or {}))
            except AlreadyExists:
                pass  # deterministic names: it is there already
        elif request.verb == "delete":
            try:
                self._retry(self.cluster.delete, request.kind, request.name, request.namespace)
            except NotFound:
                pass
        else:
            self._remember(self._retry(self.cluster.patch, request.kind, request.name, request.namespace,
                                       request.body or {}))

    def _write_status(self, doc: Obj, status: Obj) -> None:
        old = doc.get("status") if isinstance(doc.get("status"), dict) else {}
        diff = merge_diff(old or {}, status)
        if not diff:
            return
        meta = doc.get("metadata") or {}
        patch = {"status": diff, "metadata": {"resourceVersion": meta.get("resourceVersion")}}
        self._remember(self._retry(self.cluster.patch, "Experiment", meta.get("name"), meta.get("namespace"), patch))

    def _record(self, doc: Obj, plan: ExperimentPlan) -> None:
        for event in plan.actions:
            if isinstance(event, act.Event):
                self.recorder.record(doc, type=event.type, reason=event.reason, message=event.message)

    def _remember(self, obj: Obj | None) -> None:
        if self.cache is not None and isinstance(obj, dict):
            self.cache.update(obj)
