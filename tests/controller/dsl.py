"""Given/When/Then for controller scenarios (Argo's e2e fixtures, on the InMemoryCluster).

A `Scenario` holds an InMemoryCluster, a SteppedClock, a scripted metric provider and a
`Manager` running both controllers. Examples are loaded from examples/<name>/ files.
Weights are recorded by *watching* the VirtualService (never by instrumenting the
controller): every distinct (stable, canary) pair of the watched route, with the time.
User actions (promote, abort, retry, a new image) send the patches the CLI sends.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from analysis.model import Metric
from analysis.providers import Provider, ProviderError, Providers, Result
from rollouts.controller.manager import Manager
from rollouts.memory.cluster import InMemoryCluster
from rollouts.platform import commands
from rollouts.platform.clock import SteppedClock
from rollouts.platform.cluster import Cluster, Conflict

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
START = datetime(2024, 1, 1, tzinfo=UTC)


def load_example(name: str, namespace: str = "default") -> list[dict[str, Any]]:
    """Every document of examples/<name>/*.yaml, in file order, placed in `namespace`."""
    docs = []
    for path in sorted((EXAMPLES / name).glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if isinstance(doc, dict) and doc.get("kind"):
                doc.setdefault("metadata", {})["namespace"] = namespace
                docs.append(doc)
    if not docs:
        raise FileNotFoundError(f"no manifests in {EXAMPLES / name}")
    return docs


@dataclass
class ScriptedProvider:
    """A metric provider that returns scripted values per call, per metric name.

    A value that is an Exception is raised as a ProviderError (an Error measurement).
    When a script runs out, its last value repeats. Every call is recorded.
    """

    scripts: dict[str, list[Any]] = field(default_factory=dict)
    calls: list[tuple[str, datetime]] = field(default_factory=list)

    def script(self, metric: str, *values: Any) -> None:
        self.scripts[metric] = list(values)

    def measure(self, metric: Metric, *, at: datetime) -> Result:
        self.calls.append((metric.name, at))
        values = self.scripts.get(metric.name)
        if not values:
            raise ProviderError(f"no scripted value for metric {metric.name!r}")
        value = values.pop(0) if len(values) > 1 else values[0]
        if isinstance(value, Exception):
            raise ProviderError(str(value))
        return Result(value=value, metadata={"ResolvedPrometheusQuery": "scripted"})


class Follower:
    """Watches one object; `poll()` takes in what changed and keeps every distinct value of
    `extract(object)` with the clock's time. The Scenario polls after every controller step,
    before the clock moves, so the times are exact."""

    def __init__(self, cluster: Cluster, clock: SteppedClock, *, kind: str, name: str, namespace: str,
                 extract: Callable[[dict[str, Any]], Any]) -> None:
        self.values: list[tuple[datetime, Any]] = []
        self._cluster, self._kind, self._namespace = cluster, kind, namespace
        self._name, self._clock, self._extract = name, clock, extract
        self._cursor: str | None = None
        self._lock = threading.Lock()
        self.poll()  # from here on every change is seen, not just the latest state

    def poll(self) -> None:
        with self._lock:
            stream = self._cluster.watch(self._kind, self._namespace, resource_version=self._cursor, timeout=0)
            for event in stream:
                if event.object["metadata"]["name"] != self._name or event.type == "DELETED":
                    continue
                value = self._extract(event.object)
                if not self.values or self.values[-1][1] != value:
                    self.values.append((self._clock.now(), value))
            self._cursor = stream.resource_version

    def close(self) -> None:
        pass


class WeightHistory(Follower):
    """(time, stable weight, canary weight) of one VirtualService route, from a watch."""

    def __init__(self, cluster: Cluster, clock: SteppedClock, *, name: str, route: str, namespace: str = "default",
                 stable: str, canary: str) -> None:
        super().__init__(cluster, clock, kind="VirtualService", name=name, namespace=namespace,
                         extract=lambda vs: route_weights(vs, route, stable=stable, canary=canary))

    @property
    def entries(self) -> list[tuple[datetime, int, int]]:
        return [(at, *weights) for at, weights in self.values]

    @property
    def canary_weights(self) -> list[int]:
        return [canary for _, _, canary in self.entries]


def pause_starts(rollout: dict[str, Any]) -> tuple[str, ...]:
    return tuple(c["startTime"] for c in (rollout.get("status") or {}).get("pauseConditions") or [])


def route_weights(vs: dict[str, Any], route: str, *, stable: str, canary: str) -> tuple[int, int]:
    """(stable, canary) weight of the named http route; destinations by host or subset."""
    [http] = [r for r in vs["spec"]["http"] if r.get("name") == route]
    found = {"stable": 0, "canary": 0}
    for destination in http["route"]:
        target = destination["destination"]
        for role, ident in (("stable", stable), ("canary", canary)):
            if ident in (target.get("subset"), target["host"].split(".")[0]):
                found[role] = destination.get("weight", 0)
    return found["stable"], found["canary"]


@dataclass(frozen=True)
class Outcome:
    """How a release story ended (`Scenario.outcome`), to hold a disturbed run (a restart, API faults) against an
    undisturbed one."""

    history: list[tuple[datetime, int, int]]  # the VirtualService's weights as watched
    status: dict[str, Any]
    end: datetime
    measured_at: list[datetime]  # when the scripted provider measured
    runs: list[str]  # the AnalysisRuns' names, sorted
    paused_at: list[str]  # every distinct pause startTime the status showed


class Scenario:
    def __init__(self, example: str, *, namespace: str = "default", cluster: Any = None,
                 clock: SteppedClock | None = None, provider: Provider | None = None, route: str = "primary",
                 vs: str | None = None, stable: str = "stable-svc", canary: str = "canary-svc",
                 manager_options: dict[str, Any] | None = None) -> None:
        self.namespace = namespace
        self.clock = clock or SteppedClock(START)
        self.cluster = cluster if cluster is not None else InMemoryCluster(clock=self.clock.now)
        self.provider = provider or ScriptedProvider()
        self.docs = load_example(example, namespace)
        self.rollout_name = next(d["metadata"]["name"] for d in self.docs if d["kind"] == "Rollout")
        self.vs_name = vs or next(d["metadata"]["name"] for d in self.docs if d["kind"] == "VirtualService")
        self.weights = WeightHistory(self.cluster, self.clock, name=self.vs_name, route=route,
                                     namespace=namespace, stable=stable, canary=canary)
        self.pauses = Follower(self.cluster, self.clock, kind="Rollout", name=self.rollout_name, namespace=namespace,
                               extract=pause_starts)
        self._route = (route, stable, canary)
        self.manager_options = {"leader_election": False, **(manager_options or {})}
        self.manager = self.new_manager()

    def new_manager(self, cluster: Any = None) -> Manager:
        return Manager(cluster if cluster is not None else self.cluster,
                       Providers({"prometheus": self.provider}), clock=self.clock, **self.manager_options)

    def close(self) -> None:
        self.weights.close()
        self.pauses.close()

    def observe(self) -> None:
        """Let the watchers take in what changed (called after every controller step)."""
        self.weights.poll()
        self.pauses.poll()

    @property
    def pause_history(self) -> list[str]:
        """Every distinct pause startTime the Rollout's status has shown, in order."""
        self.observe()
        return list(dict.fromkeys(start for _, starts in self.pauses.values for start in starts))

    # ------------------------------------------------------------ Given

    def given_objects(self) -> Scenario:
        for doc in self.docs:
            self.cluster.create(doc)
        self.observe()  # the watchers' cursors move past "0" (which would mean "list, no history")
        return self

    def given_healthy(self) -> Scenario:
        """The example is deployed and its first revision is Healthy (promoted without steps)."""
        self.given_objects()
        self.run_until(lambda: self.phase == "Healthy")
        return self

    # ------------------------------------------------------------ When

    def when_image(self, image: str) -> Scenario:
        for _ in range(5):
            rollout = self.rollout
            rollout["spec"]["template"]["spec"]["containers"][0]["image"] = image
            try:
                self.cluster.replace(rollout)
                return self
            except Conflict:
                continue
        raise AssertionError("could not update the image")

    def when_promote(self, *, full: bool = False) -> Scenario:
        commands.promote(self.cluster, self.rollout_name, self.namespace, full=full)  # as `rollouts promote`
        return self

    def when_abort(self) -> Scenario:
        self.cluster.patch_status("Rollout", self.rollout_name, self.namespace, {"status": {"abort": True}})
        return self

    def when_retry(self) -> Scenario:
        """`kubectl argo rollouts retry`: exactly Argo's patch, {"status": {"abort": false}}
        (the controller tells a retry by the abort it recorded: abortedAt or the
        RolloutAborted condition)."""
        self.cluster.patch_status("Rollout", self.rollout_name, self.namespace, {"status": {"abort": False}})
        return self

    def run_until(self, predicate: Callable[[], bool], *, max_seconds: float = 24 * 3600.0,
                  manager: Manager | None = None, between_reconciles: bool = False) -> Scenario:
        (manager or self.manager).run_until(predicate, max_seconds=max_seconds, between_reconciles=between_reconciles,
                                            after_step=self.observe)
        self.observe()
        return self

    def run_for(self, seconds: float, *, manager: Manager | None = None) -> Scenario:
        (manager or self.manager).run_for(seconds, after_step=self.observe)
        return self

    def settle_history(self) -> None:
        """Take in the VirtualService as it is now (after steps made outside run_until/run_for)."""
        self.observe()

    # ------------------------------------------------------------ Then

    @property
    def rollout(self) -> dict[str, Any]:
        return self.cluster.get("Rollout", self.rollout_name, self.namespace)

    @property
    def status(self) -> dict[str, Any]:
        return self.rollout.get("status") or {}

    @property
    def phase(self) -> str | None:
        return self.status.get("phase")

    @property
    def promoted(self) -> bool:
        """The update is done: the Rollout is Healthy and its current revision is the stable one."""
        return self.phase == "Healthy" and self.status.get("stableRS") == self.status.get("currentPodHash")

    def outcome(self) -> Outcome:
        """What the story ended with: the weights watched, the status, the clock, the measurements, runs and pauses."""
        return Outcome(history=list(self.weights.entries), status=self.status, end=self.clock.now(),
                       measured_at=[at for _, at in self.provider.calls],
                       runs=sorted(r["metadata"]["name"] for r in self.analysis_runs()), paused_at=self.pause_history)

    @property
    def vs_weights(self) -> tuple[int, int]:
        route, stable, canary = self._route
        return route_weights(self.cluster.get("VirtualService", self.vs_name, self.namespace), route,
                             stable=stable, canary=canary)

    def analysis_runs(self) -> list[dict[str, Any]]:
        return self.cluster.list("AnalysisRun", self.namespace)

    def events(self, reason: str | None = None) -> list[dict[str, Any]]:
        found = [e for e in self.cluster.list("Event", self.namespace)
                 if e["involvedObject"]["kind"] == "Rollout" and e["involvedObject"]["name"] == self.rollout_name]
        return [e for e in found if reason is None or e["reason"] == reason]

    def paused_at(self) -> datetime | None:
        conditions = self.status.get("pauseConditions") or []
        return datetime.fromisoformat(conditions[0]["startTime"].replace("Z", "+00:00")) if conditions else None


class CountingCluster:
    """Wraps a Cluster and counts the API writes made through it, by verb and kind.

    `fail` maps (verb, kind, name) to exceptions raised (one per call) before the call.
    """

    WRITES = ("create", "patch", "patch_status", "replace", "delete")

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.writes: list[tuple[str, str, str]] = []
        self.fail: dict[tuple[str, str, str], list[BaseException]] = {}
        self.before: dict[tuple[str, str, str], Callable[[], None]] = {}

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.inner, name)
        if name not in self.WRITES:
            return method

        def counted(*args: Any, **kwargs: Any) -> Any:
            if name in ("create", "replace"):
                obj = args[0]
                key = (name, obj.get("kind", ""), (obj.get("metadata") or {}).get("name", ""))
            else:
                key = (name, args[0], args[1])
            if key in self.before:
                self.before.pop(key)()
            if self.fail.get(key):
                raise self.fail[key].pop(0)
            result = method(*args, **kwargs)
            self.writes.append(key)
            return result

        return counted

    def count(self, *, exclude: Sequence[str] = ("Event", "Lease")) -> int:
        return sum(1 for _, kind, _ in self.writes if kind not in exclude)


__all__ = ["EXAMPLES", "START", "CountingCluster", "Follower", "Scenario", "ScriptedProvider", "WeightHistory",
           "load_example", "route_weights"]


def wait_for(predicate: Callable[[], bool], what: str, *, seconds: float = 30.0) -> None:
    """Threaded tests: wait (real time, generous) for an observable outcome of the controller."""
    pause = threading.Event()
    for _ in range(int(seconds * 100)):
        if predicate():
            return
        pause.wait(0.01)
    raise AssertionError(f"timed out waiting for {what}")
