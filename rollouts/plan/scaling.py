"""How many pods each ReplicaSet of a Rollout gets in this pass (the numbers are in replicas.py).

Rules (argo-rollouts.md §1.2, §1.4, §2.3):
- The new ReplicaSet is created at the size this pass wants (never at 0 then scaled),
  named `<rollout>-<hash>`, with the next revision; a ReplicaSet brought back (a
  rollback to an older template) is given the next revision again.
- Traffic-routed canary: the canary gets ceil(weight x replicas / 100) pods (or what
  setCanaryScale says); all pods past the last step, on promote-full and once promoted;
  the stable keeps `spec.replicas`. On abort the canary keeps its pods for
  `abortScaleDownDelaySeconds` (default 30) after `abortedAt`, then goes to 0; 0 means
  the canary is never scaled down on abort.
- Basic canary: the replica ratio is the traffic split (`basic_canary_counts`), older
  ReplicaSets are scaled down within maxUnavailable.
- Older ReplicaSets of a routed canary (a superseded canary, the previous stable) keep
  their pods while a Service or subset still selects them, then get the annotation
  `scale-down-deadline` = now + `scaleDownDelaySeconds` (default 30; 0 = at once) and
  are scaled to 0 once it has passed (Argo's delay, applied to superseded canaries too:
  issue #4534). The annotation is removed from a ReplicaSet that is current again.
- `at_desired` (may the step complete / the weight rise?): the new ReplicaSet has
  exactly the pods it wants, all available, and the stable exactly its own (basic
  canary: and no older pod is still available).
- Revision history (Argo's cleanupRollouts): of the older ReplicaSets (neither the new
  one nor the stable one), the oldest revisions beyond `revisionHistoryLimit` (default
  10) are deleted, each only once it is asked for 0 pods, has none left and is past
  any scale-down deadline (one that is not waits, and is not replaced by a newer one).
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from datetime import timedelta
from typing import Any

from rollouts.plan.replicas import (
    ReplicaSetView,
    basic_canary_counts,
    basic_old_scale_down,
    new_replicaset,
    routed_canary_replicas,
    surge_and_unavailable,
)
from rollouts.plan.state import Pass
from rollouts.plan.steplist import canary_scale_at, set_weight_at
from rollouts.platform.actions import NORMAL, AnnotateReplicaSet, CreateReplicaSet, DeleteReplicaSet, ScaleReplicaSet
from rollouts.platform.labels import DESIRED_REPLICAS, REVISION, SCALE_DOWN_DEADLINE  # fmt: skip
from rollouts.platform.times import format_time

DEFAULT_DELAY = 30
DEFAULT_REVISION_HISTORY = 10


def scale_to(p: Pass, rs: ReplicaSetView, count: int) -> None:
    if rs.replicas != count:
        way = "up" if count > rs.replicas else "down"
        p.actions.append(ScaleReplicaSet(rs.name, count))
        p.event(NORMAL, "ScalingReplicaSet",
                f"Scaled {way} ReplicaSet {rs.name} (revision {rs.revision}) from {rs.replicas} to {count}")


def scale(p: Pass) -> None:
    new, stable = p.new, p.stable
    new_target, stable_target = _routed_targets(p) if p.router else _basic_targets(p)
    put_sizes(p, new_target, stable_target)
    if p.router is None:
        _, unavailable = surge_and_unavailable(p.ro.canary, p.replicas)
        targets = basic_old_scale_down(replicas=p.replicas, max_unavailable=unavailable, all_sets=p.views,
                                       old=p.others)
        for rs in p.others:
            if rs.name in targets:
                scale_to(p, rs, targets[rs.name])
    stable_ok = stable is not None and stable.replicas == stable_target == stable.created
    p.at_desired = new.all_available(new_target) and (stable_ok or (stable is None and p.promoted))
    if p.router is None:
        p.at_desired = p.at_desired and not any(rs.available for rs in p.others)


def put_sizes(p: Pass, new_target: int, stable_target: int,
              shape: Callable[[dict[str, Any]], dict[str, Any]] | None = None) -> None:
    """Create the new ReplicaSet at `new_target` (its document passed through `shape` first, when
    given) or scale it there, and scale the stable one to `stable_target`; both annotated."""
    new, stable = p.new, p.stable
    if p.view(p.pod_hash) is None:
        doc = new_replicaset(p.ro, pod_hash=p.pod_hash, revision=p.revision, replicas=new_target)
        p.actions.append(CreateReplicaSet(shape(doc) if shape is not None else doc))
        p.event(NORMAL, "NewReplicaSetCreated",
                f"Created ReplicaSet {new.name} (revision {p.revision}) with size {new_target}")
        p.progress = True
    else:
        _annotate(p, new, {REVISION: str(p.revision), DESIRED_REPLICAS: str(p.replicas)})
        scale_to(p, new, new_target)
    if stable is not None:
        _annotate(p, stable, {DESIRED_REPLICAS: str(p.replicas)})
        scale_to(p, stable, stable_target)


def _annotate(p: Pass, rs: ReplicaSetView, wanted: dict[str, str]) -> None:
    fixes: dict[str, str | None] = {k: v for k, v in wanted.items() if rs.annotations.get(k) != v}
    if fixes:
        p.actions.append(AnnotateReplicaSet(rs.name, fixes))


def _delay(value: int | None) -> int:
    return DEFAULT_DELAY if value is None else value


def _routed_targets(p: Pass) -> tuple[int, int]:
    replicas, st = p.replicas, p.st
    if p.promoted:
        return replicas, replicas
    if p.aborted:
        delay, current = _delay(p.canary.abort_scale_down_delay_seconds), p.new.replicas
        if delay == 0 or st.aborted_at is None:
            return current, replicas
        ends = st.aborted_at + timedelta(seconds=delay)
        if p.now >= ends:
            return 0, replicas
        p.wake.append(ends)
        return current, replicas
    if st.promote_full or p.index >= len(p.steps):
        return replicas, replicas
    return routed_canary_replicas(replicas=replicas, weight=set_weight_at(p.steps, p.index),
                                  scale=canary_scale_at(p.steps, p.index),
                                  min_pods=p.canary.min_pods_per_replica_set), replicas


def _basic_targets(p: Pass) -> tuple[int, int]:
    if p.aborted:
        weight = 0
    elif p.promoted or p.st.promote_full or p.index >= len(p.steps):
        weight = p.weight_cap
    else:
        weight = min(set_weight_at(p.steps, p.index), p.weight_cap)  # a holding webhook gate (plan.hooks)
    surge, unavailable = surge_and_unavailable(p.ro.canary, p.replicas)
    return basic_canary_counts(replicas=p.replicas, weight=weight, max_surge=surge, max_unavailable=unavailable,
                               new=p.new, stable=p.stable, others=p.others)


def scale_down_old(p: Pass, selected: Collection[str]) -> None:
    """Older ReplicaSets of a routed canary: deadline once no selector points at them, then 0."""
    for rs in p.views:
        if rs.pod_hash in (p.pod_hash, p.st.stable_rs):
            if rs.deadline is not None:
                p.actions.append(AnnotateReplicaSet(rs.name, {SCALE_DOWN_DEADLINE: None}))
            continue
        if p.router is None or rs.replicas == 0 or rs.pod_hash in selected:
            continue
        delay = _delay(p.canary.scale_down_delay_seconds)
        if rs.deadline is None and delay > 0:
            ends = p.now + timedelta(seconds=delay)
            p.actions.append(AnnotateReplicaSet(rs.name, {SCALE_DOWN_DEADLINE: format_time(ends)}))
            p.wake.append(ends)
        elif rs.deadline is None or p.now >= rs.deadline:
            scale_to(p, rs, 0)
        else:
            p.wake.append(rs.deadline)


def collect_old(p: Pass) -> None:
    """Delete the older ReplicaSets beyond the revision history limit (see the rules)."""
    limit = p.ro.spec.revision_history_limit
    limit = DEFAULT_REVISION_HISTORY if limit is None else max(limit, 0)
    older = sorted(p.others, key=lambda rs: (rs.revision, rs.name))
    for rs in older[: max(len(older) - limit, 0)]:
        if rs.replicas == 0 and rs.created == 0 and (rs.deadline is None or p.now >= rs.deadline):
            p.actions.append(DeleteReplicaSet(rs.name))
