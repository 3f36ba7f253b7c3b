"""`rollouts get rollout NAME [--watch]`: the SRE's cockpit, as `kubectl argo rollouts get`.

Rules:
- One snapshot = the Rollout plus the ReplicaSets and AnalysisRuns of its namespace,
  turned into `rollouts.view.RolloutView` (pure) and drawn by `rollouts.view.render`.
- `--watch` on a terminal redraws in place with rich.live.Live; without a terminal it
  prints one plain line per change (`view.summary_line`), so logs and CI stay readable.
  It refreshes on every Rollout watch event and at least every `REFRESH_SECONDS` (the
  ReplicaSets and AnalysisRuns move between Rollout events), until Ctrl-C or `--timeout`.
- Time comes from the runtime's clock and waits go through the runtime's `sleep` (or a
  bounded watch), so tests drive it on a stepped clock.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from rollouts import view
from rollouts.cli import CommandError, connect
from rollouts.platform.cluster import Cluster, Gone, NotFound

if TYPE_CHECKING:
    from rich.console import RenderableType

# rich (rollouts.view.render) and the duration parser (analysis.model, which builds the
# pydantic models) are imported where they are used, so `status` and `list`, which import
# this module, and a plain `get` pay only for what they run.

REFRESH_SECONDS = 1.0
PLAIN_WIDTH = 160


def snapshot(cluster: Cluster, name: str, namespace: str) -> tuple[view.RolloutView, str | None]:
    """The view of the Rollout and what it owns at the runtime's now, and the Rollout's
    resourceVersion (where to watch from)."""
    rollout = cluster.get("Rollout", name, namespace)
    replica_sets = cluster.list("ReplicaSet", namespace)
    runs = cluster.list("AnalysisRun", namespace)
    version = (rollout.get("metadata") or {}).get("resourceVersion")
    built = view.build(rollout, replica_sets, runs, now=connect.runtime().clock.now())
    return built, None if version is None else str(version)


def timeout_seconds(args: argparse.Namespace) -> float | None:
    """--timeout DURATION or --timeout-seconds N; None (or 0) means no limit."""
    if getattr(args, "timeout_seconds", None):
        return float(args.timeout_seconds)
    raw = getattr(args, "timeout", None)
    if raw in (None, "", "0"):
        return None
    from analysis.model import DurationError, parse_duration

    try:
        return float(parse_duration(raw)) or None
    except DurationError as err:
        raise CommandError(f"--timeout: {err}", 2) from None


def show(renderable: RenderableType, *, tty: bool, no_color: bool = False) -> None:
    """Print with colour on a terminal; plain, wide and without trailing blanks otherwise."""
    from rich.console import Console

    from rollouts.view import render

    if tty:
        Console(file=sys.stdout, force_terminal=True, no_color=no_color, highlight=False).print(renderable)
    else:
        print(render.to_text(renderable, width=PLAIN_WIDTH), end="", flush=True)


def wait_for_change(cluster: Cluster, *, kind: str, name: str, namespace: str,
                    resource_version: str | None, seconds: float) -> None:
    """Return when `name` changes or `seconds` pass: a bounded watch, else the runtime's sleep."""
    runtime = connect.runtime()
    if seconds <= 0:
        return
    if not runtime.watch or resource_version is None:
        runtime.sleep(seconds)
        return
    try:
        stream = cluster.watch(kind, namespace, resource_version=resource_version, timeout=seconds)
    except (Gone, NotFound):
        return
    try:
        for event in stream:
            if event.object.get("metadata", {}).get("name") == name:
                return
    except Gone:
        return
    finally:
        stream.close()


def follow(cluster: Cluster, name: str, namespace: str, *, timeout: float | None,
           show: Callable[[view.RolloutView], None]) -> None:
    """Show a fresh snapshot on each change until `timeout` (None: until Ctrl-C)."""
    runtime = connect.runtime()
    deadline = None if timeout is None else runtime.clock.monotonic() + timeout
    while True:
        current, version = snapshot(cluster, name, namespace)
        show(current)
        remaining = None if deadline is None else deadline - runtime.clock.monotonic()
        if remaining is not None and remaining <= 0:
            return
        wait_for_change(cluster, kind="Rollout", name=name, namespace=namespace, resource_version=version,
                        seconds=REFRESH_SECONDS if remaining is None else min(REFRESH_SECONDS, remaining))


@connect.with_cluster
def run_get(args: argparse.Namespace, cluster: Cluster, target: connect.Target) -> int:
    from rollouts.view import render

    runtime = connect.runtime()
    timeout = timeout_seconds(args)
    tty = runtime.is_tty()
    with connect.errors(target, name=args.name):
        if not args.watch:
            show(render.rollout(snapshot(cluster, args.name, target.namespace)[0]), tty=tty, no_color=args.no_color)
            return 0
        try:
            if tty:
                from rich.console import Console
                from rich.live import Live

                out = Console(file=sys.stdout, force_terminal=True, no_color=args.no_color, highlight=False)
                with Live(console=out, auto_refresh=False, redirect_stdout=False) as live:
                    follow(cluster, args.name, target.namespace, timeout=timeout,
                           show=lambda v: live.update(render.rollout(v), refresh=True))
            else:
                follow(cluster, args.name, target.namespace, timeout=timeout, show=_line_printer())
        except KeyboardInterrupt:  # Ctrl-C is how a watch ends
            return 0
    return 0


def _line_printer() -> Callable[[view.RolloutView], None]:
    last: list[str] = []

    def show(current: view.RolloutView) -> None:
        key = view.change_key(current)
        if last and last[-1] == key:
            return
        last.append(key)
        now = connect.runtime().clock.now().astimezone()
        print(view.summary_line(current, now), flush=True)

    return show


def register(subparsers: Any) -> None:
    get = subparsers.add_parser("get", help="Show a rollout: status, steps, weights, ReplicaSets, analysis")
    kinds = get.add_subparsers(dest="get_kind", metavar="KIND", required=True)
    parser = kinds.add_parser("rollout", aliases=["ro", "rollouts"], help="Show a rollout and what it owns",
                              description="Show a rollout as a tree: status, step i/N, set and actual weight, "
                                          "images, ReplicaSets (stable/canary) and AnalysisRuns with metrics.")
    parser.add_argument("name", metavar="NAME")
    parser.add_argument("-w", "--watch", action="store_true", help="follow changes (Ctrl-C to stop)")
    parser.add_argument("--timeout", metavar="DURATION", help="with --watch: stop after this long (e.g. 10m)")
    parser.add_argument("--timeout-seconds", type=int, metavar="N", help=argparse.SUPPRESS)
    parser.add_argument("--no-color", action="store_true", help="do not colorize output")
    connect.add_flags(parser)
    parser.set_defaults(func=run_get, reads_only=True)  # without --watch: the light reader (connect)
