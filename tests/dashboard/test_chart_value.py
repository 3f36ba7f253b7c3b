"""The chart's `webDashboard` value: off by default; on, a second container runs `rollouts
dashboard` off loopback (so tokens are required) in the controller's scope, with a Service, the
reads it watches, the writes of its actions (not with readOnly) and system:auth-delegator."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]


def render(*sets: str) -> list[dict[str, Any]]:
    helm = subprocess.run([str(ROOT / "tools" / "helm.sh"), "--where"], capture_output=True, text=True,
                          check=True).stdout.strip()
    assert os.access(helm, os.X_OK), f"helm is not installed at {helm}: run `make deps`"
    flags = [arg for value in sets for arg in ("--set", value)]
    out = subprocess.run([helm, "template", "r", str(ROOT / "charts" / "rollouts"), "--namespace", "ops", *flags],
                         capture_output=True, text=True, check=True, timeout=60).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


def containers(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    return {c["name"]: c for c in deployment["spec"]["template"]["spec"]["containers"]}


def test_the_web_dashboard_is_off_by_default() -> None:
    docs = render()
    assert list(containers(docs)) == ["controller"]
    assert not [d for d in docs if "web-dashboard" in d["metadata"]["name"]]


def test_enabled_it_serves_off_loopback_in_the_controllers_scope_with_the_rights_it_needs() -> None:
    docs = render("webDashboard.enabled=true", "controller.namespaceScope=shop", "webDashboard.readOnly=true",
                  "webDashboard.authProxyHeader=X-Forwarded-User")
    dashboard = containers(docs)["dashboard"]
    assert dashboard["args"] == ["dashboard", "--namespace=shop", "--addr=0.0.0.0:3100", "--read-only",
                                 "--auth-proxy-header=X-Forwarded-User"]
    assert dashboard["securityContext"]["readOnlyRootFilesystem"] is True
    named = {(d["kind"], d["metadata"]["name"]): d for d in docs}
    service = named[("Service", "r-rollouts-web-dashboard")]
    assert service["spec"]["ports"][0]["port"] == 3100 and service["spec"]["ports"][0]["targetPort"] == "dashboard"
    role = named[("ClusterRole", "r-rollouts-web-dashboard")]
    assert {"patch", "update"}.isdisjoint(role["rules"][0]["verbs"]), "read-only: no write rule"
    assert named[("RoleBinding", "r-rollouts-web-dashboard")]["metadata"]["namespace"] == "shop"
    assert named[("ClusterRoleBinding", "r-rollouts-web-dashboard-auth-delegator")]["roleRef"]["name"] == \
        "system:auth-delegator"


def test_with_actions_it_may_patch_and_update_rollouts_every_namespace() -> None:
    docs = render("webDashboard.enabled=true")
    assert "--all-namespaces" in containers(docs)["dashboard"]["args"]
    role = next(d for d in docs if d["kind"] == "ClusterRole" and d["metadata"]["name"] == "r-rollouts-web-dashboard")
    assert role["rules"][0]["verbs"] == ["get", "list", "watch", "patch", "update"]
    assert role["rules"][1] == {"apiGroups": ["argoproj.io"], "resources": ["rollouts/status"], "verbs": ["patch"]}
    assert any(d["kind"] == "ClusterRoleBinding" and d["metadata"]["name"] == "r-rollouts-web-dashboard" for d in docs)
