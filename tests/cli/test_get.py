"""`rollouts get rollout`: the pure view-model, its rendering, and the command end to end."""

from __future__ import annotations

import re
from typing import Any

import pytest

from rollouts import view
from rollouts.cli import connect
from rollouts.memory.cluster import InMemoryCluster
from rollouts.platform.clock import SteppedClock
from rollouts.view import render
from tests.cli.conftest import CANARY, NOW, NS, Cli, Shop, rollout_status


def build(cluster: InMemoryCluster, name: str = "checkout") -> view.RolloutView:
    return view.build(cluster.get("Rollout", name, NS), cluster.list("ReplicaSet", NS),
                      cluster.list("AnalysisRun", NS), now=NOW)


# --- the view-model (pure) ----------------------------------------------------------------

@pytest.mark.parametrize(("stage", "status", "message", "step", "set_weight", "actual"), [
    ("paused", "Paused", "CanaryPauseStep", "1/5", 20, 20),
    ("analysis", "Progressing", "waiting for all steps to complete", "2/5", 20, 20),
    ("inconclusive", "Paused", "InconclusiveAnalysisRun", "2/5", 20, 20),
    ("aborted", "Degraded", "RolloutAborted: Rollout aborted update to revision 3", "0/5", 0, 0),
    ("healthy", "Healthy", "", "5/5", 100, 100),
])
def test_header_facts_per_stage(shop: Shop, stage: str, status: str, message: str, step: str,
                                set_weight: int, actual: int) -> None:
    shop.seed(stage)
    got = build(shop.cluster)
    assert (got.status, got.step, got.set_weight, got.actual_weight) == (status, step, set_weight, actual)
    assert got.message.startswith(message)
    assert got.strategy == "Canary" and got.namespace == NS and got.age == "7m"


def test_replica_sets_are_grouped_by_revision_newest_first_with_markers(shop: Shop) -> None:
    shop.seed("paused")
    got = build(shop.cluster)
    assert [r.revision for r in got.revisions] == [3, 2, 1]
    [canary] = got.revisions[0].replica_sets
    [stable] = got.revisions[1].replica_sets
    [old] = got.revisions[2].replica_sets
    assert (canary.name, canary.canary, canary.stable, canary.info) == (
        f"checkout-{CANARY}", True, False, "canary,ready:1/1")
    assert (stable.stable, stable.canary, stable.info, stable.status) == (True, False, "stable,ready:5/5", "Healthy")
    assert (old.status, old.info) == ("ScaledDown", "ready:0/0")


def test_images_are_tagged_stable_and_canary_like_argo(shop: Shop) -> None:
    shop.seed("paused")
    images = {row.image: row.tags for row in build(shop.cluster).images}
    assert images == {"fluent/fluent-bit:3.0": ("canary", "stable"), "shop/checkout:1.4.0": ("stable",),
                      "shop/checkout:1.5.0": ("canary",)}


def test_healthy_rollout_shows_the_new_image_as_stable_and_a_scale_down_delay(shop: Shop) -> None:
    shop.seed("healthy")
    got = build(shop.cluster)
    assert {row.image: row.tags for row in got.images}["shop/checkout:1.5.0"] == ("stable",)
    [old_stable] = got.revisions[1].replica_sets
    assert old_stable.info == "delay:30s,ready:0/0"  # deadline 7m30s, now 7m


def test_analysis_runs_carry_metric_values_phases_and_counts(shop: Shop) -> None:
    shop.seed("aborted")
    runs = {run.name: run for run in build(shop.cluster).revisions[0].analysis_runs}
    step = runs["checkout-7f9b5d6c8-3-2"]
    assert (step.phase, step.icon, step.counts.text) == ("Failed", "✖", "✔ 1,✖ 1")
    [metric] = step.metrics
    assert (metric.name, metric.phase, metric.values) == ("success-rate", "Failed", ("[0.991]", "[0.942]"))
    assert metric.info == "✔ 1,✖ 1  last: [0.942]  before: [0.991]"
    assert "failureLimit (0)" in metric.message
    assert runs["checkout-7f9b5d6c8-3"].metrics[0].name == "error-rate"


def test_step_list_marks_done_current_and_pending(shop: Shop) -> None:
    shop.seed("analysis")
    states = [(s.index, s.text, s.state.value) for s in build(shop.cluster).steps]
    assert states == [(0, "setWeight: 20", "done"), (1, "pause (until promoted)", "done"),
                      (2, "analysis: success-rate", "current"), (3, "setWeight: 50", "pending"),
                      (4, "pause: 30s", "pending")]


