"""Lease leader election: one leader at a time, takeover after expiry, renewal, release.

Two electors share one InMemoryCluster and a SteppedClock; each step is called with
the clock's `now`, so expiry is exact and nothing waits on the wall clock.
"""

from __future__ import annotations

import threading
from datetime import datetime
from typing import Any

from rollouts.controller.leader import LeaderElector, lock_name
from rollouts.memory.cluster import InMemoryCluster
from rollouts.platform.clock import SteppedClock
from rollouts.platform.cluster import Unavailable


def elector(cluster: Any, identity: str, **kwargs: Any) -> LeaderElector:
    return LeaderElector(cluster, identity=identity, namespace="argo-rollouts", **kwargs)


def lease(cluster: InMemoryCluster, name: str = "rollouts-controller-lock") -> dict[str, Any]:
    return cluster.get("Lease", name, "argo-rollouts")["spec"]


def test_only_one_of_two_electors_leads(cluster: InMemoryCluster, clock: SteppedClock) -> None:
    a, b = elector(cluster, "a"), elector(cluster, "b")
    assert a.try_acquire_or_renew(clock.now()) is True
    assert b.try_acquire_or_renew(clock.now()) is False
    spec = lease(cluster)
    assert spec["holderIdentity"] == "a"
    assert spec["leaseDurationSeconds"] == 15
    assert spec["leaseTransitions"] == 0
    assert spec["renewTime"] == "2024-01-01T00:00:00.000000Z" == spec["acquireTime"]


def test_renewing_keeps_the_lease_past_its_first_duration(cluster: InMemoryCluster, clock: SteppedClock) -> None:
    a, b = elector(cluster, "a"), elector(cluster, "b")
    a.try_acquire_or_renew(clock.now())
    for _ in range(20):  # 40 s, far beyond one 15 s lease
        clock.advance(2)
        assert a.try_acquire_or_renew(clock.now()) is True
        assert b.try_acquire_or_renew(clock.now()) is False
    spec = lease(cluster)
    assert spec["holderIdentity"] == "a"
    assert spec["acquireTime"] == "2024-01-01T00:00:00.000000Z"
    assert spec["renewTime"] == "2024-01-01T00:00:40.000000Z"


def test_the_other_takes_over_only_after_the_lease_expires(cluster: InMemoryCluster, clock: SteppedClock) -> None:
    a, b = elector(cluster, "a"), elector(cluster, "b")
    a.try_acquire_or_renew(clock.now())
    assert b.try_acquire_or_renew(clock.now()) is False  # b first sees the record at t=0
    clock.advance(14.9)
    assert b.try_acquire_or_renew(clock.now()) is False
    clock.advance(0.1)
    assert b.try_acquire_or_renew(clock.now()) is True
    spec = lease(cluster)
    assert spec["holderIdentity"] == "b"
    assert spec["leaseTransitions"] == 1
    assert spec["acquireTime"] == "2024-01-01T00:00:15.000000Z"
    assert a.try_acquire_or_renew(clock.now()) is False, "the old leader sees it lost"


def test_expiry_is_measured_from_when_this_replica_first_saw_the_record(
    cluster: InMemoryCluster, clock: SteppedClock
) -> None:
    """client-go's rule: a newcomer never trusts another replica's renewTime."""
    elector(cluster, "a").try_acquire_or_renew(clock.now())
    clock.advance(60)  # a died long ago, but b has only just started
    b = elector(cluster, "b")
    assert b.try_acquire_or_renew(clock.now()) is False
    clock.advance(15)
    assert b.try_acquire_or_renew(clock.now()) is True


def test_release_lets_a_successor_lead_at_once(cluster: InMemoryCluster, clock: SteppedClock) -> None:
    a, b = elector(cluster, "a"), elector(cluster, "b")
    a.try_acquire_or_renew(clock.now())
    b.try_acquire_or_renew(clock.now())
    a.release(clock.now())
    assert lease(cluster)["holderIdentity"] == ""
    assert b.try_acquire_or_renew(clock.now()) is True
    assert lease(cluster)["leaseTransitions"] == 1


def test_instance_ids_elect_separately(cluster: InMemoryCluster, clock: SteppedClock) -> None:
    plain = elector(cluster, "a", name=lock_name(None))
    blue = elector(cluster, "b", name=lock_name("blue"))
    assert plain.try_acquire_or_renew(clock.now()) and blue.try_acquire_or_renew(clock.now())
    assert lease(cluster, "rollouts-controller-lock-blue")["holderIdentity"] == "b"


class _RacingCluster:
    """Lets another writer update the lease between our read and our write."""

    def __init__(self, cluster: InMemoryCluster, on_replace: Any) -> None:
        self._cluster, self._on_replace = cluster, on_replace

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cluster, name)

    def replace(self, obj: dict[str, Any]) -> dict[str, Any]:
        self._on_replace()
        return self._cluster.replace(obj)


def test_losing_the_write_race_means_not_leader(cluster: InMemoryCluster, clock: SteppedClock) -> None:
    a = elector(cluster, "a")
    a.try_acquire_or_renew(clock.now())
    a.release(clock.now())
    b = elector(cluster, "b")
    racer = elector(_RacingCluster(cluster, lambda: b.try_acquire_or_renew(clock.now())), "c")
    assert racer.try_acquire_or_renew(clock.now()) is False
    assert lease(cluster)["holderIdentity"] == "b"


class _FlakyCluster:
    def __init__(self, cluster: InMemoryCluster) -> None:
        self._cluster, self.down = cluster, False

    def __getattr__(self, name: str) -> Any:
        if self.down:
            raise Unavailable("etcdserver: leader changed")
        return getattr(self._cluster, name)


def test_a_transient_fault_keeps_leadership_until_the_renew_deadline(
    cluster: InMemoryCluster, clock: SteppedClock
) -> None:
    flaky = _FlakyCluster(cluster)
    a = elector(flaky, "a")
    assert a.try_acquire_or_renew(clock.now())
    flaky.down = True
    clock.advance(10)
    assert a.try_acquire_or_renew(clock.now()) is True
    clock.advance(0.5)
    assert a.try_acquire_or_renew(clock.now()) is False
    flaky.down = False
    assert elector(cluster, "b").try_acquire_or_renew(clock.now()) is False


def test_the_thread_runner_starts_and_stops_leading(cluster: InMemoryCluster, clock: SteppedClock) -> None:
    a = elector(cluster, "a", retry_period=0.001)
    started, stopped, stop = threading.Event(), threading.Event(), threading.Event()
    thread = threading.Thread(
        target=a.run, args=(clock, stop), kwargs={"on_started": started.set, "on_stopped": stopped.set}
    )
    thread.start()
    assert started.wait(30)
    stop.set()
    thread.join(30)
    assert stopped.is_set()
    assert lease(cluster)["holderIdentity"] == "", "a graceful stop releases the lease"


def test_lease_times_are_microtime_utc(cluster: InMemoryCluster) -> None:
    clock = SteppedClock(datetime.fromisoformat("2024-05-06T07:08:09.123456+02:00"))
    elector(cluster, "a").try_acquire_or_renew(clock.now())
    assert lease(cluster)["renewTime"] == "2024-05-06T05:08:09.123456Z"
