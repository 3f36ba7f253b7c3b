"""The view-model of a Rollout, as `kubectl argo rollouts get rollout` shows it.

Rules and invariants:
- Pure: built from plain API dicts (the Rollout, the ReplicaSets and AnalysisRuns of
  its namespace) and `now`; nothing here reads a clock or the cluster, nothing styles.
  `rollouts.render` draws it; `summary_line` prints it as one plain line per change.
- Argo's semantics (pkg/kubectl-argo-rollouts/info): the phase comes from
  `rollout_phase` (GetRolloutPhase: the controller's phase is only trusted once
  `status.observedGeneration` has caught up with `metadata.generation`); `Step` is
  `currentStepIndex/len(steps)`; `SetWeight` is the weight of the last setWeight step at
  or before the current one (0 when aborted, 100 when all steps are done); the actual
  weight is `status.canary.weights.canary.weight` with traffic routing, else the canary's
  share of available pods. A ReplicaSet is `stable` when its pod-template hash is
  `status.stableRS`, else `canary` when it is `status.currentPodHash`.
- Objects belong to the Rollout through ownerReferences (by uid; by kind+name when
  either side has no uid). Revisions come from the `rollout.argoproj.io/revision`
  annotation, newest first; an AnalysisRun without it takes its ReplicaSet's revision.
- Objects the controller half-wrote never raise: a missing or malformed field reads as
  empty or 0.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

Obj = Mapping[str, Any]

REVISION_ANNOTATION = "rollout.argoproj.io/revision"
SCALE_DOWN_DEADLINE = "scale-down-deadline"
HASH_LABEL = "rollouts-pod-template-hash"
NOT_OBSERVED = "waiting for rollout spec update to be observed"
UNPAUSING = "waiting for rollout to unpause"
METRIC_VALUES_SHOWN = 3

ICONS = {
    "Healthy": "✔", "Successful": "✔", "Progressing": "◌", "Running": "◌", "Paused": "॥",
    "Degraded": "✖", "Failed": "✖", "ReplicaFailure": "✖", "Error": "⚠", "InvalidSpec": "⚠",
    "Inconclusive": "?", "Unknown": "?", "Pending": "◷", "ScaledDown": "•",
}


def icon(status: str) -> str:
    return ICONS.get(status, " ")


class StepState(StrEnum):
    DONE = "done"
    CURRENT = "current"
    PENDING = "pending"


@dataclass(frozen=True)
class StepRow:
    index: int
    text: str
    state: StepState


@dataclass(frozen=True)
class ImageRow:
    image: str
    tags: tuple[str, ...]


@dataclass(frozen=True)
class Replicas:
    desired: int
    current: int
    updated: int
    ready: int
    available: int


@dataclass(frozen=True)
class ReplicaSetRow:
    name: str
    revision: int
    status: str
    age: str
    stable: bool
    canary: bool
    desired: int
    ready: int
    images: tuple[str, ...]
    delay: str = ""  # "30s" until the scale-down deadline, or "passed"

    @property
    def icon(self) -> str:
        return icon(self.status)

    @property
    def info(self) -> str:
        parts = [tag for tag, on in (("stable", self.stable), ("canary", self.canary)) if on]
        if self.delay:
            parts.append(f"delay:{self.delay}")
        parts.append(f"ready:{self.ready}/{self.desired}")
        return ",".join(parts)


@dataclass(frozen=True)
class Counts:
    successful: int = 0
    failed: int = 0
    inconclusive: int = 0
    error: int = 0

    def __add__(self, other: Counts) -> Counts:
        return Counts(self.successful + other.successful, self.failed + other.failed,
                      self.inconclusive + other.inconclusive, self.error + other.error)

    @property
    def text(self) -> str:
        """Argo's info column: only the non-zero counters, e.g. `✔ 3,✖ 1`."""
        pairs = (("✔", self.successful), ("✖", self.failed), ("?", self.inconclusive), ("⚠", self.error))
        return ",".join(f"{mark} {n}" for mark, n in pairs if n)


