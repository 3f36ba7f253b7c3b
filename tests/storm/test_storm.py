"""Kill storm on the embedded API server served over HTTP: at least 200 SIGKILLs (opt-in: more).

Four controller processes (one per namespace) reconcile a fleet of healthy and failing
canaries (analysis steps, background analysis, pauses) and blueGreen Rollouts judged by a
real HTTP metric server, and are SIGKILLed at seeded random moments, each replaced at once
on the same API server. A watch records every Rollout, VirtualService, ReplicaSet,
AnalysisRun and Service version; tests/storm/invariants.py judges the history and the end
state. `ROLLOUTS_STORM_KILLS` sets the kill budget (default 200; `make test-storm` runs
1,000), `ROLLOUTS_STORM_SEED` the seed (default 14). The kill count, the rounds and the
invariant summary are printed (pytest -s, or the report's captured output on a failure).
Every analysis takes a token from a Secret; it must appear in no object version, end-state
object or Event, log line or metric the storm produced, in no encoding (issue 14 item 4).
"""

from __future__ import annotations

import json
import os
import re
import urllib.request
from pathlib import Path

import pytest

from rollouts.memory.cluster import InMemoryCluster
from rollouts.memory.server import serve
from tests.faults.bench import encodings
from tests.faults.harness import everything
from tests.storm import fleet, invariants
from tests.storm.history import KINDS as HISTORY_KINDS
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
            scraped = [_scrape(shard.log) for shard in shards]  # the last process of each shard, still running
        report = invariants.check(history, cluster, namespaces, storm.promoted())
        produced = {"objects": json.dumps([obj for kind in HISTORY_KINDS for _, obj in history.versions(kind)]),
                    "end state": everything(cluster, skip=("Secret",)),
                    "logs": "".join(shard.log.read_text(errors="replace") for shard in shards),
                    "metrics": "".join(scraped)}
        with capsys.disabled():  # the figures the closing note reports, shown without -s
            print("\n" + "\n".join(figures(storm, history, report, "embedded API over HTTP", SEED)))
        assert_survived(storm, report, KILLS, unsettled)
        # every analysis sent the Secret's token (a good revision measured without it is refused, and
        # would have been aborted), and the token is in nothing the storm produced, in no encoding
        assert verdicts.served > verdicts.refused == 0
        assert all(scraped) and "rollout_reconcile" in produced["metrics"]
        for where, text in produced.items():
            for encoding, form in encodings(fleet.SECRET).items():
                assert form not in text, f"the secret, {encoding}, is in the {where}"


def _scrape(log: Path) -> str:
    """/metrics of the shard's last process (the address its last start logged)."""
    found = re.findall(r"metrics on (http://[\d.:]+/metrics)", log.read_text(errors="replace"))
    with urllib.request.urlopen(found[-1], timeout=30) as answer:
        return str(answer.read().decode())


def _settled(cluster: InMemoryCluster, namespaces: list[str]) -> list[str]:
    report = invariants.Report()
    invariants.at_rest(cluster, namespaces, report)
    return report.violations