@pytest.mark.parametrize(("status", "expected"), [
    ({"observedGeneration": "1", "phase": "Healthy"}, ("Progressing", view.NOT_OBSERVED)),  # generation is 2
    ({"observedGeneration": "2", "phase": "Healthy", "message": ""}, ("Healthy", "")),
    ({"observedGeneration": "3", "phase": "Paused", "message": "manually paused"}, ("Paused", "manually paused")),
    ({"observedGeneration": "2", "phase": "Paused", "controllerPause": True}, ("Progressing", view.UNPAUSING)),
    ({"observedGeneration": "2"}, ("Progressing", view.NOT_OBSERVED)),
    ({"observedGeneration": "a7b3c9", "phase": "Healthy"}, ("Healthy", "")),  # v0.9 hash: Argo trusts it
    ({}, ("Progressing", view.NOT_OBSERVED)),
])
def test_phase_is_trusted_only_once_the_generation_is_observed(
    status: dict[str, Any], expected: tuple[str, str]
) -> None:
    rollout = {"metadata": {"name": "r", "generation": 2}, "spec": {"strategy": {"canary": {}}}, "status": status}
    assert view.rollout_phase(rollout) == expected


@pytest.mark.parametrize(("index", "abort", "expected"), [
    (None, False, 20), (0, False, 20), (1, False, 20), (2, False, 20), (3, False, 50), (5, False, 100), (3, True, 0),
])
def test_set_weight_follows_argo(index: int | None, abort: bool, expected: int) -> None:
    status = {"abort": abort} | ({} if index is None else {"currentStepIndex": index})
    rollout = {"spec": {"strategy": {"canary": {"steps": [
        {"setWeight": 20}, {"pause": {}}, {"analysis": {}}, {"setWeight": 50}, {"pause": {"duration": 30}}]}}},
        "status": status}
    assert view.set_weight(rollout) == expected


def test_objects_owned_by_another_rollout_are_left_out(shop: Shop) -> None:
    shop.seed("paused")
    shop.seed("paused", name="checkout-eu")
    eu = build(shop.cluster, "checkout-eu")
    assert eu.revisions == () and eu.replicas.desired == 5
    assert [i.image for i in eu.images] == ["fluent/fluent-bit:3.0", "shop/checkout:1.5.0"]  # from the template


def test_half_written_objects_never_raise() -> None:
    rollout = {"metadata": {"name": "r", "uid": "u"}, "spec": {"strategy": {"canary": {"steps": "oops"}},
                                                              "replicas": "x"}, "status": {"currentStepIndex": "2"}}
    rs = {"metadata": {"name": "r-1", "ownerReferences": [{"uid": "u"}],
                       "annotations": {"rollout.argoproj.io/revision": "x"}},
          "status": None}
    run = {"metadata": {"name": "r-1-1", "ownerReferences": [{"uid": "u"}]},
           "status": {"metricResults": [{"name": "m"}]}}
    got = view.build(rollout, [rs], [run], now=NOW)
    assert got.replicas.desired == 1 and got.steps == () and got.step == ""
    assert got.revisions[0].analysis_runs[0].metrics[0].phase == "Pending"
    assert render.to_text(render.rollout(got))  # and it renders


@pytest.mark.parametrize(("seconds", "text"), [
    (-5, "<invalid>"), (0, "0s"), (119, "119s"), (120, "2m"), (200, "3m20s"), (900, "15m"), (18600, "5h10m"),
    (36000, "10h"), (183600, "2d3h"), (400 * 86400, "400d"), (3 * 365 * 86400 + 12 * 86400, "3y12d"),
])
def test_human_duration_matches_kubernetes(seconds: int, text: str) -> None:
    assert view.human_duration(seconds) == text


# --- rendering ------------------------------------------------------------------------------

def test_rendered_tree_has_argos_layout(shop: Shop) -> None:
    shop.seed("analysis")
    text = render.to_text(render.rollout(build(shop.cluster)), width=120)
    for line in ("Name:           checkout", "Namespace:      shop", "Status:         ◌ Progressing",
                 "Message:        waiting for all steps to complete", "Strategy:       Canary", "  Step:         2/5",
                 "  SetWeight:    20", "  ActualWeight: 20", "Images:         fluent/fluent-bit:3.0 (canary, stable)",
                 "                shop/checkout:1.4.0 (stable)", "  Desired:      5", "  Current:      6"):
        assert line in text, line
    assert re.search(r"▶ 2 analysis: success-rate\s+← current", text)
    assert re.search(r"NAME\s+KIND\s+STATUS\s+AGE\s+INFO", text)
    assert re.search(r"⟳ checkout\s+Rollout\s+◌ Progressing\s+7m", text)
    assert re.search(r"├──# revision:3", text)
    assert re.search(r"│  ├──⧉ checkout-7f9b5d6c8\s+ReplicaSet\s+✔ Healthy\s+7m\s+canary,ready:1/1", text)
    assert re.search(r"│  └──α checkout-7f9b5d6c8-3-2\s+AnalysisRun\s+◌ Running\s+7m\s+✔ 2", text)
    assert re.search(r"│     └──◇ success-rate\s+Metric\s+◌ Running\s+✔ 2  last: \[0.991\]  before: \[0.995\]", text)
    assert re.search(r"└──# revision:1\n   └──⧉ checkout-5c8d7b6a4\s+ReplicaSet\s+• ScaledDown", text)


