"""`promote`, `abort`, `retry`, `pause`, `resume`, `restart`, `set image`: thin clients that
patch the Rollout exactly as `kubectl argo rollouts` does; the controller does the work.

What each sends is written once, in rollouts.platform.commands (the dashboard sends the same);
this module parses the arguments, maps the port's errors to one line and prints the outcome.
"""

from __future__ import annotations

import argparse
from datetime import timedelta
from typing import Any

from rollouts.cli import CommandError, connect
from rollouts.platform import commands
from rollouts.platform.cluster import Cluster
from rollouts.platform.commands import ABORT_PATCH, PAUSE_PATCH, RETRY_PATCH, promote_patches, resume_patches

__all__ = ["ABORT_PATCH", "RETRY_PATCH", "parse_assignments", "promote_patches", "register", "set_images"]


_apply = commands.send


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


run_abort = _for_each("aborted", None, ABORT_PATCH)
run_retry = _for_each("retried", None, RETRY_PATCH)
run_pause = _for_each("paused", PAUSE_PATCH, None)


@connect.with_cluster
def run_resume(args: argparse.Namespace, cluster: Cluster, target: connect.Target) -> int:
    for name in args.names:
        with connect.errors(target, name=name):
            _apply(cluster, name, target.namespace, *resume_patches(cluster.get("Rollout", name, target.namespace)))
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
        commands.restart(cluster, args.name, target.namespace, at=moment)
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
    """commands.set_images, its ImageError as a CommandError."""
    try:
        return commands.set_images(obj, assignments, what=what)
    except commands.ImageError as err:
        raise CommandError(str(err)) from None


def run_set_image(args: argparse.Namespace) -> int:
    if args.file:
        return _set_image_file(args)
    if len(args.args) < 2:
        raise CommandError("usage: rollouts set image NAME CONTAINER=IMAGE  (or --file MANIFEST CONTAINER=IMAGE)", 2)
    name, assignments = args.args[0], parse_assignments(args.args[1:])
    with connect.session(args) as (cluster, target), connect.errors(target, name=name):
        try:
            outcome = commands.set_image(cluster, name, target.namespace, assignments)
        except commands.ImageError as err:
            raise CommandError(str(err)) from None
    print(outcome)
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
