"""What a plan decided that the shell counts: promotions and aborts, each with its cause. Pure.

Rules:
- An `Outcome` is recorded by the transition that makes it (rollouts.plan.transitions: `abort`,
  `promote`), so it exists only in the one plan that changed the status; a pass that finds the
  Rollout already promoted or aborted records nothing, and neither does a restarted controller
  reading that status back. The shell counts a plan's outcomes once its pass succeeded.
- `AbortCause` is the one list of why an update is aborted: `analysis` (a run or an
  Experiment failed, errored, or ended without evidence; pre-rollout and rollout webhooks
  failing past webhookFailureLimit, as they extend the analysis), `gate` (a `rollback` webhook
  asked for it),
  `deadline` (progressDeadlineAbort), `manual` (`status.abort` set from outside: `rollouts
  abort`, `kubectl argo rollouts abort`).
- `started` is when the update began: the creationTimestamp of the new ReplicaSet (persisted,
  so a restarted controller measures the same), None when it has none. A retried update
  counts from its first attempt; an update back to a ReplicaSet kept from an older revision
  counts from that ReplicaSet's creation.
- A leaf: imports nothing of the plan.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from rollouts.platform.times import parse_time

__all__ = ["AbortCause", "Outcome", "update_started"]


class AbortCause(StrEnum):
    ANALYSIS = "analysis"
    GATE = "gate"
    DEADLINE = "deadline"
    MANUAL = "manual"


@dataclass(frozen=True)
class Outcome:
    kind: Literal["promoted", "aborted"]
    cause: AbortCause | None  # set for an abort only
    at: datetime
    started: datetime | None  # when the update began (the module rules)

    @property
    def seconds(self) -> float | None:
        """From the update to this outcome; None when the start is unknown."""
        return None if self.started is None else max((self.at - self.started).total_seconds(), 0.0)


def update_started(replica_sets: Sequence[Mapping[str, Any]], name: str) -> datetime | None:
    """The creationTimestamp of the ReplicaSet `name` (the new one), None without one."""
    for doc in replica_sets:
        meta = doc.get("metadata") or {}
        if meta.get("name") == name:
            return parse_time(meta.get("creationTimestamp"))
    return None
