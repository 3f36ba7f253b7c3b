"""Kill storm on the embedded API server served over HTTP: at least 200 SIGKILLs (opt-in: more).

Four controller processes (one per namespace) reconcile a fleet of healthy and failing
canaries (analysis steps, background analysis, pauses) and blueGreen Rollouts judged by a
real HTTP metric server, and are SIGKILLed at seeded random moments, each replaced at once
on the same API server. A watch records every Rollout, VirtualService, ReplicaSet,
AnalysisRun and Service version; tests/storm/invariants.py judges the history and the end
state. `ROLLOUTS_STORM_KILLS` sets the kill budget (default 200; `make test-storm` runs
1,000), `ROLLOUTS_STORM_SEED` the seed (default 14). The kill count, the rounds and the
invariant summary are printed (pytest -s, or the report's captured output on a failure).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from rollouts.memory.cluster import InMemoryCluster
from rollouts.memory.server import serve
from tests.storm import fleet, invariants
from tests.storm.history import History
from tests.storm.storm import Shard, Storm, assert_survived, figures

KILLS = int(os.environ.get("ROLLOUTS_STORM_KILLS", "200"))
SEED = int(os.environ.get("ROLLOUTS_STORM_SEED", "14"))
SHARDS = 4
PER_SHAPE = 1


@pytest.mark.timeout(KILLS * 2 + 240)  # the opt-in runs outlast the suite's 300 s default
def test_controllers_killed_at_random_moments_never_promote_a_bad_canary_nor_skip_repeat_or_restart_a_step(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cluster = InMemoryCluster(history=100_000)
    namespaces = [f"storm-{i}" for i in range(SHARDS)]
    with serve(cluster) as api, fleet.Verdicts() as verdicts, History(cluster) as history:
        kubeconfig = api.write_kubeconfig(tmp_path / "kubeconfig")
        names = {}
        for namespace in namespaces:
            names[namespace], objects = fleet.fleet(namespace, verdicts.url, PER_SHAPE)
            for obj in objects:
                cluster.create(obj)
        shards = [Shard(ns, kubeconfig, tmp_path / f"{ns}.log") for ns in namespaces]
        storm = Storm(cluster, shards, names, seed=SEED)
        for namespace in namespaces:
            for name in names[namespace]:
                storm.begin(namespace, name)
        with storm.forking():
            unsettled = storm.run(KILLS, give_up=KILLS * 2.0 + 180,  # bounds the waits; the verdict is states
                                  settle=lambda: _settled(cluster, namespaces))
        report = invariants.check(history, cluster, namespaces, storm.promoted())
        with capsys.disabled():  # the figures the closing note reports, shown without -s
            print("\n" + "\n".join(figures(storm, history, report, "embedded API over HTTP", SEED)))
        assert_survived(storm, report, KILLS, unsettled)


def _settled(cluster: InMemoryCluster, namespaces: list[str]) -> list[str]:
    report = invariants.Report()
    invariants.at_rest(cluster, namespaces, report)
    return report.violations
