"""The chart's ClusterRole is minimal, proven on the real API server: each rule, removed, breaks something.

For every rule (resources + verbs) of the ClusterRole `helm template` renders, one controller
process runs as a ServiceAccount bound to that ClusterRole without the rule, in a namespace of
its own, on the same short story: a Rollout (to Healthy, then restarted with `restartAt`), an
AnalysisRun with a web metric and a `secretKeyRef` arg, leader election on. It ends at its
first 403, which must name a resource of the removed rule. A control run with every rule
reaches the end of the story with no 403 at all. The cases run in parallel, each controller
stopped as soon as its case is decided, so the proof stays within the deadline.
(tests/chart/test_rbac.py proves the other half offline: every request the controller makes
is granted.)
"""

from __future__ import annotations

import copy
import re
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rollouts.kube.cluster import KubeCluster
from rollouts.kube.controlplane import ControlPlane
from rollouts.platform.clock import SystemClock
from rollouts.platform.times import format_time
from tests.k8s.e2e import (
    Controller,
    WebMetric,
    admin,
    create_all,
    delete_cluster_scoped,
    helm_template,
    namespace,
    rollout,
    status,
)

DEADLINE = 120.0
NAME = "minimal"


@dataclass
class Case:
    label: str
    namespace: str
    removed: dict[str, Any] | None  # the rule taken out; None: the control run with every rule
    controller: Controller
    cluster: KubeCluster
    restarted_at: str = ""
    verdict: str = ""  # "" while running

    def resources(self) -> set[str]:
        return set((self.removed or {}).get("resources") or [])


def rule_label(rule: dict[str, Any]) -> str:
    return f"{','.join(rule['apiGroups']) or 'core'}/{','.join(rule['resources'])}:{','.join(rule['verbs'])}"


def story(metric_url: str) -> list[dict[str, Any]]:
    run = {"apiVersion": "argoproj.io/v1alpha1", "kind": "AnalysisRun", "metadata": {"name": "direct"},
           "spec": {"args": [{"name": "token", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "token"}}}],
                    "metrics": [{"name": "webhook", "count": 1, "successCondition": "result == true",
                                 "provider": {"web": {"url": metric_url, "jsonPath": "{$.ok}",
                                                      "headers": [{"key": "Authorization",
                                                                   "value": "Bearer {{args.token}}"}]}}}]}}
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "creds"}, "data": {"token": "c2VjcmV0"}}
    return [secret, run, rollout(NAME, [{"setWeight": 50}, {"pause": {}}], replicas=1)]


def forbidden_resources(controller: Controller) -> set[str]:
    return {found for message in controller.forbidden() for found in re.findall(r'resource "([^"]+)"', message)}


def restart_when_healthy(case: Case) -> dict[str, Any]:
    """The story's second part: once Healthy, the Rollout is restarted (`restartAt`: pods listed, deleted)."""
    current = status(case.cluster, NAME, case.namespace)
    if current.get("phase") == "Healthy" and not case.restarted_at:
        case.restarted_at = format_time(SystemClock().now())
        case.cluster.patch("Rollout", NAME, case.namespace, {"spec": {"restartAt": case.restarted_at}})
    return current


def control_done(case: Case) -> bool:
    current = restart_when_healthy(case)
    run = case.cluster.get("AnalysisRun", "direct", case.namespace).get("status") or {}
    events = [e for e in case.cluster.list("Event", case.namespace) if e["involvedObject"]["kind"] == "Rollout"]
    return bool(case.restarted_at) and current.get("restartedAt") == case.restarted_at \
        and run.get("phase") == "Successful" and bool(events)


def decide(case: Case) -> str:
    """The case's verdict once it is known, else ""."""
    if not case.controller.running():
        return f"controller exited: {case.controller.tail(5)}"
    if case.removed is None:
        if case.controller.forbidden():
            return f"403 with every rule: {case.controller.forbidden()[0]}"
        return "ok" if control_done(case) else ""
    if not case.controller.forbidden():
        restart_when_healthy(case)
        return ""
    named = forbidden_resources(case.controller)
    return "ok" if named & case.resources() else f"403 on {sorted(named)}, not on the removed rule"


def test_every_rule_of_the_charts_cluster_role_is_needed_on_the_real_api_server(control_plane: ControlPlane,
                                                                                 tmp_path: Path) -> None:
    docs = helm_template(tmp_path, "e2e-rbac", "e2e-rbac")
    role = next(d for d in docs if d["kind"] == "ClusterRole")
    rules = role["rules"]
    variants: list[tuple[str, dict[str, Any] | None, list[dict[str, Any]]]] = [("all rules", None, rules)]
    variants += [(f"without {rule_label(rule)}", rule, rules[:i] + rules[i + 1:]) for i, rule in enumerate(rules)]

    with ExitStack() as stack, WebMetric() as metric:
        cases: list[Case] = []
        for index, (label, removed, kept) in enumerate(variants):
            ns = stack.enter_context(namespace(control_plane, f"e2e-rbac-{index}"))
            name = f"e2e-rbac-{index}"
            account = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name, "namespace": ns}}
            cluster_role = copy.deepcopy(role)
            cluster_role["metadata"] = {"name": name}
            cluster_role["rules"] = kept
            binding = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
                       "metadata": {"name": name},
                       "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
                       "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": ns}]}
            control_plane.apply(account, cluster_role, binding)
            stack.callback(delete_cluster_scoped, control_plane, [cluster_role, binding])
            cluster = stack.enter_context(admin(control_plane, tmp_path, ns))
            create_all(cluster, ns, story(metric.url))
            kubeconfig = control_plane.kubeconfig(tmp_path / f"kubeconfig-{index}",
                                                  as_user=f"system:serviceaccount:{ns}:{name}", namespace=ns)
            controller = Controller(kubeconfig, tmp_path / f"controller-{index}.log", namespace=ns, leader_elect=True)
            cases.append(Case(label, ns, removed, stack.enter_context(controller), cluster))

        deadline = time.monotonic() + DEADLINE
        while any(not c.verdict for c in cases) and time.monotonic() < deadline:
            for case in cases:
                if not case.verdict:
                    case.verdict = decide(case)
                    if case.verdict:
                        case.controller.stop()  # its case is decided: free the CPU for the others
            time.sleep(0.3)

    for case in cases:  # shown with -s, and by pytest on a failure
        print(f"{case.label:75} {case.verdict or 'undecided'}  403 on: {sorted(forbidden_resources(case.controller))}")
    unneeded = [c.label for c in cases if c.removed is not None and not c.verdict]
    assert not unneeded, f"rules no part of the story needs (drop them from the chart?): {unneeded}"
    control = cases[0]
    assert control.verdict == "ok", (control.verdict or "the story did not end", control.controller.tail())
    wrong = {c.label: c.verdict for c in cases if c.verdict != "ok"}
    assert not wrong, wrong
