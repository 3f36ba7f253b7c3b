"""The user's commands on a Rollout, written once: what `rollouts promote` and the dashboard send.

`promote`, `abort`, `retry`, `pause`, `resume`, `restart` and `set image` patch the Rollout
exactly as `kubectl argo rollouts` does; the controller does the work. The CLI
(rollouts.cli.actions) and the dashboard (rollouts.dashboard.actions) both call these, each
on a Cluster acting as its user.

What each sends (merge patches; `status` ones through the status subresource):
- promote:      spec.paused=false if paused; then the first of: an inconclusive step run
                paused by the controller → status {pauseConditions: null,
                controllerPause: false, currentStepIndex: i+1}; any pause condition →
                status {pauseConditions: null}; else (mid analysis/setWeight) → status
                {pauseConditions: null, currentStepIndex: i+1} (capped at len(steps)).
- promote full: status {promoteFull: true} unless already fully promoted.
- abort:        status {abort: true} (the controller sets abortedAt, weight 0, Degraded).
- retry:        status {abort: false}, exactly Argo's patch (abortedAt is left for the
                controller, which replays from step 0 with new AnalysisRuns).
- pause:        spec {paused: true};  resume: spec {paused: false} + status
                {pauseConditions: null} (only the parts that are set).
- restart:      spec {restartAt: the given moment} in RFC 3339 UTC.
- set image:    the pod template's container image (init, regular and ephemeral; `*` for
                all), written with replace + resourceVersion and retried on 409 like Argo;
                a Rollout with workloadRef gets its Deployment updated instead.
Errors are the port's (NotFound, Forbidden, Conflict, ...), and `ImageError` for a
container the pod template does not have.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from rollouts.platform.cluster import Cluster, Conflict
from rollouts.platform.times import format_time

__all__ = ["ABORT_PATCH", "PAUSE_PATCH", "RETRY_PATCH", "ImageError", "abort", "pause", "promote", "promote_patches",
           "restart", "resume", "resume_patches", "retry", "send", "set_image", "set_images"]

SET_IMAGE_ATTEMPTS = 5
CONTAINER_LISTS = ("initContainers", "containers", "ephemeralContainers")
Doc = dict[str, Any]
ABORT_PATCH: Doc = {"status": {"abort": True}}
RETRY_PATCH: Doc = {"status": {"abort": False}}  # Argo's `retry rollout`, byte for byte
PAUSE_PATCH: Doc = {"spec": {"paused": True}}


class ImageError(ValueError):
    """A set image naming a container the pod template does not have (the message lists them)."""


def _steps(rollout: Doc) -> list[Any]:
    canary = ((rollout.get("spec") or {}).get("strategy") or {}).get("canary")
    return list((canary or {}).get("steps") or []) if isinstance(canary, dict) else []


def _next_index(rollout: Doc) -> int | None:
    """Argo's GetCurrentCanaryStep index + 1, capped at len(steps); None without steps."""
    steps = _steps(rollout)
    if not steps:
        return None
    raw = (rollout.get("status") or {}).get("currentStepIndex")
    index = raw if isinstance(raw, int) and not isinstance(raw, bool) and raw >= 0 else 0
    return index + 1 if index < len(steps) else index


def promote_patches(rollout: Doc, *, full: bool) -> tuple[Doc | None, Doc | None]:
    """(spec patch, status patch) that `promote` sends for `rollout` (Argo's getPatches)."""
    status = rollout.get("status") or {}
    if full:
        if status.get("currentPodHash") != status.get("stableRS"):
            return None, {"status": {"promoteFull": True}}
        return None, None
    spec_patch = {"spec": {"paused": False}} if (rollout.get("spec") or {}).get("paused") else None
    step_run = ((status.get("canary") or {}).get("currentStepAnalysisRunStatus") or {})
    pauses = status.get("pauseConditions") or []
    index = _next_index(rollout)
    if step_run.get("status") == "Inconclusive" and pauses and status.get("controllerPause"):
        if index is None:
            return spec_patch, None
        return spec_patch, {"status": {"pauseConditions": None, "controllerPause": False, "currentStepIndex": index}}
    if pauses:
        return spec_patch, {"status": {"pauseConditions": None}}
    if index is not None:
        return spec_patch, {"status": {"pauseConditions": None, "currentStepIndex": index}}
    return spec_patch, None


