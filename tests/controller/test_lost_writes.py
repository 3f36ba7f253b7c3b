"""A controller killed between two writes of one pass: the next one adopts what the first created.

Found by the kill storm (tests/storm): a process completed a setWeight step, entered the
analysis step after it in the same pass and created that step's AnalysisRun, and was
SIGKILLed before the status write that named the run. The next process, completing the
setWeight step again, terminated the run as "unwanted" (its status did not follow it yet)
and then created `<run>.1` for the very step it had just entered: the analysis ran twice,
and its first measurements were thrown away.

Here the kill is exact and deterministic: the dying controller's writes go through a
cluster that, from the moment that AnalysisRun was created, refuses every further write
(the status write is lost, as are its events); a NEW Manager (empty cache, empty queue)
then runs on the same cluster and stepped clock. The story must be the one without a
kill (tests/controller/test_restart.py's reference): the same weights at the same times,
the same measurements, the same AnalysisRuns by name (no `.1`), none terminated early.
"""

from __future__ import annotations

from typing import Any

from rollouts.platform.cluster import ClusterError
from tests.controller.dsl import Scenario
from tests.controller.test_restart import reference, story

ANALYSIS_STEP = "3"  # multi-step: setWeight 10, pause, setWeight 25, analysis, ...


class Killed(ClusterError):
    """A write of a process that is dead: it never reached the API."""


class Dying:
    """A cluster whose process dies right after it created the AnalysisRun of one step: that
    create went through, every write after it is lost (the SIGKILL came in between)."""

    WRITES = ("create", "patch", "patch_status", "replace", "delete")

    def __init__(self, inner: Any, step_index: str) -> None:
        self.inner, self.step_index = inner, step_index
        self.created: str | None = None

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.inner, name)
        if name not in self.WRITES:
            return method

        def write(*args: Any, **kwargs: Any) -> Any:
            if self.created is not None:
                raise Killed("SIGKILL: this process is dead, its write never reached the API")
            result = method(*args, **kwargs)
            obj = args[0] if name == "create" else {}
            labels = (obj.get("metadata") or {}).get("labels") or {}
            if obj.get("kind") == "AnalysisRun" and labels.get("step-index") == self.step_index:
                self.created = obj["metadata"]["name"]
            return result

        return write


def killed_after_creating_the_step_run(scenario: Scenario, first: str) -> None:
    """Run a controller until it created the analysis step's run, and kill it right there:
    before the Rollout status write of that same pass (which would name the run)."""
    dying = Dying(scenario.cluster, ANALYSIS_STEP)
    doomed = scenario.new_manager(dying)
    scenario.run_until(lambda: dying.created is not None, manager=doomed, between_reconciles=True)
    status = scenario.status
    assert status.get("currentStepIndex") == int(ANALYSIS_STEP) - 1, "the step move was written: no lost write"
    assert not (status.get("canary") or {}).get("currentStepAnalysisRunStatus"), "the run was named in status"
    run = scenario.cluster.get("AnalysisRun", dying.created, scenario.namespace)
    assert not run["spec"].get("terminate") and not run.get("status"), "the run is created, never measured"


def test_a_run_created_by_a_killed_controller_is_adopted_not_terminated_and_measured_again() -> None:
    expected = reference("multi-step")
    got = story("multi-step", killed_after_creating_the_step_run)
    assert got.runs == expected.runs, "the run the killed controller created is the step's run (no `.1`)"
    assert got.measured_at == expected.measured_at, "nothing measured twice, nothing skipped"
    assert got.history == expected.history
    assert got.end == expected.end
    assert got.status == expected.status
