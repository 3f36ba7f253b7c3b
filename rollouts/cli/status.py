"""`rollouts status NAME [--watch=true] [--timeout 30m]`: wait for a rollout to finish, the
step a CI/CD pipeline ends with.

Rules (kubectl-argo-rollouts `status`):
- Prints `Phase - Message` (just `Phase` when there is no message) each time it changes.
- Exit 0 once Healthy; exit 1 once Degraded, or aborted (`status.abort`), with
  "The rollout is in a degraded state with message: ..."; exit 2 when `--timeout`
  passes first ("Rollout status watch exceeded timeout"). `--timeout 0` waits forever.
- The phase is trusted only when `status.observedGeneration` has caught up with
  `metadata.generation` (`view.rollout_phase`): a Rollout edited a moment ago reads
  "Progressing - waiting for rollout spec update to be observed", never its stale Healthy.
- Changes arrive by a watch on Rollouts from the last resourceVersion seen, bounded by
  the time left; when the watch cannot be used (410 Gone, a dropped connection, or a
  runtime with `watch=False`) it polls every `POLL_SECONDS` with the runtime's `sleep`.
  `MAX_FAILURES` consecutive unreachable reads end the wait with exit 1.
- `--watch=false` prints the phase once; exit 1 if Degraded, else 0.
"""

from __future__ import annotations

import argparse
from typing import Any

from rollouts import view
from rollouts.cli import CommandError, connect
from rollouts.cli.get import timeout_seconds
from rollouts.platform.cluster import Cluster, Gone, Unavailable

POLL_SECONDS = 5.0
MAX_FAILURES = 5
EXIT_DEGRADED, EXIT_TIMEOUT = 1, 2


def judge(rollout: dict[str, Any]) -> tuple[str, str]:
    """(phase, message) as `status` reports it: an abort counts as Degraded at once."""
    phase, message = view.rollout_phase(rollout)
    status = rollout.get("status") or {}
    if status.get("abort") is True and phase != "Degraded" and view.generation_observed(rollout):
        return "Degraded", "RolloutAborted: the rollout was aborted (status.abort is true)"
    return phase, message


def status_line(phase: str, message: str) -> str:
    return f"{phase} - {message}" if message else phase


def _next(cluster: Cluster, name: str, namespace: str, rollout: dict[str, Any], seconds: float) -> dict[str, Any]:
    """The Rollout after its next change, or as it is after `seconds`."""
    runtime = connect.runtime()
    version = (rollout.get("metadata") or {}).get("resourceVersion")
    if runtime.watch and version is not None:
        try:
            stream = cluster.watch("Rollout", namespace, resource_version=str(version), timeout=seconds)
            try:
                for event in stream:
                    if event.object.get("metadata", {}).get("name") == name and event.type != "DELETED":
                        return event.object
            finally:
                stream.close()
        except (Gone, Unavailable):
            runtime.sleep(min(POLL_SECONDS, seconds))
    else:
        runtime.sleep(min(POLL_SECONDS, seconds))
    return cluster.get("Rollout", name, namespace)


def wait(cluster: Cluster, name: str, namespace: str, *, timeout: float | None) -> int:
    runtime = connect.runtime()
    deadline = None if timeout is None else runtime.clock.monotonic() + timeout
    rollout = cluster.get("Rollout", name, namespace)
    printed, failures = "", 0
    while True:
        phase, message = judge(rollout)
        line = status_line(phase, message)
        if line != printed:
            print(line, flush=True)
            printed = line
        if phase == "Healthy":
            return 0
        if phase == "Degraded":
            raise CommandError(f"The rollout is in a degraded state with message: {message}", EXIT_DEGRADED)
        remaining = None if deadline is None else deadline - runtime.clock.monotonic()
        if remaining is not None and remaining <= 0:
            raise CommandError("Rollout status watch exceeded timeout", EXIT_TIMEOUT)
        seconds = POLL_SECONDS * 6 if remaining is None else remaining
        try:
            rollout = _next(cluster, name, namespace, rollout, seconds)
            failures = 0
        except Unavailable:
            failures += 1
            if failures >= MAX_FAILURES:
                raise
            runtime.sleep(POLL_SECONDS if remaining is None else min(POLL_SECONDS, remaining))


@connect.with_cluster
def run_status(args: argparse.Namespace, cluster: Cluster, target: connect.Target) -> int:
    timeout = timeout_seconds(args)
    with connect.errors(target, name=args.name):
        if not args.watch:
            phase, message = judge(cluster.get("Rollout", args.name, target.namespace))
            print(phase if phase in ("Healthy", "Degraded") else status_line(phase, message))
            if phase == "Degraded":
                raise CommandError(f"The rollout is in a degraded state with message: {message}", EXIT_DEGRADED)
            return 0
        return wait(cluster, args.name, target.namespace, timeout=timeout)


def _bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("true", "t", "1", "yes"):
        return True
    if lowered in ("false", "f", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"{text!r} is not true or false")


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "status", help="Wait until a rollout is Healthy (exit 0), Degraded (1) or the timeout passes (2)",
        description="Watch a rollout until it finishes or the timeout passes. Prints `Phase - Message` on each "
                    "change. Exit 0 when Healthy, 1 when Degraded or aborted, 2 on timeout.")
    parser.add_argument("name", metavar="NAME")
    parser.add_argument("-w", "--watch", type=_bool, nargs="?", const=True, default=True, metavar="BOOL",
                        help="wait for the rollout to finish (default true; --watch=false prints once)")
    parser.add_argument("-t", "--timeout", metavar="DURATION", default="0",
                        help="give up after this long, e.g. 30m (default 0: wait forever)")
    connect.add_flags(parser)
    parser.set_defaults(func=run_status)
