"""The canary `experiment` step: the Experiment a Rollout creates, follows and terminates. Pure.

Rules (Argo's `rollout/experiment.go`, docs/features/experiment.md "Integration With Rollouts"):
- Entering the step (not while aborted, `spec.paused`, promoted or promote-full; once the
  stable ReplicaSet exists) creates an Experiment owned by the Rollout (controller
  ownerReference) named `<rollout>-<podhash>-<revision>-<stepIndex>`, with `-1`, `-2`...
  when that name is taken by an Experiment that is not this step's (terminated, or ended
  before a retry). The one recorded in `status.canary.currentExperiment` is the step's; else
  the newest of its names that is neither terminated nor completed is adopted (its create
  went through, the status write was lost); else the next free name is created. One
  recorded and gone (deleted by hand) is created again under its name.
- The Experiment: labels the Rollout's, `rollouts-pod-template-hash: <podhash>` and the
  controller-instance-id; annotation `rollout.argoproj.io/revision`; `duration`,
  `dryRun`, `analysisRunMetadata`, `scaleDownDelaySeconds` from the step and the Rollout's
  `progressDeadlineSeconds`. Each template is the stable (`specRef: stable`: the stable
  ReplicaSet's pod template) or canary (`specRef: canary`: the Rollout's pod template)
  pods, `replicas`, the step's selector (else the Rollout's), the step's metadata labels
  added to the pods and the selector, its annotations to the pods, its `service`. Analysis args are
  resolved as for analysis steps (`valueFrom.podTemplateHashValue`, `fieldRef`), so the
  Experiment carries literal values.
- Following it: Successful -> the step is done; Failed/Error -> abort ("Experiment
  analysis phase is error/failed: <message>"); Inconclusive -> pause
  `InconclusiveExperiment`; promote (the pause removed, `controllerPause` kept) completes
  the step, as promote on an inconclusive step analysis does; else wait.
  `currentExperiment` names it while the step lasts.
- Terminating (`spec.terminate: true`): on abort every Experiment of the aborted revision
  that is not already terminated (so a retry runs a fresh one); otherwise every running
  Experiment the current step does not follow (a promotion, promote-full, a skipped step, a
  new revision).
- History (Argo's FilterExperimentsToDelete): a completed Experiment the step does not
  follow is deleted when no ReplicaSet of the Rollout has its pod hash any more, or when it
  is beyond `spec.analysis.successfulRunHistoryLimit` (Successful, default 5) or
  `unsuccessfulRunHistoryLimit` (Failed, Error, Inconclusive, default 5), newest kept.
- Pure: nothing here reads a clock or the cluster.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from analysis import args as arguments
from analysis.args import ArgError
from analysis.model import TemplateRef
from rollouts.plan import transitions
from rollouts.plan.experiment import COMPLETED, ERROR, FAILED, INCONCLUSIVE, SUCCESSFUL
from rollouts.plan.experiment_checks import load_step
from rollouts.plan.replicas import owner_reference
from rollouts.plan.runs import DEFAULT_RUN_HISTORY, RunSpecError, pick_named
from rollouts.plan.state import Pass
from rollouts.platform.actions import NORMAL, CreateExperiment, DeleteExperiment, TerminateExperiment
from rollouts.platform.labels import HASH_LABEL, INSTANCE_LABEL, REVISION
from rollouts.spec.experiment import ExperimentStep
from rollouts.spec.model import PauseCondition, Rollout, StepKind
from rollouts.spec.problems import Problem

__all__ = ["INCONCLUSIVE_EXPERIMENT", "collect", "experiment_name", "follow", "template_refs", "terminate_unwanted"]

INCONCLUSIVE_EXPERIMENT = "InconclusiveExperiment"


def experiment_name(rollout: str, pod_hash: str, revision: int, step_index: int) -> str:
    return f"{rollout}-{pod_hash}-{revision}-{step_index}"


def _name(doc: Mapping[str, Any]) -> str:
    return str((doc.get("metadata") or {}).get("name"))


def _phase(doc: Mapping[str, Any]) -> str | None:
    phase = (doc.get("status") or {}).get("phase")
    return str(phase) if phase else None


def _terminated(doc: Mapping[str, Any]) -> bool:
    return bool((doc.get("spec") or {}).get("terminate"))


def owned(p: Pass) -> list[Mapping[str, Any]]:
    name = p.ro.metadata.name
    return [d for d in p.observed.experiments
            if any(r.get("kind") == "Rollout" and r.get("name") == name
                   for r in (d.get("metadata") or {}).get("ownerReferences") or [])]


def pick(experiments: Sequence[Mapping[str, Any]], *, base: str,
         recorded: str | None) -> tuple[Mapping[str, Any] | None, str]:
    """(the Experiment to follow, or None) and the name to create when it is None."""
    return pick_named(experiments, base=base, sep="-", recorded=recorded,
                      live=lambda d: not _terminated(d) and _phase(d) not in COMPLETED)


def _rs_doc(p: Pass, pod_hash: str | None) -> Mapping[str, Any] | None:
    view = p.view(pod_hash)
    return next((d for d in p.observed.replica_sets if view is not None and _name(d) == view.name), None)


def experiment_doc(p: Pass, step: ExperimentStep, name: str) -> dict[str, Any]:
    """The Experiment for the current step (raises ArgError on an arg that cannot be resolved)."""
    ro, meta = p.ro, p.ro.metadata
    stable = _rs_doc(p, p.st.stable_rs)
    stable_spec = (stable or {}).get("spec") or {}
    rollout_selector = ro.spec.selector.dump() if ro.spec.selector else {}
    templates = []
    for item in step.templates:
        if item.spec_ref == "stable":
            pod, min_ready = stable_spec.get("template") or {}, stable_spec.get("minReadySeconds")
        else:
            pod, min_ready = ro.spec.template or {}, ro.spec.min_ready_seconds
        pod = json.loads(json.dumps(pod))
        pod_meta = pod.setdefault("metadata", {})
        labels = {k: v for k, v in (pod_meta.get("labels") or {}).items() if k != HASH_LABEL}
        selector = item.selector.dump() if item.selector else json.loads(json.dumps(rollout_selector))
        match = {k: v for k, v in (selector.get("matchLabels") or {}).items() if k != HASH_LABEL}
        extra = item.metadata
        labels.update((extra.labels if extra else None) or {})
        match.update((extra.labels if extra else None) or {})
        if extra is not None and extra.annotations:
            pod_meta["annotations"] = {**(pod_meta.get("annotations") or {}), **extra.annotations}
        pod_meta["labels"], selector["matchLabels"] = labels, match
        template: dict[str, Any] = {"name": item.name, "selector": selector, "template": pod}
        if item.replicas is not None:
            template["replicas"] = item.replicas
        if item.service is not None:
            template["service"] = item.service.dump()
        if min_ready:
            template["minReadySeconds"] = min_ready
        templates.append(template)
    analyses = []
    for analysis in step.analyses or []:
        resolved = arguments.resolve_rollout_args(analysis.args, ro.dump(), stable_hash=p.st.stable_rs,
                                                  latest_hash=p.pod_hash)
        entry = analysis.dump()
        if resolved:
            entry["args"] = [arg.dump() for arg in resolved]
        analyses.append(entry)
    spec: dict[str, Any] = {"templates": templates}
    if step.duration is not None:
        spec["duration"] = step.duration if isinstance(step.duration, str) else f"{step.duration}s"
    if ro.spec.progress_deadline_seconds is not None:
        spec["progressDeadlineSeconds"] = ro.spec.progress_deadline_seconds
    if analyses:
        spec["analyses"] = analyses
    for key, value in (("dryRun", step.dry_run), ("measurementRetention", step.measurement_retention)):
        if value:
            spec[key] = [rule.dump() for rule in value]
    if step.analysis_run_metadata is not None:
        spec["analysisRunMetadata"] = step.analysis_run_metadata.dump()
    if step.scale_down_delay_seconds is not None:
        spec["scaleDownDelaySeconds"] = step.scale_down_delay_seconds
    labels = {**(meta.labels or {}), HASH_LABEL: p.pod_hash}
    if (instance := (meta.labels or {}).get(INSTANCE_LABEL)) is not None:
        labels[INSTANCE_LABEL] = instance
    return {
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Experiment",
        "metadata": {"name": name, "namespace": meta.namespace, "labels": labels,
                     "annotations": {REVISION: str(p.revision)}, "ownerReferences": [owner_reference(ro)]},
        "spec": spec,
    }


def template_refs(rollout: Rollout) -> list[TemplateRef]:
    """The AnalysisTemplates the Rollout's experiment steps name (steps that do not load name none)."""
    found = []
    for step in rollout.steps:
        if step.experiment is None:
            continue
        model, _ = load_step(step.experiment, "")
        found += [TemplateRef(template_name=a.template_name, cluster_scope=a.cluster_scope)
                  for a in (model.analyses or [] if model else [])]
    return found


