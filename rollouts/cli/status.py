"""`rollouts status NAME [--until TARGET] [--watch=true] [--timeout 30m]`: wait for a rollout
to reach a target, the step a CI/CD pipeline waits on (argo-rollouts#1389: a pipeline that
promotes by hand waits for the pause, not for Healthy).

Rules (kubectl-argo-rollouts `status`, plus `--until`):
- Prints `Phase - Message` (just `Phase` when there is no message) each time it changes.
- Targets (`--until`, default `healthy`): `healthy` (phase Healthy); `paused` (phase Paused:
  a pause step, a blueGreen pause before promotion, an inconclusive analysis, `spec.paused`);
  `step=N` (status.currentStepIndex has reached N, as `get rollout` shows `Step: N/total`;
  a finished canary has reached every step); `completed` (Healthy, the new ReplicaSet is the
  stable one and no old pod is left, e.g. after scaleDownDelaySeconds).
- Exit codes: 0 the target is reached; 1 Degraded, or aborted (`status.abort`), with
  "The rollout is in a degraded state with message: ..."; 2 `--timeout` passed first
  ("Rollout status watch exceeded timeout"; argparse's usage errors are 2 too); 3 the target
  cannot be reached: the rollout finished (Healthy) without pausing, or has no step N.
  `--timeout 0` waits forever.
- Every target is judged only once `status.observedGeneration` has caught up with
  `metadata.generation` (`view.rollout_phase`): a Rollout edited a moment ago reads
  "Progressing - waiting for rollout spec update to be observed", never its stale Healthy,
  Paused or step index. It reads nothing but the Rollout, so a controller restarting
  meanwhile neither ends the wait early nor stalls it.
- Changes arrive by a watch on Rollouts (`Follow`), bounded by the time left. A stream that
  ends or drops is resumed from the last resourceVersion it read; 410 Gone relists (a watch
  without a resourceVersion) at once, and the relisted Rollout counts as a change only when
  its resourceVersion moved. A deleted Rollout ends the wait as not found (exit 1). With a
  runtime with `watch=False` it polls every `POLL_SECONDS` with the runtime's `sleep`.
  `MAX_FAILURES` consecutive unreachable reads end the wait with exit 1.
- `--watch=false` prints the phase once; exit 1 if Degraded, else 0. With `--until` it exits
  as a wait with no time left: 0 reached, 1 Degraded, 2 not yet, 3 unreachable.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any

from rollouts import view
from rollouts.cli import CommandError, connect
from rollouts.cli.get import timeout_seconds
from rollouts.platform.cluster import Cluster, Gone, NotFound, Unavailable

POLL_SECONDS = 5.0
MAX_FAILURES = 5
EXIT_DEGRADED, EXIT_TIMEOUT, EXIT_UNREACHABLE = 1, 2, 3
TARGETS = "healthy|paused|step=N|completed"


@dataclass(frozen=True)
class Until:
    """What the wait waits for: `kind` is healthy, paused, step or completed; `step` is N."""

    kind: str = "healthy"
    step: int = 0

    def __str__(self) -> str:
        return f"step={self.step}" if self.kind == "step" else self.kind


def parse_until(text: str) -> Until:
    lowered = text.strip().lower()
    if lowered in ("healthy", "paused", "completed"):
        return Until(lowered)
    if lowered.startswith("step="):
        number = lowered.removeprefix("step=")
        if number.isdigit():
            return Until("step", int(number))
    raise argparse.ArgumentTypeError(f"{text!r} is not one of {TARGETS} (N a step index: 0, 1, 2, ...)")


def judge(rollout: dict[str, Any]) -> tuple[str, str]:
    """(phase, message) as `status` reports it: an abort counts as Degraded at once."""
    phase, message = view.rollout_phase(rollout)
    status = rollout.get("status") or {}
    if status.get("abort") is True and phase != "Degraded" and view.generation_observed(rollout):
        return "Degraded", "RolloutAborted: the rollout was aborted (status.abort is true)"
    return phase, message


def reached(until: Until, rollout: dict[str, Any], phase: str, message: str) -> bool:
    """Whether the target is reached; `phase, message` are `judge(rollout)`."""
    if phase == "Degraded" or message == view.NOT_OBSERVED:
        return False
    status = rollout.get("status") or {}
    if until.kind == "paused":
        return phase == "Paused"
    if until.kind == "step":
        return (view.current_step_index(rollout) or 0) >= until.step
    if until.kind == "completed":
        return (phase == "Healthy" and status.get("stableRS") == status.get("currentPodHash")
                and int(status.get("replicas") or 0) == int(status.get("updatedReplicas") or 0))
    return phase == "Healthy"


def unreachable(until: Until, rollout: dict[str, Any], phase: str, message: str) -> str | None:
    """Why the target can no longer be reached (exit 3), or None while it still can."""
    if message == view.NOT_OBSERVED or phase == "Degraded":
        return None
    if until.kind == "paused" and phase == "Healthy":
        return "The rollout finished (Healthy) without pausing"
    steps = len(view.steps_of(rollout))
    if until.kind == "step" and until.step > steps:
        return f"The rollout has no step {until.step}: it has {steps} step{'' if steps == 1 else 's'}"
    return None


def status_line(phase: str, message: str) -> str:
    return f"{phase} - {message}" if message else phase


class Follow:
    """The Rollout's next versions, by a watch resumed from `cursor` (the last resourceVersion
    read); None as the cursor relists. Only versions with a new resourceVersion are changes."""

    def __init__(self, cluster: Cluster, rollout: dict[str, Any]) -> None:
        meta = rollout.get("metadata") or {}
        self.cluster, self.name, self.namespace = cluster, str(meta.get("name")), meta.get("namespace")
        self.seen = meta.get("resourceVersion")
        self.cursor: str | None = None if self.seen is None else str(self.seen)

    def next(self, seconds: float) -> dict[str, Any] | None:
        """The Rollout after its next change within `seconds`; None when the watch ended first."""
        runtime = connect.runtime()
        if not runtime.watch:
            runtime.sleep(min(POLL_SECONDS, seconds))
            return self._changed(self.cluster.get("Rollout", self.name, self.namespace))
        try:
            return self._watch(seconds)
        except Gone:  # the cursor is older than the server's history: list again, now
            self.cursor = None
            return self._watch(seconds)

    def _watch(self, seconds: float) -> dict[str, Any] | None:
        stream = self.cluster.watch("Rollout", self.namespace, resource_version=self.cursor, timeout=seconds)
        try:
            for event in stream:
                self.cursor = stream.resource_version or self.cursor
                if event.object.get("metadata", {}).get("name") != self.name:
                    continue
                if event.type == "DELETED":
                    raise NotFound(f'rollout "{self.name}" was deleted')
                if (changed := self._changed(event.object)) is not None:
                    return changed
            self.cursor = stream.resource_version or self.cursor
        finally:
            stream.close()
        return None

    def _changed(self, rollout: dict[str, Any]) -> dict[str, Any] | None:
        version = (rollout.get("metadata") or {}).get("resourceVersion")
        if version is not None and version == self.seen:
            return None
        self.seen = version
        return rollout


def _verdict(until: Until, rollout: dict[str, Any], phase: str, message: str) -> int | None:
    """0 reached, or None to go on; Degraded and unreachable targets raise their exit."""
    if phase == "Degraded":
        raise CommandError(f"The rollout is in a degraded state with message: {message}", EXIT_DEGRADED)
    if reached(until, rollout, phase, message):
        return 0
    why = unreachable(until, rollout, phase, message)
    if why is not None:
        raise CommandError(why, EXIT_UNREACHABLE)
    return None


def wait(cluster: Cluster, name: str, namespace: str, *, timeout: float | None, until: Until = Until()) -> int:
    runtime = connect.runtime()
    deadline = None if timeout is None else runtime.clock.monotonic() + timeout
    rollout = cluster.get("Rollout", name, namespace)
    follow = Follow(cluster, rollout)
    printed, failures = "", 0
    while True:
        phase, message = judge(rollout)
        line = status_line(phase, message)
        if line != printed:
            print(line, flush=True)
            printed = line
        if (code := _verdict(until, rollout, phase, message)) is not None:
            return code
        remaining = None if deadline is None else deadline - runtime.clock.monotonic()
        if remaining is not None and remaining <= 0:
            raise CommandError("Rollout status watch exceeded timeout", EXIT_TIMEOUT)
        try:
            rollout = follow.next(POLL_SECONDS * 6 if remaining is None else remaining) or rollout
            failures = 0
        except Unavailable:
            failures += 1
            if failures >= MAX_FAILURES:
                raise
            runtime.sleep(POLL_SECONDS if remaining is None else min(POLL_SECONDS, remaining))


def once(rollout: dict[str, Any], until: Until | None) -> int:
    """`--watch=false`: the phase, printed once, and its exit."""
    phase, message = judge(rollout)
    print(phase if phase in ("Healthy", "Degraded") else status_line(phase, message))
    if until is None:
        if phase == "Degraded":
            raise CommandError(f"The rollout is in a degraded state with message: {message}", EXIT_DEGRADED)
        return 0
    if (code := _verdict(until, rollout, phase, message)) is not None:
        return code
    raise CommandError(f"The rollout has not reached {until} yet", EXIT_TIMEOUT)


@connect.with_cluster
def run_status(args: argparse.Namespace, cluster: Cluster, target: connect.Target) -> int:
    timeout = timeout_seconds(args)
    until: Until | None = getattr(args, "until", None)
    with connect.errors(target, name=args.name):
        if not args.watch:
            return once(cluster.get("Rollout", args.name, target.namespace), until)
        return wait(cluster, args.name, target.namespace, timeout=timeout, until=until or Until())


def _bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("true", "t", "1", "yes"):
        return True
    if lowered in ("false", "f", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"{text!r} is not true or false")


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "status", help="Wait until a rollout is Healthy or --until paused|step=N|completed (exit 0), Degraded (1), "
                       "the timeout passes (2) or the target cannot be reached (3)",
        description="Watch a rollout until it reaches the --until target or the timeout passes. Prints "
                    "`Phase - Message` on each change. Exit codes: 0 the target is reached; 1 Degraded or aborted; "
                    "2 the timeout passed; 3 the target cannot be reached (Healthy without pausing, no step N).")
    parser.add_argument("name", metavar="NAME")
    parser.add_argument("--until", type=parse_until, default=None, metavar="TARGET",
                        help="healthy (default): phase Healthy; paused: phase Paused (a pause step, a blueGreen "
                             "pause before promotion, an inconclusive analysis); step=N: currentStepIndex has "
                             "reached N (Step: N/total); completed: Healthy with no old pod left")
    parser.add_argument("-w", "--watch", type=_bool, nargs="?", const=True, default=True, metavar="BOOL",
                        help="wait for the rollout to finish (default true; --watch=false prints once, and with "
                             "--until exits 0 reached, 1 Degraded, 2 not yet, 3 unreachable)")
    parser.add_argument("-t", "--timeout", metavar="DURATION", default="0",
                        help="give up after this long, e.g. 30m (default 0: wait forever)")
    connect.add_flags(parser)
    parser.set_defaults(func=run_status)
