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
- `DeletePod`, `DeleteReplicaSet`, `DeleteAnalysisRun`, `DeleteExperiment`, `DeleteService`: delete that object of the
  Rollout's namespace; one already gone is success (idempotent like the rest).
- `Event` is recorded on the Rollout itself.
- Every other action says what it means as the one API request it stands for:
  `action.request(namespace, owner)` is a `Request` (create, merge patch or delete). The
  reconciler sends it, plan.written and the tests' stand-in cluster apply it with
  `apply_request`, so the meaning of an action is written once, here.
- No I/O here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from rollouts.platform.labels import HASH_LABEL, MANAGED_BY
from rollouts.platform.patches import clone, merge_patch

__all__ = [
    "Action",
    "AnnotateReplicaSet",
    "CreateAnalysisRun",
    "CreateExperiment",
    "CreateReplicaSet",
    "CreateService",
    "DeleteAnalysisRun",
    "DeleteExperiment",
    "DeletePod",
    "DeleteReplicaSet",
    "DeleteService",
    "Event",
    "PatchDestinationRule",
    "PatchVirtualService",
    "Request",
    "ScaleReplicaSet",
    "SetServiceSelector",
    "TerminateAnalysisRun",
    "TerminateExperiment",
    "apply_request",
]

NORMAL = "Normal"
WARNING = "Warning"
Doc = dict[str, Any]


@dataclass(frozen=True)
class Request:
    """The one API request an action stands for (the reconciler sends it, plan.written applies it)."""

    verb: str  # "create" | "patch" (a JSON merge patch) | "delete"
    kind: str
    name: str
    namespace: str
    body: Doc | None = None  # the object to create, or the merge patch


def apply_request(docs: list[Doc], request: Request) -> list[Doc]:
    """`docs` (objects of the request's kind) as the API server stores them after `request`:
    a create adds the object as sent (no status: nothing has run it yet), a merge patch
    changes only what it names (a None removes the key), a delete removes the object.
    Nothing else happens here (no pod starts, no resourceVersion moves). Pure."""
    def named(doc: Doc) -> bool:
        return bool((doc.get("metadata") or {}).get("name") == request.name)

    if request.verb == "create":
        return docs if any(named(doc) for doc in docs) else [*docs, clone(request.body or {})]
    if request.verb == "delete":
        return [doc for doc in docs if not named(doc)]
    return [merge_patch(doc, request.body or {}) if named(doc) else doc for doc in docs]


@dataclass(frozen=True)
class CreateReplicaSet:
    doc: dict[str, Any]

    @property
    def name(self) -> str:
        return str(self.doc["metadata"]["name"])

    def request(self, namespace: str, owner: str) -> Request:
        return Request("create", "ReplicaSet", self.name, namespace, self.doc)


@dataclass(frozen=True)
class ScaleReplicaSet:
    name: str
    replicas: int

    def request(self, namespace: str, owner: str) -> Request:
        return Request("patch", "ReplicaSet", self.name, namespace, {"spec": {"replicas": self.replicas}})


@dataclass(frozen=True)
class AnnotateReplicaSet:
    name: str
    annotations: Mapping[str, str | None]

    def request(self, namespace: str, owner: str) -> Request:
        return Request("patch", "ReplicaSet", self.name, namespace,
                       {"metadata": {"annotations": dict(self.annotations)}})


@dataclass(frozen=True)
class SetServiceSelector:
    service: str
    hash: str

    def request(self, namespace: str, owner: str) -> Request:
        return Request("patch", "Service", self.service, namespace,
                       {"metadata": {"annotations": {MANAGED_BY: owner}},
                        "spec": {"selector": {HASH_LABEL: self.hash}}})


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

    def request(self, namespace: str, owner: str) -> Request:
        return Request("patch", "VirtualService", self.name, self.namespace, self.merge_patch())


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

    def request(self, namespace: str, owner: str) -> Request:
        return Request("patch", "DestinationRule", self.name, self.namespace, self.merge_patch())


@dataclass(frozen=True)
class CreateAnalysisRun:
    """The complete AnalysisRun document (built by `analysis.build.build_run`)."""

    doc: dict[str, Any]

    @property
    def name(self) -> str:
        return str(self.doc["metadata"]["name"])

    def request(self, namespace: str, owner: str) -> Request:
        return Request("create", "AnalysisRun", self.name, namespace, self.doc)


@dataclass(frozen=True)
class TerminateAnalysisRun:
    """Merge-patch `{"spec": {"terminate": true}}` onto the run."""

    name: str

    def request(self, namespace: str, owner: str) -> Request:
        return Request("patch", "AnalysisRun", self.name, namespace, {"spec": {"terminate": True}})


@dataclass(frozen=True)
class CreateExperiment:
    """The complete Experiment document (a canary experiment step, rollouts.plan.experiment_step)."""

    doc: dict[str, Any]

    @property
    def name(self) -> str:
        return str(self.doc["metadata"]["name"])

    def request(self, namespace: str, owner: str) -> Request:
        return Request("create", "Experiment", self.name, namespace, self.doc)


@dataclass(frozen=True)
class TerminateExperiment:
    """Merge-patch `{"spec": {"terminate": true}}` onto the Experiment."""

    name: str

    def request(self, namespace: str, owner: str) -> Request:
        return Request("patch", "Experiment", self.name, namespace, {"spec": {"terminate": True}})


@dataclass(frozen=True)
class DeletePod:
    """A pod created before `spec.restartAt`: its ReplicaSet starts a new one."""

    name: str

    def request(self, namespace: str, owner: str) -> Request:
        return Request("delete", "Pod", self.name, namespace)


@dataclass(frozen=True)
class DeleteReplicaSet:
    """An old ReplicaSet beyond `spec.revisionHistoryLimit`."""

    name: str

    def request(self, namespace: str, owner: str) -> Request:
        return Request("delete", "ReplicaSet", self.name, namespace)


@dataclass(frozen=True)
class DeleteAnalysisRun:
    """A completed AnalysisRun beyond the Rollout's run history limits."""

    name: str

    def request(self, namespace: str, owner: str) -> Request:
        return Request("delete", "AnalysisRun", self.name, namespace)


@dataclass(frozen=True)
class CreateService:
    """A Service for an Experiment template's pods (rollouts.plan.experiment)."""

    doc: dict[str, Any]

    @property
    def name(self) -> str:
        return str(self.doc["metadata"]["name"])

    def request(self, namespace: str, owner: str) -> Request:
        return Request("create", "Service", self.name, namespace, self.doc)


@dataclass(frozen=True)
class DeleteService:
    """An Experiment template's Service, once its pods are gone."""

    name: str

    def request(self, namespace: str, owner: str) -> Request:
        return Request("delete", "Service", self.name, namespace)


@dataclass(frozen=True)
class DeleteExperiment:
    """A completed Experiment beyond the Rollout's history (its ReplicaSets and runs go with it)."""

    name: str

    def request(self, namespace: str, owner: str) -> Request:
        return Request("delete", "Experiment", self.name, namespace)


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
    | CreateExperiment
    | TerminateExperiment
    | DeletePod
    | DeleteReplicaSet
    | DeleteAnalysisRun
    | DeleteExperiment
    | CreateService
    | DeleteService
    | Event
)
