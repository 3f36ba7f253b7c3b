"""Pod restarts (`spec.restartAt`): every pod of the Rollout made newer than it, a few at a time. Pure.

Rules (Argo Rollouts' pod restarter, argo-rollouts.md §1.1 and §1.4 step 2):
- A restart is pending while `spec.restartAt` is set and `status.restartedAt` differs
  from it. Only then does the shell list the Rollout's pods (`wants_pods`): Argo too
  lists them from the API, not from a cache. A restartAt in the future does nothing
  yet; the plan wakes at restartAt.
- Due (restartAt <= now): the pods of the Rollout's ReplicaSets (by ownerReference)
  created before restartAt are deleted, and their ReplicaSets start new ones. Order:
  the stable ReplicaSet, the new one, then the others oldest revision first; oldest
  pod first within one.
- Capacity (Argo's budget): at most max(1, maxUnavailable) pods are missing at once.
  A pod is deleted only while available pods exceed max(spec.replicas, the pods asked
  of all ReplicaSets) - max(1, maxUnavailable), and only from a ReplicaSet whose pods
  are all available (status.availableReplicas >= spec.replicas). A pod is available
  when its Ready condition has been True for minReadySeconds and it is not being
  deleted.
  Worked example: 5 replicas, maxUnavailable 25% -> 1; 5 available -> one pod is
  deleted; while its replacement is not Ready (4 available) none is; when it is, the
  next one goes.
- While old pods remain, the plan looks again in 30 s (Argo's restartPodCheckTime): a
  pod replaced faster than its ReplicaSet's status moves sends no event.
- When no pod older than restartAt is left (each one deleted, or already gone),
  `status.restartedAt = restartAt`, event `RolloutRestarted`. Each pod deleted: event
  `RestartingPods` "Restarted pod X". A new pod template (or the first deploy) while a
  restart is due cancels it the same way: the update replaces every pod anyway.
- A restart changes no traffic, creates no revision and runs on paused and aborted
  Rollouts too (Argo: a restart must not wait for a long canary pause).
- Pure: pods are the plain documents observed, time is `p.now`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from rollouts.plan.replicas import ReplicaSetView, surge_and_unavailable
from rollouts.plan.state import Pass
from rollouts.platform.actions import NORMAL, DeletePod
from rollouts.platform.times import format_time, parse_time
from rollouts.spec.model import Rollout, RolloutStatus

CHECK_AGAIN = timedelta(seconds=30)
Pod = Mapping[str, Any]


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def pending_at(rollout: Rollout, status: RolloutStatus | None = None) -> datetime | None:
    """spec.restartAt while it is not yet recorded as status.restartedAt, else None."""
    at = rollout.spec.restart_at
    st = status if status is not None else rollout.status
    if at is None:
        return None
    done = st.restarted_at if st is not None else None
    return None if done is not None and _utc(done) == _utc(at) else _utc(at)


def wants_pods(rollout: Rollout) -> bool:
    """Whether the plan needs the Rollout's pods: a restart is pending."""
    return pending_at(rollout) is not None


def restarting(rollout: Rollout, status: RolloutStatus, now: datetime) -> bool:
    """A restart is due and not finished (phase Progressing "rollout is restarting")."""
    at = pending_at(rollout, status)
    return at is not None and at <= now


def restart(p: Pass) -> None:
    """Delete the pods created before restartAt that capacity allows now (see the rules)."""
    at = pending_at(p.ro, p.st)
    if at is None:
        return
    if at > p.now:
        p.wake.append(at)
        return
    if p.view(p.pod_hash) is None:  # a new template (or the first deploy): its pods are new anyway
        p.st.restarted_at = at
        return
    owners = {rs.name: rs for rs in p.views}
    pods = [pod for pod in p.observed.pods if (_owner(pod) or "") in owners]
    old = sorted((pod for pod in pods if created(pod) < at), key=lambda pod: _order(p, owners[_owner(pod) or ""], pod))
    _, unavailable = surge_and_unavailable(p.ro.canary, p.replicas)
    at_once = max(1, unavailable)
    floor = max(p.replicas, sum(rs.replicas for rs in p.views)) - at_once
    budget = sum(1 for pod in pods if available(pod, p.now, p.ro.spec.min_ready_seconds or 0)) - floor
    deleted = 0
    for pod in old:
        rs = owners[_owner(pod) or ""]
        if budget <= 0:
            break
        if _deleting(pod) or rs.available < rs.replicas:
            continue
        name = str(pod["metadata"]["name"])
        p.actions.append(DeletePod(name))
        p.event(NORMAL, "RestartingPods", f"Restarted pod {name}")
        budget, deleted = budget - 1, deleted + 1
    if deleted == len(old):
        p.st.restarted_at = at
        p.event(NORMAL, "RolloutRestarted", f"Rollout restarted: every pod is newer than {_text(at)}")
    else:
        p.wake.append(p.now + CHECK_AGAIN)


def created(pod: Pod) -> datetime:
    """The pod's creationTimestamp (a pod without one counts as created long ago)."""
    return _time((pod.get("metadata") or {}).get("creationTimestamp")) or datetime.min.replace(tzinfo=UTC)


def available(pod: Pod, now: datetime, min_ready_seconds: int = 0) -> bool:
    """Ready for at least minReadySeconds and not being deleted (Kubernetes' IsPodAvailable)."""
    if _deleting(pod):
        return False
    for cond in (pod.get("status") or {}).get("conditions") or []:
        if isinstance(cond, Mapping) and cond.get("type") == "Ready" and cond.get("status") == "True":
            since = _time(cond.get("lastTransitionTime"))
            return min_ready_seconds <= 0 or (since is not None and since + timedelta(seconds=min_ready_seconds) <= now)
    return False


def _order(p: Pass, rs: ReplicaSetView, pod: Pod) -> tuple[int, int, datetime, str]:
    rank = 0 if rs.pod_hash == p.st.stable_rs else 1 if rs.pod_hash == p.pod_hash else 2
    return rank, rs.revision, created(pod), str(pod["metadata"]["name"])


def _owner(pod: Pod) -> str | None:
    refs: Sequence[Any] = (pod.get("metadata") or {}).get("ownerReferences") or ()
    return next((str(r.get("name")) for r in refs if isinstance(r, Mapping) and r.get("kind") == "ReplicaSet"), None)


def _deleting(pod: Pod) -> bool:
    return bool((pod.get("metadata") or {}).get("deletionTimestamp"))


_time, _text = parse_time, format_time
