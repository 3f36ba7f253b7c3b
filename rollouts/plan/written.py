"""The observed objects as one plan round's own writes leave them, so the plan can go on.

Rules (how `plan` goes through every transition that needs no waiting in one call):
- `after(observed, actions, status)` applies a round's actions to the objects it
  observed, the way the API server would store them (each action's own Request,
  platform.actions.apply_request), and nothing more: a ReplicaSet
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

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from rollouts.plan.state import Observed
from rollouts.platform.actions import (
    Action,
    CreateReplicaSet,
    Event,
    PatchDestinationRule,
    PatchVirtualService,
    ScaleReplicaSet,
    SetServiceSelector,
    apply_request,
)  # fmt: skip
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
    """The objects as the API server would store them after `actions` (each one's Request,
    applied with platform.actions.apply_request: the action's meaning is written there)."""
    rule = observed.destination_rule
    objects: dict[str, list[Doc]] = {
        "ReplicaSet": [_copy(d) for d in observed.replica_sets],
        "AnalysisRun": [_copy(d) for d in observed.analysis_runs],
        "Service": [_copy(d) for d in observed.services],
        "VirtualService": [_copy(d) for d in observed.virtual_services],
        "DestinationRule": [_copy(rule)] if rule is not None else [],
        "Pod": [_copy(d) for d in observed.pods],
        "Experiment": [_copy(d) for d in observed.experiments],
    }
    namespace, name = str(observed.rollout.metadata.namespace or "default"), str(observed.rollout.metadata.name)
    for action in actions:
        if isinstance(action, Event):
            continue
        request = action.request(namespace, name)
        objects[request.kind] = apply_request(objects[request.kind], request)
    return dataclasses.replace(
        observed, rollout=observed.rollout.model_copy(update={"status": status}),
        replica_sets=objects["ReplicaSet"], analysis_runs=objects["AnalysisRun"], services=objects["Service"],
        virtual_services=objects["VirtualService"],
        destination_rule=objects["DestinationRule"][0] if objects["DestinationRule"] else None, pods=objects["Pod"],
        experiments=objects["Experiment"])


def _copy(doc: Mapping[str, Any]) -> Doc:
    """A copy whose top-level sections can be replaced without touching the original."""
    return dict(doc)
