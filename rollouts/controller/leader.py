"""Leader election with a `coordination.k8s.io/v1` Lease, through the Cluster port.

Rules (client-go's leaderelection, as Argo Rollouts configures it):
- One Lease per shard (`lock_name`): `rollouts-controller-lock`, plus `-<instance-id>`
  with `--instance-id` and `-ns-<namespace>` with `--namespace`, so N controllers that
  split a cluster by instance id or by namespace each elect their own leader, even when
  every Lease lives in one namespace. A shard that is not a valid Lease name (Argo's
  label allows `_` and capitals) is lowered, its odd characters become `-`, and a short
  hash of the original keeps two such shards apart. Its spec carries `holderIdentity`,
  `leaseDurationSeconds` (15), `acquireTime`, `renewTime` and `leaseTransitions`.
- `LeaseTiming` holds client-go's three durations and their order (lease duration >
  renew deadline > retry period): a standby takes over a killed leader's shard within
  one lease duration (plus a retry period) of its last renewal.
- A replica may take the lease when it does not exist, when its holder is empty
  (released), or when it has expired. Expiry is judged on *this replica's* clock:
  the lease is expired when its record has not changed for `leaseDurationSeconds`
  since this replica first saw that record (client-go does the same, so clock skew
  between replicas cannot steal a live lease).
- Every write is optimistic: create (AlreadyExists) or replace with the read
  resourceVersion (Conflict). Losing that race means "not leader"; it is never an
  error. Transient API faults also mean "not leader this round".
- The holder renews every `retry_period`. Losing a race (Conflict) ends leadership
  at once; a transient API fault keeps it until `renew_deadline` has passed since
  the last renewal. Then the runner calls `on_stopped`. `release()` empties the holder
  so a successor need not wait for expiry (graceful shutdown).
- `try_acquire_or_renew(now)` is one step with `now` passed in, so tests drive two
  electors on one InMemoryCluster with a stepped clock; `run()` is the thread loop.
"""

from __future__ import annotations

import hashlib
import logging
import re
import socket
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from rollouts.platform.clock import Clock, to_utc
from rollouts.platform.cluster import AlreadyExists, Cluster, ClusterError, Conflict, NotFound
from rollouts.platform.times import format_micro_time

__all__ = ["LOCK_NAME", "LeaderElector", "LeaseTiming", "default_identity", "lock_name"]

log = logging.getLogger(__name__)

LOCK_NAME = "rollouts-controller-lock"


