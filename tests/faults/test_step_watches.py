"""Step mode meets watch faults as threaded mode does (a bug the fault classes found).

In step mode the controller polls every watch, reconciles what is due, then the SteppedClock
jumps to the next due key. A watch answered 410 Gone is relisted; the fresh watch's events
(what changed meanwhile) must still be taken in within the same step, not after the jump,
which left an update unseen until the next requeue (10 minutes later). A watch that fails
(503) is polled again one second later, as the threaded watch loop retries, instead of when
some key happens to be due.
"""

from __future__ import annotations

from datetime import timedelta

from rollouts.platform.cluster import Unavailable
from tests.faults.faulty import FaultyCluster
from tests.faults.harness import NEW_IMAGE, through_faults


def first_canary_at(arrange: str, times: int = 0) -> tuple[timedelta, FaultyCluster]:
    scenario, faulty = through_faults()
    try:
        scenario.given_healthy()
        updated = scenario.clock.now()
        if arrange == "gone":
            for kind in ("Rollout", "ReplicaSet", "AnalysisRun", "VirtualService"):
                faulty.expire_watches(kind, times)
        elif arrange == "cut":
            faulty.fail("watch", "Rollout", None, [Unavailable("the watch broke (injected)")] * times)
        scenario.when_image(NEW_IMAGE).run_until(lambda: scenario.vs_weights == (50, 50))
        [at] = [at for at, _, canary in scenario.weights.entries if canary == 50]
        return at - updated, faulty
    finally:
        scenario.close()


def test_an_update_seen_through_a_relist_is_acted_on_in_the_same_step() -> None:
    baseline, _ = first_canary_at("nothing")
    # every watched kind the update touches is 410 Gone three times in a row
    after_gone, faulty = first_canary_at("gone", 3)
    assert faulty.gone["Rollout"] == 3
    assert after_gone == baseline == timedelta(0), (after_gone, baseline)


def test_a_failed_watch_is_polled_again_one_second_later() -> None:
    # the step's first and last polls both fail: the update is seen by the poll one second later
    after_cut, faulty = first_canary_at("cut", 2)
    assert faulty.faults == [("watch", "Rollout", "", "Unavailable")] * 2
    assert after_cut == timedelta(seconds=1)
