"""`rollouts list rollouts [-A]`: Argo's columns, one line per Rollout."""

from __future__ import annotations

import re

from rollouts import view
from rollouts.memory.cluster import InMemoryCluster
from rollouts.view import render
from tests.cli.conftest import NS, Cli, Shop, rollout_manifest, rollout_status

HEADER = ["NAME", "STRATEGY", "STATUS", "STEP", "SET-WEIGHT", "READY", "DESIRED", "UP-TO-DATE", "AVAILABLE"]


def table(text: str) -> list[list[str]]:
    return [re.split(r"\s{2,}", line.strip()) for line in text.splitlines() if line.strip()]


def seed_other_namespace(cluster: InMemoryCluster) -> None:
    manifest = rollout_manifest("search")
    manifest["metadata"]["namespace"] = "catalog"
    manifest["spec"]["replicas"] = 3
    del manifest["spec"]["strategy"]["canary"]["steps"]
    cluster.create(manifest)
    cluster.patch_status("Rollout", "search", "catalog", {"status": rollout_status("healthy") | {
        "replicas": 3, "readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2,
        "phase": "Progressing", "message": "updated replicas are still becoming available"}})


def test_list_rollouts_in_the_contexts_namespace(cli: Cli, shop: Shop) -> None:
    shop.seed("paused")
    shop.seed("paused", name="checkout-eu")
    shop.cluster.patch_status("Rollout", "checkout-eu", NS, {"status": rollout_status("aborted")})
    seed_other_namespace(shop.cluster)
    result = cli("list", "rollouts")
    assert result.code == 0, result.err
    assert table(result.out) == [
        HEADER,
        ["checkout", "Canary", "Paused", "1/5", "20", "6/6", "5", "1", "6"],
        ["checkout-eu", "Canary", "Degraded", "0/5", "0", "5/5", "5", "0", "5"],
    ]


def test_list_all_namespaces_adds_the_namespace_column(cli: Cli, shop: Shop) -> None:
    shop.seed("healthy")
    seed_other_namespace(shop.cluster)
    rows = table(cli("list", "rollouts", "-A").out)
    assert rows == [
        ["NAMESPACE", *HEADER],
        ["catalog", "search", "Canary", "Progressing", "-", "100", "2/3", "3", "3", "2"],
        ["shop", "checkout", "Canary", "Healthy", "5/5", "100", "5/5", "5", "5", "5"],
    ]


def test_list_trusts_the_phase_only_for_the_observed_generation(cli: Cli, shop: Shop) -> None:
    shop.seed("healthy")
    shop.cluster.patch("Rollout", "checkout", NS, {"spec": {"paused": True}})
    assert table(cli("list", "ro").out)[1][2] == "Progressing"


def test_empty_namespace_says_so(cli: Cli, shop: Shop) -> None:
    result = cli("list", "rollouts")
    assert (result.code, result.out, result.err) == (0, "", 'No rollouts found in namespace "shop".\n')


def test_list_row_defaults_like_argo() -> None:
    row = view.list_row({"metadata": {"name": "bg", "namespace": "x"}, "spec": {"strategy": {"blueGreen": {}}}})
    assert (row.strategy, row.status, row.step, row.set_weight, row.ready, row.desired) == (
        "BlueGreen", "Progressing", "-", "-", "0/0", 1)
    text = render.to_text(render.rollout_list([row], all_namespaces=False))
    assert table(text)[1] == ["bg", "BlueGreen", "Progressing", "-", "-", "0/0", "1", "0", "0"]
