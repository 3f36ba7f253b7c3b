"""Helpers of the sharding tests: N shards of two controller replicas each, and who did what.

A shard is a set of `rollouts controller` flags (`--instance-id ID` or `--namespace NS`);
each runs as two subprocesses with leader election on short Lease timings, so a SIGKILLed
leader's standby takes over within seconds. Who handled a Rollout is read two ways, both
written by the controller itself: the `reportingInstance` of the Events on it (the writer's
identity, logged at start) and the `rollout_reconcile_count` series of each replica's
/metrics (only a replica that reconciled the Rollout has one).
"""

from __future__ import annotations

import re
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rollouts.platform.cluster import Cluster, NotFound
from tests.k8s.e2e import Controller, eventually

LEASE_SECONDS, RENEW_SECONDS, RETRY_SECONDS = 4, 3, 0.5
TIMING = ("--leader-election-lease-duration", f"{LEASE_SECONDS}s", "--leader-election-renew-deadline",
          f"{RENEW_SECONDS}s", "--leader-election-retry-period", f"{int(RETRY_SECONDS * 1000)}ms")
RECONCILED = re.compile(r'^rollout_reconcile_count\{name="([^"]+)",namespace="([^"]+)"\}', re.MULTILINE)


@dataclass
class Replica:
    shard: str
    controller: Controller

    def _search(self, pattern: str) -> str | None:
        for message in self.controller.messages():
            if found := re.search(pattern, message):
                return found.group(1)
        return None

    @property
    def identity(self) -> str | None:
        return self._search(r"controller starting: .* identity=(\S+)")

    @property
    def metrics_url(self) -> str | None:
        return self._search(r"metrics on (\S+)")

    def reconciled(self) -> set[tuple[str, str]]:
        """(namespace, name) of every Rollout this replica reconciled, from its own /metrics."""
        url = self.metrics_url
        assert url is not None, self.controller.tail()
        with urllib.request.urlopen(url, timeout=10) as answer:
            text = answer.read().decode()
        return {(namespace, name) for name, namespace in RECONCILED.findall(text)}


@dataclass
class Shard:
    name: str
    flags: tuple[str, ...]
    lease: str  # the Lease name this shard's replicas elect with
    lease_namespace: str
    replicas: list[Replica]

    def holder(self, cluster: Cluster) -> str:
        try:
            return str(cluster.get("Lease", self.lease, self.lease_namespace)["spec"].get("holderIdentity") or "")
        except NotFound:
            return ""

    def leader(self, cluster: Cluster) -> Replica | None:
        holder = self.holder(cluster)
        return next((r for r in self.replicas if holder and r.identity == holder), None)


@contextmanager
def shards(kubeconfig: Path, tmp: Path, specs: dict[str, tuple[tuple[str, ...], str, str]],
           replicas: int = 2) -> Iterator[list[Shard]]:
    """Start `replicas` controllers per shard: name -> (flags, lease name, lease namespace)."""
    with ExitStack() as stack:
        started = []
        for name, (flags, lease, lease_namespace) in specs.items():
            members = [Replica(name, stack.enter_context(Controller(
                kubeconfig, tmp / f"{name}-{i}.log", leader_elect=True, extra=(*flags, *TIMING))))
                for i in range(replicas)]
            started.append(Shard(name, flags, lease, lease_namespace, members))
        yield started


def wait_for_leaders(cluster: Cluster, running: list[Shard], timeout: float = 60.0) -> dict[str, Replica]:
    def leaders() -> dict[str, Replica] | None:
        found = {s.name: s.leader(cluster) for s in running}
        return found if all(found.values()) else None  # type: ignore[return-value]
    found = eventually(leaders, timeout=timeout)
    assert found, {s.name: (s.holder(cluster), [r.controller.tail(5) for r in s.replicas]) for s in running}
    return found


def writers(cluster: Cluster, namespaces: list[str]) -> dict[tuple[str, str], set[str]]:
    """(namespace, Rollout name) -> the reportingInstance of every Event on it."""
    found: dict[tuple[str, str], set[str]] = {}
    for ns in namespaces:
        for event in cluster.list("Event", ns):
            involved = event.get("involvedObject") or {}
            if involved.get("kind") == "Rollout":
                found.setdefault((ns, str(involved.get("name"))), set()).add(str(event.get("reportingInstance")))
    return found


def rollout(name: str, namespace: str, *, instance: str | None = None, image: str = "app:v1") -> dict[str, Any]:
    """A one-replica canary with no steps: each revision goes straight to Healthy."""
    labels = {"app": name}
    meta: dict[str, Any] = {"name": name, "namespace": namespace}
    if instance is not None:
        meta["labels"] = {"argo-rollouts.argoproj.io/controller-instance-id": instance}
    return {"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout", "metadata": meta,
            "spec": {"replicas": 1, "revisionHistoryLimit": 1, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels},
                                  "spec": {"containers": [{"name": "app", "image": image}]}},
                     "strategy": {"canary": {"steps": []}}}}


def settled(obj: dict[str, Any], *, not_on: str | None = None) -> bool:
    """Healthy on its current revision (and, given `not_on`, a revision other than that stable hash)."""
    status = obj.get("status") or {}
    stable = status.get("stableRS")
    return status.get("phase") == "Healthy" and bool(stable) and stable == status.get("currentPodHash") \
        and stable != not_on
