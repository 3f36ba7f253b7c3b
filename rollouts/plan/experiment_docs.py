"""The documents an Experiment creates: its ReplicaSets, Services and AnalysisRuns. Pure.

Rules (Argo's `experiments/replicaset.go`, `service.go`, `experiment.go` newAnalysisRun,
`utils/template` ResolveExperimentArgsValue; rollouts.plan.experiment decides when):
- A template's ReplicaSet is `<experiment>-<template>`, owned by the Experiment (controller
  ownerReference), annotated `experiment.argoproj.io/name` and
  `experiment.argoproj.io/template-name`, its pods and selector labelled with the
  template's own `rollouts-pod-template-hash`: the pod template's hash salted with the
  Experiment and template names (never a Rollout ReplicaSet's hash, see
  rollouts.plan.experiment), plus the Experiment's controller-instance-id label.
- A template's Service is `service.name` or the ReplicaSet's name, selects the
  ReplicaSet's pods, has a port per container port (none: no Service), owned and
  annotated as the ReplicaSet.
- An analysis's run is `<experiment>-<analysis>`, owned by the Experiment, built by
  analysis.build from the templates given, `analysisRunMetadata` and the instance-id as
  labels; arg values may name `{{templates.<name>.podTemplateHash}}`,
  `{{templates.<name>.replicaset.name}}`, `{{experiment.availableAt}}` and
  `{{experiment.finishedAt}}` (an unknown one is an ArgError).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from analysis.args import ArgError
from analysis.build import build_run, template_resolver
from analysis.model import Argument, DurationError, TemplateRef, parse_duration
from rollouts.platform.labels import HASH_LABEL, INSTANCE_LABEL, short_hash
from rollouts.platform.times import format_time
from rollouts.spec.experiment import Experiment, ExperimentAnalysis, ExperimentTemplate

__all__ = ["EXPERIMENT_NAME", "TEMPLATE_NAME", "duration_seconds", "owner_reference", "replicaset_doc", "run_doc",
           "service_doc", "template_hash"]

EXPERIMENT_NAME = "experiment.argoproj.io/name"
TEMPLATE_NAME = "experiment.argoproj.io/template-name"
_PLACEHOLDER = re.compile(r"\{\{\s*([^{}]+?)\s*\}\}")


def template_hash(experiment: str, template: ExperimentTemplate) -> str:
    """The pod-template hash of a template's ReplicaSet (salted: see the rules)."""
    clean = json.loads(json.dumps(template.template or {}))
    labels = (clean.get("metadata") or {}).get("labels")
    if isinstance(labels, dict):
        labels.pop(HASH_LABEL, None)
    return short_hash({"template": clean, "experiment": experiment, "templateName": template.name})


def owner_reference(ex: Experiment) -> dict[str, Any]:
    owner = {"apiVersion": ex.api_version, "kind": "Experiment", "name": ex.metadata.name, "uid": ex.metadata.uid,
             "controller": True, "blockOwnerDeletion": True}
    return {key: value for key, value in owner.items() if value is not None}


def duration_seconds(ex: Experiment) -> int | None:
    try:
        return None if ex.spec.duration in (None, "") else parse_duration(ex.spec.duration)
    except DurationError:
        return None


def replicaset_doc(ex: Experiment, template: ExperimentTemplate, replicas: int) -> dict[str, Any]:
    """The ReplicaSet of one template (see the rules for its name, labels and annotations)."""
    pod_hash = template_hash(str(ex.metadata.name), template)
    pod = json.loads(json.dumps(template.template or {}))
    pod_meta = pod.setdefault("metadata", {})
    pod_meta["labels"] = {**(pod_meta.get("labels") or {}), HASH_LABEL: pod_hash}
    selector = template.selector.dump() if template.selector else {}
    selector["matchLabels"] = {**(selector.get("matchLabels") or {}), HASH_LABEL: pod_hash}
    spec: dict[str, Any] = {"replicas": replicas, "selector": selector, "template": pod}
    if template.min_ready_seconds:
        spec["minReadySeconds"] = template.min_ready_seconds
    labels = dict(pod_meta["labels"])
    instance = (ex.metadata.labels or {}).get(INSTANCE_LABEL)
    if instance:
        labels[INSTANCE_LABEL] = instance
    return {
        "apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {"name": f"{ex.metadata.name}-{template.name}", "namespace": ex.metadata.namespace,
                     "labels": labels,
                     "annotations": {EXPERIMENT_NAME: str(ex.metadata.name), TEMPLATE_NAME: template.name},
                     "ownerReferences": [owner_reference(ex)]},
        "spec": spec,
    }