# ---------------------------------------------------------------- one plan pass


def follow(p: Pass) -> None:
    """Create, read and act on the current step's Experiment (see the rules)."""
    cs = p.st.canary
    assert cs is not None
    step, index = p.step, p.index
    if (p.aborted or p.promoted or p.st.promote_full or step is None or step.kind is not StepKind.EXPERIMENT
            or step.experiment is None):
        cs.current_experiment = None
        return
    if p.ro.spec.paused:
        return
    path = f"spec.strategy.canary.steps[{index}].experiment"
    model, problems = load_step(step.experiment, path)
    if model is None:
        raise RunSpecError(problems[0])
    base = experiment_name(str(p.ro.metadata.name), p.pod_hash, p.revision, index)
    doc, name = pick(owned(p), base=base, recorded=cs.current_experiment)
    if doc is None:
        if p.view(p.st.stable_rs) is None:
            return  # no stable ReplicaSet to copy yet
        # (recorded but gone, e.g. deleted by hand: created again under its name; a create
        # that finds it there after all is success, the name being deterministic)
        try:
            created = experiment_doc(p, model, name)
        except ArgError as err:
            raise RunSpecError(Problem(f"{path}.analyses", str(err), "fix the analysis args")) from err
        p.actions.append(CreateExperiment(created))
        p.event(NORMAL, "ExperimentCreated", f"Created Experiment '{name}'")
        cs.current_experiment = name
        return
    cs.current_experiment = name
    phase = _phase(doc)
    if phase in (FAILED, ERROR):
        message = (doc.get("status") or {}).get("message")
        transitions.abort(p, "Experiment analysis phase is error/failed" + (f": {message}" if message else ""),
                          cause=transitions.AbortCause.ANALYSIS)
    elif phase == INCONCLUSIVE:
        st = p.st
        resumed = bool(st.controller_pause) and not st.pause_conditions
        if resumed:
            p.step_done = True  # a human promoted the inconclusive pause: the step is skipped, as promote does
        elif not any(c.reason == INCONCLUSIVE_EXPERIMENT for c in st.pause_conditions or []):
            st.pause_conditions = [*(st.pause_conditions or []),
                                   PauseCondition(reason=INCONCLUSIVE_EXPERIMENT, start_time=p.now)]
            st.controller_pause = True
            p.event(NORMAL, "RolloutPaused", f"Rollout is paused ({INCONCLUSIVE_EXPERIMENT})")
    elif phase == SUCCESSFUL:
        p.step_done = True


