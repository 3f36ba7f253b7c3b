"""`promote`, `abort`, `retry`, `pause`, `resume`, `restart`, `set image`: thin clients that
patch the Rollout exactly as `kubectl argo rollouts` does; the controller does the work.

What each sends (merge patches; `status` ones through the status subresource):
- promote:      spec.paused=false if paused; then the first of: an inconclusive step run
                paused by the controller → status {pauseConditions: null,
                controllerPause: false, currentStepIndex: i+1}; any pause condition →
                status {pauseConditions: null}; else (mid analysis/setWeight) → status
                {pauseConditions: null, currentStepIndex: i+1} (capped at len(steps)).
- promote --full: status {promoteFull: true} unless already fully promoted.
- abort:        status {abort: true} (the controller sets abortedAt, weight 0, Degraded).
- retry:        status {abort: false}, exactly Argo's patch (abortedAt is left for the
                controller, which replays from step 0 with new AnalysisRuns).
- pause:        spec {paused: true};  resume: spec {paused: false} + status
                {pauseConditions: null} (only the parts that are set).
- restart:      spec {restartAt: now (+ --in)} in RFC 3339 UTC.
- set image:    the pod template's container image (init, regular and ephemeral; `*` for
                all), written with replace + resourceVersion and retried on 409 like Argo;
                a Rollout with workloadRef gets its Deployment updated instead.
"""

from __future__ import annotations

import argparse
from datetime import timedelta
from typing import Any

from rollouts.cli import CommandError, connect
from rollouts.platform.cluster import Cluster, Conflict
from rollouts.platform.times import format_time

SET_IMAGE_ATTEMPTS = 5
CONTAINER_LISTS = ("initContainers", "containers", "ephemeralContainers")


def _steps(rollout: dict[str, Any]) -> list[Any]:
    canary = ((rollout.get("spec") or {}).get("strategy") or {}).get("canary")
    return list((canary or {}).get("steps") or []) if isinstance(canary, dict) else []


def _next_index(rollout: dict[str, Any]) -> int | None:
    """Argo's GetCurrentCanaryStep index + 1, capped at len(steps); None without steps."""
    steps = _steps(rollout)
    if not steps:
        return None
    raw = (rollout.get("status") or {}).get("currentStepIndex")
    index = raw if isinstance(raw, int) and not isinstance(raw, bool) and raw >= 0 else 0
    return index + 1 if index < len(steps) else index


def promote_patches(rollout: dict[str, Any], *, full: bool) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
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


def _apply(cluster: Cluster, name: str, namespace: str,
           spec_patch: dict[str, Any] | None, status_patch: dict[str, Any] | None) -> None:
    if status_patch is not None:
        cluster.patch_status("Rollout", name, namespace, status_patch)
    if spec_patch is not None:
        cluster.patch("Rollout", name, namespace, spec_patch)


@connect.with_cluster
def run_promote(args: argparse.Namespace, cluster: Cluster, target: connect.Target) -> int:
    with connect.errors(target, name=args.name):
        rollout = cluster.get("Rollout", args.name, target.namespace)
        _apply(cluster, args.name, target.namespace, *promote_patches(rollout, full=args.full))
    print(f"rollout '{args.name}' {'fully promoted' if args.full else 'promoted'}")
    return 0


def _for_each(verb: str, spec: dict[str, Any] | None,
              status: dict[str, Any] | None) -> Any:
    """A command that sends the same patches to each named Rollout."""
    @connect.with_cluster
    def command(args: argparse.Namespace, cluster: Cluster, target: connect.Target) -> int:
        names = list(args.names)
        if verb == "retried" and len(names) > 1 and names[0] in ("rollout", "rollouts", "ro"):
            names = names[1:]  # Argo spells it `retry rollout NAME`
        for name in names:
            with connect.errors(target, name=name):
                cluster.get("Rollout", name, target.namespace)  # a clear 404 before any write
                _apply(cluster, name, target.namespace, spec, status)
            print(f"rollout '{name}' {verb}")
        return 0

    return command


ABORT_PATCH = {"status": {"abort": True}}
RETRY_PATCH = {"status": {"abort": False}}  # Argo's `retry rollout`, byte for byte
run_abort = _for_each("aborted", None, ABORT_PATCH)
run_retry = _for_each("retried", None, RETRY_PATCH)
run_pause = _for_each("paused", {"spec": {"paused": True}}, None)


@connect.with_cluster
def run_resume(args: argparse.Namespace, cluster: Cluster, target: connect.Target) -> int:
    for name in args.names:
        with connect.errors(target, name=name):
            rollout = cluster.get("Rollout", name, target.namespace)
            spec = {"spec": {"paused": False}} if (rollout.get("spec") or {}).get("paused") else None
            pauses = (rollout.get("status") or {}).get("pauseConditions")
            _apply(cluster, name, target.namespace, spec, {"status": {"pauseConditions": None}} if pauses else None)
        print(f"rollout '{name}' resumed")
    return 0


@connect.with_cluster
def run_restart(args: argparse.Namespace, cluster: Cluster, target: connect.Target) -> int:
    from analysis.model import DurationError, parse_duration  # lazily: it builds the pydantic models

    try:
        delay = parse_duration(args.in_) if args.in_ else 0
    except DurationError as err:
        raise CommandError(f"--in: {err}", 2) from None
    moment = connect.runtime().clock.now() + timedelta(seconds=delay)
    with connect.errors(target, name=args.name):
        cluster.patch("Rollout", args.name, target.namespace,
                      {"spec": {"restartAt": format_time(moment)}})
    print(f"rollout '{args.name}' restarts in {args.in_ or '0s'}")
    return 0


