"""plan(observed, now) for `spec.restartAt`: pods older than it are replaced within maxUnavailable.

Each test drives `World` (plan + actions applied to plain dicts, pods included) on a
stepped clock and asserts what was deleted, what the status says and when the plan
looks again. Nothing sleeps.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from rollouts.plan.restarts import available, wants_pods
from rollouts.platform.actions import DeletePod
from rollouts.spec.model import Rollout
from tests.plan.builders import T0, World, changes, hash_of, pod, reasons, rollout, seconds, stamp

H1 = hash_of("app:v1")
STEPS = [{"setWeight": 25}, {"pause": {}}]
BOOT = T0 - seconds(3600)  # when the first pods started


def healthy(*, image: str = "app:v1", **canary: Any) -> World:
    """Revision 1 Healthy at T0 with 4 Ready pods created an hour before."""
    world = World.of(rollout(steps=STEPS, **canary))
    world.settle()
    world.add_pods(image, created=BOOT)
    assert world.status["phase"] == "Healthy"
    world.recorded.clear()
    return world


def restart_at(world: World, moment: datetime) -> None:
    world.rollout["spec"]["restartAt"] = stamp(moment)


def deleted(plan: Any) -> list[str]:
    return [a.name for a in changes(plan) if isinstance(a, DeletePod)]


def test_a_restart_at_in_the_future_waits_for_it() -> None:
    world = healthy()
    restart_at(world, T0 + seconds(90))
    result = world.plan()
    assert changes(result) == [] and result.requeue_after == 90.0
    assert result.status["phase"] == "Healthy" and "restartedAt" not in result.status


def test_a_due_restart_deletes_one_pod_at_a_time_by_default() -> None:
    world = healthy()  # 4 replicas, maxUnavailable 25% -> 1
    restart_at(world, T0)
    oldest = world.pods[0]["metadata"]["name"]
    result = world.step()
    assert deleted(result) == [oldest]
    assert reasons(result) == ["RestartingPods"]
    assert result.requeue_after == 30.0
    assert (result.status["phase"], result.status["message"]) == ("Progressing", "rollout is restarting")
    assert "restartedAt" not in result.status


@pytest.mark.parametrize(("canary", "at_once"), [
    ({}, 1),                                    # 25% of 4
    ({"maxUnavailable": 2}, 2),
    ({"maxUnavailable": "50%"}, 2),
    ({"maxUnavailable": 0, "maxSurge": 1}, 1),  # never 0: one at a time
    ({"maxUnavailable": 10}, 4),                # capped at the replicas
])
def test_at_most_max_one_or_max_unavailable_pods_go_at_once(canary: dict[str, Any], at_once: int) -> None:
    world = healthy(**canary)
    world.auto_ready = False
    restart_at(world, T0)
    first = world.step()
    assert len(deleted(first)) == at_once
    if at_once == 4:  # every old pod asked to go: the restart is recorded in the same pass
        assert first.status["restartedAt"] == stamp(T0)
        return
    # the replacements are not Ready yet: nothing more goes, the plan looks again in 30 s
    again = world.step(T0 + seconds(30))
    assert deleted(again) == [] and again.requeue_after == 30.0 and "restartedAt" not in again.status


def test_the_next_pod_goes_once_the_replacement_is_ready() -> None:
    world = healthy()
    world.auto_ready = False
    restart_at(world, T0)
    first = deleted(world.step())
    assert deleted(world.step(T0 + seconds(30))) == []
    world.set_pods_ready()
    second = deleted(world.step(T0 + seconds(60)))
    assert len(first) == len(second) == 1 and first != second


def test_pods_of_a_replica_set_not_fully_available_are_left_alone() -> None:
    world = healthy(maxUnavailable=2)
    restart_at(world, T0)
    world.rs("app:v1")["status"]["availableReplicas"] = 3  # the status lags a pod that is not up
    world.pods[0]["status"]["conditions"][0]["status"] = "False"
    result = world.plan()
    assert deleted(result) == [] and result.requeue_after == 30.0


def test_every_pod_is_replaced_then_restarted_at_is_recorded_once() -> None:
    world = healthy()
    world.auto_ready = False
    restart_at(world, T0)
    originals = {p["metadata"]["name"] for p in world.pods}
    events, missing = [], []
    for tick in range(40):
        result = world.step(T0 + seconds(15 * tick))
        events += reasons(result)
        missing.append(4 - sum(available(p, world.now) for p in world.pods))
        if "restartedAt" in world.status:
            break
        if tick % 2:  # replacements come up 15 to 30 s after they were asked for
            world.set_pods_ready()
    assert world.status["restartedAt"] == stamp(T0)
    assert not originals & {p["metadata"]["name"] for p in world.pods} and len(world.pods) == 4
    assert max(missing) == 1, "never more than maxUnavailable pods missing"
    assert events.count("RestartingPods") == 4 and events.count("RolloutRestarted") == 1
    world.set_pods_ready()
    done = world.settle(world.now + seconds(30))[-1]
    assert world.status["phase"] == "Healthy" and done.requeue_after is None
    assert world.plan().actions == () and world.plan().status == world.status, "a fixed point"


def test_the_stable_replica_set_restarts_first_then_the_canary() -> None:
    world = healthy(maxUnavailable=1)
    world.set_image("app:v2")
    world.settle()  # 25%: one canary pod, the stable keeps 4
    world.add_pods("app:v2", created=T0)
    world.advance(seconds(60))
    restart_at(world, world.now)
    order = []
    for _ in range(20):
        order += deleted(world.step())
        world.advance(seconds(30))
        if "restartedAt" in world.status:
            break
    stable = world.rs("app:v1")["metadata"]["name"]
    assert [name.startswith(stable) for name in order] == [True] * 4 + [False]
    assert world.status["currentStepIndex"] == 1 and "restartedAt" in world.status


def test_a_pod_being_deleted_is_not_deleted_again_and_holds_the_restart() -> None:
    world = healthy()
    restart_at(world, T0)
    rs = world.rs("app:v1")
    world.pods = [pod(rs, f"p{i}", created=BOOT, deleting=i == 0) for i in range(4)]
    result = world.plan()
    assert deleted(result) == [] and result.requeue_after == 30.0, "one pod is missing already"


def test_a_new_template_cancels_the_restart() -> None:
    world = healthy()
    restart_at(world, T0)
    world.set_image("app:v2")
    result = world.plan()
    assert deleted(result) == [] and result.status["restartedAt"] == stamp(T0)


def test_a_restart_counts_pods_ready_for_min_ready_seconds() -> None:
    world = healthy()
    world.rollout["spec"]["minReadySeconds"] = 60
    world.pods = [pod(world.rs("app:v1"), f"p{i}", created=BOOT, ready_since=T0 - seconds(30)) for i in range(4)]
    restart_at(world, T0)
    assert deleted(world.plan()) == [], "Ready for 30 s of 60: not available yet"
    assert len(deleted(world.plan(T0 + seconds(30)))) == 1


def test_a_restart_with_no_old_pod_left_is_done_at_once() -> None:
    world = healthy()
    restart_at(world, BOOT - seconds(1))  # every pod is newer
    result = world.step()
    assert deleted(result) == [] and result.status["restartedAt"] == stamp(BOOT - seconds(1))
    assert reasons(result) == ["RolloutRestarted"] and result.status["phase"] == "Healthy"


@pytest.mark.parametrize(("spec", "status", "wanted"), [
    ({}, {}, False),
    ({"restartAt": "2024-05-01T12:00:00Z"}, {}, True),
    ({"restartAt": "2024-05-01T12:00:00Z"}, {"restartedAt": "2024-05-01T12:00:00Z"}, False),
    ({"restartAt": "2024-05-01T12:00:00Z"}, {"restartedAt": "2024-04-01T12:00:00Z"}, True),
])
def test_the_shell_lists_pods_only_while_a_restart_is_pending(spec: dict[str, Any], status: dict[str, Any],
                                                               wanted: bool) -> None:
    doc = rollout(steps=STEPS, spec=spec, status=status)
    assert wants_pods(Rollout.load(doc)) is wanted