@dataclass(frozen=True)
class MetricRow:
    name: str
    phase: str
    counts: Counts
    values: tuple[str, ...]  # the last measured values, oldest first
    message: str = ""
    dry_run: bool = False

    @property
    def icon(self) -> str:
        return icon(self.phase)

    @property
    def info(self) -> str:
        parts = [self.counts.text] if self.counts.text else []
        if self.values:
            parts.append("last: " + self.values[-1])
            if len(self.values) > 1:
                parts.append("before: " + ", ".join(reversed(self.values[:-1])))
        if self.dry_run:
            parts.append("dry-run")
        return "  ".join(parts)


@dataclass(frozen=True)
class AnalysisRunRow:
    name: str
    revision: int
    phase: str
    age: str
    counts: Counts
    metrics: tuple[MetricRow, ...]
    message: str = ""

    @property
    def icon(self) -> str:
        return icon(self.phase)


@dataclass(frozen=True)
class RevisionRow:
    revision: int
    replica_sets: tuple[ReplicaSetRow, ...]
    analysis_runs: tuple[AnalysisRunRow, ...]


@dataclass(frozen=True)
class RolloutView:
    name: str
    namespace: str
    status: str
    message: str
    strategy: str
    step: str  # "1/4", or "" without steps or before the controller set an index
    set_weight: int | None
    actual_weight: int | None
    images: tuple[ImageRow, ...]
    replicas: Replicas
    steps: tuple[StepRow, ...]
    revisions: tuple[RevisionRow, ...]
    age: str
    aborted: bool

    @property
    def icon(self) -> str:
        return icon(self.status)


# --- small readers: tolerant of half-written objects ----------------------------------

