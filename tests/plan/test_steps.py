"""The step engine: weights in force, step problems, pause transitions."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from rollouts.plan import steplist, steps
from rollouts.spec.model import CanaryStep, PauseCondition
from tests.plan.builders import T0

STEPS = [CanaryStep.load(s) for s in (
    {"setWeight": 10}, {"pause": {"duration": "30s"}}, {"setCanaryScale": {"replicas": 3}}, {"setWeight": 40},
    {"analysis": {"templates": [{"templateName": "a"}, {"templateName": "b"}]}},
    {"setCanaryScale": {"matchTrafficWeight": True}}, {"pause": {}},
)]  # fmt: skip


@pytest.mark.parametrize(("index", "current", "previous"), [
    (0, 10, 0), (1, 10, 10), (2, 10, 10), (3, 40, 10), (4, 40, 40), (6, 40, 40), (7, 100, 40),
])  # fmt: skip
def test_the_weight_in_force_and_the_one_before(index: int, current: int, previous: int) -> None:
    assert steplist.set_weight_at(STEPS, index) == current
    assert steplist.previous_set_weight(STEPS, index) == previous


def test_no_set_weight_means_zero() -> None:
    only_pause = [CanaryStep.load({"pause": {}})]
    assert steplist.set_weight_at(only_pause, 0) == 0 and steplist.set_weight_at(only_pause, 1) == 100


@pytest.mark.parametrize(("index", "replicas"), [(1, None), (2, 3), (4, 3), (5, None), (6, None), (7, None)])
def test_set_canary_scale_stays_in_force_until_match_traffic_weight(index: int, replicas: int | None) -> None:
    scale = steplist.canary_scale_at(STEPS, index)
    assert (scale.replicas if scale else None) == replicas


@pytest.mark.parametrize(("index", "text"), [
    (0, "setWeight: 10"), (1, "pause: 30s"), (2, 'setCanaryScale: {"replicas": 3}'), (4, "analysis: a,b"),
    (6, "pause"),
])  # fmt: skip
def test_describe(index: int, text: str) -> None:
    assert steplist.describe(STEPS[index]) == text


def test_the_step_hash_follows_the_steps() -> None:
    again = [CanaryStep.load(s.dump()) for s in STEPS]
    assert steplist.step_hash(again) == steplist.step_hash(STEPS)
    assert steplist.step_hash(STEPS[:-1]) != steplist.step_hash(STEPS)


@pytest.mark.parametrize(("step", "path", "words"), [
    ({"pause": {"duration": "1d"}}, "steps[0].pause.duration", "no 'd'"),
    ({"setWeight": 10, "pause": {}}, "steps[0]", "exactly one kind"),
    ({}, "steps[0]", "exactly one kind"),
])  # fmt: skip
def test_steps_the_engine_cannot_run(step: dict[str, Any], path: str, words: str) -> None:
    (problem,) = steplist.step_problems([CanaryStep.load(step)])
    assert problem.path == f"spec.strategy.canary.{path}" and words in problem.message


# ---------------------------------------------------------------- pause transitions


def cond(reason: str, seconds_ago: int = 0) -> PauseCondition:
    return PauseCondition(reason=reason, start_time=T0 - timedelta(seconds=seconds_ago))


@pytest.mark.parametrize(("duration", "conditions", "controller_pause", "completed", "left", "wake"), [
    # entering: condition added, wake at the end
    (30, [], False, False, ["CanaryPauseStep"], 30),
    (None, [], False, False, ["CanaryPauseStep"], None),
    # waiting
    (30, [cond("CanaryPauseStep", 10)], True, False, ["CanaryPauseStep"], 20),
    (None, [cond("CanaryPauseStep", 10_000)], True, False, ["CanaryPauseStep"], None),
    # the end of the duration
    (30, [cond("CanaryPauseStep", 30)], True, True, [], None),
    (30, [cond("CanaryPauseStep", 31)], True, True, [], None),
    # a human removed the condition (promote)
    (None, [], True, True, [], None),
    (30, [], True, True, [], None),
    # other pause reasons are kept
    (30, [cond("CanaryPauseStep", 30), cond("InconclusiveAnalysisRun")], True, True, ["InconclusiveAnalysisRun"], None),
    # zero: done at once, never paused
    (0, [], False, True, [], None),
])  # fmt: skip
def test_pause_step(duration: int | None, conditions: list[PauseCondition], controller_pause: bool, completed: bool,
                    left: list[str], wake: int | None) -> None:
    step = CanaryStep.load({"pause": {} if duration is None else {"duration": duration}})
    out = steps.pause_step(step, conditions=conditions, controller_pause=controller_pause, now=T0)
    assert out.completed is completed
    assert [c.reason for c in out.conditions] == left
    assert out.controller_pause is bool(left)
    assert out.wake_at == (None if wake is None else T0 + timedelta(seconds=wake))
    entered = [c for c in out.conditions if c.reason == "CanaryPauseStep" and c.start_time == T0]
    assert bool(entered) is (not conditions and not completed)
