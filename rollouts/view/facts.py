"""What a client may believe about a Rollout: Argo's phase, step and weight rules.

Rules and invariants (pkg/kubectl-argo-rollouts/info and utils/rollout in Argo):
- Pure: functions of plain API dicts; no clock, no cluster.
- `rollout_phase` is GetRolloutPhase: the controller's phase is only trusted once
  `status.observedGeneration` has caught up with `metadata.generation` (a non-numeric
  observedGeneration from v0.9 counts as caught up); until then, and while no phase is
  written, it is Progressing "waiting for rollout spec update to be observed". A
  controller pause whose conditions a human cleared is Progressing "waiting for rollout
  to unpause".
- `set_weight` is GetCurrentSetWeight: 0 when aborted, 100 when every step is done (or
  there are no steps), else the last setWeight at or before the current step (0 if none).
  An unset currentStepIndex reads as 0, as GetCurrentCanaryStep does.
- Objects belong to a Rollout through ownerReferences (by uid; by kind+name when either
  side has no uid). Revisions are the `rollout.argoproj.io/revision` annotation.
- Half-written objects never raise: a missing or malformed field reads as empty or 0.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from rollouts.platform import wire
from rollouts.platform.labels import HASH_LABEL, REVISION
from rollouts.platform.times import parse_time

Obj = Mapping[str, Any]

REVISION_ANNOTATION = REVISION
NOT_OBSERVED = "waiting for rollout spec update to be observed"
UNPAUSING = "waiting for rollout to unpause"

ICONS = {
    "Healthy": "✔", "Successful": "✔", "Progressing": "◌", "Running": "◌", "Paused": "॥",
    "Degraded": "✖", "Failed": "✖", "ReplicaFailure": "✖", "Error": "⚠", "InvalidSpec": "⚠",
    "Inconclusive": "?", "Unknown": "?", "Pending": "◷", "ScaledDown": "•",
}


def icon(status: str) -> str:
    return ICONS.get(status, " ")


# --- small readers: tolerant of half-written objects ----------------------------------

def as_dict(value: Any) -> Mapping[str, Any]:
    return wire.section(value)


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def as_int(value: Any, default: int = 0) -> int:
    if isinstance(value, bool):
        return default
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    return default


def meta_of(obj: Obj) -> Mapping[str, Any]:
    return wire.section(obj, "metadata")


def status_of(obj: Obj) -> Mapping[str, Any]:
    return wire.section(obj, "status")


def canary_of(rollout: Obj) -> Mapping[str, Any] | None:
    canary = as_dict(as_dict(as_dict(rollout.get("spec")).get("strategy"))).get("canary")
    return canary if isinstance(canary, Mapping) else None


def steps_of(rollout: Obj) -> list[Mapping[str, Any]]:
    return [as_dict(step) for step in as_list(as_dict(canary_of(rollout)).get("steps"))]


def revision_of(obj: Obj) -> int:
    return as_int(as_dict(meta_of(obj).get("annotations")).get(REVISION_ANNOTATION))


def pod_hash_of(obj: Obj) -> str:
    return str(as_dict(meta_of(obj).get("labels")).get(HASH_LABEL, ""))


def owned_by(obj: Obj, rollout: Obj) -> bool:
    meta, uid = meta_of(rollout), meta_of(rollout).get("uid")
    for ref in as_list(meta_of(obj).get("ownerReferences")):
        ref = as_dict(ref)
        if uid and ref.get("uid"):
            if ref.get("uid") == uid:
                return True
        elif ref.get("kind") == "Rollout" and ref.get("name") == meta.get("name"):
            return True
    return False


# --- the Rollout's phase, step and weights --------------------------------------------

def generation_observed(rollout: Obj) -> bool:
    """Argo's isGenerationObserved: a non-numeric observedGeneration (v0.9) counts as seen."""
    observed = status_of(rollout).get("observedGeneration")
    try:
        return int(str(observed)) >= as_int(meta_of(rollout).get("generation"), 0)
    except ValueError:
        return True


def rollout_phase(rollout: Obj) -> tuple[str, str]:
    """(phase, message) a client should believe: Argo's GetRolloutPhase.

    Until the controller has seen the latest spec (and written a phase) the answer is
    Progressing; a controller pause whose conditions a human cleared is "unpausing".
    """
    status = status_of(rollout)
    if not generation_observed(rollout) or not status.get("phase"):
        return "Progressing", NOT_OBSERVED
    if status.get("controllerPause") and not as_list(status.get("pauseConditions")):
        return "Progressing", UNPAUSING
    return str(status["phase"]), str(status.get("message") or "")


def current_step_index(rollout: Obj) -> int | None:
    """The index as Argo's GetCurrentCanaryStep reads it (0 when unset); None without steps."""
    if not steps_of(rollout):
        return None
    return max(0, as_int(status_of(rollout).get("currentStepIndex"), 0))