def resume_patches(rollout: Doc) -> tuple[Doc | None, Doc | None]:
    spec = {"spec": {"paused": False}} if (rollout.get("spec") or {}).get("paused") else None
    pauses = (rollout.get("status") or {}).get("pauseConditions")
    return spec, {"status": {"pauseConditions": None}} if pauses else None


def send(cluster: Cluster, name: str, namespace: str, spec_patch: Doc | None, status_patch: Doc | None) -> None:
    """The status patch first (through the subresource), then the spec patch, as Argo's plugin."""
    if status_patch is not None:
        cluster.patch_status("Rollout", name, namespace, status_patch)
    if spec_patch is not None:
        cluster.patch("Rollout", name, namespace, spec_patch)


def promote(cluster: Cluster, name: str, namespace: str, *, full: bool = False) -> str:
    send(cluster, name, namespace, *promote_patches(cluster.get("Rollout", name, namespace), full=full))
    return f"rollout '{name}' {'fully promoted' if full else 'promoted'}"


def abort(cluster: Cluster, name: str, namespace: str) -> str:
    cluster.get("Rollout", name, namespace)  # a clear 404 before any write
    send(cluster, name, namespace, None, ABORT_PATCH)
    return f"rollout '{name}' aborted"


def retry(cluster: Cluster, name: str, namespace: str) -> str:
    cluster.get("Rollout", name, namespace)
    send(cluster, name, namespace, None, RETRY_PATCH)
    return f"rollout '{name}' retried"


def pause(cluster: Cluster, name: str, namespace: str) -> str:
    cluster.get("Rollout", name, namespace)
    send(cluster, name, namespace, PAUSE_PATCH, None)
    return f"rollout '{name}' paused"


def resume(cluster: Cluster, name: str, namespace: str) -> str:
    send(cluster, name, namespace, *resume_patches(cluster.get("Rollout", name, namespace)))
    return f"rollout '{name}' resumed"


def restart(cluster: Cluster, name: str, namespace: str, *, at: datetime) -> str:
    cluster.patch("Rollout", name, namespace, {"spec": {"restartAt": format_time(at)}})
    return f"rollout '{name}' restarts at {format_time(at)}"


def set_images(obj: Doc, assignments: list[tuple[str, str]], *, what: str) -> bool:
    """Set the images in obj's pod template in place; True when something changed."""
    pod_spec = ((obj.get("spec") or {}).get("template") or {}).get("spec") or {}
    containers = [c for field in CONTAINER_LISTS for c in pod_spec.get(field) or [] if isinstance(c, dict)]
    changed = False
    for container, image in assignments:
        matched = [c for c in containers if container in ("*", c.get("name"))]
        if not matched:
            have = ", ".join(f'"{c.get("name")}"' for c in containers) or "none"
            raise ImageError(f'{what} has no container named "{container}" (containers: {have}); '
                             "use one of those names, or '*' for all")
        for ctr in matched:
            changed |= ctr.get("image") != image
            ctr["image"] = image
    return changed


def _set_image_once(cluster: Cluster, name: str, namespace: str, assignments: list[tuple[str, str]]) -> str:
    rollout = cluster.get("Rollout", name, namespace)
    ref = (rollout.get("spec") or {}).get("workloadRef")
    if isinstance(ref, dict) and ref.get("name"):
        if ref.get("kind") != "Deployment":
            raise ImageError(f'rollout "{name}" refers to a {ref.get("kind")} "{ref.get("name")}"; '
                             "only a Deployment's image can be set: edit it directly")
        deployment = cluster.get("Deployment", str(ref["name"]), namespace)
        if set_images(deployment, assignments, what=f'deployment "{ref["name"]}" (workloadRef of rollout "{name}")'):
            cluster.replace(deployment)
        return f'deployment "{ref["name"]}"'
    if set_images(rollout, assignments, what=f'rollout "{name}"'):
        cluster.replace(rollout)
    return f'rollout "{name}"'


def set_image(cluster: Cluster, name: str, namespace: str, assignments: list[tuple[str, str]]) -> str:
    """Set the images, retried on 409 (SET_IMAGE_ATTEMPTS times) as Argo's plugin; returns what was updated."""
    for attempt in range(SET_IMAGE_ATTEMPTS):
        try:
            return f"{_set_image_once(cluster, name, namespace, assignments)} image updated"
        except Conflict:
            if attempt == SET_IMAGE_ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")  # pragma: no cover
