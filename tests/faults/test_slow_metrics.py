"""A slow metric never holds up another Rollout (the safety issue, defect 8, the controller half).

The providers bound each measurement by its timeout (tests/analysis/test_provider_bounds.py);
this is the other half: measurements run on their own worker pool, so while every
analysis worker waits on a hanging backend, a Rollout worker still moves another
Rollout's release. One Rollout worker, one analysis worker, a provider that hangs.
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from typing import Any

from analysis.model import Metric
from analysis.providers import ProviderError, Result
from tests.controller.dsl import Scenario, wait_for
from tests.faults.test_isolation import renamed, rollout_of

NEW_IMAGE = "argoproj/rollouts-demo:yellow"


class Hanging:
    """Every measurement blocks until released (a backend that accepted the connection and went silent)."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.waiting = threading.Event()

    def measure(self, metric: Metric, *, at: datetime) -> Result:
        self.waiting.set()
        self.release.wait(60)
        raise ProviderError("no answer within the timeout")


def test_a_hanging_measurement_does_not_hold_up_another_rollouts_release() -> None:
    provider = Hanging()
    scenario = Scenario("istio-canary", provider=provider, manager_options={"workers": 1, "analysis_workers": 1})
    try:
        quick = renamed(scenario.docs, "quick")
        del rollout_of(quick)["spec"]["strategy"]["canary"]["analysis"]  # this one has no analysis
        for doc in quick + renamed(scenario.docs, "slow"):  # two Rollouts whose analysis will hang
            scenario.cluster.create(doc)
        scenario.given_objects()
        manager = scenario.manager
        manager.start()

        def phase(name: str) -> Any:
            return (scenario.cluster.get("Rollout", name, "default").get("status") or {}).get("phase")

        wait_for(lambda: phase("quick") == phase("slow") == scenario.phase == "Healthy", "the first revisions")
        # When two canaries with analysis start, their measurements hang on the backend (two
        # threads' worth of hanging: a shared pool of two workers would be stuck)
        scenario.when_image(NEW_IMAGE)
        slow = scenario.cluster.get("Rollout", "slow", "default")
        slow["spec"]["template"]["spec"]["containers"][0]["image"] = NEW_IMAGE
        scenario.cluster.replace(slow)
        assert provider.waiting.wait(30), "the measurement started"
        wait_for(lambda: len(scenario.cluster.list("AnalysisRun", "default")) == 2, "both runs")
        # Then the other Rollout's whole release still goes through
        quick_doc = scenario.cluster.get("Rollout", "quick", "default")
        quick_doc["spec"]["template"]["spec"]["containers"][0]["image"] = NEW_IMAGE
        scenario.cluster.replace(quick_doc)
        wait_for(lambda: phase("quick") == "Paused", "the quick canary's pause")
        scenario.clock.advance(timedelta(minutes=10))
        wait_for(lambda: phase("quick") == "Healthy", "the quick canary's promotion")
        assert not provider.release.is_set()
        status = scenario.cluster.get("Rollout", "quick", "default")["status"]
        assert status["stableRS"] == status["currentPodHash"]
    finally:
        provider.release.set()
        scenario.manager.stop()
        scenario.close()