def set_weight(rollout: Obj) -> int | None:
    """The desired canary weight (GetCurrentSetWeight); None for a non-canary strategy."""
    if canary_of(rollout) is None:
        return None
    if status_of(rollout).get("abort") is True:
        return 0
    steps, index = steps_of(rollout), current_step_index(rollout)
    if index is None or index >= len(steps):
        return 100
    for step in reversed(steps[: index + 1]):
        if "setWeight" in step:
            return as_int(step.get("setWeight"))
    return 0


def step_text(rollout: Obj) -> str:
    steps, index = steps_of(rollout), status_of(rollout).get("currentStepIndex")
    if not steps or not isinstance(index, int) or isinstance(index, bool):
        return ""
    return f"{index}/{len(steps)}"


def describe_step(step: Mapping[str, Any]) -> str:
    """One step as a short line: `setWeight: 20`, `pause: 30s`, `analysis: success-rate`."""
    if "setWeight" in step:
        return f"setWeight: {step['setWeight']}"
    if "pause" in step:
        duration = as_dict(step.get("pause")).get("duration")
        return "pause (until promoted)" if duration in (None, "") else f"pause: {duration}"
    if "analysis" in step:
        names = [str(as_dict(t).get("templateName", "?")) for t in as_list(as_dict(step["analysis"]).get("templates"))]
        return "analysis: " + (", ".join(names) or "(no templates)")
    if "setCanaryScale" in step:
        scale = as_dict(step["setCanaryScale"])
        if scale.get("matchTrafficWeight"):
            return "setCanaryScale: matchTrafficWeight"
        parts = [f"{key} {scale[key]}" for key in ("weight", "replicas") if key in scale]
        return "setCanaryScale: " + ", ".join(parts)
    for key in ("setHeaderRoute", "setMirrorRoute", "plugin"):
        if key in step:
            return f"{key}: {as_dict(step[key]).get('name', '')}".rstrip(": ")
    return ", ".join(sorted(step)) or "(empty step)"


class StepState(StrEnum):
    DONE = "done"
    CURRENT = "current"
    PENDING = "pending"


@dataclass(frozen=True)
class StepRow:
    index: int
    text: str
    state: StepState


def step_rows(rollout: Obj) -> tuple[StepRow, ...]:
    raw = status_of(rollout).get("currentStepIndex")
    index = raw if isinstance(raw, int) and not isinstance(raw, bool) else None
    rows = []
    for i, step in enumerate(steps_of(rollout)):
        state = StepState.PENDING
        if index is not None:
            state = StepState.DONE if i < index else StepState.CURRENT if i == index else StepState.PENDING
        rows.append(StepRow(i, describe_step(step), state))
    return tuple(rows)


# --- `list rollouts` -------------------------------------------------------------------

@dataclass(frozen=True)
class ListRow:
    namespace: str
    name: str
    strategy: str
    status: str
    step: str
    set_weight: str
    ready: str
    desired: int
    up_to_date: int
    available: int


def list_row(rollout: Obj) -> ListRow:
    """One line of `list rollouts`, as Argo's newRolloutInfo computes it."""
    status, spec = status_of(rollout), as_dict(rollout.get("spec"))
    weight = set_weight(rollout)
    strategy = "Canary" if canary_of(rollout) is not None else \
        "BlueGreen" if as_dict(spec.get("strategy")).get("blueGreen") is not None else "unknown"
    return ListRow(
        namespace=str(meta_of(rollout).get("namespace", "")),
        name=str(meta_of(rollout).get("name", "")),
        strategy=strategy,
        status=rollout_phase(rollout)[0],
        step=step_text(rollout) or "-",
        set_weight="-" if weight is None else str(weight),
        ready=f"{as_int(status.get('readyReplicas'))}/{as_int(status.get('replicas'))}",
        desired=as_int(spec.get("replicas"), 1),
        up_to_date=as_int(status.get("updatedReplicas")),
        available=as_int(status.get("availableReplicas")),
    )


# --- time ---------------------------------------------------------------------------------



def age(meta: Mapping[str, Any], now: datetime) -> str:
    created = parse_time(meta.get("creationTimestamp"))
    return "" if created is None else human_duration((now - created).total_seconds())


def human_duration(seconds: float) -> str:
    """Kubernetes' HumanDuration: `45s`, `3m20s`, `15m`, `5h10m`, `2d3h`, `400d`, `3y12d`.

    >>> [human_duration(s) for s in (59, 200, 900, 18600, 183600)]
    ['59s', '3m20s', '15m', '5h10m', '2d3h']
    """
    s = int(seconds)
    if s < -1:
        return "<invalid>"
    if s < 0:
        return "0s"
    if s < 120:
        return f"{s}s"
    minutes = s // 60
    if minutes < 10:
        return f"{minutes}m{s % 60}s" if s % 60 else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    hours = s // 3600
    if hours < 8:
        return f"{hours}h{minutes % 60}m" if minutes % 60 else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        return f"{hours // 24}d{hours % 24}h" if hours % 24 else f"{hours // 24}d"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        days = (hours // 24) % 365
        return f"{hours // 24 // 365}y{days}d" if days else f"{hours // 24 // 365}y"
    return f"{hours // 24 // 365}y"
