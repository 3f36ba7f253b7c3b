"""What the Rollout core asks the shell to do: plain, frozen values.

Rules:
- `plan()` returns these in the order they must be applied. The shell applies them one
  by one through the Cluster port and stops at the first failure *without* writing the
  new status, then requeues: the next plan recomputes everything from what is observed,
  so a half-applied list is never a problem (every action is idempotent by design:
  names are deterministic, patches carry absolute values, a create that finds the object
  already there is success).
- Actions carry absolute values, never deltas: `ScaleReplicaSet(name, 3)`, not "+1".
- `PatchVirtualService`/`PatchDestinationRule` carry the *whole* rewritten lists (a JSON
  merge patch replaces lists wholesale) and the resourceVersion they were computed from,
  so a concurrent edit is a 409 and a fresh plan, never a lost update.
- `SetServiceSelector`: the shell sets `spec.selector[rollouts-pod-template-hash]` and
  stamps the annotation `argo-rollouts.argoproj.io/managed-by-rollouts: <rollout>`.
- `AnnotateReplicaSet`: a value of None removes that annotation.
- `DeletePod`, `DeleteReplicaSet`, `DeleteAnalysisRun`: delete that object of the
  Rollout's namespace; one already gone is success (idempotent like the rest).
- `Event` is recorded on the Rollout itself.
- No I/O here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "Action",
    "AnnotateReplicaSet",
    "CreateAnalysisRun",
    "CreateReplicaSet",
    "DeleteAnalysisRun",
    "DeletePod",
    "DeleteReplicaSet",
    "Event",
    "PatchDestinationRule",
    "PatchVirtualService",
    "ScaleReplicaSet",
    "SetServiceSelector",
    "TerminateAnalysisRun",
]

NORMAL = "Normal"
WARNING = "Warning"


@dataclass(frozen=True)
class CreateReplicaSet:
    doc: dict[str, Any]

    @property
    def name(self) -> str:
        return str(self.doc["metadata"]["name"])


@dataclass(frozen=True)
class ScaleReplicaSet:
    name: str
    replicas: int


@dataclass(frozen=True)
class AnnotateReplicaSet:
    name: str
    annotations: Mapping[str, str | None]


@dataclass(frozen=True)
class SetServiceSelector:
    service: str
    hash: str


@dataclass(frozen=True)
class PatchVirtualService:
    name: str
    namespace: str
    http: list[dict[str, Any]] | None
    tls: list[dict[str, Any]] | None
    tcp: list[dict[str, Any]] | None
    resource_version: str | None

    def merge_patch(self) -> dict[str, Any]:
        """The JSON merge patch body: the rewritten route lists and the resourceVersion."""
        spec = {key: value for key, value in (("http", self.http), ("tls", self.tls), ("tcp", self.tcp))
                if value is not None}
        body: dict[str, Any] = {"spec": spec}
        if self.resource_version:
            body["metadata"] = {"resourceVersion": self.resource_version}
        return body


@dataclass(frozen=True)
class PatchDestinationRule:
    name: str
    namespace: str
    subsets: list[dict[str, Any]]
    annotations: Mapping[str, str] = field(default_factory=dict)
    resource_version: str | None = None

    def merge_patch(self) -> dict[str, Any]:
        metadata: dict[str, Any] = {}
        if self.annotations:
            metadata["annotations"] = dict(self.annotations)
        if self.resource_version:
            metadata["resourceVersion"] = self.resource_version
        body: dict[str, Any] = {"spec": {"subsets": self.subsets}}
        if metadata:
            body["metadata"] = metadata
        return body


@dataclass(frozen=True)
class CreateAnalysisRun:
    """The complete AnalysisRun document (built by `analysis.build.build_run`)."""

    doc: dict[str, Any]

    @property
    def name(self) -> str:
        return str(self.doc["metadata"]["name"])


@dataclass(frozen=True)
class TerminateAnalysisRun:
    """Merge-patch `{"spec": {"terminate": true}}` onto the run."""

    name: str


@dataclass(frozen=True)
class DeletePod:
    """A pod created before `spec.restartAt`: its ReplicaSet starts a new one."""

    name: str


@dataclass(frozen=True)
class DeleteReplicaSet:
    """An old ReplicaSet beyond `spec.revisionHistoryLimit`."""

    name: str


@dataclass(frozen=True)
class DeleteAnalysisRun:
    """A completed AnalysisRun beyond the Rollout's run history limits."""

    name: str


@dataclass(frozen=True)
class Event:
    type: str  # "Normal" | "Warning"
    reason: str
    message: str


Action = (
    CreateReplicaSet
    | ScaleReplicaSet
    | AnnotateReplicaSet
    | SetServiceSelector
    | PatchVirtualService
    | PatchDestinationRule
    | CreateAnalysisRun
    | TerminateAnalysisRun
    | DeletePod
    | DeleteReplicaSet
    | DeleteAnalysisRun
    | Event
)
