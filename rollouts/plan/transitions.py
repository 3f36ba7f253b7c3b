"""The named transitions of a Rollout's status: every change of step, abort and promotion. Pure.

Rules (h11's style: each transition is named once, and the passes only decide *when*):
- `restart(p)`: a new pod template or step list. Back to step 0 (None without steps);
  pauses, abort, promote-full and the runs followed are forgotten; a RolloutUpdated
  event unless it is the first revision.
- `abort(p, reason, cause=...)`: traffic back to stable. Back to step 0; `abort` and
  `abortedAt` set; pauses and promote-full cleared; the Progressing condition is
  RolloutAborted with the reason; a RolloutAborted Warning event; an aborted Outcome with
  its cause (rollouts.plan.outcomes.AbortCause). The runs followed stay in status (for
  `get rollout`) until a retry.
- `retry(p)`: `abort: false` after an abort this controller recorded. Back to step 0
  with new runs; abort, abortedAt, pauses and promote-full cleared; RolloutRetried.
- `advance(p, step)`: the current step is done. Index + 1; its step run is forgotten;
  RolloutStepCompleted.
- `promote(p)`: the new pods are the stable. `stableRS` = the current pod hash
  (`first_stable`, the first deploy's transition too: ping-pong Services swap roles); the
  index past the last step; promote-full and pauses cleared; a promoted Outcome (the first
  deploy, which has no update to promote, records none).
- Every transition but abort counts as progress (the progress deadline restarts).
"""

from __future__ import annotations

from rollouts.plan import conditions
from rollouts.plan.outcomes import AbortCause as AbortCause  # the callers name a cause as transitions.AbortCause
from rollouts.plan.outcomes import Outcome, update_started
from rollouts.plan.state import Pass
from rollouts.plan.steplist import describe, step_hash
from rollouts.platform.actions import NORMAL, WARNING
from rollouts.spec.model import CanaryStep
from rollouts.traffic import pingpong


def _to_step_zero(p: Pass) -> None:
    st = p.st
    st.current_step_index = 0 if p.steps else None
    st.pause_conditions = st.controller_pause = st.promote_full = None


def forget_runs(p: Pass) -> None:
    if p.st.canary is not None:
        p.st.canary.current_step_analysis_run_status = None
        p.st.canary.current_background_analysis_run_status = None
    if p.st.blue_green is not None:  # blueGreen: its promotion runs and the preview checkpoint
        p.st.blue_green.pre_promotion_analysis_run_status = None
        p.st.blue_green.post_promotion_analysis_run_status = None
        p.st.blue_green.scale_up_preview_check_point = None


def restart(p: Pass) -> None:
    st = p.st
    if st.current_pod_hash is not None and st.current_pod_hash != p.pod_hash:
        p.event(NORMAL, "RolloutUpdated", f"Rollout updated to revision {p.revision}")
    elif st.current_pod_hash is not None and not p.promoted:
        p.event(NORMAL, "RolloutUpdated", "Rollout steps changed: starting again from step 1")
    st.current_pod_hash, st.current_step_hash = p.pod_hash, step_hash(p.steps)
    _to_step_zero(p)
    st.abort = st.aborted_at = None
    forget_runs(p)
    p.progress = p.restarted = True


def abort(p: Pass, reason: str, *, cause: AbortCause) -> None:
    st = p.st
    message = f"Rollout aborted update to revision {p.revision}" + (f": {reason}" if reason else "")
    _to_step_zero(p)
    st.abort, st.aborted_at = True, p.now
    conditions.put(st, p.now, conditions.PROGRESSING, "False", "RolloutAborted", message)
    p.event(WARNING, "RolloutAborted", message)
    p.outcomes.append(Outcome("aborted", cause, p.now, update_started(p.observed.replica_sets, p.new.name)))


def retry(p: Pass) -> None:
    st = p.st
    _to_step_zero(p)
    st.abort = st.aborted_at = None
    forget_runs(p)
    p.event(NORMAL, "RolloutRetried", f"Rollout retried: update to revision {p.revision} starts from step 1")
    p.progress = True


def advance(p: Pass, step: CanaryStep) -> None:
    completed = p.index
    p.st.current_step_index = completed + 1
    if p.st.canary is not None:
        p.st.canary.current_step_analysis_run_status = None
    p.event(NORMAL, "RolloutStepCompleted", f"Rollout step {completed + 1}/{len(p.steps)} completed ({describe(step)})")
    p.progress = True


def promote(p: Pass) -> None:
    st = p.st
    first_stable(p)
    st.current_step_index = len(p.steps) if p.steps else None
    st.promote_full = st.pause_conditions = st.controller_pause = None
    p.progress = True
    p.outcomes.append(Outcome("promoted", None, p.now, update_started(p.observed.replica_sets, p.new.name)))


def first_stable(p: Pass) -> None:
    """The new pods are the stable ones (the first deploy too): the ping-pong Services swap
    roles when the stable changes (traffic.pingpong)."""
    st = p.st
    if st.stable_rs != p.pod_hash and p.canary.ping_pong is not None and st.canary is not None:
        st.canary.stable_ping_pong = pingpong.swapped(st.canary.stable_ping_pong)
    st.stable_rs = p.pod_hash
