"""plan(observed, now) keeps history bounded: old ReplicaSets beyond revisionHistoryLimit and
completed AnalysisRuns beyond the run history limits are deleted, oldest first.

Table tests over the pure core (`World` applies the actions to plain dicts); nothing sleeps.
"""

from __future__ import annotations

from typing import Any

import pytest

from rollouts.platform.actions import DeleteAnalysisRun, DeleteReplicaSet
from rollouts.platform.labels import SCALE_DOWN_DEADLINE
from tests.plan.builders import (
    T0,
    World,
    analysis_run,
    analysis_template,
    changes,
    hash_of,
    replicaset,
    rollout,
    seconds,
    stamp,
)  # fmt: skip

STEPS = [{"setWeight": 50}, {"pause": {"duration": 60}}]


def deleted_sets(world: World) -> list[str]:
    return [a.name for a in changes(world.plan()) if isinstance(a, DeleteReplicaSet)]


def deleted_runs(world: World) -> list[str]:
    return [a.name for a in changes(world.plan()) if isinstance(a, DeleteAnalysisRun)]


def old_sets(*revisions: int, **overrides: dict[str, Any]) -> list[dict[str, Any]]:
    """Scaled-down ReplicaSets of app:v<revision>; `r<revision>=...` overrides a spec/annotation."""
    found = []
    for revision in revisions:
        extra = overrides.get(f"r{revision}", {})
        rs = replicaset(image=f"app:v{revision}", replicas=extra.get("replicas", 0), revision=revision,
                        annotations=extra.get("annotations"))
        found.append(rs)
    return found


def deployed_over(old: list[dict[str, Any]], **spec: Any) -> World:
    """app:v9 deployed (promoted at once) next to `old` ReplicaSets of earlier revisions."""
    return World.of(rollout(steps=STEPS, image="app:v9", spec=spec), replica_sets=old)


def names(*revisions: int) -> list[str]:
    return [f"web-{hash_of(f'app:v{revision}')}" for revision in revisions]


# ---------------------------------------------------------------- revisionHistoryLimit


@pytest.mark.parametrize(("limit", "gone"), [
    (None, []),          # default 10: 4 old ReplicaSets are kept
    (4, []),
    (2, [1, 2]),         # oldest revisions first
    (1, [1, 2, 3]),
    (0, [1, 2, 3, 4]),
])
def test_old_replica_sets_beyond_the_limit_are_deleted_oldest_first(limit: int | None, gone: list[int]) -> None:
    spec = {} if limit is None else {"revisionHistoryLimit": limit}
    world = deployed_over(old_sets(3, 1, 4, 2), **spec)
    assert deleted_sets(world) == names(*gone)
    world.settle()
    assert sorted(rs["metadata"]["name"] for rs in world.replica_sets) == sorted(
        names(*[r for r in (1, 2, 3, 4) if r not in gone], 9))


def test_a_replica_set_with_pods_or_a_deadline_to_come_is_kept_and_not_replaced_by_a_newer_one() -> None:
    future = {SCALE_DOWN_DEADLINE: stamp(T0 + seconds(30))}
    world = deployed_over(old_sets(1, 2, 3, 4, r1={"annotations": future}, r2={"replicas": 1}),
                          revisionHistoryLimit=1)
    assert deleted_sets(world) == names(3), "1 waits for its deadline, 2 has a pod, 4 is within the limit"
    world.step()
    world.now = T0 + seconds(30)
    assert deleted_sets(world) == names(1)


def test_the_stable_and_the_canary_are_never_history() -> None:
    world = World.of(rollout(steps=STEPS, spec={"revisionHistoryLimit": 0}))
    world.settle()
    world.set_image("app:v2")
    world.settle()  # paused at 50%: stable v1 and canary v2 both have pods
    assert world.status["currentStepIndex"] == 1
    assert deleted_sets(world) == []
    world.settle(world.now + seconds(61))  # promoted; v1 scaled down after its 30 s deadline, then deleted
    world.settle(world.now + seconds(30))
    assert [rs["metadata"]["name"] for rs in world.replica_sets] == names(2)
    assert world.status["phase"] == "Healthy"


# ---------------------------------------------------------------- AnalysisRun history


def with_runs(*runs: dict[str, Any], **limits: int) -> World:
    world = World.of(rollout(steps=STEPS, spec={"analysis": limits} if limits else None))
    world.settle()
    world.analysis_runs = list(runs)
    return world


def run(name: str, phase: str | None, minute: int) -> dict[str, Any]:
    return analysis_run(name, phase=phase, created=T0 - seconds(3600 - 60 * minute))


@pytest.mark.parametrize(("limits", "gone"), [
    ({}, ["ok-1", "bad-1"]),  # 5 and 5 by default: 6 of each
    ({"successfulRunHistoryLimit": 2}, ["ok-1", "ok-2", "ok-3", "ok-4", "bad-1"]),
    ({"unsuccessfulRunHistoryLimit": 0}, ["ok-1", *[f"bad-{i}" for i in range(1, 7)]]),
])
def test_completed_runs_beyond_their_limit_are_deleted_oldest_first(limits: dict[str, int], gone: list[str]) -> None:
    phases = ["Failed", "Error", "Inconclusive", "Failed", "Error", "Failed"]
    runs = [run(f"ok-{i}", "Successful", i) for i in range(1, 7)] + [
        run(f"bad-{i}", phase, 10 + i) for i, phase in enumerate(phases, start=1)]
    world = with_runs(*runs, **limits)
    assert sorted(deleted_runs(world)) == sorted(gone)
    world.step()
    assert deleted_runs(world) == [], "a fixed point"


ANALYSIS_STEPS = [{"setWeight": 50}, {"analysis": {"templates": [{"templateName": "success-rate"}],
                                                    "args": [{"name": "service", "value": "web-canary"}]}}]


def test_runs_still_going_and_the_run_the_status_follows_are_never_deleted() -> None:
    world = World.of(rollout(steps=ANALYSIS_STEPS, spec={"analysis": {"unsuccessfulRunHistoryLimit": 0}}),
                     templates=[analysis_template()])
    world.settle()
    world.analysis_runs = [run("going", "Running", 1), run("new", None, 2), run("failed", "Failed", 3)]
    world.set_image("app:v2")
    world.settle()
    [followed] = [r["metadata"]["name"] for r in world.analysis_runs if r["metadata"]["name"].startswith("web-")]
    world.finish_run(followed, "Failed", "too many errors")
    world.settle()  # aborted: the failed step run stays in status, for `get rollout`
    assert world.status["canary"]["currentStepAnalysisRunStatus"]["name"] == followed
    assert sorted(r["metadata"]["name"] for r in world.analysis_runs) == sorted([followed, "going", "new"])


def test_runs_of_several_releases_keep_the_newest_five() -> None:
    world = World.of(rollout(steps=ANALYSIS_STEPS), templates=[analysis_template()])
    world.settle()
    for release in range(2, 9):
        world.set_image(f"app:v{release}")
        world.settle(world.now)
        [running] = [r for r in world.analysis_runs if "phase" not in (r.get("status") or {})]
        world.finish_run(running["metadata"]["name"], "Successful")
        world.settle(world.now + seconds(60))
        world.settle(world.now + seconds(60))
        assert world.status["phase"] == "Healthy", release
    kept = sorted(r["metadata"]["annotations"]["rollout.argoproj.io/revision"] for r in world.analysis_runs)
    assert kept == ["4", "5", "6", "7", "8"]
