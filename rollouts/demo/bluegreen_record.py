"""What the blue-green demo records while it runs: the Services' selectors, runs and ReplicaSets, in order.

Rules:
- `History` sees every write to the active and preview Services, the AnalysisRuns and the
  ReplicaSets, each as it happened: it drains one watch per kind with timeout 0 from its
  last resourceVersion, so a selector held for a moment is still recorded. The in-memory
  cluster's resourceVersion is one counter for every kind, so the versions order changes
  across kinds: "the active Service switched after the run was Successful" is a
  comparison of two versions, not of two clocks.
- Kept: each change of the (active, preview) selector pair; each change of a run's phase;
  each change of a ReplicaSet's `spec.replicas` or its `scale-down-deadline` annotation.
  `restart()` starts a release's history from the current state.
- The `BlueGreenRecord` is what one release did, read off that history and the traffic
  generators' counts (production through the active Service, smoke tests through the
  preview Service) by the demo; `rollouts.demo.bluegreen_summary` turns it into the summary.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from rollouts.demo.summary import ReleaseRecord
from rollouts.platform.cluster import Cluster
from rollouts.platform.labels import HASH_LABEL, SCALE_DOWN_DEADLINE


@dataclass(frozen=True)
class Selectors:
    version: int  # the resourceVersion of the Service write that made this pair
    active: str | None
    preview: str | None


@dataclass(frozen=True)
class Scale:
    version: int
    replicas: int
    deadline: str | None  # the scale-down-deadline annotation


def _selector(service: Mapping[str, Any]) -> str | None:
    value = ((service.get("spec") or {}).get("selector") or {}).get(HASH_LABEL)
    return str(value) if value else None


def _version(obj: Mapping[str, Any]) -> int:
    try:
        return int((obj.get("metadata") or {}).get("resourceVersion") or 0)
    except ValueError:
        return 0


class History:
    def __init__(self, cluster: Cluster, *, namespace: str, active: str, preview: str) -> None:
        self._cluster, self._namespace = cluster, namespace
        self._active, self._preview = active, preview
        self._cursors: dict[str, str | None] = {"Service": None, "AnalysisRun": None, "ReplicaSet": None}
        self._current: dict[str, str | None] = {active: None, preview: None}
        self.selectors: list[Selectors] = []
        self.runs: dict[str, list[tuple[int, str]]] = {}  # run name -> (version, phase) changes
        self.scales: dict[str, list[Scale]] = {}  # ReplicaSet name -> changes

    def drain(self) -> None:
        """Take in every change since the last drain (the first drain lists the current state)."""
        for kind in self._cursors:
            stream = self._cluster.watch(kind, self._namespace, resource_version=self._cursors[kind], timeout=0)
            try:
                for event in stream:
                    if event.type != "DELETED":
                        self._take(kind, event.object)
            finally:
                self._cursors[kind] = stream.resource_version
                stream.close()

    def _take(self, kind: str, obj: Mapping[str, Any]) -> None:
        name, version = str((obj.get("metadata") or {}).get("name", "")), _version(obj)
        if kind == "Service" and name in self._current:
            self._current[name] = _selector(obj)
            pair = Selectors(version, self._current[self._active], self._current[self._preview])
            if not self.selectors or (self.selectors[-1].active, self.selectors[-1].preview) != (pair.active,
                                                                                                 pair.preview):
                self.selectors.append(pair)
        elif kind == "AnalysisRun":
            phase = str((obj.get("status") or {}).get("phase") or "Pending")
            phases = self.runs.setdefault(name, [])
            if not phases or phases[-1][1] != phase:
                phases.append((version, phase))
        elif kind == "ReplicaSet":
            annotations = (obj.get("metadata") or {}).get("annotations") or {}
            scale = Scale(version, int((obj.get("spec") or {}).get("replicas") or 0),
                          annotations.get(SCALE_DOWN_DEADLINE))
            scales = self.scales.setdefault(name, [])
            if not scales or (scales[-1].replicas, scales[-1].deadline) != (scale.replicas, scale.deadline):
                scales.append(scale)

    def restart(self) -> None:
        """Start a new history from the current state."""
        self.drain()
        self.selectors = self.selectors[-1:]
        self.runs = {}
        self.scales = {name: changes[-1:] for name, changes in self.scales.items()}

    def replicas(self, replica_set: str) -> int | None:
        changes = self.scales.get(replica_set)
        return changes[-1].replicas if changes else None

    @property
    def active(self) -> str | None:
        return self._current[self._active]

    @property
    def preview(self) -> str | None:
        return self._current[self._preview]


def first_version(changes: list[tuple[int, str]], phase: str) -> int | None:
    """The version at which a run first had `phase`.

    >>> first_version([(3, "Pending"), (5, "Running"), (9, "Successful")], "Successful")
    9
    >>> first_version([(3, "Running")], "Successful") is None
    True
    """
    return next((version for version, seen in changes if seen == phase), None)


def scaled_down_version(changes: list[Scale]) -> int | None:
    """The version at which a ReplicaSet went to 0 replicas after having pods."""
    had_pods = False
    for change in changes:
        if change.replicas > 0:
            had_pods = True
        elif had_pods:
            return change.version
    return None


@dataclass(frozen=True)
class BlueGreenRecord(ReleaseRecord):
    """A canary ReleaseRecord (weights empty) plus what a blue-green release did."""

    new_hash: str = ""
    old_hash: str = ""  # the stable hash before the release
    selectors: tuple[Selectors, ...] = ()
    analysis_succeeded_version: int | None = None
    old_scales: tuple[Scale, ...] = ()
    new_scales: tuple[Scale, ...] = ()
    production: Mapping[str, int] = field(default_factory=dict)  # production requests to the new version
    production_total: int = 0  # production requests during the release
    smoke: Mapping[str, int] = field(default_factory=dict)  # smoke-test requests to the new version
