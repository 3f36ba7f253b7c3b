"""Lifecycle webhooks in the plan: when each is due and what its answer means. Pure.

Rules (Flagger's model, flagger-kayenta.md §A3; fields and their bounds: rollouts.plan.hook_checks):
- An *update* is one pod template with one step list (`<currentPodHash>.<currentStepHash>`); a
  retry starts a new one too. `status.hooks[]` holds one entry per webhook name: the decision last
  asked (`<update>/<point>`), when, and its answer (code, ok, latency, error), and `failures`.
  Entries of an earlier update keep their last answer (for `get rollout`) but no decision or failures.
- Asking is writing: `decide`/`finish` set an entry's decision and askedAt (and clear its
  answer); the shell calls only what the status it wrote says was asked (`asked`), then records
  the answer (`answered`). So a hook is called after its ask is persisted, at most once per
  ask: a controller restarted after an ask, answered or not, asks the same decision again only
  once `interval` has passed since askedAt. A gate is never re-asked within one interval.
- A gate holds while its decision has no 2xx answer (non-2xx, a timeout, an error, no answer
  yet); it is asked again every `interval`. Success is 200..299 (Flagger's code takes only <= 202).
  - `confirm-rollout`: at step 0 before any traffic moved. While it holds no step is entered or
    completes (no pause timer, no step AnalysisRun) and the weight stays 0. The new pods of
    step 0 do start (they take no traffic): Flagger scales the canary only after it.
  - `pre-rollout`: after confirm-rollout, once the new ReplicaSet's pods are all available,
    before any traffic moves; holds like confirm-rollout. A non-2xx answer or an error is a
    *failed check*.
  - `confirm-traffic-increase`: before a step whose weight is above the weight before it: the
    weight stays where it was and the step does not complete (basic canaries: the pods too).
  - `confirm-promotion`: past the last step (or promote --full), before promotion: the last
    step's weight stays in force and nothing is promoted (like runs.gate_promotion).
- `rollout`: every `interval` from the start (confirm-rollout and pre-rollout passed) until
  promotion or abort. Each non-2xx answer or error is a failed check; while the latest answer is
  not 2xx (or there is none yet) the rollout holds where it is (no step completes, no weight
  rises, nothing is promoted), as Flagger keeps the weights on a failing tick.
- The failure limit, exactly: the failed checks of an update (pre-rollout and rollout hooks,
  each answer counted once, cumulative: a pass does not reset the count, as in Flagger) are
  summed; when the sum exceeds `spec.strategy.canary.webhookFailureLimit` (default 0) the
  update is aborted. A new update or a retry starts from 0. AnalysisRun metrics keep their own
  failureLimit (Argo's); the gates (confirm-*) never count, they hold.
- `rollback`: every `interval` while the update is in progress (gates holding too); a 2xx answer
  aborts the update. Any other answer or an error means "no".
- `post-rollout`: once per promotion (in the round that promotes; not for the first deploy)
  and once per abort (its decision names abortedAt); its answer is recorded, nothing waits on it.
- `event`: every event the plan asks for on this Rollout (fire and forget: the shell calls it
  after recording the events; its answer is recorded, nothing reads it).
- An entering round (planner) reads the answers and never asks.
- The calls themselves (which the written status asks, their JSON payload, how an answer is
  recorded): rollouts.plan.hook_calls.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from rollouts.plan import transitions
from rollouts.plan.hook_checks import (
    CONFIRM_PROMOTION,
    CONFIRM_ROLLOUT,
    CONFIRM_TRAFFIC_INCREASE,
    EVENT,
    POST_ROLLOUT,
    PRE_ROLLOUT,
    ROLLBACK,
    ROLLOUT,
    TYPES,
    interval_of,
    update,
)
from rollouts.plan.state import Pass
from rollouts.plan.steplist import previous_set_weight, set_weight_at
from rollouts.platform.actions import Event
from rollouts.spec.model import HookStatus, Rollout, RolloutStatus, Webhook

__all__ = ["COUNTED", "decide", "finish", "gate_promotion", "hooks_of"]

RETRIED = "RolloutRetried"  # the event transitions.retry emits: a retry starts a new update
COUNTED = (PRE_ROLLOUT, ROLLOUT)


# ---------------------------------------------------------------- the plan's part


def decide(p: Pass) -> None:
    """Before the steps of a canary round: rollback hooks, the failure limit, the start gates,
    the rollout hooks and confirm-traffic-increase (see the rules)."""
    hooks = hooks_of(p.ro)
    if not hooks:
        return
    _sync_entries(p, hooks)
    if p.promoted or p.aborted:
        return
    u = update(p.st)
    for hook in _of(hooks, ROLLBACK):
        entry = _periodic(p, hook, u)
        if entry.ok and entry.decision and entry.decision.startswith(f"{u}/"):
            transitions.abort(p, f"rollback webhook {hook.name!r} answered {entry.code}: roll back",
                              cause=transitions.AbortCause.GATE)
            return
    if _over_limit(p, hooks, u):
        return
    recorded = p.old.canary.weights.canary.weight if p.old.canary and p.old.canary.weights else 0
    if p.index == 0 and recorded == 0:
        held = _gates(p, _of(hooks, CONFIRM_ROLLOUT), f"{u}/{CONFIRM_ROLLOUT}")
        if held is None and p.new.replicas == p.new.available and p.view(p.pod_hash) is not None:
            held = _gates(p, _of(hooks, PRE_ROLLOUT), f"{u}/{PRE_ROLLOUT}")
        elif held is None and _of(hooks, PRE_ROLLOUT):
            held = "waiting for the new pods before the pre-rollout webhooks"
        if held is not None:
            _hold(p, held, cap=0)
            p.unstarted = True
            return
    held = None
    for hook in _of(hooks, ROLLOUT):
        entry = _periodic(p, hook, u)
        if held is None and not entry.ok:
            held = f"webhook {hook.name!r} ({ROLLOUT}) {_answer_text(entry)}"
    index = p.index
    before = previous_set_weight(p.steps, index)
    if held is None and index < len(p.steps) and set_weight_at(p.steps, index) > before:
        held = _gates(p, _of(hooks, CONFIRM_TRAFFIC_INCREASE), f"{u}/step-{index}")
    if held is not None:
        _hold(p, held, cap=before if index < len(p.steps) else set_weight_at(p.steps, len(p.steps) - 1))
    gate_promotion(p)


def gate_promotion(p: Pass) -> None:
    """Past the last step (or promote --full): confirm-promotion must answer 2xx before promotion."""
    hooks = _of(hooks_of(p.ro), CONFIRM_PROMOTION)
    if not hooks or p.promoted or p.aborted or p.gated or not (p.st.promote_full or p.index >= len(p.steps)):
        return
    held = _gates(p, hooks, f"{update(p.st)}/{CONFIRM_PROMOTION}")
    if held is not None and p.held is None:
        p.held = held


def finish(p: Pass) -> None:
    """After the round: post-rollout hooks once per promotion and once per abort."""
    hooks = _of(hooks_of(p.ro), POST_ROLLOUT)
    if not hooks:
        return
    u = update(p.st)
    if p.promoted and p.old.stable_rs not in (None, p.pod_hash):
        key = f"{u}/promoted"
    elif p.aborted and p.st.aborted_at is not None:
        key = f"{u}/aborted-{p.st.aborted_at.strftime('%Y-%m-%dT%H:%M:%SZ')}"
    else:
        return
    for hook in hooks:
        entry = _entry(p.st, hook)
        if entry.decision != key and not p.entering:
            _ask(entry, key, p.now)


def hooks_of(ro: Rollout) -> list[Webhook]:
    canary = ro.canary
    return [h for h in (canary.webhooks or []) if h.type in TYPES] if canary is not None else []


def _of(hooks: Sequence[Webhook], kind: str) -> list[Webhook]:
    return [h for h in hooks if h.type == kind]


def _sync_entries(p: Pass, hooks: Sequence[Webhook]) -> None:
    """One entry per webhook (others dropped); a new update or a retry forgets decisions and failures."""
    u = update(p.st)
    retried = any(isinstance(a, Event) and a.reason == RETRIED for a in p.actions)
    entries = []
    for hook in hooks:
        entry = _entry(p.st, hook)
        if hook.type != EVENT and (retried or (entry.decision is not None and not entry.decision.startswith(f"{u}/"))):
            entry.decision = entry.failures = None
        entries.append(entry)
    p.st.hooks = entries or None


def _entry(st: RolloutStatus, hook: Webhook) -> HookStatus:
    found = next((e for e in st.hooks or [] if e.name == hook.name), None)
    if found is None or found.type != hook.type:
        found = HookStatus(name=hook.name, type=hook.type)
        st.hooks = [*(e for e in st.hooks or [] if e.name != hook.name), found]
    return found


def _ask(entry: HookStatus, key: str, now: datetime) -> None:
    if entry.decision != key:
        entry.held_since = None  # a new decision: a gate's hold starts again
    entry.decision, entry.asked_at = key, now
    entry.answered_at = entry.code = entry.ok = entry.latency_ms = entry.error = None


def _due(p: Pass, entry: HookStatus, hook: Webhook, key: str | None) -> bool:
    """Whether the hook is to be asked now; otherwise the wake-up when it will be."""
    if key is not None and entry.decision != key:
        return True
    if key is not None and entry.ok:
        return False
    if entry.asked_at is None:
        return True
    again = entry.asked_at + timedelta(seconds=interval_of(hook))
    if p.now >= again:
        return True
    p.wake.append(again)
    return False


def _gates(p: Pass, hooks: Sequence[Webhook], key: str) -> str | None:
    """Ask the gates of one decision that are due; why the first one still closed holds (None: all open)."""
    held = None
    for hook in hooks:
        entry = _entry(p.st, hook)
        if _due(p, entry, hook, key) and not p.entering:
            _ask(entry, key, p.now)
            p.wake.append(p.now + timedelta(seconds=interval_of(hook)))
        if not (entry.decision == key and entry.ok) and held is None:
            held = f"webhook {hook.name!r} ({hook.type}) {_answer_text(entry)}"
    return held


def _periodic(p: Pass, hook: Webhook, u: str) -> HookStatus:
    """A rollout/rollback hook: asked every interval of the update (round-1, round-2, ...)."""
    entry = _entry(p.st, hook)
    mine = entry.decision is not None and entry.decision.startswith(f"{u}/")
    if (not mine or _due(p, entry, hook, None)) and not p.entering:
        last = (entry.decision or "").rsplit("-", 1)[-1] if mine else ""
        n = int(last) + 1 if last.isdigit() else 1
        _ask(entry, f"{u}/round-{n}", p.now)
        p.wake.append(p.now + timedelta(seconds=interval_of(hook)))
    return entry


def _over_limit(p: Pass, hooks: Sequence[Webhook], u: str) -> bool:
    limit = p.canary.webhook_failure_limit or 0
    counted = [e for e in p.st.hooks or [] if e.type in COUNTED and e.failures]
    total = sum(e.failures or 0 for e in counted)
    if total <= limit:
        return False
    worst = max(counted, key=lambda e: e.failures or 0)
    transitions.abort(p, f"webhook checks failed {total} times > webhookFailureLimit {limit} "
                         f"(last: {worst.name!r} ({worst.type}) {_answer_text(worst)})",
                      cause=transitions.AbortCause.ANALYSIS)  # pre-rollout and rollout hooks extend the analysis
    return True


def _hold(p: Pass, why: str, *, cap: int) -> None:
    p.gated = why
    p.held = p.held or why
    p.gate_cap = cap if p.gate_cap is None else min(cap, p.gate_cap)


def _answer_text(entry: HookStatus) -> str:
    if entry.answered_at is None:
        return "has not answered yet"
    if entry.code is not None:
        return f"answered {entry.code}" + (f" ({entry.error})" if entry.error and not entry.ok else "")
    return f"failed: {entry.error}"
