"""The Rollout reconcile: observe, validate, call the pure plan, apply its actions, persist status.

Rules (the imperative shell around rollouts.plan.planner; DESIGN.md §2):
- Observe from the reads given (the Manager's watch cache, or the Cluster itself):
  the Rollout, its ReplicaSets and AnalysisRuns (by the Rollout's selector labels;
  the plan keeps those it owns), the Experiments of its namespace when it has an
  experiment step (the plan keeps those it owns), the AnalysisTemplates it references (nested ones
  too, and those its experiment steps name), its VirtualServices, DestinationRule and
  canary/stable (blueGreen: active/preview) Services. Its pods
  only while a restart is pending (`restarts.wants_pods`), listed by its selector
  from the API itself, as Argo does: pods are not watched into the cache. Which of
  the Rollouts named in its Services' and DestinationRule's managed-by annotations
  still exist (rollouts.plan.claims decides what that means).
- Decide nothing: `validation.validate_rollout` and `plan.plan(observed, now)` do.
  Actions are applied in the plan's order; the first failure stops the pass before
  the status is written, and the queue's backoff retries it (every action is
  idempotent: a create that finds the object is success).
- A 409 Conflict (a VirtualService or DestinationRule edited meanwhile, or the
  Rollout's status changed by the CLI) re-reads the object from the API and plans
  again, a bounded number of times. `Unavailable` is retried with tenacity's bounded
  backoff before it fails the pass.
- Status is written only when the planned status differs from the observed one, as a
  merge patch of the difference carrying the resourceVersion it was planned from.
  A reconcile with nothing to do makes no API write at all.
- Events the plan asks for are recorded after the pass succeeded (a failed pass is
  planned again, and its events would be duplicates); so is what the pass tells the
  metrics (`observe`: the document, its model, the plan with its promotions and aborts),
  and a Rollout found gone or out of scope is reported (`gone`) so its series go too.
- Lifecycle webhooks (rollouts.plan.hooks): after the status is written, the hooks it asked
  and the event hooks are called (rollouts.controller.hooks, bounded), each answer recorded
  as an Event, and the answers written to status.hooks[] in a second status write; that
  write's watch event reconciles again, and the plan acts on the answers.
- Every object this shell writes goes back into the cache at once, so the next pass
  never plans from a version older than its own write. The watch event of its own
  status write does reconcile again; the plan already entered the step it reached, so
  that pass usually writes nothing (or what needed waiting: a setWeight step entered
  is completed there, the pods a step needs are started there).
- A Rollout document the models cannot read gets what a spec problem gets
  (`plan.invalid`): the InvalidSpec condition naming each field and its fix (the CRD
  schema's wording, as `rollouts lint` gives it), phase Degraded, one Warning event,
  no other write, and another look in 20 s; it never raises into the worker.
Size: over 300 lines because observe, plan, apply and persist for one Rollout: the
  shell's whole pass, kept in one reading order.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

import tenacity
from pydantic import ValidationError

from analysis.model import AnalysisTemplate
from rollouts.controller.hooks import HookCaller, OnCall
from rollouts.controller.informer import Cache
from rollouts.controller.passes import API_RETRY_WAIT, Admits, Reads, replanned
from rollouts.plan import claims, experiment_step, restarts
from rollouts.plan import hook_calls as hooks
from rollouts.plan import planner as core
from rollouts.plan.hook_checks import EVENT, WEBHOOKS
from rollouts.plan.validation import References, validate_rollout
from rollouts.platform import actions as act
from rollouts.platform import wire
from rollouts.platform.clock import Clock
from rollouts.platform.cluster import AlreadyExists, Cluster, Conflict, NotFound, Unavailable
from rollouts.platform.events import EventRecorder
from rollouts.platform.labels import INSTANCE_LABEL
from rollouts.platform.patches import merge_diff
from rollouts.spec.model import Rollout, RolloutAnalysis
from rollouts.spec.problems import Problem, from_validation_error
from rollouts.traffic.istio import vs_reference
from rollouts.traffic.pingpong import service_names

__all__ = ["INSTANCE_LABEL", "RolloutReconciler", "references"]

log = logging.getLogger(__name__)

HOOK_FIELDS = (WEBHOOKS, "spec.strategy.canary.webhookFailureLimit")
Obj = dict[str, Any]


def references(doc: Obj) -> list[tuple[str, str, str]]:
    """(kind, namespace, name) of the VirtualServices and DestinationRule a raw Rollout names
    (any shape: a section of the wrong type names nothing, rollouts.platform.wire)."""
    namespace, _ = wire.name_of(doc)
    istio = wire.section(doc, "spec", "strategy", "canary", "trafficRouting", "istio")
    found = []
    for ref in [istio.get("virtualService"), *wire.items(istio, "virtualServices")]:
        if (name := wire.text(ref, "name")) is not None:
            vs_name, ns = vs_reference(name, namespace)
            found.append(("VirtualService", ns, vs_name))
    if (rule := wire.text(istio, "destinationRule", "name")) is not None:
        found.append(("DestinationRule", namespace, rule))
    return found


def unreadable_problems(doc: Obj, err: ValidationError) -> list[Problem]:
    """Why the models cannot load a Rollout: the CRD schema's problems (wire path, what is
    wrong, the fix: what `rollouts lint` says), else pydantic's own, at their wire paths."""
    from rollouts.spec import crdschema  # lazily: only a broken document pays for the schema validator

    found = [problem for problem in crdschema.problems(doc) if problem.is_error]
    if found:
        return found
    return from_validation_error(err)


