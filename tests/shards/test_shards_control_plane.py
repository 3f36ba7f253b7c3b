"""Three namespace shards on the real control plane: each Rollout handled by its shard's leader alone.

Three `--namespace` shards run two controller processes each against kube-apiserver (one
Lease per shard, `rollouts-controller-lock-ns-<namespace>`, in that namespace). The
controllers act as cluster admin, so nothing but the shard's own scope keeps them out of
the other namespaces. Proven: every Rollout ends Healthy with Events written only by its
shard's leader; shard 1's leader is SIGKILLed, its standby takes the Lease and rolls that
shard's Rollouts to a new image alone, and the other shards' Rollouts keep one writer each.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from rollouts.controller.leader import lock_name
from rollouts.kube.controlplane import ControlPlane
from tests.k8s.e2e import admin, eventually, namespace
from tests.shards.shards import LEASE_SECONDS, rollout, settled, shards, wait_for_leaders, writers

NAMESPACES = ("shard-0", "shard-1", "shard-2")
PER_SHARD = 6
UPDATED = 3


def test_three_namespace_shards_on_the_real_control_plane(control_plane: ControlPlane, tmp_path: Path) -> None:
    with namespace(control_plane, NAMESPACES[0]), namespace(control_plane, NAMESPACES[1]), \
            namespace(control_plane, NAMESPACES[2]):
        cluster = admin(control_plane, tmp_path)
        keys = [(ns, f"app-{i}") for ns in NAMESPACES for i in range(PER_SHARD)]
        for ns, name in keys:
            cluster.create(rollout(name, ns))
        kubeconfig = control_plane.kubeconfig(tmp_path / "kubeconfig-controllers")
        specs = {ns: (("--namespace", ns), lock_name(None, ns), ns) for ns in NAMESPACES}
        with shards(kubeconfig, tmp_path, specs) as running:
            leaders = wait_for_leaders(cluster, running)
            standby = {s.name: next(r for r in s.replicas if r is not leaders[s.name]) for s in running}

            def all_settled(old: dict[tuple[str, str], Any] | None = None) -> bool:
                return all(settled(cluster.get("Rollout", name, ns), not_on=(old or {}).get((ns, name)))
                           for ns, name in keys)

            assert eventually(all_settled, timeout=120, interval=1), [r.controller.tail(5) for r in leaders.values()]
            before = writers(cluster, list(NAMESPACES))
            assert set(before) == set(keys)
            for ns, name in keys:
                assert before[(ns, name)] == {leaders[ns].identity}, (ns, name, before[(ns, name)])

            victim = running[1]
            old_leader = leaders[victim.name]
            old_leader.controller.kill()
            killed_at = time.monotonic()
            assert eventually(lambda: victim.holder(cluster) == standby[victim.name].identity,
                              timeout=LEASE_SECONDS + 15, interval=0.1), standby[victim.name].controller.tail()
            print(f"{victim.name} taken over {time.monotonic() - killed_at:.1f}s after the SIGKILL")
            updated = [(victim.name, f"app-{i}") for i in range(UPDATED)]
            old = {key: cluster.get("Rollout", key[1], key[0])["status"]["stableRS"] for key in updated}
            for ns, name in updated:
                cluster.patch("Rollout", name, ns, {"spec": {"template": {"spec": {"containers": [
                    {"name": "app", "image": "app:v2"}]}}}})
            assert eventually(lambda: all_settled(old), timeout=120, interval=1), standby[victim.name].controller.tail()

            after = writers(cluster, list(NAMESPACES))
            for ns, name in keys:
                expected = ({old_leader.identity, standby[ns].identity} if (ns, name) in old
                            else {leaders[ns].identity})
                assert after[(ns, name)] == expected, (ns, name, after[(ns, name)])
            for shard in (running[0], running[2]):
                assert shard.holder(cluster) == leaders[shard.name].identity