def test_summary_line_is_one_line_per_change(shop: Shop) -> None:
    shop.seed("paused")
    line = view.summary_line(build(shop.cluster), NOW)
    assert line == ("12:07:00 Paused       step 1/5  weight 20  ready 6/5  "
                    "analysis checkout-7f9b5d6c8-3 Running ✔ 2  CanaryPauseStep")


# --- the command ---------------------------------------------------------------------------------

def test_get_rollout_over_the_api_server(cli: Cli, shop: Shop) -> None:
    shop.seed("paused")
    result = cli("get", "rollout", "checkout")
    assert result.code == 0, result.err
    assert "Status:         ॥ Paused" in result.out
    assert re.search(r"⧉ checkout-6d4f8c7b9\s+ReplicaSet\s+✔ Healthy\s+7m\s+stable,ready:5/5", result.out)
    assert not any(line != line.rstrip() for line in result.out.splitlines())  # no trailing blanks
    assert cli("get", "ro", "checkout").out == result.out  # Argo's alias


def test_get_missing_rollout_names_it_and_the_namespace(cli: Cli, shop: Shop) -> None:
    result = cli("get", "rollout", "payments")
    assert (result.code, result.out) == (1, "")
    assert result.err == 'rollouts get: rollout "payments" not found in namespace "shop"\n'


def test_watch_without_a_tty_prints_a_line_per_change(capsys: pytest.CaptureFixture[str], shop: Shop,
                                                      clock: SteppedClock) -> None:
    shop.seed("paused")
    cluster = shop.cluster
    script = {2: "analysis", 4: "analysis", 5: "healthy"}  # a repeat of "analysis" is no change
    ticks: list[float] = []

    def sleep(seconds: float) -> None:
        ticks.append(seconds)
        clock.advance(seconds)
        stage = script.get(len(ticks))
        if stage:
            cluster.patch_status("Rollout", "checkout", NS, {"status": rollout_status(stage)})

    runtime = connect.Runtime(clock=clock, sleep=sleep, tty=False, watch=False, make_cluster=lambda _: cluster)
    with connect.use_runtime(runtime):
        cli = Cli(capsys, ["-n", NS])
        result = cli("get", "rollout", "checkout", "--watch", "--timeout", "8s")
    assert result.code == 0
    lines = result.out.splitlines()
    assert [line.split()[1] for line in lines] == ["Paused", "Progressing", "Healthy"]
    assert all(re.match(r"\d\d:\d\d:\d\d ", line) for line in lines)
    assert "step 2/5  weight 20" in lines[1] and "step 5/5  weight 100" in lines[2]
    assert ticks == [1.0] * 8  # refreshed every second until the 8 s timeout


def test_watch_on_a_tty_redraws_with_live(capsys: pytest.CaptureFixture[str], shop: Shop, clock: SteppedClock) -> None:
    shop.seed("paused")
    runtime = connect.Runtime(clock=clock, sleep=clock.advance, tty=True, watch=False,
                              make_cluster=lambda _: shop.cluster)
    with connect.use_runtime(runtime):
        result = Cli(capsys, ["-n", NS])("get", "rollout", "checkout", "-w", "--timeout-seconds", "2", "--no-color")
    assert result.code == 0
    assert "\x1b[" in result.out  # cursor movement: redrawn in place
    assert result.out.count("Name:") >= 3 and "॥ Paused" in result.out  # t=0s, 1s, 2s (+ the final frame)


def test_bad_timeout_is_a_usage_error(cli: Cli, shop: Shop) -> None:
    shop.seed("paused")
    result = cli("get", "rollout", "checkout", "-w", "--timeout", "2d")
    assert result.code == 2 and "--timeout" in result.err and "no 'd'" in result.err


def test_spec_change_not_yet_observed_reads_progressing(cli: Cli, shop: Shop) -> None:
    shop.seed("healthy")
    shop.cluster.patch("Rollout", "checkout", NS, {"spec": {"replicas": 7}})  # generation 2, observed "1"
    result = cli("get", "rollout", "checkout")
    assert "Status:         ◌ Progressing" in result.out
    assert "Message:        waiting for rollout spec update to be observed" in result.out
    assert "Healthy" not in result.out.split("NAME")[0]
