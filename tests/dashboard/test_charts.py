"""The charts' data: thresholds read from conditions, values read as numbers, failing points,
and the weight history the store keeps from the watch."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest

from rollouts.dashboard.charts import metric_charts, number_of, threshold_of
from rollouts.dashboard.store import Store
from rollouts.memory.cluster import InMemoryCluster
from rollouts.platform.clock import SteppedClock
from tests.cli.conftest import NOW, NS, Shop


@pytest.mark.parametrize(("condition", "expected"), [
    ("result[0] >= 0.95", (">=", 0.95)),
    ("result < 300", ("<", 300.0)),
    ("len(result) > 0 && max(result) < 1e3", ("<", 1000.0)),  # the guard looked through
    ("result[0] > 0.9 && result[1] > 0.8", None),  # two thresholds: no line rather than a wrong one
    ("0.95 <= result[0]", (">=", 0.95)),
    ("result.data.ok == true", None),
    ("", None),
])
def test_the_threshold_is_the_conditions_single_threshold(condition: str,
                                                         expected: tuple[str, float] | None) -> None:
    assert threshold_of(condition) == expected


@pytest.mark.parametrize(("value", "expected"), [
    ("[0.942]", 0.942), ("0.5", 0.5), (3, 3.0), ("true", 1.0), ("[NaN]", None), ("[1, 2]", None),
    ("not json", None), (None, None), ('{"ok": true}', None),
])
def test_a_measurement_is_plotted_only_when_it_is_one_number(value: object, expected: float | None) -> None:
    assert number_of(value) == expected


def test_failing_points_are_their_own_series_and_the_message_explains_the_verdict(cluster: InMemoryCluster) -> None:
    Shop(cluster).seed("aborted")
    charts = {chart.metric: chart for chart in metric_charts(cluster.list("AnalysisRun", NS))}
    failed = charts["success-rate"]
    assert (failed.phase, failed.threshold, failed.condition) == ("Failed", 0.95, "result[0] >= 0.95")
    assert [p.failing for p in failed.points] == [False, True]
    assert failed.data()["failing"] == [None, 0.942]
    assert "failed (1) > failureLimit (0)" in failed.message
    assert charts["error-rate"].data()["failing"] == [None, None]


def test_the_store_records_each_weight_change_it_watched(cluster: InMemoryCluster) -> None:
    clock = SteppedClock(NOW)
    Shop(cluster).seed("paused")
    store = Store(cluster, clock=clock).start()
    try:
        assert store.wait_synced(10)
        clock.advance(60)
        cluster.patch_status("Rollout", "checkout", NS, {"status": {"currentStepIndex": 5}})
        deadline = NOW + timedelta(seconds=60)
        changed = threading.Event()
        store.subscribe(changed.set)
        for _ in range(100):  # each wait ends at the store's next change, or after 0.1 s
            if len(store.history(NS, "checkout")) == 2:
                break
            changed.wait(0.1)
            changed.clear()
        points = store.history(NS, "checkout")
        assert [(p.at, p.set_weight) for p in points] == [(NOW, 20), (deadline, 100)]
    finally:
        store.close()