# --- set image -------------------------------------------------------------------------

def parse_assignments(items: list[str]) -> list[tuple[str, str]]:
    found = []
    for item in items:
        container, sep, image = item.partition("=")
        if not sep or not container or not image or "=" in image:
            raise CommandError(f"{item!r} is not CONTAINER=IMAGE (e.g. app=shop/checkout:1.5.0, or *=IMAGE "
                               "for every container)", 2)
        found.append((container, image))
    return found


def set_images(obj: dict[str, Any], assignments: list[tuple[str, str]], *, what: str) -> bool:
    """Set the images in obj's pod template in place; True when something changed."""
    pod_spec = ((obj.get("spec") or {}).get("template") or {}).get("spec") or {}
    containers = [c for field in CONTAINER_LISTS for c in pod_spec.get(field) or [] if isinstance(c, dict)]
    changed = False
    for container, image in assignments:
        matched = [c for c in containers if container in ("*", c.get("name"))]
        if not matched:
            have = ", ".join(f'"{c.get("name")}"' for c in containers) or "none"
            raise CommandError(f'{what} has no container named "{container}" (containers: {have}); '
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
            raise CommandError(f'rollout "{name}" refers to a {ref.get("kind")} "{ref.get("name")}"; '
                               "only a Deployment's image can be set: edit it directly")
        deployment = cluster.get("Deployment", str(ref["name"]), namespace)
        if set_images(deployment, assignments, what=f'deployment "{ref["name"]}" (workloadRef of rollout "{name}")'):
            cluster.replace(deployment)
        return f'deployment "{ref["name"]}"'
    if set_images(rollout, assignments, what=f'rollout "{name}"'):
        cluster.replace(rollout)
    return f'rollout "{name}"'


def run_set_image(args: argparse.Namespace) -> int:
    if args.file:
        return _set_image_file(args)
    if len(args.args) < 2:
        raise CommandError("usage: rollouts set image NAME CONTAINER=IMAGE  (or --file MANIFEST CONTAINER=IMAGE)", 2)
    name, assignments = args.args[0], parse_assignments(args.args[1:])
    with connect.session(args) as (cluster, target), connect.errors(target, name=name):
        for attempt in range(SET_IMAGE_ATTEMPTS):
            try:
                what = _set_image_once(cluster, name, target.namespace, assignments)
                break
            except Conflict:
                if attempt == SET_IMAGE_ATTEMPTS - 1:
                    raise
    print(f"{what} image updated")
    return 0


def _set_image_file(args: argparse.Namespace) -> int:
    from rollouts.spec import gitops

    assignments = parse_assignments(args.args)
    try:
        changes = gitops.set_image_file(args.file, assignments, name=args.name)
    except gitops.ManifestError as err:
        raise CommandError(str(err)) from None
    if not changes:
        print(f"{args.file}: images already set; file unchanged")
    for change in changes:
        print(f'rollout "{change.rollout}" container "{change.container}": {change.old} -> {change.new} '
              f"in {args.file}")
    return 0


# --- parsers -------------------------------------------------------------------------------

def _command(subparsers: Any, name: str, help_text: str, func: Any, *, many: bool) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subparsers.add_parser(name, help=help_text, description=help_text)
    if many:
        parser.add_argument("names", nargs="+", metavar="NAME", help="Rollout name(s)")
    else:
        parser.add_argument("name", metavar="NAME", help="Rollout name")
    connect.add_flags(parser)
    parser.set_defaults(func=func)
    return parser


def register(subparsers: Any) -> None:
    promote = _command(subparsers, "promote", "Promote a paused rollout to its next step (or all the way with --full)",
                       run_promote, many=False)
    promote.add_argument("--full", action="store_true", help="skip the remaining steps, pauses and analysis")
    _command(subparsers, "abort", "Abort a rollout: traffic back to stable, canary scaled down", run_abort, many=True)
    _command(subparsers, "retry", "Retry an aborted rollout from step 0 (also: retry rollout NAME)",
             run_retry, many=True)
    _command(subparsers, "pause", "Pause a rollout (spec.paused)", run_pause, many=True)
    _command(subparsers, "resume", "Resume a paused rollout (clears spec.paused and pause conditions)",
             run_resume, many=True)
    restart = _command(subparsers, "restart", "Restart the pods of a rollout (spec.restartAt)", run_restart, many=False)
    restart.add_argument("--in", dest="in_", metavar="DURATION", help="restart after this long (e.g. 30s, 5m)")

    set_parser = subparsers.add_parser("set", help="Set fields of a rollout (image)")
    set_sub = set_parser.add_subparsers(dest="set_command", metavar="WHAT", required=True)
    image = set_sub.add_parser(
        "image", help="Set container images: in the cluster (NAME CONTAINER=IMAGE) or in a manifest (--file)",
        description="Set container images of a Rollout: `set image NAME app=repo/img:tag` patches the cluster; "
                    "`set image --file rollout.yaml app=repo/img:tag` edits a manifest in place for GitOps.")
    image.add_argument("args", nargs="+", metavar="NAME|CONTAINER=IMAGE")
    image.add_argument("-f", "--file", metavar="MANIFEST", help="edit this manifest instead of the cluster")
    image.add_argument("--name", help="with --file: the Rollout to edit when the file has several")
    connect.add_flags(image)
    image.set_defaults(func=run_set_image)
