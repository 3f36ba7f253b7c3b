"""The tree `get rollout` draws: ReplicaSets and AnalysisRuns by revision, and the header.

Rules and invariants (Argo's info package):
- Pure: `build(rollout, replica_sets, analysis_runs, now=...)` from plain API dicts;
  `rollouts.view.render` draws the result, `summary_line` prints it as one line per change.
- A ReplicaSet is `stable` when its pod-template hash is `status.stableRS`, else
  `canary` when it is `status.currentPodHash` (canary only); blueGreen tags it `active`
  / `preview` when `status.blueGreen.activeSelector` / `previewSelector` is its hash;
  its health is Argo's getReplicaSetHealth. Images are those of ReplicaSets with pods,
  tagged stable/canary/active/preview, sorted by name.
- Revisions are shown newest first; an AnalysisRun without the revision annotation
  takes the revision of the ReplicaSet with its pod-template hash. Each run lists every
  metric of its spec, with the last measured values (oldest first) and the counters.
- The actual weight is `status.canary.weights.canary.weight` with traffic routing (the
  set weight if none is recorded), else the canary's share of available pods; 100 once
  every step is done.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from rollouts.platform.labels import SCALE_DOWN_DEADLINE
from rollouts.platform.times import parse_time
from rollouts.view.facts import (
    Obj,
    age,
    as_dict,
    as_int,
    as_list,
    canary_of,
    current_step_index,
    human_duration,
    meta_of,
    owned_by,
    pod_hash_of,
    revision_of,
    rollout_phase,
    set_weight,
    status_of,
    step_rows,
    step_text,
    steps_of,
)
from rollouts.view.rows import (
    AnalysisRunRow,
    Counts,
    HookRow,
    ImageRow,
    MetricRow,
    Replicas,
    ReplicaSetRow,
    RevisionRow,
    RolloutView,
)

METRIC_VALUES_SHOWN = 3


# --- ReplicaSets and AnalysisRuns -------------------------------------------------------

def _replica_set_health(rs: Obj) -> str:
    """Argo's getReplicaSetHealth."""
    spec, status = as_dict(rs.get("spec")), status_of(rs)
    desired = spec.get("replicas")
    if as_int(meta_of(rs).get("generation"), 0) > as_int(status.get("observedGeneration"), 0):
        return "Progressing"
    failing = any(as_dict(c).get("type") == "ReplicaFailure" and as_dict(c).get("status") == "True"
                  for c in as_list(status.get("conditions")))
    if failing:
        return "ReplicaFailure"
    if desired is not None and as_int(status.get("availableReplicas")) < as_int(desired):
        return "Progressing"
    return "ScaledDown" if desired is not None and as_int(desired) == 0 else "Healthy"


def _containers(template: Any) -> list[Mapping[str, Any]]:
    pod_spec = as_dict(as_dict(template).get("spec"))
    return [as_dict(c) for c in as_list(pod_spec.get("containers"))]


def _delay(rs: Obj, now: datetime) -> str:
    deadline = parse_time(as_dict(meta_of(rs).get("annotations")).get(SCALE_DOWN_DEADLINE))
    if deadline is None:
        return ""
    left = (deadline - now).total_seconds()
    return "passed" if left < 0 else human_duration(left)


def replica_set_row(rs: Obj, rollout: Obj, *, now: datetime) -> ReplicaSetRow:
    status, rollout_status = status_of(rs), status_of(rollout)
    pod_hash = pod_hash_of(rs)
    stable = bool(pod_hash) and pod_hash == rollout_status.get("stableRS")
    is_blue_green = canary_of(rollout) is None and "blueGreen" in as_dict(as_dict(rollout.get("spec")).get("strategy"))
    blue_green = as_dict(rollout_status.get("blueGreen")) if is_blue_green else {}
    canary = bool(pod_hash) and not stable and not is_blue_green and pod_hash == rollout_status.get("currentPodHash")
    return ReplicaSetRow(
        name=str(meta_of(rs).get("name", "")),
        revision=revision_of(rs),
        status=_replica_set_health(rs),
        age=age(meta_of(rs), now),
        stable=stable,
        canary=canary,
        desired=as_int(as_dict(rs.get("spec")).get("replicas"), as_int(status.get("replicas"))),
        ready=as_int(status.get("readyReplicas")),
        images=tuple(str(c.get("image", "")) for c in _containers(as_dict(rs.get("spec")).get("template"))),
        delay=_delay(rs, now),
        active=bool(pod_hash) and pod_hash == blue_green.get("activeSelector"),
        preview=bool(pod_hash) and pod_hash == blue_green.get("previewSelector"),
    )


def _counts(result: Mapping[str, Any]) -> Counts:
    return Counts(*(as_int(result.get(key)) for key in ("successful", "failed", "inconclusive", "error")))


