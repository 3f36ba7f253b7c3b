"""The rows of the `get rollout` view: frozen values, no logic beyond their info text.

Rules: every field is plain data already computed by `rollouts.view.tree`; the `info`
and `text` properties format Argo's INFO column (`stable,ready:5/5`, `✔ 3,✖ 1`).
"""

from __future__ import annotations

from dataclasses import dataclass

from rollouts.view.facts import StepRow, icon


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
    active: bool = False  # blueGreen: the active Service selects it
    preview: bool = False  # blueGreen: the preview Service selects it

    @property
    def icon(self) -> str:
        return icon(self.status)

    @property
    def tags(self) -> tuple[tuple[str, bool], ...]:
        return (("stable", self.stable), ("canary", self.canary), ("active", self.active), ("preview", self.preview))

    @property
    def info(self) -> str:
        parts = [tag for tag, on in self.tags if on]
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
class HookRow:
    """One lifecycle webhook's last ask and answer (status.hooks[], rollouts.plan.hooks)."""

    name: str
    type: str
    answer: str  # "200", "403", "error", "waiting" (asked, no answer yet), "" (never asked)
    ok: bool
    asked: str  # how long ago it was asked ("" never)
    latency: str  # "12ms", "" without an answer
    point: str  # the decision's point: "confirm-rollout", "step-2", "round-3", "promoted", ...
    error: str = ""

    @property
    def icon(self) -> str:
        if self.ok:
            return icon("Successful")
        return icon("Pending") if self.answer in ("waiting", "") else icon("Failed")


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
    hooks: tuple[HookRow, ...] = ()  # lifecycle webhooks (our superset), in spec order

    @property
    def icon(self) -> str:
        return icon(self.status)