def terminate_unwanted(p: Pass) -> None:
    """Terminate the Experiments no longer wanted (see the rules)."""
    cs = p.st.canary
    wanted = cs.current_experiment if cs is not None and not p.aborted and not p.promoted else None
    for doc in owned(p):
        if _terminated(doc):
            continue
        labels = (doc.get("metadata") or {}).get("labels") or {}
        aborted_here = p.aborted and labels.get(HASH_LABEL) == p.pod_hash
        if aborted_here or (_phase(doc) not in COMPLETED and _name(doc) != wanted):
            p.actions.append(TerminateExperiment(_name(doc)))


def collect(p: Pass) -> None:
    """Delete the completed Experiments beyond the history (see the rules)."""
    cs = p.st.canary
    followed = cs.current_experiment if cs is not None else None
    limits = p.ro.spec.analysis
    keep = {True: _limit(limits.successful_run_history_limit if limits else None),
            False: _limit(limits.unsuccessful_run_history_limit if limits else None)}
    hashes = {v.pod_hash for v in p.views}
    done = [d for d in owned(p) if _phase(d) in COMPLETED and _name(d) != followed]
    kept = {True: 0, False: 0}
    for doc in sorted(done, key=_age, reverse=True):  # newest first: those are kept
        successful = _phase(doc) == SUCCESSFUL
        pod_hash = ((doc.get("metadata") or {}).get("labels") or {}).get(HASH_LABEL)
        if pod_hash in hashes and kept[successful] < keep[successful]:
            kept[successful] += 1
        else:
            p.actions.append(DeleteExperiment(_name(doc)))


def _limit(value: int | None) -> int:
    return DEFAULT_RUN_HISTORY if value is None else max(value, 0)


def _age(doc: Mapping[str, Any]) -> tuple[str, str]:
    meta = doc.get("metadata") or {}
    return str(meta.get("creationTimestamp") or ""), str(meta.get("name"))
