"""The Experiment core: plan_experiment(observed, now) -> ExperimentPlan(status, actions, requeue_after). Pure.

Rules (Argo's `experiments/experiment.go`, `utils/experiment/experiment.go`, docs/features/experiment.md):
- Each template is a ReplicaSet owned by the Experiment (its document:
  rollouts.plan.experiment_docs) whose pods carry their own `rollouts-pod-template-hash`,
  salted with the Experiment and template names, so it never equals the hash of the
  Rollout's stable or canary ReplicaSet even for the same pod spec: the Rollout's Services
  and DestinationRule subsets select by that label, and an experiment pod must never take
  the Rollout's traffic (Argo's note: experiment hashes differ from the Rollout's).
- A template with `service` also has a Service (rollouts.plan.experiment_docs) while it
  wants pods; once its pods are all gone the Service is deleted. `templateStatuses[]`
  carry its `serviceName` and `podTemplateHash`.
- Terminating (no ReplicaSet or run is created, every ReplicaSet goes to 0, running runs are
  terminated): `spec.terminate`, a completed phase, a template Failed/Error, a run
  Failed/Error/Inconclusive, or every requiredForCompletion run Successful.
- A template wants `replicas` (default 1) pods, 0 once terminating or its own status is
  completed. Going to 0 waits `scaleDownDelaySeconds` (default 30) behind the
  `scale-down-deadline` annotation. Its status: all wanted pods available -> Running
  (Successful once `duration` passed since `availableAt`, or while terminating); else
  Failed once `progressDeadlineSeconds` (default 600) passed since its last transition,
  else Progressing (Successful while terminating). A completed template status never changes.
- Phase (first pass: Pending). While Pending/Running: `availableAt` is set when every
  template is Running; templates completed -> the templates' phase when it is not
  Successful, else the phase of the runs once they completed (those still going are
  terminated and end in a pass or two: Argo takes Successful at once, which would pass a
  run's failures within its limit unseen; here the runs' end, and their evidence, decide);
  templates still going -> a run that ended Failed/Error/Inconclusive
  decides it, or every required run Successful ("Required AnalysisRuns completed"), else
  the templates' phase (Pending while a template is Progressing). Completed phases never
  change. So: with `duration` it ends when the duration passes; with none, when every
  required run completed; with neither, it runs until `spec.terminate`.
- Runs start once `availableAt` is set (rollouts.plan.experiment_docs builds them). A
  missing template or bad arg is that analysis's Error (which ends the Experiment Error),
  as Argo has it. A run that ended Successful without evidence (analysis.evidence: a judged
  metric with no successful measurement, e.g. terminated at the end of `duration` after
  failures within its failureLimit) is that analysis's Failed, "ended without evidence":
  Argo calls it Successful, and an experiment step would then pass its canary unchecked.
- A spec problem (rollouts.plan.experiment_checks) -> condition InvalidSpec, phase Error with
  the message, no action but one event; nothing is created.
- Events: `Experiment<Phase>` on a phase change, `Template<Status>` and `AnalysisRun<Phase>`
  on theirs. Requeue: the earliest of availableAt + duration, a template's progress
  deadline, a scale-down deadline.
Size: over 300 lines because Argo's whole Experiment reconcile (templates, Services, runs,
  phase, conditions) in one reading order, each rule written once (the documents it
  creates are rollouts.plan.experiment_docs).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from analysis import evidence
from analysis.args import ArgError
from analysis.build import SpecError
from rollouts.plan.conditions import problems_message
from rollouts.plan.experiment_checks import DEFAULT_DEADLINE, experiment_problems
from rollouts.plan.experiment_docs import (
    EXPERIMENT_NAME,
    TEMPLATE_NAME,
    duration_seconds,
    replicaset_doc,
    run_doc,
    service_doc,
    template_hash,
)  # fmt: skip
from rollouts.platform.actions import (
    NORMAL,
    WARNING,
    Action,
    AnnotateReplicaSet,
    CreateAnalysisRun,
    CreateReplicaSet,
    CreateService,
    DeleteService,
    Event,
    ScaleReplicaSet,
    TerminateAnalysisRun,
)  # fmt: skip
from rollouts.platform.labels import HASH_LABEL, SCALE_DOWN_DEADLINE
from rollouts.platform.times import format_time, parse_time
from rollouts.spec.experiment import (
    Experiment,
    ExperimentAnalysis,
    ExperimentCondition,
    ExperimentRunStatus,
    ExperimentStatus,
    ExperimentTemplate,
    TemplateStatus,
)  # fmt: skip
from rollouts.spec.problems import Problem

__all__ = ["EXPERIMENT_NAME", "TEMPLATE_NAME", "ExperimentObserved", "ExperimentPlan", "plan_experiment",
           "template_hash"]

DEFAULT_SCALE_DOWN_DELAY = 30
PENDING, RUNNING, SUCCESSFUL, FAILED, ERROR, INCONCLUSIVE = (
    "Pending", "Running", "Successful", "Failed", "Error", "Inconclusive")
PROGRESSING = "Progressing"
COMPLETED = frozenset({SUCCESSFUL, FAILED, ERROR, INCONCLUSIVE})
_TEMPLATE_ORDER = (SUCCESSFUL, RUNNING, PROGRESSING, ERROR, FAILED)  # best to worst
_RUN_ORDER = (SUCCESSFUL, RUNNING, PENDING, INCONCLUSIVE, ERROR, FAILED)
REQUIRED_DONE = "Required AnalysisRuns completed"


@dataclass(frozen=True)
class ExperimentObserved:
    experiment: Experiment
    replica_sets: Sequence[Mapping[str, Any]] = ()  # the namespace's (those it owns are picked here)
    analysis_runs: Sequence[Mapping[str, Any]] = ()
    templates: Sequence[Mapping[str, Any]] = ()  # AnalysisTemplates/ClusterAnalysisTemplates it references
    problems: Sequence[Problem] = ()  # extra spec problems found by the shell
    services: Sequence[Mapping[str, Any]] = ()  # the namespace's (those it owns are picked here)


@dataclass(frozen=True)
class ExperimentPlan:
    status: dict[str, Any]
    actions: tuple[Action, ...]
    requeue_after: float | None


@dataclass
class _Pass:
    ex: Experiment
    old: ExperimentStatus
    st: ExperimentStatus
    now: datetime
    rss: dict[str, Mapping[str, Any]]
    runs: dict[str, Mapping[str, Any]]
    templates: Sequence[Mapping[str, Any]]
    services: dict[str, Mapping[str, Any]] = field(default_factory=dict)
    terminating: bool = False
    actions: list[Action] = field(default_factory=list)
    wake: list[datetime] = field(default_factory=list)

    def event(self, kind: str, reason: str, message: str) -> None:
        self.actions.append(Event(kind, reason, message))


def _owned(doc: Mapping[str, Any], name: str) -> bool:
    refs = (doc.get("metadata") or {}).get("ownerReferences") or []
    return any(r.get("kind") == "Experiment" and r.get("name") == name for r in refs)


def _deadline(ex: Experiment) -> int:
    value = ex.spec.progress_deadline_seconds
    return DEFAULT_DEADLINE if value is None else value


def _worse(order: Sequence[str], current: str | None, new: str | None) -> bool:
    def rank(value: str | None) -> int:
        return order.index(value) if value in order else 0
    return rank(new) > rank(current)


def _run_status(st: ExperimentStatus, name: str) -> ExperimentRunStatus | None:
    return next((r for r in st.analysis_runs or [] if r.name == name), None)


def _template_status(st: ExperimentStatus, name: str) -> TemplateStatus | None:
    return next((t for t in st.template_statuses or [] if t.name == name), None)


def _required_successful(ex: Experiment, st: ExperimentStatus) -> bool:
    required = [a for a in ex.spec.analyses or [] if a.required_for_completion]
    return bool(required) and all((s := _run_status(st, a.name)) is not None and s.phase == SUCCESSFUL
                                  for a in required)


def is_terminating(ex: Experiment, st: ExperimentStatus) -> bool:
    templates = st.template_statuses or []
    return (bool(ex.spec.terminate) or st.phase in COMPLETED
            or (bool(templates) and all(t.status in COMPLETED for t in templates))  # the duration passed
            or any(t.status in (FAILED, ERROR) for t in templates)
            or any(r.phase in (FAILED, ERROR, INCONCLUSIVE) for r in st.analysis_runs or [])
            or _required_successful(ex, st))


def _passed_duration(ex: Experiment, st: ExperimentStatus, now: datetime) -> tuple[bool, datetime | None]:
    seconds = duration_seconds(ex)
    if seconds is None or st.available_at is None:
        return False, None
    ends = st.available_at + timedelta(seconds=seconds)
    return now > ends, ends


# ---------------------------------------------------------------- the plan


def plan_experiment(observed: ExperimentObserved, now: datetime) -> ExperimentPlan:
    now = now.astimezone(UTC).replace(microsecond=0)
    ex = observed.experiment
    old = ex.status or ExperimentStatus()
    st = ExperimentStatus.load(old.model_dump(mode="json", by_alias=True, exclude_none=True))
    name = str(ex.metadata.name)
    rss = {str((d.get("metadata") or {}).get("annotations", {}).get(TEMPLATE_NAME)): d
           for d in observed.replica_sets if _owned(d, name)
           and (d.get("metadata") or {}).get("annotations", {}).get(EXPERIMENT_NAME) == name}
    runs = {str(d["metadata"]["name"]): d for d in observed.analysis_runs if _owned(d, name)}
    services = {str(d["metadata"]["annotations"][TEMPLATE_NAME]): d for d in observed.services if _owned(d, name)
                and (d.get("metadata") or {}).get("annotations", {}).get(EXPERIMENT_NAME) == name
                and (d.get("metadata") or {}).get("annotations", {}).get(TEMPLATE_NAME)}
    p = _Pass(ex, old, st, now, rss, runs, observed.templates, services)
    problems = [pr for pr in [*experiment_problems(ex), *observed.problems] if pr.is_error]
    if problems:
        return _invalid(p, problems)
    p.terminating = is_terminating(ex, old)
    for template in ex.spec.templates:
        _reconcile_template(p, template)
    for analysis in ex.spec.analyses or []:
        _reconcile_run(p, analysis)
    _calculate_phase(p)
    _conditions(p)
    if st.phase != old.phase:
        kind = WARNING if st.phase in (FAILED, ERROR, INCONCLUSIVE) else NORMAL
        p.event(kind, f"Experiment{st.phase}", f"Experiment transitioned from {old.phase or ''} -> {st.phase}")
    _requeue(p)
    return _result(p)


def _result(p: _Pass) -> ExperimentPlan:
    future = [w for w in p.wake if w > p.now]
    requeue = min(future, default=None)
    return ExperimentPlan(p.st.model_dump(mode="json", by_alias=True, exclude_none=True), tuple(p.actions),
                          None if requeue is None else (requeue - p.now).total_seconds())


def _invalid(p: _Pass, problems: Sequence[Problem]) -> ExperimentPlan:
    message = problems_message(problems)
    before = next((c for c in p.old.conditions or [] if c.type == "InvalidSpec"), None)
    if before is None or before.message != message:
        p.event(WARNING, "InvalidSpec", message)
        _put_condition(p, "InvalidSpec", "True", "InvalidSpec", message)
    p.st.phase, p.st.message = ERROR, message
    return _result(p)


# ---------------------------------------------------------------- templates


def _wanted(p: _Pass, template: ExperimentTemplate) -> int:
    status = _template_status(p.old, template.name)
    if p.terminating or (status is not None and status.status in COMPLETED):
        return 0
    return 1 if template.replicas is None else template.replicas


def _reconcile_template(p: _Pass, template: ExperimentTemplate) -> None:
    before = _template_status(p.old, template.name)
    ts = before.model_copy(deep=True) if before is not None else TemplateStatus(name=template.name)
    prev_status = ts.status
    wanted = _wanted(p, template)
    rs = p.rss.get(template.name)
    if rs is None:
        if not p.terminating:
            doc = replicaset_doc(p.ex, template, wanted)
            p.actions.append(CreateReplicaSet(doc))
            p.event(NORMAL, "ScalingReplicaSet", f"Created ReplicaSet {doc['metadata']['name']} with {wanted} "
                    "replicas")
            ts.last_transition_time = p.now
    else:
        _service(p, rs, template, wanted, ts)
        _scale(p, rs, template, wanted, ts)
    status = (rs or {}).get("status") or {}
    counts = (int(status.get("replicas") or 0), int(status.get("readyReplicas") or 0),
              int(status.get("availableReplicas") or 0))
    if counts != (ts.replicas, ts.ready_replicas, ts.available_replicas):
        ts.last_transition_time = p.now
    ts.replicas, ts.updated_replicas, ts.ready_replicas, ts.available_replicas = counts[0], counts[0], *counts[1:]
    if ts.status not in COMPLETED:
        if wanted == ts.available_replicas:
            ts.status = SUCCESSFUL if _passed_duration(p.ex, p.old, p.now)[0] or p.terminating else RUNNING
        else:
            since = ts.last_transition_time or p.now
            deadline = since + timedelta(seconds=_deadline(p.ex))
            if p.now > deadline:
                ts.status = FAILED
                ts.message = f"Template '{template.name}' exceeded its progressDeadlineSeconds ({_deadline(p.ex)})"
            elif p.terminating:
                ts.status = SUCCESSFUL
            else:
                ts.status = PROGRESSING
                p.wake.append(deadline + timedelta(seconds=1))
    if prev_status != ts.status:
        message = f"Template '{template.name}' transitioned from {prev_status or ''} -> {ts.status}"
        kind = WARNING if ts.status in (FAILED, ERROR) else NORMAL
        p.event(kind, f"Template{ts.status}", message + (f": {ts.message}" if ts.message else ""))
    others = [t for t in p.st.template_statuses or [] if t.name != template.name]
    p.st.template_statuses = [*others, ts] if before is None else [
        ts if t.name == template.name else t for t in p.st.template_statuses or []]


def _scale(p: _Pass, rs: Mapping[str, Any], template: ExperimentTemplate, wanted: int, ts: TemplateStatus) -> None:
    meta = rs.get("metadata") or {}
    name = str(meta.get("name"))
    current = (rs.get("spec") or {}).get("replicas")
    current = 1 if current is None else int(current)
    if current == wanted:
        return
    if wanted == 0:
        delay = p.ex.spec.scale_down_delay_seconds
        delay = DEFAULT_SCALE_DOWN_DELAY if delay is None else delay
        deadline = parse_time((meta.get("annotations") or {}).get(SCALE_DOWN_DEADLINE))
        if delay > 0 and deadline is None:
            deadline = p.now + timedelta(seconds=delay)
            p.actions.append(AnnotateReplicaSet(name, {SCALE_DOWN_DEADLINE: format_time(deadline)}))
        if delay > 0 and deadline is not None and p.now < deadline:
            p.wake.append(deadline)
            return
    p.actions.append(ScaleReplicaSet(name, wanted))
    p.event(NORMAL, "ScalingReplicaSet", f"Scaled ReplicaSet {name} from {current} to {wanted}")
    ts.last_transition_time = p.now


def _service(p: _Pass, rs: Mapping[str, Any], template: ExperimentTemplate, wanted: int, ts: TemplateStatus) -> None:
    """A template's Service while it wants pods; deleted once its pods are all gone (Argo's order)."""
    svc = p.services.get(template.name)
    if template.service is not None and wanted != 0:
        if svc is None and (doc := service_doc(p.ex, template, rs)) is not None:
            p.actions.append(CreateService(doc))
            svc = doc
        if svc is not None:
            ts.service_name = str(svc["metadata"]["name"])
            ts.pod_template_hash = ((rs.get("metadata") or {}).get("labels") or {}).get(HASH_LABEL)
        return
    if svc is not None and int(((rs.get("status") or {}).get("availableReplicas")) or 0) == 0:
        p.actions.append(DeleteService(str(svc["metadata"]["name"])))
        ts.service_name = ts.pod_template_hash = None


# ---------------------------------------------------------------- analysis runs


def _reconcile_run(p: _Pass, analysis: ExperimentAnalysis) -> None:
    before = _run_status(p.old, analysis.name)
    rs = before.model_copy(deep=True) if before is not None else ExperimentRunStatus(name=analysis.name)
    _follow_run(p, analysis, rs)
    if (before.phase if before else None) != rs.phase and rs.phase:
        message = f"AnalysisRun '{analysis.name}' transitioned from {before.phase if before else ''} -> {rs.phase}"
        kind = WARNING if rs.phase in (FAILED, ERROR, INCONCLUSIVE) else NORMAL
        p.event(kind, f"AnalysisRun{rs.phase}", message + (f": {rs.message}" if rs.message else ""))
    others = [r for r in p.st.analysis_runs or [] if r.name != analysis.name]
    p.st.analysis_runs = [*others, rs] if before is None else [
        rs if r.name == analysis.name else r for r in p.st.analysis_runs or []]


def _follow_run(p: _Pass, analysis: ExperimentAnalysis, rs: ExperimentRunStatus) -> None:
    if p.old.available_at is None:
        return  # runs start once every template is available
    if not rs.analysis_run:
        if p.terminating:
            return
        try:
            doc = run_doc(p.ex, analysis, templates=p.templates, available_at=p.old.available_at)
        except (SpecError, ArgError) as err:
            rs.phase, rs.message = ERROR, f"Failed to create AnalysisRun for analysis '{analysis.name}': {err}"
            return
        p.actions.append(CreateAnalysisRun(doc))
        rs.phase, rs.analysis_run = PENDING, str(doc["metadata"]["name"])
        return
    if rs.phase in COMPLETED:
        return
    run = p.runs.get(rs.analysis_run)
    if run is None:
        rs.phase, rs.message = ERROR, f"AnalysisRun {rs.analysis_run!r} not found"
        return
    status = run.get("status") or {}
    if p.terminating and status.get("phase") not in COMPLETED and not (run.get("spec") or {}).get("terminate"):
        p.actions.append(TerminateAnalysisRun(rs.analysis_run))
        p.event(NORMAL, "AnalysisRunTerminating", f"Terminating {analysis.name} ({rs.analysis_run})")
    if status.get("phase"):
        rs.phase, rs.message = str(status["phase"]), status.get("message") or None
        if rs.phase == SUCCESSFUL and (lacking := evidence.missing(run)) is not None:
            rs.phase, rs.message = FAILED, f"ended without evidence: {lacking}"


# ---------------------------------------------------------------- phase and conditions


def _assess_templates(p: _Pass) -> tuple[str, str | None]:
    worst, message = SUCCESSFUL, None
    for template in p.ex.spec.templates:
        ts = _template_status(p.st, template.name)
        code = ts.status if ts is not None and ts.status else PROGRESSING
        if _worse(_TEMPLATE_ORDER, worst, code):
            worst, message = code, ts.message if ts is not None else None
    return (PENDING if worst == PROGRESSING else worst), message


def _assess_runs(p: _Pass) -> tuple[str, str | None]:
    worst, message = SUCCESSFUL, None
    for analysis in p.ex.spec.analyses or []:
        rs = _run_status(p.st, analysis.name)
        phase = rs.phase if rs is not None and rs.phase else PENDING
        if _worse(_RUN_ORDER, worst, phase):
            worst, message = phase, rs.message if rs is not None else None
    if _required_successful(p.ex, p.st) and worst == SUCCESSFUL:
        return SUCCESSFUL, REQUIRED_DONE
    return (RUNNING if worst == PENDING else worst), message


def _calculate_phase(p: _Pass) -> None:
    st = p.st
    if not st.phase:
        st.phase = PENDING
        return
    if st.phase not in (PENDING, RUNNING):
        return
    templates, template_message = _assess_templates(p)
    runs, run_message = _assess_runs(p)
    if templates == RUNNING and st.available_at is None:
        st.available_at = p.now
    if templates in COMPLETED:
        if templates != SUCCESSFUL:
            st.phase, st.message = templates, template_message
        elif runs in COMPLETED:  # (runs still going are being terminated: their end decides, see the rules)
            st.phase, st.message = runs, run_message
    elif (runs in COMPLETED and runs != SUCCESSFUL) or _required_successful(p.ex, st):
        st.phase, st.message = runs, run_message
    else:
        st.phase, st.message = templates, template_message


def _put_condition(p: _Pass, kind: str, status: str, reason: str, message: str) -> None:
    found = next((c for c in p.st.conditions or [] if c.type == kind), None)
    if found is not None and (found.status, found.reason, found.message) == (status, reason, message):
        return
    since = found.last_transition_time if found is not None and found.status == status else p.now
    cond = ExperimentCondition(type=kind, status=status, reason=reason, message=message,  # type: ignore[arg-type]
                               last_update_time=p.now, last_transition_time=since)
    p.st.conditions = [*(c for c in p.st.conditions or [] if c.type != kind), cond]


def _conditions(p: _Pass) -> None:
    name, phase = p.ex.metadata.name, p.st.phase
    p.st.conditions = [c for c in p.st.conditions or [] if c.type != "InvalidSpec"] or None
    if phase == SUCCESSFUL:
        _put_condition(p, "Progressing", "False", "ExperimentCompleted",
                       f'Experiment "{name}" has successfully ran and completed.')
    elif phase == RUNNING:
        _put_condition(p, "Progressing", "True", "NewReplicaSetAvailable", f'Experiment "{name}" is running.')
    elif phase == PENDING:
        _put_condition(p, "Progressing", "True", "ReplicaSetUpdated", f'Experiment "{name}" is progressing.')


def _requeue(p: _Pass) -> None:
    if is_terminating(p.ex, p.st):
        return
    passed, ends = _passed_duration(p.ex, p.st, p.now)
    if ends is not None and not passed:
        p.wake.append(ends + timedelta(seconds=1))  # "passed" is strictly after the end
