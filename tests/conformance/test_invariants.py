"""The corpus's blueGreen and experiment invariants fail on the histories they forbid.

Each check of tests/conformance/test_argo_corpus.py reads a Run's recorded timeline; here
it is given a hand-written history (a switch before the pre-promotion run passed, a failed
Experiment whose revision became the stable) and must reject it, and accept the history
the controller writes.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest

from rollouts.platform.labels import HASH_LABEL
from tests.conformance.harness import Moment, Run
from tests.conformance.test_argo_corpus import Case, check_blue_green, check_experiments

HERE = Path(__file__).parent / "argo"
FIRST, NEW = "aaaaaaaaaa", "bbbbbbbbbb"
ACTIVE = "bg-pre-ok-active"


def fake_run(timeline: list[Moment], *, active: str | None, stable: list[str | None]) -> Run:
    status = {"stableRS": stable[-1]}
    return cast(Run, SimpleNamespace(timeline=timeline, selector=lambda _: active, status=status,
                                     selector_history={}, stable_history=stable))


def service(version: int, value: str | None) -> Moment:
    return Moment(version, "Service", ACTIVE, value, {})


def pre_run(version: int, phase: str | None, pod_hash: str = NEW) -> Moment:
    return Moment(version, "AnalysisRun", f"bg-pre-ok-{pod_hash}-2-pre", phase,
                  {"rollout-type": "PrePromotion", HASH_LABEL: pod_hash})


def experiment(version: int, phase: str | None) -> Moment:
    return Moment(version, "Experiment", f"ex-analysis-fail-{NEW}-2-1", phase, {HASH_LABEL: NEW})


PRE_OK = Case.load(HERE / "bluegreen-pre-promotion-analysis-success.yaml")
EX_FAIL = Case.load(HERE / "experiment-step-analysis-failure.yaml")
EX_OK = Case.load(HERE / "experiment-step-duration.yaml")


def test_the_active_service_may_switch_after_a_successful_pre_promotion_run() -> None:
    timeline = [service(1, FIRST), pre_run(2, None), pre_run(3, "Successful"), service(4, NEW)]
    check_blue_green(fake_run(timeline, active=NEW, stable=[FIRST, NEW]), PRE_OK, FIRST, NEW, "Healthy")


@pytest.mark.parametrize("history", [
    [service(1, FIRST), pre_run(2, None), service(3, NEW), pre_run(4, "Successful")],  # switched first
    [service(1, FIRST), pre_run(2, "Failed"), service(3, NEW)],  # switched on a failing run
    [service(1, FIRST), pre_run(2, "Successful", pod_hash=FIRST), service(3, NEW)],  # another revision's pass
    [service(1, FIRST), service(2, NEW)],  # no run at all
], ids=["before-the-pass", "on-a-failure", "another-revisions-run", "without-a-run"])
def test_the_active_service_must_not_switch_without_a_pass(history: list[Moment]) -> None:
    with pytest.raises(AssertionError):
        check_blue_green(fake_run(history, active=NEW, stable=[FIRST, NEW]), PRE_OK, FIRST, NEW, "Healthy")


def test_a_failed_blue_green_update_must_end_on_the_stable_pods() -> None:
    timeline = [service(1, FIRST), pre_run(2, "Failed")]
    check_blue_green(fake_run(timeline, active=FIRST, stable=[FIRST]), PRE_OK, FIRST, NEW, "Degraded")
    with pytest.raises(AssertionError):
        check_blue_green(fake_run(timeline, active=NEW, stable=[FIRST]), PRE_OK, FIRST, NEW, "Degraded")


def test_a_revision_whose_experiment_failed_must_never_be_the_stable() -> None:
    timeline: list[Any] = [experiment(1, "Running"), experiment(2, "Failed")]
    check_experiments(fake_run(timeline, active=None, stable=[FIRST]), EX_FAIL, NEW, "Degraded")
    with pytest.raises(AssertionError):
        check_experiments(fake_run(timeline, active=None, stable=[FIRST, NEW]), EX_FAIL, NEW, "Degraded")


def test_a_promoted_update_must_have_run_its_experiment_to_success() -> None:
    passed = [experiment(1, "Running"), experiment(2, "Successful")]
    check_experiments(fake_run(passed, active=None, stable=[FIRST, NEW]), EX_OK, NEW, "Healthy")
    with pytest.raises(AssertionError):
        check_experiments(fake_run(passed[:1], active=None, stable=[FIRST, NEW]), EX_OK, NEW, "Healthy")