_NAME_PART = re.compile(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?")


def _name_part(text: str) -> str:
    """`text` as part of a Lease name (a DNS subdomain): as it is when valid, else lowered and hashed."""
    if _NAME_PART.fullmatch(text):
        return text
    cleaned = re.sub(r"[^a-z0-9.-]+", "-", text.lower()).strip("-.") or "shard"
    return f"{cleaned}-{hashlib.sha256(text.encode()).hexdigest()[:8]}"


def lock_name(instance_id: str | None = None, namespace: str | None = None) -> str:
    """The Lease of one shard: `rollouts-controller-lock[-<instance-id>][-ns-<namespace>]`."""
    shard = [*([_name_part(instance_id)] if instance_id else []), *([f"ns-{namespace}"] if namespace else [])]
    return "-".join([LOCK_NAME, *shard])


@dataclass(frozen=True)
class LeaseTiming:
    """client-go's leader election durations, in seconds (Argo's defaults: 15, 10, 2)."""

    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0

    def __post_init__(self) -> None:
        if not self.lease_duration > self.renew_deadline > self.retry_period > 0:
            raise ValueError(f"leader election needs lease duration ({self.lease_duration:g}s) > renew deadline "
                             f"({self.renew_deadline:g}s) > retry period ({self.retry_period:g}s) > 0")


def default_identity() -> str:
    """hostname + a random suffix, as Argo does: two processes on a host never share it."""
    return f"{socket.gethostname()}_{uuid.uuid4()}"


def micro_time(moment: datetime) -> str:
    """Kubernetes MicroTime: RFC 3339 with microseconds, in UTC."""
    return format_micro_time(moment)


class LeaderElector:
    def __init__(
        self,
        cluster: Cluster,
        *,
        identity: str | None = None,
        namespace: str = "default",
        name: str = LOCK_NAME,
        lease_duration: float = 15.0,
        renew_deadline: float = 10.0,
        retry_period: float = 2.0,
    ) -> None:
        self.cluster = cluster
        self.identity = identity or default_identity()
        self.namespace = namespace
        self.name = name
        self.lease_duration = lease_duration
        self.renew_deadline = renew_deadline
        self.retry_period = retry_period
        self._observed: tuple[Any, ...] | None = None
        self._observed_at: datetime | None = None
        self._renewed_at: datetime | None = None
        self._leading = False

    @property
    def leading(self) -> bool:
        return self._leading

    def try_acquire_or_renew(self, now: datetime) -> bool:
        """One election step at `now`: True when this replica holds the lease afterwards."""
        now = to_utc(now)
        try:
            self._leading = self._step(now)
        except ClusterError as err:  # a transient fault: keep leading until the renew deadline
            log.warning("leader election: lease %s/%s: %s", self.namespace, self.name, err)
            within = self._renewed_at is not None and now - self._renewed_at <= timedelta(seconds=self.renew_deadline)
            self._leading = self._leading and within
            return self._leading
        if self._leading:
            self._renewed_at = now
        return self._leading

    def release(self, now: datetime) -> None:
        """Give the lease up at once (only if this replica holds it)."""
        try:
            lease = self.cluster.get("Lease", self.name, self.namespace)
            if lease.get("spec", {}).get("holderIdentity") != self.identity:
                return
            lease["spec"].update(
                holderIdentity="", leaseDurationSeconds=1, renewTime=micro_time(now), acquireTime=micro_time(now)
            )
            self.cluster.replace(lease)
        except ClusterError as err:
            log.warning("leader election: could not release %s/%s: %s", self.namespace, self.name, err)
        finally:
            self._leading = False

    def _step(self, now: datetime) -> bool:
        try:
            lease = self.cluster.get("Lease", self.name, self.namespace)
        except NotFound:
            return self._create(now)
        spec = lease.setdefault("spec", {})
        record = tuple(spec.get(k) for k in ("holderIdentity", "renewTime", "acquireTime", "leaseTransitions"))
        if record != self._observed or self._observed_at is None:
            self._observed, self._observed_at = record, now
        holder = spec.get("holderIdentity") or ""
        duration = timedelta(seconds=float(spec.get("leaseDurationSeconds") or self.lease_duration))
        if holder and holder != self.identity and self._observed_at + duration > now:
            return False
        if holder != self.identity:
            spec["acquireTime"] = micro_time(now)
            spec["leaseTransitions"] = int(spec.get("leaseTransitions") or 0) + 1
        spec.update(
            holderIdentity=self.identity, leaseDurationSeconds=int(self.lease_duration), renewTime=micro_time(now)
        )
        try:
            self.cluster.replace(lease)  # carries the resourceVersion we read
        except (Conflict, NotFound):
            return False
        return True

    def _create(self, now: datetime) -> bool:
        lease = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": self.name, "namespace": self.namespace},
            "spec": {
                "holderIdentity": self.identity,
                "leaseDurationSeconds": int(self.lease_duration),
                "acquireTime": micro_time(now),
                "renewTime": micro_time(now),
                "leaseTransitions": 0,
            },
        }
        try:
            self.cluster.create(lease)
        except AlreadyExists:
            return False
        return True

    def run(
        self,
        clock: Clock,
        stop: threading.Event,
        *,
        on_started: Callable[[], None],
        on_stopped: Callable[[], None],
    ) -> None:
        """Thread loop: acquire, call `on_started`, renew until stopped or the renew deadline passes."""
        while not stop.is_set():
            if self.try_acquire_or_renew(clock.now()):
                break
            stop.wait(self.retry_period)
        else:
            return
        log.info("leader election: %s now leads (%s/%s)", self.identity, self.namespace, self.name)
        on_started()
        while not stop.wait(self.retry_period):
            if not self.try_acquire_or_renew(clock.now()):
                log.error("leader election: %s lost the lease %s/%s", self.identity, self.namespace, self.name)
                on_stopped()
                return
        self.release(clock.now())
        on_stopped()
