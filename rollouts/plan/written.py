"""The observed objects as one plan round's own writes leave them, so the plan can go on.

Rules (how `plan` goes through every transition that needs no waiting in one call):
- `after(observed, actions, status)` applies a round's actions to the objects it
  observed, the way the API server would store them, and nothing more: a ReplicaSet
  created or scaled up has no new pod yet (created/ready/available stay as observed),
  so a weight is never raised onto pods that the next round merely asked for; an
  AnalysisRun created is Pending; a terminated run has `spec.terminate`; a pod,
  ReplicaSet or AnalysisRun deleted is gone (its replacement pod is not there yet). A
  VirtualService or DestinationRule keeps the resourceVersion it was observed with.
  The Rollout carries the round's status.
- `may_follow(first, entering)`: whether the entering round's actions may go with the
  first round's. Not when the entering round scales or creates a ReplicaSet (the pods
  start in the next pass, after the step change is written: the same writes either
  way). Not when both rounds change traffic (a Service selector, DestinationRule or
  VirtualService write): a plan makes at most one traffic change, so every weight of
  the steps reaches the VirtualService, and a selector leaves pods only after the weight
  patch that took their traffic away was written (the next reconcile, from that write's
  watch event, goes on).
- Pure: values in, values out; the inputs are never mutated.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from rollouts.plan.state import Observed
from rollouts.platform.actions import (
    Action,
    AnnotateReplicaSet,
    CreateAnalysisRun,
    CreateReplicaSet,
    DeleteAnalysisRun,
    DeletePod,
    DeleteReplicaSet,
    PatchDestinationRule,
    PatchVirtualService,
    ScaleReplicaSet,
    SetServiceSelector,
    TerminateAnalysisRun,
)  # fmt: skip
from rollouts.platform.labels import HASH_LABEL, MANAGED_BY
from rollouts.spec.model import RolloutStatus

Doc = dict[str, Any]
TRAFFIC = (SetServiceSelector, PatchVirtualService, PatchDestinationRule)
SCALING = (CreateReplicaSet, ScaleReplicaSet)


def may_follow(first: Iterable[Action], entering: Iterable[Action]) -> bool:
    """Whether the entering round's actions may go with the first round's (see the rules)."""
    entering = list(entering)
    if any(isinstance(action, SCALING) for action in entering):
        return False
    return not (any(isinstance(a, TRAFFIC) for a in entering) and any(isinstance(a, TRAFFIC) for a in first))


def after(observed: Observed, actions: Sequence[Action], status: RolloutStatus) -> Observed:
    replica_sets = [_copy(doc) for doc in observed.replica_sets]
    runs = [_copy(doc) for doc in observed.analysis_runs]
    services = [_copy(doc) for doc in observed.services]
    virtual_services = [_copy(doc) for doc in observed.virtual_services]
    rule = _copy(observed.destination_rule) if observed.destination_rule is not None else None
    pods = list(observed.pods)
    name = str(observed.rollout.metadata.name)
    for action in actions:
        match action:
            case CreateReplicaSet(doc=doc):
                replica_sets.append(copy.deepcopy(doc))
            case ScaleReplicaSet(name=target, replicas=count):
                for doc in _named(replica_sets, target):
                    doc["spec"] = {**(doc.get("spec") or {}), "replicas": count}
            case AnnotateReplicaSet(name=target, annotations=changes):
                for doc in _named(replica_sets, target):
                    doc["metadata"] = _annotated(doc.get("metadata") or {}, changes)
            case CreateAnalysisRun(doc=doc):
                runs.append(copy.deepcopy(doc))
            case TerminateAnalysisRun(name=target):
                for doc in _named(runs, target):
                    doc["spec"] = {**(doc.get("spec") or {}), "terminate": True}
            case DeletePod(name=target):
                pods = [doc for doc in pods if _name(doc) != target]
            case DeleteReplicaSet(name=target):
                replica_sets = [doc for doc in replica_sets if _name(doc) != target]
            case DeleteAnalysisRun(name=target):
                runs = [doc for doc in runs if _name(doc) != target]
            case SetServiceSelector(service=target, hash=pod_hash):
                for doc in _named(services, target):
                    spec = doc.get("spec") or {}
                    doc["spec"] = {**spec, "selector": {**(spec.get("selector") or {}), HASH_LABEL: pod_hash}}
                    doc["metadata"] = _annotated(doc.get("metadata") or {}, {MANAGED_BY: name})
            case PatchVirtualService():
                for doc in _named(virtual_services, action.name):
                    doc["spec"] = {**(doc.get("spec") or {}), **copy.deepcopy(action.merge_patch()["spec"])}
            case PatchDestinationRule() if rule is not None and _name(rule) == action.name:
                rule["spec"] = {**(rule.get("spec") or {}), "subsets": copy.deepcopy(action.subsets)}
                rule["metadata"] = _annotated(rule.get("metadata") or {}, action.annotations)
    return dataclasses.replace(
        observed, rollout=observed.rollout.model_copy(update={"status": status}), replica_sets=replica_sets,
        analysis_runs=runs, services=services, virtual_services=virtual_services, destination_rule=rule, pods=pods)


def _copy(doc: Mapping[str, Any]) -> Doc:
    """A copy whose top-level sections can be replaced without touching the original."""
    return dict(doc)


def _name(doc: Mapping[str, Any]) -> str | None:
    return (doc.get("metadata") or {}).get("name")


def _named(docs: list[Doc], name: str) -> list[Doc]:
    return [doc for doc in docs if _name(doc) == name]


def _annotated(meta: Mapping[str, Any], changes: Mapping[str, str | None]) -> Doc:
    notes = {**(meta.get("annotations") or {})}
    for key, value in changes.items():
        if value is None:
            notes.pop(key, None)
        else:
            notes[key] = value
    return {**meta, "annotations": notes}