def service_doc(ex: Experiment, template: ExperimentTemplate, rs: Mapping[str, Any]) -> dict[str, Any] | None:
    """The Service of a template with `service` (None when its pods declare no port): named
    `service.name` or as the ReplicaSet, selecting the ReplicaSet's pods, a port per
    container port, owned by the Experiment and annotated as its ReplicaSets are."""
    pod = ((rs.get("spec") or {}).get("template") or {})
    ports = []
    for container in (pod.get("spec") or {}).get("containers") or []:
        for port in container.get("ports") or []:
            entry = {"port": port["containerPort"], "targetPort": port["containerPort"]}
            entry.update({key: port[key] for key in ("name", "protocol") if port.get(key)})
            ports.append(entry)
    if not ports:
        return None
    name = (template.service.name if template.service else None) or str((rs.get("metadata") or {}).get("name"))
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": ex.metadata.namespace,
                         "annotations": {EXPERIMENT_NAME: str(ex.metadata.name), TEMPLATE_NAME: template.name},
                         "ownerReferences": [owner_reference(ex)]},
            "spec": {"selector": dict((pod.get("metadata") or {}).get("labels") or {}), "ports": ports}}


def resolve_args(ex: Experiment, args: Sequence[Argument], available_at: datetime | None) -> list[Argument]:
    values: dict[str, str] = {}
    if available_at is not None:
        values["experiment.availableAt"] = format_time(available_at)
        if (seconds := duration_seconds(ex)) is not None:
            values["experiment.finishedAt"] = format_time(available_at + timedelta(seconds=seconds))
    for template in ex.spec.templates:
        values[f"templates.{template.name}.podTemplateHash"] = template_hash(str(ex.metadata.name), template)
        values[f"templates.{template.name}.replicaset.name"] = f"{ex.metadata.name}-{template.name}"

    def one(match: re.Match[str]) -> str:
        key = match.group(1)
        if key.startswith("args."):
            return match.group(0)  # the run's own placeholders, resolved when it measures
        if key not in values:
            raise ArgError(f"{{{{{key}}}}} has no value in this experiment (known: {', '.join(sorted(values))})")
        return values[key]

    return [arg.model_copy(update={"value": _PLACEHOLDER.sub(one, arg.value)}) if arg.value is not None else arg
            for arg in args]


def run_doc(ex: Experiment, analysis: ExperimentAnalysis, *, templates: Sequence[Mapping[str, Any]],
            available_at: datetime | None) -> dict[str, Any]:
    """The AnalysisRun of one analysis (raises SpecError / ArgError)."""
    resolve = template_resolver(templates)

    extra = ex.spec.analysis_run_metadata
    labels = dict((extra.labels if extra else None) or {})
    instance = (ex.metadata.labels or {}).get(INSTANCE_LABEL)
    if instance:
        labels[INSTANCE_LABEL] = instance
    run = build_run(
        name=f"{ex.metadata.name}-{analysis.name}", namespace=str(ex.metadata.namespace or "default"),
        templates=[resolve(TemplateRef(template_name=analysis.template_name, cluster_scope=analysis.cluster_scope))],
        args=resolve_args(ex, analysis.args or [], available_at), labels=labels,
        annotations=dict((extra.annotations if extra else None) or {}), owner=owner_reference(ex),
        dry_run=ex.spec.dry_run or (), measurement_retention=ex.spec.measurement_retention or (), resolve_ref=resolve,
    )
    return run.model_dump(mode="json", by_alias=True, exclude_none=True)
