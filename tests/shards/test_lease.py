"""One Lease per shard: its name, its timing, and shards electing apart in one namespace.

Three shards' electors (by instance id, by namespace, by both) share one InMemoryCluster
and one Lease namespace on a SteppedClock: each shard gets its own leader, a second
replica of a shard never leads beside the first, and a shard whose leader stops renewing
is taken over after exactly its lease duration while the other shards keep theirs.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from rollouts.cli import build_parser, main
from rollouts.controller.leader import LeaderElector, LeaseTiming, lock_name
from rollouts.memory.cluster import InMemoryCluster
from rollouts.platform.clock import SteppedClock

DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?")


@pytest.mark.parametrize(("instance_id", "namespace", "name"), [
    (None, None, "rollouts-controller-lock"),
    ("blue", None, "rollouts-controller-lock-blue"),  # as before sharding: an upgrade keeps its Lease
    (None, "team-a", "rollouts-controller-lock-ns-team-a"),
    ("blue", "team-a", "rollouts-controller-lock-blue-ns-team-a"),
    ("v1.2", None, "rollouts-controller-lock-v1.2"),
])
def test_the_lease_name_carries_the_shard(instance_id: str | None, namespace: str | None, name: str) -> None:
    assert lock_name(instance_id, namespace) == name


@pytest.mark.parametrize(("instance_id", "plain"), [("Blue", "blue"), ("team_a", "team-a"), ("-x-", "x"),
                                                   ("A.B_c", "a.b-c"), ("_", "shard")])
def test_an_instance_id_that_is_no_lease_name_is_made_one_and_kept_apart(instance_id: str, plain: str) -> None:
    """Argo's label value allows capitals and `_`; a Lease name does not (the API would refuse it)."""
    name = lock_name(instance_id)
    assert DNS_SUBDOMAIN.fullmatch(name), name
    assert name.startswith(f"rollouts-controller-lock-{plain}-")
    assert name != lock_name(plain)  # no collision with the plain spelling


def test_lookalike_instance_ids_get_different_leases() -> None:
    assert len({lock_name(i) for i in ("Blue", "BLUE", "blue", "b_lue", "b-lue")}) == 5


def test_lease_timing_must_be_in_client_gos_order() -> None:
    assert LeaseTiming() == LeaseTiming(15.0, 10.0, 2.0)
    for bad in [(10, 10, 2), (15, 10, 10), (15, 20, 2), (15, 10, 0)]:
        with pytest.raises(ValueError, match="lease duration"):
            LeaseTiming(*bad)


SHARDS = {"blue": ("blue", None), "team-a": (None, "team-a"), "green-in-b": ("green", "team-b")}


def electors(cluster: InMemoryCluster, replica: str) -> dict[str, LeaderElector]:
    return {shard: LeaderElector(cluster, identity=f"{shard}/{replica}", namespace="rollouts",
                                 name=lock_name(*where), lease_duration=4, renew_deadline=3, retry_period=1)
            for shard, where in SHARDS.items()}


def test_three_shards_elect_apart_in_one_namespace_and_one_shards_takeover_leaves_the_others() -> None:
    clock = SteppedClock()
    cluster = InMemoryCluster(clock=clock.now, workloads=False)
    first, second = electors(cluster, "0"), electors(cluster, "1")
    for shard in SHARDS:
        assert first[shard].try_acquire_or_renew(clock.now()) is True
        assert second[shard].try_acquire_or_renew(clock.now()) is False
    leases = {lease["metadata"]["name"]: lease["spec"] for lease in cluster.list("Lease", "rollouts")}
    assert {name: spec["holderIdentity"] for name, spec in leases.items()} == {
        lock_name(*where): f"{shard}/0" for shard, where in SHARDS.items()}
    assert {spec["leaseDurationSeconds"] for spec in leases.values()} == {4}

    for second_ in range(1, 5):  # team-a's leader dies (stops renewing); the others renew every second
        clock.advance(1)
        for shard in SHARDS:
            if shard != "team-a":
                assert first[shard].try_acquire_or_renew(clock.now()) is True
            taken = second[shard].try_acquire_or_renew(clock.now())
            assert taken is (shard == "team-a" and second_ == 4), (shard, second_)  # exactly one lease duration
    assert cluster.get("Lease", lock_name(None, "team-a"), "rollouts")["spec"]["holderIdentity"] == "team-a/1"
    assert first["team-a"].try_acquire_or_renew(clock.now()) is False  # the old leader, back, stays out


def test_the_election_flags_take_durations_and_go_to_the_elector() -> None:
    args = build_parser().parse_args(["controller", "--leader-election-lease-duration", "4s",
                                      "--leader-election-renew-deadline", "3000ms",
                                      "--leader-election-retry-period", "0.5"])
    assert (args.leader_election_lease_duration, args.leader_election_renew_deadline,
            args.leader_election_retry_period) == (4.0, 3.0, 0.5)
    defaults = build_parser().parse_args(["controller"])
    assert (defaults.leader_election_lease_duration, defaults.leader_election_renew_deadline,
            defaults.leader_election_retry_period) == (15.0, 10.0, 2.0)


@pytest.mark.parametrize("value", ["soon", "-1s", "0", "5h"])
def test_a_duration_that_is_not_one_is_a_usage_error(value: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(["controller", f"--leader-election-lease-duration={value}"])
    assert exited.value.code == 2 and f"{value!r} is not a duration" in capsys.readouterr().err


def test_election_durations_out_of_order_exit_2_naming_the_flags(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["controller", "--leader-election-lease-duration", "5s",
                 "--leader-election-renew-deadline", "10s"]) == 2
    err: Any = capsys.readouterr().err
    assert "--leader-election-renew-deadline" in err and "lease duration (5s) > renew deadline (10s)" in err
    assert err.count("\n") == 1
