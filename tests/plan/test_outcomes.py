"""The outcomes a plan records for the shell's counters (rollouts.plan.outcomes): one per transition,
in the plan that made it, never again from the status it left; the cause of each abort."""

from __future__ import annotations

from datetime import UTC, datetime

from rollouts.plan.outcomes import AbortCause, Outcome, update_started
from rollouts.plan.planner import Plan
from tests.plan.builders import T0, World, rollout, seconds


def outcomes(plans: list[Plan]) -> list[tuple[str, AbortCause | None]]:
    return [(o.kind, o.cause) for p in plans for o in p.outcomes]


def test_a_promotion_is_recorded_once_and_the_first_deploy_records_none() -> None:
    world = World.of(rollout(steps=[{"setWeight": 50}]))
    assert outcomes(world.settle()) == []  # the first deploy: promoted at once, no update to count
    world.set_image("app:v2")
    assert outcomes(world.settle()) == [("promoted", None)]
    assert outcomes(world.settle(T0 + seconds(600))) == []


def test_an_abort_set_from_outside_is_manual_and_recorded_once() -> None:
    world = World.of(rollout(steps=[{"setWeight": 50}, {"pause": {}}]))
    world.settle()
    world.set_image("app:v2")
    world.settle()
    world.set_status(abort=True)
    assert outcomes(world.settle()) == [("aborted", AbortCause.MANUAL)]
    assert outcomes(world.settle(T0 + seconds(60))) == []


def test_a_progress_deadline_abort_is_deadline() -> None:
    world = World.of(rollout(steps=[{"setWeight": 50}], spec={"progressDeadlineSeconds": 60,
                                                              "progressDeadlineAbort": True}))
    world.settle()
    world.auto_ready = False
    world.set_image("app:v2")
    world.settle()
    assert outcomes(world.settle(T0 + seconds(60))) == [("aborted", AbortCause.DEADLINE)]


def test_the_update_starts_at_the_new_replicaset_and_is_measured_to_the_outcome() -> None:
    replica_sets = [{"metadata": {"name": "web-abc", "creationTimestamp": "2024-05-01T12:00:00Z"}},
                    {"metadata": {"name": "web-old"}}]
    started = update_started(replica_sets, "web-abc")
    assert started == datetime(2024, 5, 1, 12, tzinfo=UTC)
    assert update_started(replica_sets, "web-old") is None and update_started(replica_sets, "web-new") is None
    assert Outcome("promoted", None, T0 + seconds(90), started).seconds == 90
    assert Outcome("aborted", AbortCause.GATE, T0, None).seconds is None
