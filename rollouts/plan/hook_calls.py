"""The webhook calls of a pass, pure: which the written status asks, their JSON, how an answer is recorded.

Rules (when a hook is due and what an answer means: rollouts.plan.hooks):
- `asked(observed, before, after, now)`: the entries of the status just written with a new
  (decision, askedAt) and no answer, in the order of the webhooks. The shell calls exactly
  these, after that status was written (so a call always follows its persisted ask).
- `event_calls`: one call per event hook and event of the pass (fire and forget).
- `answered(status, answers)`: each answer on its hook's entry, only while that entry still asks
  the call's decision (event hooks: always); a failed pre-rollout/rollout check adds one to
  the entry's `failures`; a gate's (confirm-*) refusal sets `heldSince` once per decision,
  a yes clears it. Success is 200..299.
- `answer_event(call, answer, status)`: the Event recording an answer, `status` being the one
  `answered` gave: WebhookAnswered, or as a Warning HookGateHeld for the answer that started a
  gate's hold (once per decision: notifications' gate-held), else WebhookFailed.
- `payload`: Flagger's `name`, `namespace`, `phase`, `checksum` (the update) and `metadata`
  (omitted when empty; event hooks add eventMessage, eventType, eventReason and timestamp,
  which the hook's metadata cannot override), plus ours: `type`, `hook`, `decision`,
  `stepIndex`, `setWeight`, `actualWeight`, `revision`, `podTemplateHash`, `images`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from rollouts.plan.hook_checks import EVENT, GATES, update
from rollouts.plan.hooks import COUNTED, hooks_of
from rollouts.plan.state import Observed, Pass, dump_status
from rollouts.plan.steplist import set_weight_at
from rollouts.platform.actions import NORMAL, WARNING, Event
from rollouts.spec.model import HookStatus, RolloutStatus, Webhook

__all__ = ["Answer", "Call", "answer_event", "answered", "asked", "event_calls", "payload"]



@dataclass(frozen=True)
class Call:
    """One webhook call the shell is to make: the hook, the decision asked, the JSON body."""

    hook: Webhook
    decision: str
    payload: dict[str, Any] = field(hash=False)


@dataclass(frozen=True)
class Answer:
    at: datetime
    code: int | None  # None: no answer (an error)
    latency_ms: int
    error: str | None = None  # why it failed, or a refusal's body (no URL query, at most 200 characters)

    @property
    def ok(self) -> bool:
        return self.code is not None and 200 <= self.code < 300

    @property
    def result(self) -> str:
        """`ok`, `refused` (a non-2xx answer) or `error` (no answer): the metrics' label."""
        return "ok" if self.ok else "error" if self.code is None else "refused"


def asked(observed: Observed, before: Mapping[str, Any] | None, after: Mapping[str, Any],
          now: datetime) -> list[Call]:
    """The hooks the written status `after` asks that `before` did not: entries with a new
    (decision, askedAt) and no answer, in the order of the webhooks."""
    old = {e.name: (e.decision, e.asked_at) for e in RolloutStatus.load(before or {}).hooks or []}
    st = RolloutStatus.load(after)
    hooks = {h.name: h for h in hooks_of(observed.rollout)}
    found = []
    for entry in st.hooks or []:
        hook = hooks.get(entry.name)
        if (hook is not None and hook.type != EVENT and entry.decision and entry.answered_at is None
                and old.get(entry.name) != (entry.decision, entry.asked_at)):
            found.append(Call(hook, entry.decision, payload(observed, st, hook, entry.decision, now)))
    order = list(hooks)
    return sorted(found, key=lambda c: order.index(c.hook.name))


def event_calls(observed: Observed, status: Mapping[str, Any], events: Sequence[Event],
                now: datetime) -> list[Call]:
    """One call per event hook and event (fire and forget)."""
    st = RolloutStatus.load(status)
    hooks = [h for h in hooks_of(observed.rollout) if h.type == EVENT]
    calls = []
    for event in events:
        for hook in hooks:
            extra = {"eventMessage": event.message, "eventType": event.type, "eventReason": event.reason,
                     "timestamp": str(int(now.timestamp() * 1000))}
            calls.append(Call(hook, f"event/{event.reason}", payload(observed, st, hook, f"event/{event.reason}",
                                                                     now, extra=extra)))
    return calls


def answered(status: Mapping[str, Any], answers: Sequence[tuple[Call, Answer]]) -> dict[str, Any]:
    """`status` with each answer on its hook's entry, when that entry still asks the call's decision
    (event hooks: always). A failed pre-rollout/rollout check adds one to the entry's failures."""
    st = RolloutStatus.load(status)
    for call, answer in answers:
        entry = next((e for e in st.hooks or [] if e.name == call.hook.name), None)
        if entry is None:
            entry = HookStatus(name=call.hook.name, type=call.hook.type)
            st.hooks = [*(st.hooks or []), entry]
        if call.hook.type == EVENT:
            entry.decision, entry.asked_at = call.decision, answer.at
        elif entry.decision != call.decision or entry.answered_at is not None:
            continue
        entry.answered_at, entry.code, entry.ok = answer.at, answer.code, answer.ok
        entry.latency_ms, entry.error = answer.latency_ms, answer.error
        if call.hook.type in COUNTED and not answer.ok:
            entry.failures = (entry.failures or 0) + 1
        if call.hook.type in GATES:
            entry.held_since = None if answer.ok else entry.held_since or answer.at
    return dump_status(st)


def answer_event(call: Call, answer: Answer, status: Mapping[str, Any]) -> Event:
    """The Event recording one answer (Warning unless 2xx; HookGateHeld when it started a hold)."""
    what = f"answered {answer.code}" if answer.code is not None else f"failed: {answer.error}"
    what += f" ({answer.error})" if answer.code is not None and answer.error and not answer.ok else ""
    text = f"webhook {call.hook.name!r} ({call.hook.type}) {what} in {answer.latency_ms} ms (decision {call.decision})"
    if answer.ok:
        return Event(NORMAL, "WebhookAnswered", text)
    entry = next((e for e in RolloutStatus.load(status).hooks or [] if e.name == call.hook.name), None)
    if call.hook.type in GATES and entry is not None and entry.held_since == answer.at:
        return Event(WARNING, "HookGateHeld", f"the rollout is held: {text}")
    return Event(WARNING, "WebhookFailed", text)


def payload(observed: Observed, st: RolloutStatus, hook: Webhook, decision: str, now: datetime, *,
            extra: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The JSON body of a call (see the rules)."""
    ro = observed.rollout
    p = Pass.start(observed, now)
    steps = ro.steps
    index = st.current_step_index or 0
    metadata = {**(hook.metadata or {}), **(extra or {})}
    body: dict[str, Any] = {
        "name": ro.metadata.name, "namespace": ro.metadata.namespace or "default",
        "phase": str(st.phase.value) if st.phase else "Progressing", "checksum": update(st),
    }
    if metadata:
        body["metadata"] = metadata
    containers = ((ro.spec.template or {}).get("spec") or {}).get("containers") or []
    body.update({
        "type": hook.type, "hook": hook.name, "decision": decision,
        "stepIndex": st.current_step_index, "setWeight": set_weight_at(steps, index) if steps else 100,
        "actualWeight": st.canary.weights.canary.weight if st.canary and st.canary.weights else 0,
        "revision": p.revision, "podTemplateHash": st.current_pod_hash or p.pod_hash,
        "images": [str(c.get("image")) for c in containers if isinstance(c, Mapping) and c.get("image")],
    })
    return body
