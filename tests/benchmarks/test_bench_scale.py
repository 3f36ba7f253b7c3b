"""benchmarks/bench_scale.py at small sizes: the bounds that do not depend on the machine's speed.

What is proven (issue 14 item 5): a Manager that lists and reconciles 1,000 settled Rollouts
(each with two ReplicaSets, two Services, a VirtualService and two finished AnalysisRuns) holds
under 100 KiB per Rollout above an empty Manager, and its sync writes nothing; once everything
finished, an hour of controller time and a quiet threaded window make no reconcile, no
measurement and no write; in a wave, every failing canary is aborted and its weight 0 is written
at the same controller instant as the failed measurement; over simulated hours with a steady
update stream the AnalysisRun status stays bounded by measurement retention, the traced
memory's hourly growth slows (histories filling up) instead of staying steady (a leak), and what
the controller alone holds (its cache, queue, router indexes, Rollout reconciler) stays bounded by
the objects that exist, hour after hour (the reconciler's validation memo grew with every update
before it kept one answer per Rollout). Counts and bytes only; no wall-clock assertion.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from rollouts.platform.events import MAX_MESSAGE

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_scale.py"


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_scale", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_scale"] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.timeout(1200)  # about 30 s of CPU; the wall time of a loaded 2-core machine is many times that
def test_memory_per_rollout_at_1000_is_under_100_kib_and_the_sync_writes_nothing(bench: ModuleType) -> None:
    fleet = bench.replicated(1000)
    mem = bench.memory(fleet)
    assert mem["sync_writes"] == 0  # every clone is settled: the controller finds nothing to do
    assert mem["cache_objects"] == 1000 * 8 + 2  # Rollout, 2 RS, 2 Services, VS, 2 runs each; 2 templates
    assert 0 < mem["per_rollout"] <= bench.TARGET_PER_ROLLOUT
    assert mem["held_bytes"] > mem["baseline_bytes"]


def test_finished_runs_cost_nothing_when_idle(bench: ModuleType) -> None:
    fleet = bench.replicated(30)
    manager = bench.synced(fleet)
    assert manager.reconciles == 30  # each Rollout once by the sync; a finished run is never queued (fanin)
    idle = bench.idle_stepped(fleet, manager, seconds=6 * 3600.0)
    assert (idle["reconciles"], idle["measurements"], idle["writes"]) == (0, 0, 0)
    threaded = bench.idle_threaded(fleet, window=1.0)
    assert (threaded["reconciles"], threaded["measurements"], threaded["writes"]) == (0, 0, 0)


def test_a_wave_aborts_every_failing_canary_at_the_instant_of_its_failed_measurement(bench: ModuleType) -> None:
    fleet = bench.replicated(40)
    manager = bench.synced(fleet, timed=True)
    wave = bench.wave(fleet, manager, 20, fail_every=5)
    assert wave["failing"] == 4 and wave["aborted"]  # the aborted ones are exactly the failing ones
    assert wave["abort_lags"] == 4
    assert wave["worst_lag_clock"] == 0.0  # weight 0 is written before the controller's clock moves on
    assert wave["rollout_reconciles"] == len(fleet.reconcile_times) > 20
    healthy = [name for name in fleet.names[:20] if name not in fleet.names[:20:5]]
    for name in healthy:
        status = fleet.cluster.get("Rollout", name, "default")["status"]
        assert status["phase"] == "Healthy" and not status.get("abort")
    for name in fleet.names[:20:5]:
        assert bench.canary_weight(fleet.cluster.get("VirtualService", f"{name}-vsvc", "default"), name) == 0


@pytest.mark.timeout(1200)
def test_a_simulated_day_keeps_status_and_the_controllers_holdings_bounded(bench: ModuleType) -> None:
    day = bench.day(10, hours=5, updates_per_hour=6, history=100)
    assert day["updates"] == 5 * 6
    sizes = day["status_sizes"]
    assert 0 < max(sizes) < 8 * 1024  # a background run measures every minute; retention keeps 10
    assert max(sizes[len(sizes) // 2:]) <= max(sizes[:len(sizes) // 2])  # the second half never grows past the first
    assert max(day["runs"]) <= 10 * 4  # successful and unsuccessful run history limits (2 each)
    steps = [later - earlier for earlier, later in zip(day["samples"], day["samples"][1:], strict=False)]
    assert steps[-1] < steps[0] / 2  # what is still filling (run and watch histories) slows; a leak would not
    # what the controller alone holds, per hour: bounded by the 10 Rollouts, not by the 30 updates
    counts = day["held_counts"]
    assert len(counts) == len(day["held"]) == 5
    assert all(c["cached objects"] <= 10 * 12 + 2 for c in counts)  # 8 per settled Rollout, a few more mid-update
    assert all(c["router refs"] == 2 * 10 for c in counts)  # each Rollout's VirtualService, both ways
    assert all(c["queue"] <= 3 * 10 for c in counts)
    reconciler = [hour["rollouts"][1] for hour in day["held"]]  # bytes the Rollout reconciler holds (its memos)
    assert 0 < max(reconciler) <= reconciler[0] * 1.1  # one remembered validation per Rollout, not per update
    assert day["held_bytes"][0] > 0 and len(day["held_slopes"]) == len(bench.STRUCTURES) + 1
    # the event recorder: within its caps in entries, and in bytes by entries of a bounded size
    assert all(c["event keys"] <= bench.EVENT_KEYS and c["recent events"] <= bench.RECENT_EVENTS for c in counts)
    for hour, c in zip(day["held"], counts, strict=True):
        assert hour["recorder"][1] <= c["event keys"] * 400 + c["recent events"] * (MAX_MESSAGE + 600) + 64 * 1024
    assert counts[-1]["event keys"] > counts[0]["event keys"]  # still filling: the day is too short for a cap
    assert day["least_updated"] == [0, 1, 1, 2, 3]  # round robin: 6 updates an hour over 10 Rollouts
    assert day["steady_from"] is None and day["steady"] is None  # no cap reached, so no steady state claimed
    assert day["last_half"]["from_hour"] == 3 and day["last_half"]["hours"] == 3


def test_the_days_failures_are_one_in_ten_of_every_rollouts_updates_and_of_every_run_of_the_stream(
        bench: ModuleType) -> None:
    n, rounds = 1000, 20  # 1,000 divisible by 10: a position in the stream alone would fail 100 Rollouts always
    per_rollout = [sum(bench.fails(index, k, 10) for k in range(rounds)) for index in range(n)]
    assert set(per_rollout) == {2}
    assert all(sum(bench.fails(index, k, 10) for index in range(at, at + 85)) in (8, 9)
               for k in range(rounds) for at in range(0, n - 85, 85))


def test_the_warm_up_aborts_every_rollout_twice_and_then_promotes_it_before_the_first_hour(
        bench: ModuleType) -> None:
    day = bench.day(6, hours=3, updates_per_hour=6, history=100, warm_up=True)
    assert day["warm_up"]["rounds"] == [{"aborted": 6}, {"aborted": 6}, {"Healthy": 6}]
    assert day["warm_up"]["updates"] == 6 * len(bench.WARM_UP) and day["warm_up"]["seconds"] >= 3 * 3600
    assert day["least_updated"] == [4, 5, 6]  # the warm-up's three, then one an hour each
    assert max(day["runs"]) <= 6 * 4 + 2  # both run histories at their limits (2 each), a run or two in flight


def test_steady_state_starts_when_every_rollout_was_updated_twice_and_every_cap_is_reached(
        bench: ModuleType) -> None:
    full = {"event keys": bench.EVENT_KEYS, "recent events": bench.RECENT_EVENTS}
    filling = {"event keys": bench.EVENT_KEYS - 1, "recent events": bench.RECENT_EVENTS}
    assert bench.steady_from([filling, full, full, full], [2, 2, 2, 3]) == 1
    assert bench.steady_from([full, full, full, full], [0, 1, 2, 3]) == 2
    assert bench.steady_from([filling] * 4, [5, 5, 5, 5]) is None
    controller = [{"cache": (10, 1000 + 0 * h), "recorder": (5 + h, 100 + 50 * h)} for h in range(6)]
    part = bench.slopes(controller, [7] * 6, 2)
    assert (part["from_hour"], part["hours"], part["traced"]) == (3, 4, 0.0)
    assert part["bytes"] == {"cache": 0.0, "recorder": 50.0} and part["objects"] == {"cache": 0.0, "recorder": 1.0}
    assert part["held_bytes"] == 50.0 and part["held_objects"] == 1.0