def _service_names(rollout: Rollout) -> set[str]:
    """The Services the Rollout's strategy switches: canary/stable (and ping/pong), or blueGreen's active/preview."""
    blue_green = rollout.blue_green
    names = set(service_names(rollout.canary))
    if blue_green is not None:
        names |= {name for name in (blue_green.active_service, blue_green.preview_service) if name}
    return names


def _analysis_blocks(rollout: Rollout) -> list[RolloutAnalysis]:
    """Every analysis the Rollout runs: canary background and steps, blueGreen pre/post promotion."""
    canary, blue_green = rollout.canary, rollout.blue_green
    blocks = [canary.analysis, *(step.analysis for step in canary.steps or [])] if canary is not None else []
    if blue_green is not None:
        blocks += [blue_green.pre_promotion_analysis, blue_green.post_promotion_analysis]
    return [block for block in blocks if block is not None]


def _has_experiments(rollout: Rollout, doc: Obj) -> bool:
    """Experiments are read for a Rollout with an experiment step, or one that recorded an Experiment."""
    return any(step.experiment is not None for step in rollout.steps) or bool(
        wire.text(doc, "status", "canary", "currentExperiment"))


class RolloutReconciler:
    def __init__(
        self,
        cluster: Cluster,
        *,
        clock: Clock,
        recorder: EventRecorder,
        scope: Admits,
        reads: Reads | None = None,
        cache: Cache | None = None,
        retry_wait: tenacity.wait.wait_base = API_RETRY_WAIT,
        retry_attempts: int = 4,
        observe: Callable[[Obj, Rollout | None, core.Plan], None] | None = None,
        gone: Callable[[str, str], None] | None = None,
        on_hook_call: OnCall | None = None,
    ) -> None:
        self.cluster, self.clock, self.recorder, self.scope = cluster, clock, recorder, scope
        self._observe, self._gone = observe, gone
        self.hooks = HookCaller(clock=clock, on_call=on_hook_call)
        self.cache = cache
        self.reads: Reads = reads if reads is not None else cache if cache is not None else cluster
        self._retry = tenacity.Retrying(
            retry=tenacity.retry_if_exception_type(Unavailable), wait=retry_wait,
            stop=tenacity.stop_after_attempt(retry_attempts), reraise=True,
        )
        self._templates: dict[tuple[str, str, str], AnalysisTemplate] = {}  # (uid, rv, kind) -> model
        # (namespace, name) -> (key, problems): the last validation of each Rollout only, dropped when it is gone
        self._validated: dict[tuple[str, str], tuple[tuple[Any, ...], list[Any]]] = {}

    # ------------------------------------------------------------ the pass

    def reconcile(self, namespace: str, name: str) -> float | None:
        return replanned("Rollout", namespace, name, reads=self.reads, scope=self.scope, run=self._pass,
                         refresh=self._refresh, gone=self._report_gone)

    def _pass(self, doc: Obj) -> float | None:
        rollout: Rollout | None = None
        observed, now = None, self.clock.now()
        try:
            rollout = Rollout.load(doc)
        except ValidationError as err:
            generation = (doc.get("metadata") or {}).get("generation")
            result = core.invalid(doc.get("status"), unreadable_problems(doc, err), now=now,
                                  generation=generation if isinstance(generation, int) else None)
        else:
            observed = self.observe(doc, rollout)
            result = core.plan(observed, now)
        events = [a for a in result.actions if isinstance(a, act.Event)]
        for action in result.actions:
            if not isinstance(action, act.Event):
                self._apply(doc, action)
        written = self._write_status(doc, result.status)
        for event in events:
            self.recorder.record(doc, type=event.type, reason=event.reason, message=event.message)
        if observed is not None and observed.rollout.canary is not None and observed.rollout.canary.webhooks:
            self._call_hooks(doc, written, observed, result.status, events, now)
        if self._observe is not None:
            try:
                self._observe(doc, rollout, result)
            except Exception:  # the metrics never fail a pass that succeeded
                log.exception("Rollout %s/%s: metrics not updated", *wire.name_of(doc))
        return result.requeue_after

    def _report_gone(self, namespace: str, name: str) -> None:
        self._validated.pop((namespace, name), None)
        if self._gone is not None:
            self._gone(namespace, name)

    def _call_hooks(self, doc: Obj, written: Obj, observed: core.Observed, status: Obj, events: list[act.Event],
                    now: Any) -> None:
        """The webhooks the written status asked (rollouts.plan.hooks.asked) and the event hooks, then
        their answers written to status.hooks[] (a second status write) and recorded as Events."""
        calls = hooks.asked(observed, doc.get("status"), status, now)
        if not any(problem.path.startswith(HOOK_FIELDS) for problem in observed.problems):
            calls += hooks.event_calls(observed, status, events, now)
        if not calls:
            return
        answers = self.hooks.call_all(calls)
        recorded = hooks.answered(status, answers)
        for call, answer in answers:
            if call.hook.type != EVENT:
                event = hooks.answer_event(call, answer, recorded)
                self.recorder.record(written, type=event.type, reason=event.reason, message=event.message)
        self._write_status(written, recorded)

    # ------------------------------------------------------------ observing

    def observe(self, doc: Obj, rollout: Rollout) -> core.Observed:
        meta = doc.get("metadata") or {}
        namespace = meta.get("namespace") or "default"
        selector = dict(((doc.get("spec") or {}).get("selector") or {}).get("matchLabels") or {})
        replica_sets = self.reads.list("ReplicaSet", namespace, label_selector=selector or None)
        runs = self.reads.list("AnalysisRun", namespace, label_selector=selector or None)
        found: dict[str, list[Obj]] = {"VirtualService": [], "DestinationRule": []}
        for kind, ns, name in references(doc):
            if (obj := self._get(kind, name, ns)) is not None:
                found[kind].append(obj)
        names = _service_names(rollout)
        services = [svc for name in sorted(str(n) for n in names)
                    if (svc := self._get("Service", name, namespace)) is not None]
        templates = self._templates_of(rollout, namespace)
        known = templates if self._all_found(rollout, templates) else templates + self._others(namespace, templates)
        wanted = references(doc)
        refs = References(
            templates={t.metadata.name or "": t for t in known if t.kind == "AnalysisTemplate"},
            cluster_templates={t.metadata.name or "": t for t in known if t.kind == "ClusterAnalysisTemplate"},
            virtual_services=self._pool("VirtualService", found["VirtualService"], wanted),
            destination_rules=self._pool("DestinationRule", found["DestinationRule"], wanted),
            services=set(self._pool("Service", services, [("Service", str(namespace), str(n)) for n in names])),
        )
        pods = self._pods(namespace, selector) if restarts.wants_pods(rollout) else []
        experiments = self.reads.list("Experiment", namespace) if _has_experiments(rollout, doc) else []
        rule = found["DestinationRule"][0] if found["DestinationRule"] else None
        others = claims.claimants(services, rule) - {str(meta.get("name"))}
        live = frozenset(name for name in others if self._get("Rollout", name, namespace) is not None)
        return core.Observed(
            rollout=rollout, replica_sets=replica_sets, analysis_runs=runs,
            templates=[t.dump() for t in templates], virtual_services=found["VirtualService"],
            destination_rule=rule, services=services,
            problems=self._problems(doc, rollout, refs,
                                    [*templates, *found["VirtualService"], *found["DestinationRule"], *services]),
            pods=pods, live_claimants=live, experiments=experiments,
        )

    def _pods(self, namespace: str, selector: dict[str, str]) -> list[Obj]:
        return self._retry(lambda: self.cluster.list("Pod", namespace, label_selector=selector or None))

    def _pool(self, kind: str, found: list[Obj], wanted: Iterable[tuple[str, str, str]]) -> dict[str, Obj]:
        """The objects of `kind` validation judges the references against, by name: those found,
        and, when one named is missing (the rare path), every one of its namespace, so the fix
        can say which names exist (the same did-you-mean lint gives)."""
        pool = {str(wire.text(obj, "metadata", "name")): obj for obj in found}
        for want_kind, namespace, name in wanted:
            if want_kind == kind and name not in pool:
                pool.update((str(wire.text(obj, "metadata", "name")), obj) for obj in self.reads.list(kind, namespace))
        return pool

    def _problems(self, doc: Obj, rollout: Rollout, refs: References, inputs: list[Any]) -> list[Any]:
        """validate_rollout, remembered per (Rollout generation, versions of what it references): specs
        and the objects they name rarely change. One remembered answer per Rollout (a new generation
        or version replaces it), so what is held stays bounded by the Rollouts, not by the updates."""
        meta = doc.get("metadata") or {}
        if meta.get("generation") is None:
            return validate_rollout(rollout, refs)
        versions = sorted((t.kind, t.metadata.name or "", t.metadata.resource_version or "")
                          if isinstance(t, AnalysisTemplate) else
                          (str(t.get("kind")), str(wire.text(t, "metadata", "name")),
                           str(wire.text(t, "metadata", "resourceVersion")))
                          for t in inputs)
        pools = tuple(sorted(refs.virtual_services or ())) + tuple(sorted(refs.destination_rules or ())) + tuple(
            sorted(refs.services or ()))
        key = (meta.get("uid"), meta.get("generation"), tuple(versions), pools)
        slot = (str(meta.get("namespace") or ""), str(meta.get("name") or ""))
        remembered = self._validated.get(slot)
        if remembered is not None and remembered[0] == key:
            return remembered[1]
        found = validate_rollout(rollout, refs)
        self._validated[slot] = (key, found)
        return found

    def _templates_of(self, rollout: Rollout, namespace: str) -> list[AnalysisTemplate]:
        """The templates the Rollout references, nested ones included, each once."""
        pending = [ref for block in _analysis_blocks(rollout) for ref in block.templates or []]
        pending += experiment_step.template_refs(rollout)
        seen: dict[tuple[str, str], AnalysisTemplate] = {}
        while pending:
            ref = pending.pop()
            kind = "ClusterAnalysisTemplate" if ref.cluster_scope else "AnalysisTemplate"
            if (kind, ref.template_name) in seen:
                continue
            raw = self._get(kind, ref.template_name, namespace)
            template = self._template_model(raw) if raw is not None else None
            if template is not None:
                seen[(kind, ref.template_name)] = template
                pending.extend(template.spec.templates or [])
        return list(seen.values())

    @staticmethod
    def _all_found(rollout: Rollout, templates: list[AnalysisTemplate]) -> bool:
        refs = [ref for block in _analysis_blocks(rollout) for ref in block.templates or []]
        wanted = {("ClusterAnalysisTemplate" if ref.cluster_scope else "AnalysisTemplate", ref.template_name)
                  for ref in refs + experiment_step.template_refs(rollout)}
        return wanted <= {(t.kind, t.metadata.name) for t in templates}

    def _others(self, namespace: str, found: list[AnalysisTemplate]) -> list[AnalysisTemplate]:
        """The templates a missing reference could have meant, so the fix can name them (rare path)."""
        have = {(t.kind, t.metadata.name) for t in found}
        raws = self.reads.list("AnalysisTemplate", namespace) + self.reads.list("ClusterAnalysisTemplate")
        models = (self._template_model(raw) for raw in raws
                  if (raw.get("kind"), (raw.get("metadata") or {}).get("name")) not in have)
        return [m for m in models if m is not None]

    def _template_model(self, raw: Obj) -> AnalysisTemplate | None:
        meta = raw.get("metadata") or {}
        key = (str(meta.get("uid")), str(meta.get("resourceVersion")), str(raw.get("kind")))
        if key not in self._templates:
            try:
                self._templates[key] = AnalysisTemplate.load(raw)
            except ValidationError:
                return None  # validation reports it as not usable
        return self._templates[key]

    def _get(self, kind: str, name: str, namespace: str) -> Obj | None:
        try:
            return self.reads.get(kind, name, namespace)
        except NotFound:
            return None

    # ------------------------------------------------------------ applying

    def _apply(self, doc: Obj, action: act.Action) -> None:
        """Send the one API request the action stands for (platform.actions says which)."""
        if isinstance(action, act.Event):
            raise TypeError("events are recorded after the pass, not sent as requests")
        namespace, name = wire.name_of(doc)
        request = action.request(namespace, name)
        if request.verb == "create":
            self._create(request.body or {})  # a run carries the Rollout's instance-id label (plan.runs)
        elif request.verb == "delete":
            self._delete(request.kind, request.name, request.namespace)
        else:
            self._patch(request.kind, request.name, request.namespace, request.body or {})

    def _create(self, obj: Obj) -> None:
        try:
            self._remember(self._call(self.cluster.create, obj))
        except AlreadyExists:
            pass  # deterministic names: it is there already, which is what we wanted

    def _patch(self, kind: str, name: str, namespace: str, patch: Obj) -> None:
        self._remember(self._call(self.cluster.patch, kind, name, namespace, patch))

    def _delete(self, kind: str, name: str, namespace: str) -> None:
        try:
            self._retry(self.cluster.delete, kind, name, namespace)
        except NotFound:
            pass  # gone already, which is what we wanted
        if self.cache is not None:
            self.cache.delete({"kind": kind, "metadata": {"name": name, "namespace": namespace}})

    def _write_status(self, doc: Obj, status: Obj) -> Obj:
        """Write `status` when it differs; the Rollout as written (or `doc` when nothing was)."""
        old = doc.get("status") or {}
        diff = merge_diff(old, status)
        if not diff:
            return doc
        meta = doc.get("metadata") or {}
        patch = {"status": diff, "metadata": {"resourceVersion": meta.get("resourceVersion")}}
        written = self._call(self.cluster.patch_status, "Rollout", meta.get("name"), meta.get("namespace"), patch)
        self._remember(written)
        return written if isinstance(written, dict) else {**doc, "status": status}

    def _call(self, method: Callable[..., Obj], *args: Any) -> Obj:
        return self._retry(method, *args)

    def _remember(self, obj: Obj | None) -> None:
        if self.cache is not None and isinstance(obj, dict):
            self.cache.update(obj)

    def _refresh(self, doc: Obj, err: Conflict) -> None:
        """After a 409, read the Rollout and everything it routes through again, from the API."""
        meta = doc.get("metadata") or {}
        namespace = meta.get("namespace") or "default"
        wanted: Iterable[tuple[str, str, str]] = [("Rollout", namespace, str(meta.get("name"))), *references(doc)]
        for kind, ns, name in wanted:
            try:
                self._remember(self._call(self.cluster.get, kind, name, ns))
            except NotFound:
                if self.cache is not None:
                    self.cache.delete({"kind": kind, "metadata": {"name": name, "namespace": ns}})

    # ------------------------------------------------------------ failures

    def record_failure(self, namespace: str, name: str, err: BaseException) -> None:
        """A pass raised: say so on the Rollout (best effort, never raises)."""
        try:
            doc = self.reads.get("Rollout", name, namespace)
        except Exception:  # noqa: BLE001 - the failure itself is already logged
            return
        self.recorder.record(doc, type=act.WARNING, reason="ReconcileError", message=f"{type(err).__name__}: {err}")