def _dict(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _int(value: Any, default: int = 0) -> int:
    if isinstance(value, bool):
        return default
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    return default


def _meta(obj: Obj) -> Mapping[str, Any]:
    return _dict(obj.get("metadata"))


def _status(obj: Obj) -> Mapping[str, Any]:
    return _dict(obj.get("status"))


def _canary(rollout: Obj) -> Mapping[str, Any] | None:
    canary = _dict(_dict(_dict(rollout.get("spec")).get("strategy"))).get("canary")
    return canary if isinstance(canary, Mapping) else None


def steps_of(rollout: Obj) -> list[Mapping[str, Any]]:
    return [_dict(step) for step in _list(_dict(_canary(rollout)).get("steps"))]


def revision_of(obj: Obj) -> int:
    return _int(_dict(_meta(obj).get("annotations")).get(REVISION_ANNOTATION))


def pod_hash_of(obj: Obj) -> str:
    return str(_dict(_meta(obj).get("labels")).get(HASH_LABEL, ""))


def owned_by(obj: Obj, rollout: Obj) -> bool:
    meta, uid = _meta(rollout), _meta(rollout).get("uid")
    for ref in _list(_meta(obj).get("ownerReferences")):
        ref = _dict(ref)
        if uid and ref.get("uid"):
            if ref.get("uid") == uid:
                return True
        elif ref.get("kind") == "Rollout" and ref.get("name") == meta.get("name"):
            return True
    return False


# --- the Rollout's phase, step and weights --------------------------------------------

def generation_observed(rollout: Obj) -> bool:
    """Argo's isGenerationObserved: a non-numeric observedGeneration (v0.9) counts as seen."""
    observed = _status(rollout).get("observedGeneration")
    try:
        return int(str(observed)) >= _int(_meta(rollout).get("generation"), 0)
    except ValueError:
        return True


def rollout_phase(rollout: Obj) -> tuple[str, str]:
    """(phase, message) a client should believe: Argo's GetRolloutPhase.

    Until the controller has seen the latest spec (and written a phase) the answer is
    Progressing; a controller pause whose conditions a human cleared is "unpausing".
    """
    status = _status(rollout)
    if not generation_observed(rollout) or not status.get("phase"):
        return "Progressing", NOT_OBSERVED
    if status.get("controllerPause") and not _list(status.get("pauseConditions")):
        return "Progressing", UNPAUSING
    return str(status["phase"]), str(status.get("message") or "")


def current_step_index(rollout: Obj) -> int | None:
    """The index as Argo's GetCurrentCanaryStep reads it (0 when unset); None without steps."""
    if not steps_of(rollout):
        return None
    return max(0, _int(_status(rollout).get("currentStepIndex"), 0))


def set_weight(rollout: Obj) -> int | None:
    """The desired canary weight (GetCurrentSetWeight); None for a non-canary strategy."""
    if _canary(rollout) is None:
        return None
    if _status(rollout).get("abort") is True:
        return 0
    steps, index = steps_of(rollout), current_step_index(rollout)
    if index is None or index >= len(steps):
        return 100
    for step in reversed(steps[: index + 1]):
        if "setWeight" in step:
            return _int(step.get("setWeight"))
    return 0


def step_text(rollout: Obj) -> str:
    steps, index = steps_of(rollout), _status(rollout).get("currentStepIndex")
    if not steps or not isinstance(index, int) or isinstance(index, bool):
        return ""
    return f"{index}/{len(steps)}"


def describe_step(step: Mapping[str, Any]) -> str:
    """One step as a short line: `setWeight: 20`, `pause: 30s`, `analysis: success-rate`."""
    if "setWeight" in step:
        return f"setWeight: {step['setWeight']}"
    if "pause" in step:
        duration = _dict(step.get("pause")).get("duration")
        return "pause (until promoted)" if duration in (None, "") else f"pause: {duration}"
    if "analysis" in step:
        names = [str(_dict(t).get("templateName", "?")) for t in _list(_dict(step["analysis"]).get("templates"))]
        return "analysis: " + (", ".join(names) or "(no templates)")
    if "setCanaryScale" in step:
        scale = _dict(step["setCanaryScale"])
        if scale.get("matchTrafficWeight"):
            return "setCanaryScale: matchTrafficWeight"
        parts = [f"{key} {scale[key]}" for key in ("weight", "replicas") if key in scale]
        return "setCanaryScale: " + ", ".join(parts)
    for key in ("setHeaderRoute", "setMirrorRoute", "plugin"):
        if key in step:
            return f"{key}: {_dict(step[key]).get('name', '')}".rstrip(": ")
    return ", ".join(sorted(step)) or "(empty step)"


def step_rows(rollout: Obj) -> tuple[StepRow, ...]:
    raw = _status(rollout).get("currentStepIndex")
    index = raw if isinstance(raw, int) and not isinstance(raw, bool) else None
    rows = []
    for i, step in enumerate(steps_of(rollout)):
        state = StepState.PENDING
        if index is not None:
            state = StepState.DONE if i < index else StepState.CURRENT if i == index else StepState.PENDING
        rows.append(StepRow(i, describe_step(step), state))
    return tuple(rows)


def _actual_weight(rollout: Obj, replica_sets: Iterable[ReplicaSetRow], desired: int | None,
                   available_pods: dict[str, int]) -> int | None:
    canary = _canary(rollout)
    if canary is None:
        return None
    index, steps = current_step_index(rollout), steps_of(rollout)
    if index is None or index >= len(steps):
        return 100
    total = _int(_status(rollout).get("availableReplicas"))
    if total <= 0:
        return 0
    if canary.get("trafficRouting") is None:
        for rs in replica_sets:
            if rs.canary:
                return available_pods.get(rs.name, 0) * 100 // total
        return 0
    weights = _dict(_dict(_status(rollout).get("canary")).get("weights"))
    if weights:
        return _int(_dict(weights.get("canary")).get("weight"))
    return desired


# --- ReplicaSets and AnalysisRuns -------------------------------------------------------

def _replica_set_health(rs: Obj) -> str:
    """Argo's getReplicaSetHealth."""
    spec, status = _dict(rs.get("spec")), _status(rs)
    desired = spec.get("replicas")
    if _int(_meta(rs).get("generation"), 0) > _int(status.get("observedGeneration"), 0):
        return "Progressing"
    failing = any(_dict(c).get("type") == "ReplicaFailure" and _dict(c).get("status") == "True"
                  for c in _list(status.get("conditions")))
    if failing:
        return "ReplicaFailure"
    if desired is not None and _int(status.get("availableReplicas")) < _int(desired):
        return "Progressing"
    return "ScaledDown" if desired is not None and _int(desired) == 0 else "Healthy"


def _containers(template: Any) -> list[Mapping[str, Any]]:
    pod_spec = _dict(_dict(template).get("spec"))
    return [_dict(c) for c in _list(pod_spec.get("containers"))]


def _delay(rs: Obj, now: datetime) -> str:
    deadline = parse_time(_dict(_meta(rs).get("annotations")).get(SCALE_DOWN_DEADLINE))
    if deadline is None:
        return ""
    left = (deadline - now).total_seconds()
    return "passed" if left < 0 else human_duration(left)


def replica_set_row(rs: Obj, rollout: Obj, *, now: datetime) -> ReplicaSetRow:
    status, rollout_status = _status(rs), _status(rollout)
    pod_hash = pod_hash_of(rs)
    stable = bool(pod_hash) and pod_hash == rollout_status.get("stableRS")
    canary = bool(pod_hash) and not stable and pod_hash == rollout_status.get("currentPodHash")
    return ReplicaSetRow(
        name=str(_meta(rs).get("name", "")),
        revision=revision_of(rs),
        status=_replica_set_health(rs),
        age=age(_meta(rs), now),
        stable=stable,
        canary=canary,
        desired=_int(_dict(rs.get("spec")).get("replicas"), _int(status.get("replicas"))),
        ready=_int(status.get("readyReplicas")),
        images=tuple(str(c.get("image", "")) for c in _containers(_dict(rs.get("spec")).get("template"))),
        delay=_delay(rs, now),
    )


def _counts(result: Mapping[str, Any]) -> Counts:
    return Counts(*(_int(result.get(key)) for key in ("successful", "failed", "inconclusive", "error")))


def _short(value: Any, limit: int = 24) -> str:
    text = " ".join(str(value).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def metric_row(result: Mapping[str, Any]) -> MetricRow:
    measurements = [_dict(m) for m in _list(result.get("measurements"))]
    values = [_short(m["value"]) for m in measurements if m.get("value") not in (None, "")]
    message = result.get("message") or next(
        (m.get("message") for m in reversed(measurements) if m.get("message")), "")
    return MetricRow(
        name=str(result.get("name", "")),
        phase=str(result.get("phase") or "Pending"),
        counts=_counts(result),
        values=tuple(values[-METRIC_VALUES_SHOWN:]),
        message=str(message or ""),
        dry_run=bool(result.get("dryRun")),
    )


def analysis_run_row(run: Obj, *, revision: int, now: datetime) -> AnalysisRunRow:
    status = _status(run)
    results = [_dict(r) for r in _list(status.get("metricResults"))]
    metrics = [metric_row(r) for r in results]
    seen = {m.name for m in metrics}
    for spec_metric in _list(_dict(run.get("spec")).get("metrics")):
        name = str(_dict(spec_metric).get("name", ""))
        if name and name not in seen:  # not measured yet
            metrics.append(MetricRow(name=name, phase="Pending", counts=Counts(), values=()))
    total = Counts()
    for result in results:
        total = total + _counts(result)
    return AnalysisRunRow(
        name=str(_meta(run).get("name", "")),
        revision=revision,
        phase=str(status.get("phase") or "Pending"),
        age=age(_meta(run), now),
        counts=total,
        metrics=tuple(metrics),
        message=str(status.get("message") or ""),
    )


def _images(rollout: Obj, rows: Iterable[ReplicaSetRow], current_pods: dict[str, int]) -> tuple[ImageRow, ...]:
    """Argo's Images(): images of ReplicaSets with pods, tagged stable/canary, by name."""
    tags: dict[str, set[str]] = {}
    for rs in rows:
        if current_pods.get(rs.name, 0) <= 0:
            continue
        for image in rs.images:
            found = tags.setdefault(image, set())
            found.update(tag for tag, on in (("stable", rs.stable), ("canary", rs.canary)) if on)
    if not tags:  # nothing running yet: show what the template asks for
        template = _dict(_dict(rollout.get("spec")).get("template"))
        tags = {str(c.get("image", "")): set() for c in _containers(template)}
    return tuple(ImageRow(image, tuple(sorted(tags[image]))) for image in sorted(tags))


# --- the whole view ----------------------------------------------------------------------

def build(rollout: Obj, replica_sets: Iterable[Obj], analysis_runs: Iterable[Obj], *, now: datetime) -> RolloutView:
    """The view of `rollout`; ReplicaSets and AnalysisRuns it does not own are ignored."""
    owned_rs = [rs for rs in replica_sets if owned_by(rs, rollout)]
    rs_rows = [replica_set_row(rs, rollout, now=now) for rs in owned_rs]
    rs_rows.sort(key=lambda r: (-r.revision, r.name))
    revision_by_hash = {pod_hash_of(rs): revision_of(rs) for rs in owned_rs if pod_hash_of(rs)}
    runs = [run for run in analysis_runs if owned_by(run, rollout)]
    runs.sort(key=lambda run: (str(_meta(run).get("creationTimestamp", "")), str(_meta(run).get("name", ""))))
    ar_rows = [
        analysis_run_row(run, now=now, revision=revision_of(run) or revision_by_hash.get(pod_hash_of(run), 0))
        for run in runs
    ]
    revisions = sorted({r.revision for r in rs_rows} | {r.revision for r in ar_rows}, reverse=True)
    current_pods = {_meta(rs).get("name", ""): _int(_status(rs).get("replicas")) for rs in owned_rs}
    available_pods = {_meta(rs).get("name", ""): _int(_status(rs).get("availableReplicas")) for rs in owned_rs}
    phase, message = rollout_phase(rollout)
    status, spec = _status(rollout), _dict(rollout.get("spec"))
    weight = set_weight(rollout)
    return RolloutView(
        name=str(_meta(rollout).get("name", "")),
        namespace=str(_meta(rollout).get("namespace", "")),
        status=phase,
        message=message,
        strategy="Canary" if _canary(rollout) is not None else
        "BlueGreen" if _dict(spec.get("strategy")).get("blueGreen") is not None else "unknown",
        step=step_text(rollout),
        set_weight=weight,
        actual_weight=_actual_weight(rollout, rs_rows, weight, available_pods),
        images=_images(rollout, rs_rows, current_pods),
        replicas=Replicas(
            desired=_int(spec.get("replicas"), 1),
            current=_int(status.get("replicas")),
            updated=_int(status.get("updatedReplicas")),
            ready=_int(status.get("readyReplicas")),
            available=_int(status.get("availableReplicas")),
        ),
        steps=step_rows(rollout),
        revisions=tuple(
            RevisionRow(rev, tuple(r for r in rs_rows if r.revision == rev),
                        tuple(r for r in ar_rows if r.revision == rev))
            for rev in revisions
        ),
        age=age(_meta(rollout), now),
        aborted=status.get("abort") is True,
    )


def change_key(view: RolloutView) -> str:
    """What `summary_line` says, without the time: print a line when this changes."""
    parts = [f"{view.status:<11}"]
    if view.step:
        parts.append(f"step {view.step}")
    if view.set_weight is not None:
        weight = f"weight {view.set_weight}"
        if view.actual_weight is not None and view.actual_weight != view.set_weight:
            weight += f" (actual {view.actual_weight})"
        parts.append(weight)
    parts.append(f"ready {view.replicas.ready}/{view.replicas.desired}")
    for run in _active_runs(view):
        counts = f" {run.counts.text}" if run.counts.text else ""
        parts.append(f"analysis {run.name} {run.phase}{counts}")
    if view.message:
        parts.append(view.message)
    return "  ".join(parts)


def summary_line(view: RolloutView, now: datetime) -> str:
    """`12:00:05 Paused       step 2/4  weight 50  ready 5/5  CanaryPauseStep`."""
    return f"{now.strftime('%H:%M:%S')} {change_key(view)}"


def _active_runs(view: RolloutView) -> list[AnalysisRunRow]:
    """The AnalysisRuns of the newest revision (the update in flight)."""
    return list(view.revisions[0].analysis_runs) if view.revisions else []


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
    status, spec = _status(rollout), _dict(rollout.get("spec"))
    weight = set_weight(rollout)
    strategy = "Canary" if _canary(rollout) is not None else \
        "BlueGreen" if _dict(spec.get("strategy")).get("blueGreen") is not None else "unknown"
    return ListRow(
        namespace=str(_meta(rollout).get("namespace", "")),
        name=str(_meta(rollout).get("name", "")),
        strategy=strategy,
        status=rollout_phase(rollout)[0],
        step=step_text(rollout) or "-",
        set_weight="-" if weight is None else str(weight),
        ready=f"{_int(status.get('readyReplicas'))}/{_int(status.get('replicas'))}",
        desired=_int(spec.get("replicas"), 1),
        up_to_date=_int(status.get("updatedReplicas")),
        available=_int(status.get("availableReplicas")),
    )


# --- time ---------------------------------------------------------------------------------

def parse_time(value: Any) -> datetime | None:
    """An RFC 3339 timestamp as an aware datetime, or None."""
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else None


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
