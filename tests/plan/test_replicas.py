"""Pod-template hash, ReplicaSet documents and the replica arithmetic (Argo's vectors)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import pytest

from rollouts.plan.replicas import (
    ReplicaSetView,
    approximate_counts,
    basic_canary_counts,
    basic_old_scale_down,
    new_replicaset,
    pod_template_hash,
    routed_canary_replicas,
    surge_and_unavailable,
    weight_to_replicas,
)  # fmt: skip
from rollouts.spec.model import CanaryStrategy, Rollout, SetCanaryScale
from tests.plan.builders import replicaset, rollout, template


def view(name: str, replicas: int, available: int, revision: int = 1) -> ReplicaSetView:
    return ReplicaSetView(name, name, replicas, replicas, available, available, revision, None, {})


# ---------------------------------------------------------------- hashes and documents


def test_the_pod_template_hash_is_stable_short_and_safe() -> None:
    first = pod_template_hash(template("app:v1"))
    assert re.fullmatch(r"[bcdfghjklmnpqrstvwxz2456789]{10}", first)
    assert pod_template_hash(template("app:v1")) == first
    assert pod_template_hash(template("app:v2")) != first
    reordered = {"spec": template("app:v1")["spec"], "metadata": template("app:v1")["metadata"]}
    assert pod_template_hash(reordered) == first  # key order does not matter
    labelled = template("app:v1")
    labelled["metadata"]["labels"]["rollouts-pod-template-hash"] = "anything"
    assert pod_template_hash(labelled) == first  # our own label is not part of the template
    assert pod_template_hash(template("app:v1"), 1) != first  # collisionCount moves it


def test_a_new_replicaset_document() -> None:
    doc = rollout(replicas=5, spec={"minReadySeconds": 10})
    pod_hash = pod_template_hash(doc["spec"]["template"])
    rs = new_replicaset(Rollout.load(doc), pod_hash=pod_hash, revision=3, replicas=2)
    assert rs["metadata"]["name"] == f"web-{pod_hash}"
    assert rs["metadata"]["labels"] == {"app": "web", "rollouts-pod-template-hash": pod_hash}
    assert rs["metadata"]["annotations"] == {"rollout.argoproj.io/revision": "3",
                                             "rollout.argoproj.io/desired-replicas": "5"}
    assert rs["spec"]["replicas"] == 2 and rs["spec"]["minReadySeconds"] == 10
    assert rs["spec"]["selector"] == {"matchLabels": {"app": "web", "rollouts-pod-template-hash": pod_hash}}
    assert rs["spec"]["template"]["metadata"]["labels"]["rollouts-pod-template-hash"] == pod_hash
    assert doc["spec"]["template"]["metadata"]["labels"] == {"app": "web"}  # the Rollout is not touched


def test_a_replicaset_view_reads_counts_revision_and_deadline() -> None:
    doc: dict[str, Any] = replicaset(replicas=3, available=2, revision=7,
                                     annotations={"scale-down-deadline": "2024-05-01T12:00:30Z"})
    rs = ReplicaSetView.of(doc)
    assert (rs.replicas, rs.available, rs.revision) == (3, 2, 7)
    assert rs.deadline == datetime(2024, 5, 1, 12, 0, 30, tzinfo=UTC)
    assert not rs.all_available(3) and rs.all_available(2) is False
    doc["status"]["availableReplicas"] = 3
    assert ReplicaSetView.of(doc).all_available(3)


# ---------------------------------------------------------------- surge and unavailable


@pytest.mark.parametrize(("surge", "unavailable", "replicas", "expected"), [
    (None, None, 10, (3, 2)),       # 25% each: surge rounds up, unavailable down
    ("20%", 0, 10, (2, 0)),
    ("20", "20", 10, (2, 2)),       # the legacy percent string without "%"
    (2, 1, 10, (2, 1)),
    ("0%", "0%", 10, (0, 1)),       # both zero: unavailable becomes 1
    (0, 5, 3, (0, 3)),              # never more unavailable than replicas
])  # fmt: skip
def test_surge_and_unavailable(surge: Any, unavailable: Any, replicas: int, expected: tuple[int, int]) -> None:
    canary = CanaryStrategy(max_surge=surge, max_unavailable=unavailable)
    assert surge_and_unavailable(canary, replicas) == expected


# ---------------------------------------------------------------- traffic-routed canary


@pytest.mark.parametrize(("weight", "expected"), [(0, 0), (20, 2), (25, 3), (33, 4), (99, 10), (100, 10)])
def test_weight_to_replicas_rounds_up(weight: int, expected: int) -> None:
    assert weight_to_replicas(weight, 10) == expected


@pytest.mark.parametrize(("replicas", "weight", "scale", "min_pods", "expected"), [
    (10, 20, None, None, 2),
    (1, 100, SetCanaryScale(replicas=9), None, 9),        # replicas win over the weight
    (4, 100, SetCanaryScale(weight=200), None, 8),        # a scale weight may exceed 100
    (10, 5, None, 2, 2),                                  # minPodsPerReplicaSet floors a non-zero count
    (10, 0, None, 2, 0),                                  # but not zero
])  # fmt: skip
def test_routed_canary_replicas(replicas: int, weight: int, scale: SetCanaryScale | None, min_pods: int | None,
                                expected: int) -> None:
    assert routed_canary_replicas(replicas=replicas, weight=weight, scale=scale, min_pods=min_pods) == expected


# ---------------------------------------------------------------- basic canary (Argo's test vectors)


@pytest.mark.parametrize(("replicas", "weight", "surge", "expected"), [
    (0, 50, 1, (0, 0)),
    (1, 1, 0, (0, 1)), (1, 50, 0, (1, 0)), (1, 1, 1, (1, 1)), (1, 100, 1, (1, 0)),
    (2, 1, 0, (1, 1)), (2, 1, 1, (1, 2)), (2, 99, 1, (2, 1)),
    (3, 10, 0, (1, 2)), (3, 50, 0, (2, 1)), (3, 10, 1, (1, 3)), (3, 33, 1, (1, 2)), (3, 49, 1, (2, 2)),
    (10, 1, 0, (1, 9)), (10, 14, 0, (1, 9)), (10, 15, 0, (2, 8)), (10, 99, 0, (9, 1)),
    (10, 1, 1, (1, 10)), (10, 18, 1, (2, 9)), (10, 20, 1, (2, 8)), (10, 24, 1, (3, 8)), (10, 99, 1, (10, 1)),
])  # fmt: skip
def test_approximate_counts(replicas: int, weight: int, surge: int, expected: tuple[int, int]) -> None:
    assert approximate_counts(replicas, weight, surge) == expected


@pytest.mark.parametrize(("case", "replicas", "weight", "surge", "unavailable", "stable", "canary", "older",
                          "expected"), [
    ("surge int scales the canary up", 10, 20, 2, 0, (10, 10), (0, 0), None, (2, 10)),
    ("extra stable pods go", 10, 20, 2, 0, (10, 10), (2, 2), None, (2, 8)),
    ("never past maxSurge", 10, 30, 2, 0, (10, 10), (0, 0), None, (2, 10)),
    ("maxUnavailable makes room", 10, 20, 0, 2, (10, 10), (0, 0), None, (0, 8)),
    ("never past maxUnavailable", 10, 30, 0, 2, (10, 10), (0, 0), None, (0, 8)),
    ("surge and unavailable", 10, 50, 2, 1, (10, 10), (0, 0), None, (2, 9)),
    ("weight 0 empties the canary", 10, 0, 1, 1, (10, 10), (1, 1), None, (0, 10)),
    ("weight 100 empties the stable", 10, 100, 1, 1, (1, 1), (10, 10), None, (10, 0)),
    ("a non-zero weight keeps one canary pod", 1, 20, 1, 0, (1, 1), (0, 0), None, (1, 1)),
    ("stable scales up before the canary", 10, 30, 1, 0, (1, 1), (0, 0), (3, 3), (1, 7)),
    ("both scale down", 10, 30, 0, 3, (8, 5), (4, 4), None, (3, 7)),
    ("unavailable pods count", 10, 100, 1, 0, (10, 2), (10, 8), None, (9, 2)),
    ("older sets go first", 10, 30, 0, 1, (8, 6), (4, 2), (3, 3), (4, 8)),
    ("no rounding past surge", 10, 5, 0, 1, (10, 10), (0, 0), None, (0, 9)),
    ("no rounding past surge, part 2", 10, 5, 0, 1, (9, 9), (0, 0), None, (1, 9)),
    ("surge honoured with a degraded stable", 4, 100, 1, 0, (4, 1), (0, 0), None, (1, 4)),
    ("unavailable honoured with a degraded stable", 4, 100, 1, 0, (4, 1), (1, 1), None, (1, 3)),
    ("abort: surge the stable first", 4, 0, 1, 0, (0, 0), (4, 4), None, (4, 1)),
    ("abort: wait for the stable pod", 4, 0, 1, 0, (1, 0), (4, 4), None, (4, 1)),
    ("abort: one canary pod at a time", 4, 0, 1, 0, (1, 1), (4, 4), None, (3, 1)),
    ("3 replicas at 99% with 2 unavailable", 3, 99, 0, 2, (3, 3), (0, 0), None, (0, 1)),
    ("3 replicas at 99%, part 2", 3, 99, 0, 2, (1, 1), (0, 0), None, (2, 1)),
    ("a spec below available counts the spec", 10, 100, 3, 0, (7, 8), (6, 3), None, (6, 7)),
])  # fmt: skip
def test_basic_canary_counts(case: str, replicas: int, weight: int, surge: int, unavailable: int,
                             stable: tuple[int, int], canary: tuple[int, int], older: tuple[int, int] | None,
                             expected: tuple[int, int]) -> None:
    others = [view("older", *older)] if older else []
    got = basic_canary_counts(replicas=replicas, weight=weight, max_surge=surge, max_unavailable=unavailable,
                              new=view("canary", *canary), stable=view("stable", *stable), others=others)
    assert got == expected, case


def test_basic_canary_without_a_distinct_stable_goes_to_full_size() -> None:
    new = view("canary", 9, 9)
    assert basic_canary_counts(replicas=10, weight=10, max_surge=0, max_unavailable=1, new=new, stable=None) == (10, 0)
    assert basic_canary_counts(replicas=10, weight=10, max_surge=0, max_unavailable=1, new=new, stable=new) == (10, 0)


@pytest.mark.parametrize(("unavailable", "old", "others_available", "expected"), [
    (2, (3, 3), 9, {"old": 0}),    # 12 available, 8 must stay: all 3 may go
    (0, (3, 3), 8, {"old": 2}),    # 11 available, 10 must stay: one goes
    (0, (3, 0), 7, {"old": 0}),    # unavailable pods go regardless
    (0, (3, 3), 7, {}),            # at the floor: nothing goes
])  # fmt: skip
def test_basic_old_replicasets_scale_down_within_max_unavailable(unavailable: int, old: tuple[int, int],
                                                                  others_available: int,
                                                                  expected: dict[str, int]) -> None:
    older = view("old", *old)
    current = view("new", 10, others_available)
    targets = basic_old_scale_down(replicas=10, max_unavailable=unavailable, all_sets=[older, current], old=[older])
    assert targets == expected