def _short(value: Any, limit: int = 24) -> str:
    text = " ".join(str(value).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def metric_row(result: Mapping[str, Any]) -> MetricRow:
    measurements = [as_dict(m) for m in as_list(result.get("measurements"))]
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
    status = status_of(run)
    results = [as_dict(r) for r in as_list(status.get("metricResults"))]
    metrics = [metric_row(r) for r in results]
    seen = {m.name for m in metrics}
    for spec_metric in as_list(as_dict(run.get("spec")).get("metrics")):
        name = str(as_dict(spec_metric).get("name", ""))
        if name and name not in seen:  # not measured yet
            metrics.append(MetricRow(name=name, phase="Pending", counts=Counts(), values=()))
    total = Counts()
    for result in results:
        total = total + _counts(result)
    return AnalysisRunRow(
        name=str(meta_of(run).get("name", "")),
        revision=revision,
        phase=str(status.get("phase") or "Pending"),
        age=age(meta_of(run), now),
        counts=total,
        metrics=tuple(metrics),
        message=str(status.get("message") or ""),
    )


def _images(rollout: Obj, rows: Iterable[ReplicaSetRow], current_pods: dict[str, int]) -> tuple[ImageRow, ...]:
    """Argo's Images(): images of ReplicaSets with pods, tagged stable/canary/active/preview, by name."""
    tags: dict[str, set[str]] = {}
    for rs in rows:
        if current_pods.get(rs.name, 0) <= 0:
            continue
        for image in rs.images:
            found = tags.setdefault(image, set())
            found.update(tag for tag, on in rs.tags if on)
    if not tags:  # nothing running yet: show what the template asks for
        template = as_dict(as_dict(rollout.get("spec")).get("template"))
        tags = {str(c.get("image", "")): set() for c in _containers(template)}
    return tuple(ImageRow(image, tuple(sorted(tags[image]))) for image in sorted(tags))


def _actual_weight(rollout: Obj, replica_sets: Iterable[ReplicaSetRow], desired: int | None,
                   available_pods: dict[str, int]) -> int | None:
    canary = canary_of(rollout)
    if canary is None:
        return None
    index, steps = current_step_index(rollout), steps_of(rollout)
    if index is None or index >= len(steps):
        return 100
    total = as_int(status_of(rollout).get("availableReplicas"))
    if total <= 0:
        return 0
    if canary.get("trafficRouting") is None:
        for rs in replica_sets:
            if rs.canary:
                return available_pods.get(rs.name, 0) * 100 // total
        return 0
    weights = as_dict(as_dict(status_of(rollout).get("canary")).get("weights"))
    if weights:
        return as_int(as_dict(weights.get("canary")).get("weight"))
    return desired


# --- the whole view ----------------------------------------------------------------------

def build(rollout: Obj, replica_sets: Iterable[Obj], analysis_runs: Iterable[Obj], *, now: datetime) -> RolloutView:
    """The view of `rollout`; ReplicaSets and AnalysisRuns it does not own are ignored."""
    owned_rs = [rs for rs in replica_sets if owned_by(rs, rollout)]
    rs_rows = [replica_set_row(rs, rollout, now=now) for rs in owned_rs]
    rs_rows.sort(key=lambda r: (-r.revision, r.name))
    revision_by_hash = {pod_hash_of(rs): revision_of(rs) for rs in owned_rs if pod_hash_of(rs)}
    runs = [run for run in analysis_runs if owned_by(run, rollout)]
    runs.sort(key=lambda run: (str(meta_of(run).get("creationTimestamp", "")), str(meta_of(run).get("name", ""))))
    ar_rows = [
        analysis_run_row(run, now=now, revision=revision_of(run) or revision_by_hash.get(pod_hash_of(run), 0))
        for run in runs
    ]
    revisions = sorted({r.revision for r in rs_rows} | {r.revision for r in ar_rows}, reverse=True)
    current_pods = {meta_of(rs).get("name", ""): as_int(status_of(rs).get("replicas")) for rs in owned_rs}
    available_pods = {meta_of(rs).get("name", ""): as_int(status_of(rs).get("availableReplicas")) for rs in owned_rs}
    phase, message = rollout_phase(rollout)
    status, spec = status_of(rollout), as_dict(rollout.get("spec"))
    weight = set_weight(rollout)
    return RolloutView(
        name=str(meta_of(rollout).get("name", "")),
        namespace=str(meta_of(rollout).get("namespace", "")),
        status=phase,
        message=message,
        strategy="Canary" if canary_of(rollout) is not None else
        "BlueGreen" if as_dict(spec.get("strategy")).get("blueGreen") is not None else "unknown",
        step=step_text(rollout),
        set_weight=weight,
        actual_weight=_actual_weight(rollout, rs_rows, weight, available_pods),
        images=_images(rollout, rs_rows, current_pods),
        replicas=Replicas(
            desired=as_int(spec.get("replicas"), 1),
            current=as_int(status.get("replicas")),
            updated=as_int(status.get("updatedReplicas")),
            ready=as_int(status.get("readyReplicas")),
            available=as_int(status.get("availableReplicas")),
        ),
        steps=step_rows(rollout),
        revisions=tuple(
            RevisionRow(rev, tuple(r for r in rs_rows if r.revision == rev),
                        tuple(r for r in ar_rows if r.revision == rev))
            for rev in revisions
        ),
        age=age(meta_of(rollout), now),
        aborted=status.get("abort") is True,
        hooks=hook_rows(rollout, now=now),
    )


def hook_rows(rollout: Obj, *, now: datetime) -> tuple[HookRow, ...]:
    """status.hooks[] as rows: what each webhook was last asked, when, and its answer."""
    rows = []
    for entry in as_list(status_of(rollout).get("hooks")):
        if not isinstance(entry, Mapping):
            continue
        asked_at, code = parse_time(entry.get("askedAt")), entry.get("code")
        answered = entry.get("answeredAt") is not None
        answer = str(code) if isinstance(code, int) and answered else "error" if answered else (
            "waiting" if asked_at is not None else "")
        latency = entry.get("latencyMs")
        ago = "" if asked_at is None else human_duration((now - asked_at).total_seconds())
        rows.append(HookRow(
            name=str(entry.get("name", "")), type=str(entry.get("type", "")), answer=answer,
            ok=entry.get("ok") is True, asked=ago,
            latency=f"{latency}ms" if isinstance(latency, int) and answered else "",
            point=str(entry.get("decision") or "").rsplit("/", 1)[-1], error=str(entry.get("error") or "")))
    return tuple(rows)


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
